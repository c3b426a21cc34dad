"""Uploads: recognised by content, measured, limited, private by default, never half-stored."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.helpers.api_client import sign_in
from tests.helpers.sounds import tone
from webapp.app.extensions import db
from webapp.app.models import File


def _upload(client: FlaskClient, headers: dict[str, str], data: bytes, name: str = "a.bin",
            path: str = "/api/upload_voice", **form: Any) -> Any:
    return client.post(path, headers=headers, data={"file": (io.BytesIO(data), name), **form})


def _count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(File))


def _stored_objects(app: Flask) -> list[Path]:
    root = Path(app.config["STORAGE_DIR"])
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("fmt", ["mp3", "wav", "ogg", "opus", "flac", "m4a", "aac", "webm"])
def test_upload_voice_recognises_every_accepted_format(client: FlaskClient,
                                                       auth_headers: dict[str, str],
                                                       fmt: str) -> None:
    response = _upload(client, auth_headers, tone(2.0, fmt), name="clip.dat")
    body = response.get_json()
    assert response.status_code == 200, body
    expected = {"opus": "ogg"}.get(fmt, fmt)
    assert body["data"]["format"] == expected
    assert body["data"]["duration"] == pytest.approx(2.0, abs=0.15)
    assert body["message"] == "文件上传成功"
    assert body["url"].startswith(f"/uploads/{body['data']['name']}?expires=")
    assert body["filename"] == "clip.dat"


def test_upload_voice_url_is_fetchable_as_handed_out(client: FlaskClient,
                                                     auth_headers: dict[str, str]) -> None:
    data = tone(1.0, "wav")
    body = _upload(client, auth_headers, data, "hello.wav").get_json()
    anonymous = client.get(body["url"])
    assert anonymous.status_code == 200 and anonymous.data == data
    assert body["data"]["url"] == body["url"]
    tampered = body["url"].replace("signature=", "signature=0")
    assert client.get(tampered).status_code == 403
    public = _upload(client, auth_headers, data, "open.wav", is_public="true").get_json()
    assert public["url"] == f"/uploads/{public['data']['name']}"
    assert client.get(public["url"]).status_code == 200


def test_upload_voice_bytes_round_trip_for_owner(client: FlaskClient,
                                                 auth_headers: dict[str, str]) -> None:
    data = tone(1.5, "mp3")
    body = _upload(client, auth_headers, data, "me.mp3").get_json()
    served = client.get(body["url"], headers=auth_headers)
    assert served.status_code == 200
    assert served.data == data
    assert served.mimetype == "audio/mpeg"


@pytest.mark.parametrize("payload", [b"hello, I am text pretending to be audio" * 20,
                                     b"\x89PNG\r\n\x1a\n" + bytes(2000), b"RIFF" + bytes(400)])
def test_non_audio_is_415_and_stores_nothing(app: Flask, client: FlaskClient,
                                             auth_headers: dict[str, str], payload: bytes) -> None:
    response = _upload(client, auth_headers, payload, "fake.mp3")
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert _count(app) == 0 and _stored_objects(app) == []


def test_empty_and_missing_file_are_400(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    assert _upload(client, auth_headers, b"").status_code == 400
    missing = client.post("/api/upload_voice", headers=auth_headers, data={})
    assert missing.status_code == 400
    assert missing.get_json()["error"]["code"] == "FILE_MISSING"


def test_size_limit_is_413_and_stores_nothing(app_factory: Any, make_user: Any) -> None:
    app = app_factory(MAX_UPLOAD_BYTES=10_000)
    client = app.test_client()
    response = _upload(client, sign_in(client, "sizer"), tone(3.0, "wav"))
    assert response.status_code == 413
    assert response.get_json()["message"].startswith("文件过大")
    assert _count(app) == 0 and _stored_objects(app) == []


def test_duration_limit_is_400(app_factory: Any) -> None:
    app = app_factory(MAX_SAMPLE_SECONDS=1.0)
    client = app.test_client()
    response = _upload(client, sign_in(client, "longer"), tone(2.0, "mp3"))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "AUDIO_TOO_LONG"
    assert _count(app) == 0 and _stored_objects(app) == []


def test_upload_needs_a_token(client: FlaskClient) -> None:
    assert _upload(client, {}, tone(1.0)).status_code == 401


def test_private_file_is_hidden_from_others(client: FlaskClient, make_user: Any) -> None:
    owner, other = make_user(), make_user()
    body = _upload(client, owner["headers"], tone(1.0), path="/api/temfile/upload").get_json()
    file_id = body["data"]["file_id"]
    assert body["data"]["url"] == f"/api/temfile/download/{file_id}"
    assert client.get(body["data"]["url"], headers=other["headers"]).status_code == 404
    assert client.get(body["data"]["url"]).status_code == 404
    assert client.get(body["data"]["url"], headers=owner["headers"]).status_code == 200
    assert client.delete(f"/api/temfile/{file_id}", headers=other["headers"]).status_code == 404


def test_public_file_is_served_to_anyone(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    body = _upload(client, auth_headers, tone(1.0), path="/api/temfile/upload",
                   is_public="true").get_json()
    assert body["data"]["is_public"] is True
    assert client.get(body["data"]["url"]).status_code == 200


def test_signed_url_works_until_tampered_or_expired(app: Flask, client: FlaskClient,
                                                    auth_headers: dict[str, str]) -> None:
    body = _upload(client, auth_headers, tone(1.0)).get_json()
    signed = urlparse(body["data"]["audio_url"])
    assert f"{signed.scheme}://{signed.netloc}" == app.config["BASE_URL"]
    assert client.get(f"{signed.path}?{signed.query}").status_code == 200
    query = parse_qs(signed.query)
    later = int(query["expires"][0]) + 60
    tampered = f"{signed.path}?expires={later}&signature={query['signature'][0]}"
    assert client.get(tampered).status_code == 403
    with app.app_context():
        from webapp.app.services.platform import urls

        expired = urls._signature(signed.path, int(time.time()) - 1)
    assert client.get(f"{signed.path}?expires={int(time.time()) - 1}&signature={expired}"
                      ).status_code == 403


def test_delete_removes_row_and_object(app: Flask, client: FlaskClient,
                                       auth_headers: dict[str, str]) -> None:
    body = _upload(client, auth_headers, tone(1.0), path="/api/temfile/upload").get_json()
    assert len(_stored_objects(app)) == 1
    response = client.delete(f"/api/temfile/{body['data']['file_id']}", headers=auth_headers)
    assert response.status_code == 200
    assert _count(app) == 0 and _stored_objects(app) == []
    assert client.get(body["data"]["url"], headers=auth_headers).status_code == 404


@pytest.mark.parametrize("name", ["../../etc/passwd", "..%2F..%2Fconfig.py", "%2e%2e/x.mp3",
                                  "a/../../b.mp3"])
def test_path_traversal_is_impossible(client: FlaskClient, name: str) -> None:
    response = client.get(f"/uploads/{name}")
    assert response.status_code == 404
    assert response.get_json()["success"] is False


def test_list_pages_only_my_files(client: FlaskClient, make_user: Any) -> None:
    mine, theirs = make_user(), make_user()
    for _ in range(3):
        _upload(client, mine["headers"], tone(0.5), path="/api/temfile/upload")
    _upload(client, theirs["headers"], tone(0.5), path="/api/temfile/upload")
    page = client.get("/api/temfile/list?page=1&page_size=2", headers=mine["headers"]).get_json()
    assert page["data"]["total"] == 3 and page["data"]["pages"] == 2
    assert page["data"]["has_more"] is True and len(page["data"]["list"]) == 2
    last = client.get("/api/temfile/list?page=2&page_size=2", headers=mine["headers"]).get_json()
    assert last["data"]["has_more"] is False and len(last["data"]["list"]) == 1
    bad = client.get("/api/temfile/list?page_size=1000", headers=mine["headers"])
    assert bad.status_code == 400


def test_failed_commit_leaves_no_object(app: Flask, client: FlaskClient,
                                        auth_headers: dict[str, str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_commit() -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(db.session, "commit", broken_commit)
    response = _upload(client, auth_headers, tone(1.0))
    assert response.status_code == 500
    monkeypatch.undo()
    assert _count(app) == 0 and _stored_objects(app) == []


def test_list_total_follows_every_write(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    def total() -> int:
        return client.get("/api/temfile/list", headers=auth_headers).get_json()["data"]["total"]

    first = _upload(client, auth_headers, tone(0.5), path="/api/temfile/upload").get_json()
    assert total() == 1
    _upload(client, auth_headers, tone(0.5), path="/api/temfile/upload")
    assert total() == 2
    client.delete(f"/api/temfile/{first['data']['file_id']}", headers=auth_headers)
    assert total() == 1
