"""One envelope for every response, request ids, and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers.api_client import sign_in


def test_404_is_an_envelope(client: FlaskClient) -> None:
    response = client.get("/api/nothing-here")
    body = response.get_json()
    assert response.status_code == 404
    assert body == {**body, "code": 404, "success": False, "data": None}
    assert body["error"]["code"] == "NOT_FOUND"
    assert body["message"] == "资源不存在"


def test_405_is_an_envelope(client: FlaskClient) -> None:
    response = client.delete("/api/auth/login")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert "POST" in response.headers["Allow"]


def test_413_is_an_envelope(app_factory: Any, make_user: Any) -> None:
    app = app_factory(MAX_UPLOAD_BYTES=1024, MAX_CONTENT_LENGTH=2048)
    client = app.test_client()
    import io

    response = client.post("/api/upload_voice", headers=sign_in(client, "bigfile"),
                           data={"file": (io.BytesIO(b"x" * 5000), "a.wav")})
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_unexpected_exception_is_500_envelope(app: Flask) -> None:
    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    response = app.test_client().get("/api/boom", headers={"Accept-Language": "en"})
    body = response.get_json()
    assert response.status_code == 500
    assert body["message"] == "Internal server error"
    assert "kaboom" not in response.get_data(as_text=True)


def test_request_id_is_echoed_or_made(client: FlaskClient) -> None:
    given = client.get("/api/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    assert given.get_json()["meta"]["requestId"] == "abc-123"
    made = client.get("/api/health")
    assert made.headers["X-Request-ID"].startswith("req_")


def test_health_reports_database(client: FlaskClient, app: Flask,
                                 auth_headers: dict[str, str]) -> None:
    data = client.get("/api/health", headers=auth_headers).get_json()["data"]
    assert data["status"] == "ok"
    assert data["database"] in {"sqlite", "mysql"}
    assert data["jobs"] == "in-process"


def test_openapi_document_covers_routes_and_schemas(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/upload_voice" in spec["paths"]
    assert "/api/temfile/download/{file_id}" in spec["paths"]
    login = spec["paths"]["/api/auth/login"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Credentials")
    assert set(spec["components"]["schemas"]["Credentials"]["required"]) == {"username",
                                                                             "password"}
    assert spec["paths"]["/api/auth/me"]["get"]["security"] == [{"bearer": []}]


def test_docs_page_is_served(client: FlaskClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert b"/api/openapi.json" in page.data


@pytest.mark.parametrize("secret", ["SECRET_KEY", "JWT_SECRET_KEY"])
def test_production_refuses_default_secrets(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    from webapp.app import create_app

    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a-real-secret-0123456789")
    monkeypatch.setenv("JWT_SECRET_KEY", "a-real-jwt-secret-0123456789")
    monkeypatch.delenv(secret)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
