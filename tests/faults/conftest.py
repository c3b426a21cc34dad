"""The fault stack, started once for the tests of this folder and mended after each."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.faults.stack import FaultStack, fault_stack
from tests.helpers.environment import service_missing


@pytest.fixture(scope="package")
def stack(mysql_database: str, s3_server: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    """The stack runs a Redis server of its own: restarting it is one of the faults."""
    if shutil.which("redis-server") is None:
        service_missing("redis-server", "not installed (Debian: apt-get install redis-server)")
    with fault_stack(mysql_database, s3_server, tmp_path_factory.mktemp("faults")) as running:
        yield running


@pytest.fixture(autouse=True)
def mended(stack: FaultStack) -> Iterator[FaultStack]:
    """Each test starts with no fault injected and every connection restored."""
    stack.reset_faults()
    yield stack
    stack.reset_faults()
