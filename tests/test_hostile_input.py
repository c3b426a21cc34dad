"""Hostile input gets a 4xx in the envelope and leaves nothing behind: integers beyond
64 bits, lone surrogates, text with nothing to say, malformed playlist items, forged
and orphaned tokens."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from webapp.app.extensions import db
from webapp.app.models import Conversation, File, GeneratedVoice, Message, User

HUGE = "9" * 25  # far beyond 64 bits
TWO_TO_64 = str(2**64)


def _rows(app: Flask, model: Any) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _stored_objects(app: Flask) -> list[Path]:
    root = Path(app.config["STORAGE_DIR"])
    return [p for p in root.rglob("*") if p.is_file() and "health" not in p.parts]


def _is_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["success"] is False and body["code"] == status and body["data"] is None
    assert body["error"]["code"] and body["message"]
    return body


def _role(client: FlaskClient, headers: dict[str, str]) -> int:
    body = client.post("/api/role/add", headers=headers, json={
        "name": "Ada", "description": "A patient teacher who explains things.",
        "gender": "女", "age": 36, "voice_type": "espeak:cmn"}).get_json()
    assert body["success"], body
    return body["data"]["role_id"]


@pytest.mark.parametrize("path", [
    f"/api/role/{HUGE}", f"/api/role/{TWO_TO_64}", f"/api/role/user/{HUGE}",
    f"/api/voice/cache/{HUGE}", f"/api/voice/cache/{TWO_TO_64}",
    f"/api/voice/profiles/{HUGE}"])
def test_path_ids_beyond_64_bits_are_404(client: FlaskClient, auth_headers: dict[str, str],
                                         path: str) -> None:
    _is_error(client.get(path, headers=auth_headers), 404)


def test_put_and_delete_with_huge_ids_are_404(client: FlaskClient,
                                              auth_headers: dict[str, str]) -> None:
    _is_error(client.put(f"/api/role/{HUGE}", headers=auth_headers, json={"age": 3}), 404)
    _is_error(client.delete(f"/api/role/{TWO_TO_64}", headers=auth_headers), 404)
    _is_error(client.delete(f"/api/role/{2**63}", headers=auth_headers), 404)
    _is_error(client.put(f"/api/role/{2**63}", headers=auth_headers, json={"age": 3}), 404)
    _is_error(client.put(f"/api/voice/profiles/{HUGE}", headers=auth_headers,
                         json={"baseSpeed": 1.0}), 404)


@pytest.mark.parametrize("query", [
    f"page={HUGE}", f"page_size={HUGE}", f"page={TWO_TO_64}", "page=1e22", "page=-1",
    "page_size=0", "page_size=101", "page=abc"])
@pytest.mark.parametrize("path", ["/api/role/list", "/api/sessions", "/api/voices",
                                  "/api/temfile/list"])
def test_page_query_is_bounded(client: FlaskClient, auth_headers: dict[str, str], path: str,
                               query: str) -> None:
    body = _is_error(client.get(f"{path}?{query}", headers=auth_headers), 400)
    assert body["error"]["code"] == "VALIDATION_ERROR"


def test_largest_page_is_an_empty_page(client: FlaskClient,
                                       auth_headers: dict[str, str]) -> None:
    from webapp.app.schemas import MAX_PAGE

    body = client.get(f"/api/role/list?page={MAX_PAGE}&page_size=100",
                      headers=auth_headers).get_json()
    assert body["success"] and body["data"]["list"] == []


@pytest.mark.parametrize("body", [{"page": 1e22}, {"page": 2**64}, {"page_size": 2**70},
                                  {"page": 1.5}, {"page": True}, {"page": "1e22"}])
def test_get_voices_body_integers_are_bounded(client: FlaskClient,
                                              auth_headers: dict[str, str],
                                              body: dict[str, Any]) -> None:
    response = client.post("/api/voice/get_voices", headers=auth_headers, json=body)
    answer = _is_error(response, 400)
    assert set(answer["error"]["details"]["fields"]) <= {"page", "page_size"}


def test_session_role_ids_are_bounded(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    _is_error(client.get(f"/api/sessions?role_id={HUGE}", headers=auth_headers), 400)
    _is_error(client.post("/api/sessions", headers=auth_headers, json={"role_id": 2**64}), 400)
    _is_error(client.post("/api/sessions", headers=auth_headers, json={"role_id": 1e22}), 400)


@pytest.mark.parametrize("message_id", [2**64, 10**30, 1e22, -1, "12"])
def test_generate_with_a_bad_message_id_is_400_and_stores_nothing(
        app: Flask, client: FlaskClient, auth_headers: dict[str, str], message_id: Any) -> None:
    response = client.post("/api/voice/generate", headers=auth_headers,
                           json={"messageId": message_id, "text": "你好", "provider": "local"})
    body = _is_error(response, 400)
    assert body["error"]["code"] == "INVALID_VOICE_PARAMETER"
    assert "messageId" in body["error"]["details"]["fields"]
    assert _rows(app, File) == 0 and _rows(app, GeneratedVoice) == 0
    assert _stored_objects(app) == []


def test_largest_message_id_is_generated_and_cached(client: FlaskClient,
                                                    auth_headers: dict[str, str]) -> None:
    key = 2**63 - 1
    made = client.post("/api/voice/generate", headers=auth_headers,
                       json={"messageId": key, "text": "你好", "provider": "local"}).get_json()
    assert made["success"], made
    assert made["data"]["messageId"] == key
    cached = client.get(f"/api/voice/cache/{key}", headers=auth_headers).get_json()
    assert cached["data"]["messageId"] == key


@pytest.mark.parametrize("item", [{}, 1.5, [], True, None, "", 2**64, -3])
def test_playlist_items_must_be_message_keys(client: FlaskClient, auth_headers: dict[str, str],
                                             item: Any) -> None:
    session = client.post("/api/sessions", headers=auth_headers, json={}).get_json()["data"]
    response = client.post("/api/voice/playback/session", headers=auth_headers, json={
        "debateId": session["session_id"], "playlist": [1, item]})
    body = _is_error(response, 400)
    assert body["error"]["code"] == "INVALID_VOICE_PARAMETER"
    assert "playlist" in body["error"]["details"]["fields"]
    assert "message id" in client.post(
        "/api/voice/playback/session", json={"debateId": session["session_id"],
                                             "playlist": [item]},
        headers={**auth_headers, "Accept-Language": "en"}).get_json()["message"]


LONE = "a\ud800b"


@pytest.mark.parametrize(("path", "body"), [
    ("/api/tts", {"text": LONE}),
    ("/api/tts/stream", {"text": LONE}),
    ("/api/tts", {"text": "hello", "language": "\udc00"}),
    ("/api/voice/generate", {"messageId": 1, "text": LONE, "provider": "local"}),
    ("/api/sessions", {"title": LONE}),
    ("/api/role/add", {"name": LONE, "description": "A patient teacher who explains.",
                       "gender": "女", "age": 3, "voice_type": "espeak:cmn"}),
    ("/api/auth/register", {"username": "abc\ud800", "password": "long-enough"}),
    ("/api/voice/settings", {"preferredProvider": "\ud800"}),
])
def test_lone_surrogates_are_refused_and_leave_nothing(
        app: Flask, client: FlaskClient, auth_headers: dict[str, str], path: str,
        body: dict[str, Any]) -> None:
    method = client.put if path == "/api/voice/settings" else client.post
    sessions_before = _rows(app, Conversation)
    response = method(path, headers={**auth_headers, "Accept-Language": "en"},
                      data=json.dumps(body), content_type="application/json")
    answer = _is_error(response, 400)
    assert "surrogate" in answer["message"]
    assert _rows(app, Conversation) == sessions_before
    assert _rows(app, Message) == 0 and _rows(app, File) == 0


def test_a_lone_surrogate_in_a_key_is_refused(client: FlaskClient,
                                              auth_headers: dict[str, str]) -> None:
    _is_error(client.post("/api/sessions", headers=auth_headers,
                          data=json.dumps({"ti\udfffle": "x"}), content_type="application/json"),
              400)


@pytest.mark.parametrize("text", ["\u0002\u001d", "   ", "\t\n ", "\u200b\u200d", "\u3000"])
@pytest.mark.parametrize("path", ["/api/tts", "/api/tts/stream"])
def test_text_with_nothing_to_say_is_400_and_makes_no_session(
        app: Flask, client: FlaskClient, auth_headers: dict[str, str], path: str,
        text: str) -> None:
    response = client.post(path, headers={**auth_headers, "Accept-Language": "en"},
                           json={"text": text})
    body = _is_error(response, 400)
    assert body["message"] == "Invalid parameter: The text has nothing that can be spoken"
    assert _rows(app, Conversation) == 0 and _rows(app, Message) == 0 and _rows(app, File) == 0


def test_generate_with_nothing_to_say_is_400(app: Flask, client: FlaskClient,
                                             auth_headers: dict[str, str]) -> None:
    response = client.post("/api/voice/generate", headers=auth_headers,
                           json={"messageId": 5, "text": "\u0002\u001d", "provider": "local"})
    assert _is_error(response, 400)["error"]["code"] == "INVALID_VOICE_PARAMETER"
    assert _rows(app, File) == 0 and _stored_objects(app) == []


def test_an_engine_that_says_nothing_is_the_callers_mistake(
        app: Flask, user: dict[str, Any]) -> None:
    """Text that reaches an engine (past the schema) and comes out as no audio at all."""
    from webapp.app.providers.base import ProviderError
    from webapp.app.services.voice_library import synthesis, voices

    with app.test_request_context():
        voice = voices.resolve_usable("piper:en_US-joe-medium", user["id"])
        with pytest.raises(ProviderError) as caught:
            synthesis.render(voice, "", "mp3")
    assert caught.value.kind == "bad_input"
    assert _rows(app, Conversation) == 0


def _token(app: Flask, sub: Any, **claims: Any) -> str:
    """A token signed with the app's own key (what someone who knew it could forge)."""
    import time

    now = int(time.time())
    payload = {"sub": sub, "type": "access", "iat": now, "nbf": now,
               "exp": now + int(timedelta(hours=1).total_seconds()), "jti": "x", "fresh": False,
               **claims}
    return pyjwt.encode(payload, app.config["JWT_SECRET_KEY"], algorithm="HS256")


