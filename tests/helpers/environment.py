"""What this test run may rely on: MariaDB and Redis at the URLs it is given, and
whether a missing service is a failure (``REQUIRE_SERVICES=1``, as CI sets) or a skip."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1"
MYSQL_URL = os.environ.get("TEST_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_missing(what: str, reason: object) -> NoReturn:
    """Skip locally, fail under REQUIRE_SERVICES=1."""
    message = f"{what} unavailable: {reason}"
    if REQUIRE:
        pytest.fail(message)
    pytest.skip(message)


only_mysql = pytest.mark.parametrize("database_url", ["mysql"], indirect=True)
"""For a test that needs MariaDB itself (a worker in another process shares it)."""
