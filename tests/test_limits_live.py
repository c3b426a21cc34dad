"""Per-user limits on the real transports (``wsgi.py`` under eventlet, real clients): the
Socket.IO ``error`` event, the plain WebSockets' own error frames and refused upgrades,
a second call refused, and ``/v1`` as OpenAI's client sees it (``RateLimitError``)."""

from __future__ import annotations

import base64
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import requests
import socketio
import websocket

from tests.helpers.openai_accounts import sign_up
from tests.helpers.realtime import Recorder, User
from tests.helpers.web_server import LiveServer, WebServer

VOICE = "espeak:en-us"


@pytest.fixture(scope="module")
def server() -> Iterator[WebServer]:
    """The embedded mode with low limits; engines load when first used."""
    live = WebServer(Path(tempfile.mkdtemp(prefix="tingshuo-limits-")),
                     unset=LiveServer.EMBEDDED_UNLESS_GIVEN, WARM_UP="false",
                     RATELIMIT_ENABLED="true", RATELIMIT_TURNS="2 per minute",
                     RATELIMIT_SPEECH="2 per minute", USER_MAX_STREAMS="1",
                     USER_MAX_CALLS="1", USER_DAILY_CHARACTERS="300")
    live.migrate()
    live.start()
    yield live
    live.stop()


def _ws_url(server: WebServer, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def _is_refusal(frame: dict, retry_after: bool = True) -> None:
    assert frame["code"] == 429, frame
    if retry_after:
        assert frame["error_code"] == "RATE_LIMITED" and frame["retry_after"] >= 1


def test_socketio_turns_per_minute(server: WebServer) -> None:
    user = User(server.url, voice_type=VOICE)
    talker = Recorder(server.url, user.token)
    try:
        talker.join(user.role_id)
        mark = len(talker.events)
        for text in ("one", "two", "three"):
            talker.emit("chat_message", {"role_id": user.role_id, "message": text,
                                         "type": "text", "response_type": 0})
        _is_refusal(talker.wait_for("error", 30, mark))
        talker.wait_for("response_complete", 60, mark)
    finally:
        talker.close()


def test_second_call_is_refused(server: WebServer) -> None:
    user = User(server.url, voice_type=VOICE)
    first, second = Recorder(server.url, user.token), Recorder(server.url, user.token)
    for client in (first, second):
        for name in ("call_started", "call_ended"):
            client.client.on(name, client.handler(name), namespace="/chat")
    try:
        first.emit("call_start", {"role_id": user.role_id, "sample_rate": 16000,
                                  "language": "en"})
        first.wait_for("call_started", 120)
        second.emit("call_start", {"role_id": user.role_id, "sample_rate": 16000,
                                   "language": "en"})
        refused = second.wait_for("error", 30)
        _is_refusal(refused)
        assert "call_started" not in second.names()
        first.emit("call_end", {})
        first.wait_for("call_ended", 30)
    finally:
        first.close()
        second.close()


def test_plain_websocket_errors_and_streams(server: WebServer) -> None:
    user = User(server.url, voice_type=VOICE)
    header = [f"Authorization: Bearer {user.token}"]
    chat = websocket.create_connection(_ws_url(server, "/api/ws/chat"), timeout=60,
                                       header=header)
    try:
        # One stream at a time for this user: a second socket is refused at the upgrade.
        with pytest.raises(websocket.WebSocketBadStatusException) as raised:
            websocket.create_connection(_ws_url(server, "/api/ws/voice_chat"), timeout=10,
                                        header=header)
        assert raised.value.status_code == 429
        assert int(raised.value.resp_headers["retry-after"]) >= 1
        answers = []
        for text in ("one", "two", "three"):
            chat.send(json.dumps({"role_id": user.role_id, "message": text, "type": "text",
                                  "response_type": 0}))
            answers.append(json.loads(chat.recv()))
        assert all("error" not in answer for answer in answers[:2]), answers
        assert answers[2]["code"] == 429 and answers[2]["error"]
    finally:
        chat.close()
    # Closed: the place is free again (once the server has seen the close).
    deadline = time.time() + 10
    while True:
        try:
            websocket.create_connection(_ws_url(server, "/api/ws/call"), timeout=10,
                                        header=header).close()
            break
        except websocket.WebSocketBadStatusException:
            assert time.time() < deadline
            time.sleep(0.2)


def test_openai_client_sees_rate_limit_error(server: WebServer) -> None:
    account = sign_up(server.url)
    client = openai.OpenAI(api_key=account.key, base_url=f"{server.url}/v1", max_retries=0)
    for _ in range(2):
        assert client.audio.speech.create(model="tts-1", voice=VOICE, input="Hi.").content
    with pytest.raises(openai.RateLimitError) as raised:
        client.audio.speech.create(model="tts-1", voice=VOICE, input="Hi.")
    assert int(raised.value.response.headers["retry-after"]) >= 1
    assert raised.value.code == "rate_limited"
    assert raised.value.body["type"] == "rate_limit_error"


def test_openai_jwt_counts_against_the_day(server: WebServer) -> None:
    account = sign_up(server.url)
    client = openai.OpenAI(api_key=account.token, base_url=f"{server.url}/v1", max_retries=0)
    assert client.audio.speech.create(model="tts-1", voice=VOICE, input="Hello. " * 35).content
    with pytest.raises(openai.RateLimitError) as raised:
        client.audio.speech.create(model="tts-1", voice=VOICE, input="Hello. " * 10)
    assert int(raised.value.response.headers["retry-after"]) <= 86400


def test_sockets_take_access_tokens_from_the_url_but_never_refresh_tokens(
        server: WebServer) -> None:
    user = User(server.url, voice_type=VOICE)
    tokens = user.http.post(f"{server.url}/api/auth/login", json={
        "username": user.name, "password": "long-enough"}, timeout=10).json()["data"]
    url = _ws_url(server, "/api/ws/chat")
    websocket.create_connection(f"{url}?token={tokens['access_token']}", timeout=10).close()
    with pytest.raises(websocket.WebSocketBadStatusException) as raised:
        websocket.create_connection(f"{url}?token={tokens['refresh_token']}", timeout=10)
    assert raised.value.status_code == 401
    with pytest.raises(socketio.exceptions.ConnectionError):
        Recorder(server.url, tokens["refresh_token"])
    # REST reads the header only.
    assert requests.get(f"{server.url}/api/auth/me?token={tokens['access_token']}",
                        timeout=10).status_code == 401


def test_chat_turns_count_against_the_day(server: WebServer, speech_wav: bytes) -> None:
    user = User(server.url, voice_type=VOICE)
    talker = Recorder(server.url, user.token)
    try:
        talker.join(user.role_id)
        mark = len(talker.events)
        talker.emit("chat_message", {"role_id": user.role_id, "message": "Hello!",
                                     "type": "text", "response_type": 1})
        talker.wait_for("response_complete", 120, mark)
        spoken = user.call("GET", "/api/auth/usage")["data"]
        assert spoken["characters"] > 0 and spoken["audio_seconds"] == 0
        assert spoken["daily_characters"] == 300
        mark = len(talker.events)
        talker.emit("voice_message", {"role_id": user.role_id, "format": "wav",
                                      "audio": base64.b64encode(speech_wav).decode()})
        talker.wait_for("response_complete", 180, mark)
        heard = user.call("GET", "/api/auth/usage")["data"]
        assert 6 <= heard["audio_seconds"] <= 12
        assert heard["characters"] > spoken["characters"]
    finally:
        talker.close()
