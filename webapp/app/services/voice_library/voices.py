"""The voice library: built-in voices of every configured engine, and users' cloned
voices (public or private)."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from flask import current_app
from sqlalchemy import false, or_, select, true, update
from sqlalchemy.exc import IntegrityError

from webapp.app.audio import AudioInfo
from webapp.app.concurrency import run_blocking
from webapp.app.errors import ApiError, forbidden
from webapp.app.extensions import db
from webapp.app.models import File, Job, Role, Voice
from webapp.app.ownership import visible
from webapp.app.pagination import paginate
from webapp.app.providers.base import ProviderError
from webapp.app.providers.registry import LOCAL_ENGINES
from webapp.app.services.platform import files, jobs, urls
from webapp.app.services.voice_library import synthesis, voice_choice

log = logging.getLogger(__name__)

def provider_of(engine: str) -> str:
    return "local" if engine in LOCAL_ENGINES else engine


def sync_builtin_voices() -> None:
    """Make every configured engine's built-in voices rows of the library (once an app)."""
    registry = current_app.extensions["providers"]
    engines = tuple(registry.configured_names("tts"))
    synced = current_app.extensions.setdefault("voices_synced", set())
    if engines in synced:
        return
    existing = set(db.session.scalars(select(Voice.voice_type).where(Voice.builtin == true())))
    for engine_name in engines:
        for info in registry.tts(engine_name).get_voices():
            voice_type = f"{engine_name}:{info.voice_id}"
            if voice_type in existing:
                continue
            db.session.add(Voice(
                voice_type=voice_type, owner_id=None, name=info.name,
                gender=info.gender or "unknown", description=info.description or "",
                labels={}, category=info.category or "", language=info.language,
                provider=provider_of(engine_name), engine=engine_name,
                provider_voice_id=info.voice_id, status="ready", is_public=True, builtin=True))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        log.info("built-in voices were synced by another process at the same time")
    synced.add(engines)


def _configured_engines() -> list[str]:
    return current_app.extensions["providers"].configured_names("tts")


def usable_query(user_id: int | None) -> Any:
    """Ready voices a user may speak with: built-ins of configured engines, public
    cloned voices, and their own."""
    visible = Voice.is_public == true()
    if user_id is not None:
        visible = or_(visible, Voice.owner_id == user_id)
    return select(Voice).where(visible, Voice.status == "ready",
                               Voice.engine.in_(_configured_engines()))


def voice_types(user_id: int | None) -> list[dict[str, Any]]:
    """The ``/api/voiceTypes`` list roles choose their voice from (with ``provider``)."""
    sync_builtin_voices()
    query = usable_query(user_id).order_by(Voice.builtin.desc(), Voice.engine, Voice.name)
    return [{"voice_type": v.voice_type, "voice_name": v.name, "category": v.category,
             "sample_url": sample_url(v), "provider": v.provider}
            for v in db.session.scalars(query)]


def sample_url(voice: Voice) -> str:
    if voice.builtin:
        return urls.absolute(f"/api/voiceTypes/{voice.voice_type}/sample")
    preview = db.session.get(File, voice.preview_file_id) if voice.preview_file_id else None
    return files.audio_url(preview) if preview else ""


def builtin_sample(voice_type: str) -> tuple[str, str]:
    """The stored sample of a built-in voice: made once, with that voice, then kept."""
    voice = db.session.scalar(select(Voice).where(Voice.voice_type == voice_type,
                                                  Voice.builtin == true()))
    if voice is None or voice.engine not in _configured_engines():
        raise ApiError(404, "voice_not_found", "VOICE_NOT_FOUND")
    store = files.storage()
    if voice.sample_key and run_blocking(store.exists, voice.sample_key):
        return voice.sample_key, "audio/mpeg"
    rendered = synthesis.render(voice, synthesis.sample_text(voice), "mp3")
    key = f"samples/{hashlib.sha1(voice_type.encode()).hexdigest()}.mp3"
    run_blocking(store.put, key, rendered.data, "audio/mpeg")
    voice.sample_key = key
    db.session.commit()
    return key, "audio/mpeg"


def get_visible(voice_id: str, user_id: int) -> Voice:
    return visible(Voice, voice_id, user_id, ApiError(404, "voice_not_found", "VOICE_NOT_FOUND"))


def get_owned(voice_id: str, user_id: int) -> Voice:
    voice = get_visible(voice_id, user_id)
    if voice.owner_id != user_id:
        raise forbidden("voice_forbidden", "FORBIDDEN")
    return voice


def resolve_usable(voice_type: str, user_id: int, code: str = "INVALID_VOICE_TYPE") -> Voice:
    """A ready voice the user may use, named by voice type or voice id."""
    sync_builtin_voices()
    voice = db.session.scalar(usable_query(user_id).where(
        or_(Voice.voice_type == voice_type, Voice.id == voice_type)))
    if voice is None:
        raise ApiError(400, "invalid_voice_type", code, details={"voice_type": voice_type})
    return voice


