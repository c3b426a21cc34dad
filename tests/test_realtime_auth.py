"""Tokens on the real-time transports (``wsgi.py`` under eventlet, real clients): a token
counts only while its user exists and names a user at all; tokens in URLs never reach
the access log."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator

import jwt as pyjwt
import pytest
import requests
import socketio
import websocket

from tests.helpers.realtime import Recorder, User
from tests.helpers.web_server import LiveServer

JWT_SECRET = "realtime-auth-jwt-secret-0123456789"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(JWT_SECRET_KEY=JWT_SECRET).start()
    yield live
    live.stop()


def _forged(sub: str) -> str:
    now = int(time.time())
    return pyjwt.encode({"sub": sub, "type": "access", "iat": now, "nbf": now,
                         "exp": now + 3600, "jti": "forged", "fresh": False},
                        JWT_SECRET, algorithm="HS256")


def _refused_everywhere(server: LiveServer, token: str) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        Recorder(server.url, token)
    ws_url = server.url.replace("http://", "ws://")
    for path in ("/api/ws/chat", "/api/ws/voice_chat"):
        for kwargs in ({"header": [f"Authorization: Bearer {token}"]}, {}):
            url = f"{ws_url}{path}" + ("" if kwargs else f"?token={token}")
            with pytest.raises(websocket.WebSocketBadStatusException) as raised:
                websocket.create_connection(url, timeout=10, **kwargs)
            assert raised.value.status_code == 401
    response = requests.get(f"{server.url}/api/auth/me",
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


def test_a_deleted_users_token_is_refused_by_every_transport(server: LiveServer) -> None:
    user = User(server.url)
    talker = Recorder(server.url, user.token)
    talker.close()
    with sqlite3.connect(server.work / "tingshuo.db") as db:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("DELETE FROM users WHERE id = ?", (user.id,))
    _refused_everywhere(server, user.token)


@pytest.mark.parametrize("sub", ["abc", "9" * 30, "-4"])
def test_a_token_whose_sub_names_no_user_is_refused(server: LiveServer, sub: str) -> None:
    _refused_everywhere(server, _forged(sub))
    assert "Traceback" not in server.log.read_text(errors="replace")


def test_tokens_in_urls_are_redacted_from_the_access_log(server: LiveServer) -> None:
    user = User(server.url)
    requests.get(f"{server.url}/api/auth/me?token={user.token}", timeout=10)
    ws = websocket.create_connection(
        f"{server.url.replace('http://', 'ws://')}/api/ws/chat?token={user.token}", timeout=10)
    ws.send(json.dumps({"role_id": user.role_id, "message": "hi", "type": "text",
                        "response_type": 0}))
    ws.recv()
    ws.close()
    deadline = time.time() + 10
    log = ""
    while time.time() < deadline:
        log = server.log.read_text(errors="replace")
        if log.count("token=[redacted]") >= 2:
            break
        time.sleep(0.2)
    assert "/api/auth/me?token=[redacted]" in log
    assert "/api/ws/chat?token=[redacted]" in log
    assert user.token not in log
    assert user.token.split(".")[2] not in log


def test_hostile_chat_input_gets_a_400_error_event(server: LiveServer) -> None:
    """A lone surrogate or an id beyond 64 bits is the client's mistake on the sockets too."""
    user = User(server.url)
    talker = Recorder(server.url, user.token)
    try:
        cases = [("chat_message", {"role_id": user.role_id, "message": "a\ud800b", "type": "text"}),
                 ("chat_message", {"role_id": 2**70, "message": "hi", "type": "text"}),
                 ("join", {"role_id": user.role_id, "session_id": "\udc00"}),
                 ("join", {"role_id": user.role_id, "session_id": {"x": 1}})]
        for event, payload in cases:
            mark = len(talker.events)
            talker.emit(event, payload)
            error = talker.wait_for("error", 20, mark)
            assert error["code"] in (400, 404), (event, payload, error)
        ws = websocket.create_connection(
            f"{server.url.replace('http://', 'ws://')}/api/ws/chat?token={user.token}",
            timeout=20)
        ws.send(json.dumps({"role_id": user.role_id, "message": "a\ud800b", "type": "text"}))
        assert json.loads(ws.recv())["code"] == 400
        ws.close()
    finally:
        talker.close()
    sessions = user.call("GET", "/api/sessions")["data"]
    assert sessions["total"] == 0
