"""What this test run may rely on: MariaDB and Redis at the URLs it is given, and
whether a missing service is a failure (``REQUIRE_SERVICES=1``, as CI sets) or a skip."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest
from sqlalchemy.engine import make_url

REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1"
# Under ``pytest -n N`` each worker process ("gw0", "gw1", …) runs its share of the tests
# against a database and a Redis database of its own, so that one worker's emptying of
# the tables or flushing of keys never lands in another's test.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _for_this_worker_mysql(url: str) -> str:
    if not WORKER:
        return url
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{WORKER}").render_as_string(
        hide_password=False)


def _for_this_worker_redis(url: str) -> str:
    if not WORKER:
        return url
    base, _, number = url.rpartition("/")
    first = int(number) if number.isdigit() else 0
    return f"{base}/{first + 1 + int(WORKER.removeprefix('gw'))}"


MYSQL_URL = _for_this_worker_mysql(
    os.environ.get("TEST_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/test"))
REDIS_URL = _for_this_worker_redis(
    os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))


def service_missing(what: str, reason: object) -> NoReturn:
    """Skip locally, fail under REQUIRE_SERVICES=1."""
    message = f"{what} unavailable: {reason}"
    if REQUIRE:
        pytest.fail(message)
    pytest.skip(message)


only_mysql = pytest.mark.parametrize("database_url", ["mysql"], indirect=True)
"""For a test that needs MariaDB itself (a worker in another process shares it)."""

engine_bound = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For a test whose cost is its engines (seconds of recognition and synthesis) and whose
database use is a row or two, as any other test's: it runs once, on SQLite (the embedded
default), not once per database."""