def _ready_builtin(voice_type: str) -> Voice | None:
    voice = db.session.scalar(select(Voice).where(Voice.voice_type == voice_type))
    if voice is None or voice.engine not in _configured_engines():
        return None
    return voice


def default_voice(text: str = "", language: str | None = None) -> Voice:
    """The voice for ``text`` when none is named (``voice_choice`` says how it is chosen):
    ``language`` is the request's, when it names one."""
    sync_builtin_voices()
    setting = str(current_app.config["DEFAULT_VOICE_TYPE"])
    by_language, bare = voice_choice.entries(setting)
    code = voice_choice.spoken_language(text, language)
    named = by_language.get(code)
    voice = _ready_builtin(named) if named else None
    for voice_type in bare if voice is None else ():
        candidate = _ready_builtin(voice_type)
        if candidate is not None and voice_choice.covers(candidate, code):
            voice = candidate
            break
    if voice is None:
        engine = current_app.extensions["providers"].local_tts_for(code)
        rows = db.session.scalars(select(Voice).where(
            Voice.builtin == true(), Voice.engine == engine).order_by(Voice.voice_type))
        voice = next((v for v in rows if voice_choice.language_code(v.language) == code), None)
    if voice is None and code != "en":
        return default_voice(language="en")
    if voice is None:
        raise ApiError(503, "provider_not_configured", "VOICE_SERVICE_UNAVAILABLE",
                       {"provider": setting})
    return voice


def page(user_id: int, page_no: int, page_size: int, *, gender: str | None = None,
         provider: str | None = None, search: str | None = None, mine: bool = False,
         include_builtin: bool = True) -> dict[str, Any]:
    """Voices the user can see, newest first, filtered."""
    sync_builtin_voices()
    query = select(Voice)
    if mine:
        query = query.where(Voice.owner_id == user_id)
    else:
        query = query.where(or_(Voice.is_public == true(), Voice.owner_id == user_id))
    if not include_builtin:
        query = query.where(Voice.builtin == false())
    if gender:
        query = query.where(Voice.gender == gender)
    if provider:
        query = query.where(Voice.provider == provider)
    if search:
        like = f"%{search.strip()}%"
        query = query.where(or_(Voice.name.like(like), Voice.description.like(like)))
    query = query.order_by(Voice.builtin, Voice.created_at.desc(), Voice.id)
    return paginate(query, page_no, page_size, render)


def render(voice: Voice) -> dict[str, Any]:
    out = voice.to_dict()
    preview = db.session.get(File, voice.preview_file_id) if voice.preview_file_id else None
    out["preview_url"] = files.audio_url(preview) if preview else (
        sample_url(voice) if voice.builtin else None)
    out["sample_url"] = sample_url(voice)
    out["model"] = voice.model.to_dict() if voice.model else None
    out["voice_name"] = voice.name
    out["voice_gender"] = voice.gender
    out["voice_description"] = voice.description
    job_id = db.session.scalar(select(Job.id).where(Job.target_id == voice.id)
                               .order_by(Job.created_at.desc()).limit(1))
    out["job_id"] = job_id
    return out


def edit(voice: Voice, changes: dict[str, Any]) -> Voice:
    for field in ("name", "description", "gender", "labels", "is_public"):
        if field in changes:
            setattr(voice, field, changes[field])
    db.session.commit()
    return voice


def delete(voice: Voice) -> None:
    """Remove the provider-side voice, the stored audio and the row; roles that spoke
    with it fall back to the default voice."""
    if voice.builtin:
        raise forbidden("voice_forbidden", "FORBIDDEN")
    if voice.provider_voice_id and voice.engine not in LOCAL_ENGINES:
        try:
            current_app.extensions["providers"].tts(voice.engine).delete_voice(
                voice.provider_voice_id)
        except ProviderError as exc:
            if exc.kind != "bad_input":
                raise
            log.info("provider no longer has voice %s: %s", voice.provider_voice_id, exc)
    model = voice.model
    raw = list((model.model_metadata or {}).get("sample_file_ids", [])) if model else []
    stored = [db.session.get(File, fid) for fid in
              (voice.preview_file_id, model.training_file_id if model else None, *raw) if fid]
    db.session.execute(update(Role).where(Role.voice_type.in_((voice.voice_type, voice.id)))
                       .values(voice_type=current_app.config["DEFAULT_VOICE_TYPE"]))
    db.session.delete(voice)
    db.session.commit()
    for row in stored:
        if row is not None and (row.kind != "upload"):
            files.delete(row)


