"""Per-user limits (``services.platform.limits``): each refusal is a 429 with
``Retry-After`` in the envelope, and the counters stay exact when many requests race,
on SQLite and MariaDB, and across processes through Redis.

The real-time transports and ``/v1`` with OpenAI's client are in ``test_limits_live``.
"""

from __future__ import annotations

import io
import multiprocessing
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from webapp.app.errors import ApiError
from webapp.app.extensions import db
from webapp.app.models import ApiKeyUsage, File, Message, User, UserDailyUsage
from webapp.app.services.platform import api_keys, jobs, limits
from webapp.app.services.speech.openai_audio import Caller

VOICE = "espeak:en-us"


def _refused(response: Any, code: str = "RATE_LIMITED") -> dict[str, Any]:
    """A 429 in the envelope with a whole number of seconds in ``Retry-After``."""
    assert response.status_code == 429, response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) >= 1
    body = response.get_json()
    assert body["success"] is False and body["code"] == 429
    assert body["error"]["code"] == code
    return body


def _used(app: Flask, user_id: int) -> tuple[int, float]:
    with app.app_context():
        row = db.session.get(UserDailyUsage, (user_id, limits.today()))
        result = (int(row.characters), float(row.audio_seconds)) if row else (0, 0.0)
        db.session.remove()
        return result


def _register(client: Any) -> dict[str, Any]:
    name = "u" + uuid.uuid4().hex[:10]
    data = client.post("/api/auth/register",
                       json={"username": name, "password": "long-enough"}).get_json()["data"]
    return {"id": data["user"]["id"],
            "headers": {"Authorization": f"Bearer {data['access_token']}"}}


# -- requests per minute -----------------------------------------------------------------

def test_session_creation_per_minute(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_SESSIONS="2 per minute")
    client = app.test_client()
    first, second = _register(client), _register(client)
    statuses = [client.post("/api/sessions", headers=first["headers"], json={}).status_code
                for _ in range(2)]
    assert statuses == [200, 200]
    body = _refused(client.post("/api/sessions", headers=first["headers"], json={}))
    assert body["error"]["details"]["family"] == "sessions"
    assert 1 <= body["error"]["details"]["retry_after"] <= 60
    # Another user has a window of their own.
    assert client.post("/api/sessions", headers=second["headers"], json={}).status_code == 200


def test_tts_per_minute_in_english(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_SPEECH="1 per minute")
    client = app.test_client()
    user = _register(client)
    request = {"text": "One.", "voice_type": VOICE, "format": "wav"}
    assert client.post("/api/tts", headers=user["headers"], json=request).status_code == 200
    response = client.post("/api/tts", headers={**user["headers"], "Accept-Language": "en"},
                           json=request)
    assert _refused(response)["message"].startswith("Too many requests")


def test_rates_are_off_when_rate_limiting_is(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(RATELIMIT_ENABLED=False, RATELIMIT_SESSIONS="1 per minute")
    client = app.test_client()
    user = _register(client)
    assert [client.post("/api/sessions", headers=user["headers"], json={}).status_code
            for _ in range(3)] == [200, 200, 200]


def test_sign_ups_per_address(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_REGISTER="2 per hour")
    client = app.test_client()
    for _ in range(2):
        _register(client)
    response = client.post("/api/auth/register",
                           json={"username": "one_too_many", "password": "long-enough"})
    _refused(response, "TOO_MANY_REQUESTS")
    with app.app_context():
        assert db.session.scalar(select(User).where(User.username == "one_too_many")) is None


def test_trusted_proxy_gives_each_client_its_own_bucket(
        app_factory: Callable[..., Flask]) -> None:
    def logins(app: Flask, addresses: list[str]) -> list[int]:
        client = app.test_client()
        return [client.post("/api/auth/login", json={"username": "nobody", "password": "x" * 8},
                            headers={"X-Forwarded-For": address}).status_code
                for address in addresses]

    addresses = ["203.0.113.1", "203.0.113.1", "203.0.113.2"]
    behind = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="1 per minute",
                         TRUSTED_PROXIES=1)
    assert logins(behind, addresses) == [401, 429, 401]
    # Without it the forwarded address is not believed: everyone is the proxy.
    direct = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="1 per minute")
    assert logins(direct, addresses) == [401, 429, 429]


