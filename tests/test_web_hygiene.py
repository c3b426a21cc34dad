"""What every response tells the browser, names of downloads, private database files,
health details and logins that do not tell which names exist."""

from __future__ import annotations

import io
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.helpers.paths import MODELS
from webapp.app import create_app
from webapp.app.services.platform import users

SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
                    "Referrer-Policy")


def test_security_headers_on_every_response(client: FlaskClient, auth_headers: dict[str, str],
                                            speech_wav: bytes) -> None:
    uploaded = client.post("/api/temfile/upload", headers=auth_headers,
                           data={"file": (io.BytesIO(speech_wav), "a.wav")}).get_json()["data"]
    responses = {
        "console": client.get("/"),
        "console script": client.get("/static/console/app.js"),
        "docs": client.get("/api/docs"),
        "health": client.get("/api/health"),
        "not found": client.get("/api/nothing-here"),
        "unauthorized": client.get("/api/auth/me"),
        "file": client.get(f"/api/temfile/download/{uploaded['file_id']}", headers=auth_headers),
    }
    for what, response in responses.items():
        for name in SECURITY_HEADERS:
            assert name in response.headers, (what, name)
        response.close()
    headers = responses["console"].headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    policy = dict(part.strip().split(" ", 1) for part in
                  headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
    assert policy["frame-ancestors"] == "'none'"
    # The docs page keeps its script and style in files, as the policy wants.
    page = responses["docs"].get_data(as_text=True)
    assert "<script>" not in page and "<style>" not in page


def test_policy_names_where_audio_may_come_from(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(S3_BUCKET="b", S3_ENDPOINT_URL="https://minio.example:9000/")
    policy = app.test_client().get("/api/health").headers["Content-Security-Policy"]
    media = next(part for part in policy.split("; ") if part.startswith("media-src"))
    assert "https://minio.example:9000" in media and "http://tingshuo.test" in media


def test_download_name_is_made_safe(client: FlaskClient, auth_headers: dict[str, str],
                                    speech_wav: bytes) -> None:
    uploaded = client.post("/api/temfile/upload", headers=auth_headers, data={
        "file": (io.BytesIO(speech_wav), "x<script>.html")}).get_json()["data"]
    for path in (f"/api/temfile/download/{uploaded['file_id']}", f"/uploads/{uploaded['name']}"):
        response = client.get(path, headers=auth_headers)
        assert response.status_code == 200
        disposition = response.headers["Content-Disposition"]
        assert "<" not in disposition and ".html" not in disposition
        assert "filename=x_script.wav" in disposition
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        response.close()
    named = client.post("/api/temfile/upload", headers=auth_headers, data={
        "file": (io.BytesIO(speech_wav), "我的声音.wav")}).get_json()["data"]
    response = client.get(f"/api/temfile/download/{named['file_id']}", headers=auth_headers)
    assert "filename*=UTF-8''%E6%88%91%E7%9A%84%E5%A3%B0%E9%9F%B3.wav" in response.headers[
        "Content-Disposition"]
    response.close()


def test_sqlite_files_are_private(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "private.db"
    shutil.copy(sqlite_template, path)
    path.chmod(0o644)
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "INSTANCE_DIR": tmp_path,
                      "STORAGE_DIR": tmp_path / "storage", "MODEL_CACHE_DIR": MODELS,
                      "RATELIMIT_ENABLED": False, "TESTING": True})
    client = app.test_client()
    assert client.post("/api/auth/register", json={"username": "private_user",
                                                   "password": "long-enough"}).status_code == 200
    for name in ("private.db", "private.db-wal", "private.db-shm"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    with app.app_context():
        from webapp.app.extensions import db

        db.engine.dispose()


def test_health_details_only_when_signed_in(client: FlaskClient,
                                            auth_headers: dict[str, str]) -> None:
    anonymous = client.get("/api/health").get_json()["data"]
    assert set(anonymous) == {"status", "engines_warm"}
    detailed = client.get("/api/health", headers=auth_headers).get_json()["data"]
    assert {"host", "database", "storage", "jobs"} <= set(detailed)


def test_unknown_name_costs_a_hash_check(client: FlaskClient, user: dict[str, Any]) -> None:
    users._stand_in_hash.cache_clear()
    response = client.post("/api/auth/login",
                           json={"username": "nobody_at_all", "password": "whatever-pass"})
    assert response.status_code == 401
    assert users._stand_in_hash.cache_info().misses == 1
    # A wrong password and an unknown name are told apart by nothing.
    wrong = client.post("/api/auth/login",
                        json={"username": user["username"], "password": "whatever-pass"})
    assert wrong.status_code == 401
    assert wrong.get_json()["error"] == response.get_json()["error"]
