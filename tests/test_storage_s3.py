"""The same file flows on S3 (a moto server): objects really written, served and deleted."""

from __future__ import annotations

import io
from typing import Any

import pytest
import requests
from flask import Flask

from tests.helpers.api_client import sign_in
from tests.helpers.services import s3_client
from tests.helpers.sounds import tone


@pytest.fixture
def s3_app(app_factory: Any, s3_settings: dict[str, Any]) -> Flask:
    return app_factory(**s3_settings)


def _objects(settings: dict[str, Any]) -> list[str]:
    listing = s3_client(settings["S3_ENDPOINT_URL"]).list_objects_v2(Bucket=settings["S3_BUCKET"])
    return [item["Key"] for item in listing.get("Contents", [])]


def test_upload_writes_object_and_download_redirects_to_presigned(
        s3_app: Flask, s3_settings: dict[str, Any]) -> None:
    client = s3_app.test_client()
    headers = sign_in(client, "s3user")
    data = tone(1.0, "mp3")
    body = client.post("/api/temfile/upload", headers=headers,
                       data={"file": (io.BytesIO(data), "x.mp3")}).get_json()
    keys = _objects(s3_settings)
    assert len(keys) == 1 and keys[0].startswith("t/upload/")
    response = client.get(body["data"]["url"], headers=headers)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(s3_settings["S3_ENDPOINT_URL"]) and "X-Amz-Signature" in location
    assert requests.get(location, timeout=10).content == data


def test_delete_removes_the_s3_object(s3_app: Flask, s3_settings: dict[str, Any]) -> None:
    client = s3_app.test_client()
    headers = sign_in(client, "s3user")
    body = client.post("/api/temfile/upload", headers=headers,
                       data={"file": (io.BytesIO(tone(1.0)), "x.wav")}).get_json()
    assert len(_objects(s3_settings)) == 1
    client.delete(f"/api/temfile/{body['data']['file_id']}", headers=headers)
    assert _objects(s3_settings) == []


def test_rejected_upload_writes_no_object(s3_app: Flask, s3_settings: dict[str, Any]) -> None:
    client = s3_app.test_client()
    headers = sign_in(client, "s3user")
    response = client.post("/api/temfile/upload", headers=headers,
                           data={"file": (io.BytesIO(b"not audio" * 100), "x.mp3")})
    assert response.status_code == 415
    assert _objects(s3_settings) == []


def test_health_reports_s3(s3_app: Flask) -> None:
    client = s3_app.test_client()
    headers = sign_in(client, "s3health")
    assert client.get("/api/health", headers=headers).get_json()["data"]["storage"] == "s3"