@pytest.mark.parametrize("sub", ["abc", "", "1.5", "-1", HUGE, TWO_TO_64, "١٢"])
def test_a_forged_sub_that_names_no_user_is_401(app: Flask, client: FlaskClient,
                                                sub: str) -> None:
    headers = {"Authorization": f"Bearer {_token(app, sub)}"}
    for path in ("/api/auth/me", "/api/sessions", "/api/role/list"):
        body = _is_error(client.get(path, headers=headers), 401)
        assert body["error"]["code"] == "UNAUTHORIZED"


def test_optional_auth_with_a_forged_sub_is_anonymous(app: Flask, client: FlaskClient) -> None:
    response = client.get("/api/voiceTypes", headers={"Authorization":
                                                      f"Bearer {_token(app, 'abc')}"})
    assert response.status_code == 200


def test_a_deleted_users_tokens_stop_working(app: Flask, client: FlaskClient,
                                             make_user: Any) -> None:
    gone = make_user()
    assert client.get("/api/auth/me", headers=gone["headers"]).status_code == 200
    with app.app_context():
        db.session.delete(db.session.get(User, gone["id"]))
        db.session.commit()
    body = _is_error(client.get("/api/auth/me", headers=gone["headers"]), 401)
    assert body["error"]["code"] == "UNAUTHORIZED"
    _is_error(client.get("/api/sessions", headers=gone["headers"]), 401)
    _is_error(client.get(f"/api/sessions?token={gone['access_token']}"), 401)
    refreshed = client.post("/api/auth/refresh",
                            headers={"Authorization": f"Bearer {gone['refresh_token']}"})
    _is_error(refreshed, 401)
    newcomer = make_user()
    assert newcomer["id"] != gone["id"]
    _is_error(client.get("/api/auth/me", headers=gone["headers"]), 401)
