"""Schemathesis fuzzes ``/v1`` on the running server (eventlet, real engines) from the
``/v1/openapi.json`` document: whatever it sends, no answer is a server error, and every
error is in OpenAI's shape. Bounded: a few dozen requests per operation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.helpers.openai_accounts import Account, sign_up
from tests.helpers.web_server import LiveServer
from webapp.app.openai_api.spec import openai_spec

schema = schemathesis.openapi.from_dict(openai_spec())


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer().start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def account(server: LiveServer) -> Account:
    return sign_up(server.url)


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case, server: LiveServer, account: Account) -> None:
    response = case.call(base_url=server.url, timeout=120,
                         headers={"Authorization": f"Bearer {account.key}"})
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) >= {"message", "type", "code"} and error["message"]