@jobs.on_failure("voice_clone")
def _clone_failed(job: Job, reason: str) -> None:
    voice = db.session.get(Voice, job.target_id) if job.target_id else None
    if voice is not None and voice.status != "ready":
        voice.status = "failed"
        voice.error = reason
        if voice.provider == "dashscope" and voice.provider_voice_id:
            # A job that timed out (its worker gone) may have enrolled a voice already.
            from webapp.app.services.voice_library.cloning import delete_enrolled

            if delete_enrolled(voice.provider_voice_id):
                voice.provider_voice_id = ""


def _bounded_samples(owner_id: int, uploads: list[tuple[bytes, str]], file_ids: list[str]
                     ) -> tuple[list[File], list[AudioInfo]]:
    """The named files (each once) and the uploads measured, refused with a 400 before
    anything is stored or queued when there are more than ``CLONE_MAX_SAMPLES`` or they
    last longer than a voice can be made from, all together."""
    from webapp.app.services.voice_library.cloning import MAX_SECONDS

    file_ids = list(dict.fromkeys(file_ids))
    most = current_app.config["CLONE_MAX_SAMPLES"]
    if len(file_ids) + len(uploads) > most:
        raise ApiError(400, "too_many_samples", "TOO_MANY_SAMPLES", {"limit": most},
                       {"limit": most})
    existing = [files.get_visible(fid, owner_id) for fid in file_ids]
    total = sum(row.duration or 0.0 for row in existing)
    measured = []
    for data, _ in uploads:
        # No single upload may be longer than the total allowed: decoding stops there.
        info = files.inspect_upload(data, max_seconds=MAX_SECONDS)
        total += info.duration
        measured.append(info)
    if total > MAX_SECONDS:
        raise ApiError(400, "samples_too_long", "SAMPLES_TOO_LONG", {"limit": f"{MAX_SECONDS:g}"},
                       {"duration": round(total, 3), "limit": MAX_SECONDS})
    return existing, measured


def create(owner_id: int, *, name: str, uploads: list[tuple[bytes, str]], file_ids: list[str],
           description: str = "", gender: str = "unknown", labels: dict[str, Any] | None = None,
           provider: str | None = None, is_public: bool = False) -> tuple[Voice, Job]:
    """Accept a voice request: store its samples, add a pending voice and its job.

    The samples are checked for format and size here; length and speech are checked by
    the job. A request that fails here leaves nothing stored.
    """
    from webapp.app.models import VoiceModel
    from webapp.app.models.common import new_uuid
    from webapp.app.services.voice_library.cloning import CLONE_TASK, local_engine_for

    registry = current_app.extensions["providers"]
    provider = provider or ("dashscope" if registry.is_configured("tts", "dashscope") else "local")
    if provider not in ("local", "dashscope"):
        raise ApiError(400, "bad_request", "INVALID_PROVIDER",
                       {"detail": f"provider: {provider}"})
    if provider == "dashscope" and not registry.is_configured("tts", "dashscope"):
        raise ApiError(503, "provider_not_configured", "VOICE_SERVICE_UNAVAILABLE",
                       {"provider": "dashscope"}, {"provider": "dashscope"})
    if not uploads and not file_ids:
        raise ApiError(400, "sample_required", "SAMPLE_REQUIRED")
    existing, measured = _bounded_samples(owner_id, uploads, file_ids)
    labels = dict(labels or {})
    language = str(labels.get("language") or "zh")
    stored: list[File] = []
    try:
        for (data, filename), info in zip(uploads, measured, strict=True):
            stored.append(files.save(owner_id, data, info.format, info.duration,
                                     kind="voice_upload", original_name=filename))
        voice_id = new_uuid()
        engine = "dashscope" if provider == "dashscope" else local_engine_for(language)
        voice = Voice(id=voice_id, voice_type=voice_id, owner_id=owner_id, name=name,
                      gender=gender, description=description, labels=labels,
                      category="自定义", language=language, provider=provider, engine=engine,
                      status="pending", is_public=is_public, builtin=False)
        voice.model = VoiceModel(local_training=provider == "local", model_metadata={
            "sample_file_ids": [row.id for row in (*existing, *stored)]})
        db.session.add(voice)
        job = jobs.create(owner_id, "voice_clone", voice_id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        for row in stored:
            files.delete(row)
        raise
    jobs.dispatch(job, CLONE_TASK, job.id)
    return voice, job


def preview_object(voice: Voice) -> tuple[str, str, str]:
    """Storage key, content type and name of a ready voice's preview (built-ins: sample)."""
    if voice.status != "ready":
        raise ApiError(409, "voice_not_ready", "VOICE_NOT_READY")
    if voice.builtin:
        key, content_type = builtin_sample(voice.voice_type)
        return key, content_type, "sample.mp3"
    row = db.session.get(File, voice.preview_file_id) if voice.preview_file_id else None
    if row is None:
        raise ApiError(404, "file_not_found", "FILE_NOT_FOUND")
    return row.storage_key, row.content_type, row.name
