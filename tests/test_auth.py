"""Accounts and tokens: register, login, refresh, me, and the envelope on every failure."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.helpers.api_client import sign_in


def test_register_returns_tokens_and_user(client: FlaskClient) -> None:
    body = client.post("/api/auth/register",
                       json={"username": "小明_01", "password": "long-enough"}).get_json()
    assert body["code"] == 200 and body["success"] is True
    assert body["message"] == "注册成功"
    assert body["data"]["user"]["username"] == "小明_01"
    assert body["data"]["access_token"] and body["data"]["refresh_token"]
    assert body["meta"]["requestId"].startswith("req_")


def test_register_twice_is_409(client: FlaskClient, user: dict[str, Any]) -> None:
    response = client.post("/api/auth/register",
                           json={"username": user["username"], "password": "another-pass"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "USERNAME_TAKEN"


def test_register_validates_with_parameter_error_messages(client: FlaskClient) -> None:
    response = client.post("/api/auth/register", json={"username": "ab", "password": "x"})
    body = response.get_json()
    assert response.status_code == 400
    assert body["message"].startswith("参数错误: ")
    assert body["data"] is None and body["success"] is False
    assert set(body["error"]["details"]["fields"]) == {"username", "password"}


def test_english_messages_on_request(client: FlaskClient) -> None:
    response = client.post("/api/auth/register", json={"password": "long-enough"},
                           headers={"Accept-Language": "en-US,en;q=0.9"})
    assert response.get_json()["message"] == "Invalid parameter: Missing required field username"


def test_non_json_body_is_400(client: FlaskClient) -> None:
    response = client.post("/api/auth/login", data="nope", content_type="text/plain")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "VALIDATION_ERROR"


def test_login_and_me(client: FlaskClient, user: dict[str, Any]) -> None:
    login = client.post("/api/auth/login",
                        json={"username": user["username"], "password": user["password"]})
    token = login.get_json()["data"]["access_token"]
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["data"]["username"] == user["username"]
    assert "password_hash" not in me["data"]


def test_wrong_password_is_401(client: FlaskClient, user: dict[str, Any]) -> None:
    response = client.post("/api/auth/login",
                           json={"username": user["username"], "password": "wrong-password"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "BAD_CREDENTIALS"


def test_refresh_issues_new_access_token(client: FlaskClient, user: dict[str, Any]) -> None:
    response = client.post("/api/auth/refresh",
                           headers={"Authorization": f"Bearer {user['refresh_token']}"})
    token = response.get_json()["data"]["access_token"]
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200


def test_access_token_cannot_refresh(client: FlaskClient, user: dict[str, Any]) -> None:
    response = client.post("/api/auth/refresh", headers=user["headers"])
    assert response.status_code == 401
    assert response.get_json()["success"] is False


def test_missing_and_bad_tokens_are_401_envelopes(client: FlaskClient) -> None:
    missing = client.get("/api/auth/me")
    assert missing.status_code == 401 and missing.get_json()["message"] == "用户未认证"
    bad = client.get("/api/auth/me", headers={"Authorization": "Bearer not.a.token"})
    assert bad.status_code == 401 and bad.get_json()["error"]["code"] == "UNAUTHORIZED"


def test_expired_token_is_401(app_factory: Any, make_user: Any) -> None:
    from datetime import timedelta

    app = app_factory(JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=-1))
    client = app.test_client()
    response = client.get("/api/auth/me", headers=sign_in(client, "expiring"))
    assert response.status_code == 401
    assert response.get_json()["message"] == "令牌已过期"


def test_login_is_rate_limited(app_factory: Any) -> None:
    app = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute")
    client = app.test_client()
    statuses = [client.post("/api/auth/login", json={"username": "nobody1",
                                                     "password": "whatever-pass"}).status_code
                for _ in range(5)]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]