# -- per day -------------------------------------------------------------------------------

def test_tts_characters_per_day(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(USER_DAILY_CHARACTERS=30)
    client = app.test_client()
    user = _register(client)
    text = "Twenty characters!!!"
    ok = client.post("/api/tts", headers=user["headers"], json={"text": text, "voice_type": VOICE})
    assert ok.status_code == 200
    body = _refused(client.post("/api/tts/stream", headers=user["headers"],
                                json={"text": text, "voice_type": VOICE}))
    assert body["error"]["details"]["daily_characters"] == 30
    # Until the next UTC midnight.
    assert int(client.post("/api/voice/generate", headers=user["headers"], json={
        "text": text, "messageId": 7}).headers["Retry-After"]) <= 86400
    assert _used(app, user["id"]) == (20, 0.0)
    # What fits still passes.
    small = {"text": "Ten chars.", "voice_type": VOICE}
    assert client.post("/api/tts", headers=user["headers"], json=small).status_code == 200
    assert _used(app, user["id"]) == (30, 0.0)


def test_stt_audio_seconds_per_day_keeps_nothing(app_factory: Callable[..., Flask],
                                                 speech_wav: bytes) -> None:
    app = app_factory(USER_DAILY_AUDIO_SECONDS=3)
    client = app.test_client()
    user = _register(client)
    response = client.post("/api/stt", headers=user["headers"],
                           data={"file": (io.BytesIO(speech_wav), "speech.wav")})
    body = _refused(response)
    assert body["error"]["details"]["daily_audio_seconds"] == 3
    with app.app_context():
        assert db.session.scalars(select(File).where(File.owner_id == user["id"])).all() == []
        assert db.session.scalars(select(Message)).all() == []
    assert _used(app, user["id"]) == (0, 0.0)


def test_a_failed_request_gives_its_count_back(app_factory: Callable[..., Flask]) -> None:
    app = app_factory()
    client = app.test_client()
    user = _register(client)
    response = client.post("/api/tts", headers=user["headers"],
                           json={"text": "Hello there.", "voice_type": "espeak:no-such-voice"})
    assert response.status_code >= 400
    assert _used(app, user["id"]) == (0, 0.0)


def _charge_many(app: Flask, user_id: int, workers: int, **amounts: Any) -> int:
    """``workers`` threads charge at once; how many were let through."""
    passed: list[bool] = []
    start = threading.Barrier(workers)

    def work() -> None:
        with app.app_context():
            start.wait()
            try:
                limits.charge(user_id, **amounts)
                passed.append(True)
            except ApiError as exc:
                assert exc.status == 429
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(passed)


def test_daily_counters_are_exact_under_concurrency(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(USER_DAILY_CHARACTERS=100, USER_DAILY_AUDIO_SECONDS=30)
    client = app.test_client()
    user = _register(client)
    assert _charge_many(app, user["id"], 24, characters=10) == 10
    assert _charge_many(app, user["id"], 16, audio_seconds=2.5) == 12
    assert _used(app, user["id"]) == (100, 30.0)


def test_key_quota_counts_inside_the_users_day(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(USER_DAILY_CHARACTERS=100)
    client = app.test_client()
    user = _register(client)
    with app.app_context():
        key, _ = api_keys.create(user["id"], "small", monthly_characters=50)
        caller = Caller(user["id"], key.id)
        caller.charge(characters=40)
        # The key refuses: the user's day is given back.
        with pytest.raises(ApiError) as refused:
            caller.charge(characters=20)
        assert refused.value.code == "QUOTA_EXCEEDED"
        # A JWT counts against the day too; the day refuses: the key's month is untouched.
        Caller(user["id"]).charge(characters=50)
        with pytest.raises(ApiError) as refused:
            caller.charge(characters=11)
        assert refused.value.code == "RATE_LIMITED" and refused.value.retry_after
        month = db.session.get(ApiKeyUsage, (key.id, api_keys.current_month()))
        assert month.characters == 40
        db.session.remove()
    assert _used(app, user["id"]) == (90, 0.0)


# -- at once -------------------------------------------------------------------------------

def test_jobs_at_once(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(USER_MAX_JOBS=2)
    client = app.test_client()
    user, other = _register(client), _register(client)
    with app.app_context():
        held = [jobs.create(user["id"], "voice_clone") for _ in range(2)]
        db.session.commit()
        with pytest.raises(ApiError) as refused:
            jobs.create(user["id"], "voice_clone")
        assert refused.value.status == 429 and refused.value.retry_after
        jobs.create(other["id"], "voice_clone")
        jobs.succeed(held[0], {})
        jobs.create(user["id"], "voice_clone")
        db.session.rollback()
        jobs.fail(held[1], "stopped")
        assert app.extensions["limits"].slots.held("jobs", user["id"]) == 1
        db.session.remove()


def test_cloning_refused_when_jobs_are_taken(app_factory: Callable[..., Flask],
                                             speech_wav: bytes) -> None:
    app = app_factory(USER_MAX_JOBS=1)
    client = app.test_client()
    user = _register(client)
    with app.app_context():
        limits.hold("jobs", user["id"], 60)
    response = client.post("/api/voices", headers=user["headers"], data={
        "name": "mine", "provider": "local", "files": (io.BytesIO(speech_wav), "s.wav")})
    _refused(response)
    with app.app_context():
        assert db.session.scalars(select(File).where(File.owner_id == user["id"])).all() == []


def test_streams_at_once_and_query_tokens(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(USER_MAX_STREAMS=1)
    client = app.test_client()
    name = "u" + uuid.uuid4().hex[:10]
    client.post("/api/auth/register", json={"username": name, "password": "long-enough"})
    tokens = client.post("/api/auth/login", json={"username": name, "password": "long-enough"}
                         ).get_json()["data"]
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    session_id = client.post("/api/sessions", headers=headers, json={}).get_json()["data"][
        "session_id"]
    path = f"/api/sessions/{session_id}/stream"
    # An EventSource cannot send a header: the access token may come in the URL here...
    first = client.get(f"{path}?token={tokens['access_token']}")
    assert first.status_code == 200
    _refused(client.get(path, headers=headers))
    first.close()
    second = client.get(path, headers=headers)
    assert second.status_code == 200
    second.close()
    # ...but a refresh token never, and nowhere else.
    assert client.get(f"{path}?token={tokens['refresh_token']}").status_code in (401, 422)
    assert client.get(f"/api/auth/me?token={tokens['access_token']}").status_code == 401
    assert client.post(f"/api/auth/refresh?token={tokens['refresh_token']}").status_code == 401
    assert client.post("/api/auth/refresh", headers={
        "Authorization": f"Bearer {tokens['refresh_token']}"}).status_code == 200


def test_places_fail_open_to_this_process_when_redis_is_down() -> None:
    slots = limits.Slots("redis://127.0.0.1:1/0")
    assert slots.take("calls", 1, "a", 30, limit=1)
    assert not slots.take("calls", 1, "b", 30, limit=1)
    slots.release("calls", 1, "a")
    assert slots.take("calls", 1, "b", 30, limit=1)


# -- across processes through Redis ---------------------------------------------------------

def _hit_in_process(redis_url: str, user_id: int, tries: int, out: Any) -> None:
    rates = limits.Rates({"RATELIMIT_ENABLED": True, "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
                          "RATELIMIT_STORAGE_URI": redis_url, "RATELIMIT_SPEECH": "",
                          "RATELIMIT_CLONING": "", "RATELIMIT_UPLOADS": "",
                          "RATELIMIT_SESSIONS": "", "RATELIMIT_TURNS": "25 per minute"})
    slots = limits.Slots(redis_url)
    passed = taken = 0
    for i in range(tries):
        try:
            rates.hit("turns", user_id)
            passed += 1
        except ApiError:
            pass
        taken += slots.take("calls", user_id, f"{multiprocessing.current_process().pid}-{i}",
                            60, limit=7)
    out.put((passed, taken))


def test_two_processes_share_the_counts_through_redis(redis_url: str) -> None:
    user_id = uuid.uuid4().int % 10**9
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [context.Process(target=_hit_in_process, args=(redis_url, user_id, 20, out))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert sum(passed for passed, _ in results) == 25
    assert sum(taken for _, taken in results) == 7
    assert limits.Slots(redis_url).held("calls", user_id) == 7
