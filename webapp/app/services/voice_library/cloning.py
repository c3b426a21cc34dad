"""Making a voice from a sample: check and normalise it, clone it (DashScope enrollment,
or a locally derived approximation), preview it, and mark it ready — or failed with the
reason, with nothing half-made left behind."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flask import current_app

from webapp.app import audio
from webapp.app.audio import dsp
from webapp.app.concurrency import run_blocking, sleep
from webapp.app.errors import ApiError
from webapp.app.extensions import db
from webapp.app.models import File, Voice, VoiceModel
from webapp.app.providers.base import ProviderError
from webapp.app.services.platform import files, jobs
from webapp.app.services.voice_library import synthesis

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
MIN_SECONDS, MAX_SECONDS = 5.0, 60.0
MIN_SPEECH_RATIO = 0.3
READY_WAIT_SECONDS = 300
MAX_ATTEMPTS = 3
SAMPLE_IDS = "sample_file_ids"
CLONE_TASK = "voices.clone"
"""The task that runs ``run`` for a voice job (``webapp.app.tasks.voices``)."""


class SampleRejected(Exception):
    """The sample cannot make a voice; the message says why."""


def normalise(samples: list[bytes]) -> tuple[bytes, float]:
    """Decode, join and level the sample(s); check length and that speech is present.

    Returns 16-bit mono WAV at 24 kHz (what enrollment wants) and its length.
    """
    pieces: list[bytes] = []
    budget = MAX_SECONDS
    for data in samples:
        # Each sample is decoded no further than what is left of the total allowed.
        try:
            piece = audio.decode_pcm(data, SAMPLE_RATE, max_seconds=max(budget, 0.0))
        except audio.AudioTooLong as exc:
            raise SampleRejected(f"the samples last more than {MAX_SECONDS:g} s together; "
                                 f"at most {MAX_SECONDS:g} s is accepted") from exc
        budget -= audio.pcm_duration(piece, SAMPLE_RATE)
        pieces.append(piece)
    pcm = b"".join(pieces)
    seconds = audio.pcm_duration(pcm, SAMPLE_RATE)
    if seconds < MIN_SECONDS:
        raise SampleRejected(f"sample is {seconds:.1f} s; at least {MIN_SECONDS:g} s of speech "
                             "is needed")
    if seconds > MAX_SECONDS:
        raise SampleRejected(f"sample is {seconds:.1f} s; at most {MAX_SECONDS:g} s is accepted")
    ratio = dsp.speech_ratio(audio.resample(pcm, SAMPLE_RATE, 16000), 16000)
    if ratio < MIN_SPEECH_RATIO:
        raise SampleRejected(f"too little speech in the sample ({ratio:.0%} of it)")
    signal = audio.pcm_to_float(pcm)
    peak = float(np.max(np.abs(signal))) or 1.0
    leveled = audio.float_to_pcm(signal * (0.89 / peak))
    return audio.encode(leveled, SAMPLE_RATE, "wav"), seconds


def local_engine_for(language: str | None) -> str:
    """The local engine a locally derived voice speaks with, by the sample's language."""
    return current_app.extensions["providers"].local_tts_for(language)


def run(job_id: str) -> dict[str, Any] | None:
    """The body of the cloning task. ProviderErrors that may pass are re-raised for retry.

    Every wait here (reading samples, the thread pool, DashScope, storage) starts with
    nothing uncommitted: what a step learns is written and committed right after it, so
    other writers never wait for this job (on SQLite they would wait for the whole job).
    """
    job = jobs.start(job_id)
    if job is None:
        return None
    voice = db.session.get(Voice, job.target_id)
    if voice is None:
        jobs.fail(job, "the voice was deleted before it was made")
        return None
    clear_leftovers(voice)
    if job.attempts > MAX_ATTEMPTS:
        jobs.fail(job, f"the worker stopped during the job {job.attempts - 1} times")
        return None
    attempt = _Attempt()
    try:
        sample_ids = _sample_ids(voice)
        samples = [files.read(files.get(fid)) for fid in sample_ids]
        wav, seconds = run_blocking(normalise, samples)
        training = files.save(voice.owner_id, wav, "wav", seconds, kind="sample")
        attempt.made.append(training)
        _model(voice).training_file_id = training.id
        db.session.commit()
        if voice.provider == "dashscope":
            _enroll(voice, training, attempt)
        else:
            _derive_locally(voice, wav)
        rendered = synthesis.render(voice, synthesis.sample_text(voice), "mp3")
        preview = files.save(voice.owner_id, rendered.data, "mp3", rendered.duration,
                             kind="preview")
        attempt.made.append(preview)
        model = _model(voice)
        voice.preview_file_id = preview.id
        voice.status = "ready"
        voice.error = None
        kept = {k: v for k, v in model.model_metadata.items() if k != SAMPLE_IDS}
        model.model_metadata = {**kept, "sample_seconds": round(seconds, 2)}
        db.session.commit()
        delete_raw_uploads(sample_ids)
        result = {"voice_id": voice.id, "voice_type": voice.voice_type,
                  "provider_voice_id": voice.provider_voice_id, "sample_seconds": seconds,
                  "preview_url": files.audio_url(preview)}
        jobs.succeed(job, result)
        return result
    except ProviderError as exc:
        _undo(voice, attempt)
        if exc.transient and job.attempts < MAX_ATTEMPTS:
            db.session.commit()
            raise
        jobs.fail(job, f"{exc.provider}: {exc.message}")
    except (SampleRejected, audio.AudioError, ApiError) as exc:
        _undo(voice, attempt)
        jobs.fail(job, _reason(exc))
    except Exception as exc:
        log.exception("cloning voice %s failed", voice.id)
        _undo(voice, attempt)
        jobs.fail(job, f"internal error: {exc.__class__.__name__}")
        raise
    return None


@dataclass
class _Attempt:
    """What one attempt made outside the voice row, so a failure can remove it."""

    made: list[File] = field(default_factory=list)
    enrolled: str | None = None


def _model(voice: Voice) -> VoiceModel:
    if voice.model is None:
        voice.model = VoiceModel(model_metadata={})
    return voice.model


def _sample_ids(voice: Voice) -> list[str]:
    metadata = voice.model.model_metadata if voice.model is not None else None
    return list((metadata or {}).get(SAMPLE_IDS, []))


def _with_samples(model: VoiceModel, metadata: dict[str, Any]) -> dict[str, Any]:
    """The engine's metadata, still naming the samples: a retry after a later step fails
    starts again from them (they are dropped once the voice is ready)."""
    return {**metadata, SAMPLE_IDS: (model.model_metadata or {}).get(SAMPLE_IDS, [])}


def _reason(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return exc.params.get("detail") or exc.key
    return str(exc)


def _enroll(voice: Voice, training: File, attempt: _Attempt) -> None:
    engine = current_app.extensions["providers"].tts("dashscope")
    url = files.download_url(training, seconds=3600)
    info = engine.add_voice(voice.name, url, voice.labels, voice.description)
    attempt.enrolled = info.voice_id
    voice.provider_voice_id = info.voice_id
    db.session.commit()
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while (status := engine.voice_status(info.voice_id)) == "pending":
        if time.monotonic() > deadline:
            raise ProviderError("dashscope", "timeout", "the cloned voice never became ready")
        sleep(1.0)
    if status != "ready":
        raise ProviderError("dashscope", "task_failed", f"voice enrollment ended as {status}")
    model = _model(voice)
    model.local_training = False
    model.model_metadata = _with_samples(model, {**info.metadata, "approximation": False})
    db.session.commit()


def _derive_locally(voice: Voice, wav: bytes) -> None:
    engine_name = local_engine_for(voice.language)
    engine = current_app.extensions["providers"].tts(engine_name)
    labels = {**(voice.labels or {}), "language": voice.language or "cmn"}
    info = run_blocking(engine.add_voice, voice.name, wav, labels, voice.description)
    model = _model(voice)
    voice.engine = engine_name
    voice.provider_voice_id = info.voice_id
    model.local_training = True
    model.model_file_path = info.metadata.get("model_file_path")
    model.model_metadata = _with_samples(model, {**info.metadata, "engine": engine_name})
    db.session.commit()


def _undo(voice: Voice, attempt: _Attempt) -> None:
    """Remove what this attempt made: stored audio and a provider-side voice. The
    provider-side id stays on the voice when DashScope could not be told, so the next
    attempt (``clear_leftovers``) tries again."""
    db.session.rollback()
    deleted = bool(attempt.enrolled) and delete_enrolled(attempt.enrolled)
    for row in attempt.made:
        existing = db.session.get(File, row.id)
        if existing is not None:
            files.delete(existing)
    voice = db.session.get(Voice, voice.id)
    if voice is not None:
        if deleted and voice.provider_voice_id == attempt.enrolled:
            voice.provider_voice_id = ""
        voice.preview_file_id = None
        if voice.model is not None:
            voice.model.training_file_id = None
        db.session.commit()


def delete_enrolled(provider_voice_id: str) -> bool:
    """Delete a voice enrolled at DashScope for a clone that did not finish; False (and
    a warning naming it, for an operator) when DashScope cannot be told."""
    try:
        current_app.extensions["providers"].tts("dashscope").delete_voice(provider_voice_id)
    except ProviderError as exc:
        if exc.kind == "bad_input":
            return True
        log.warning("could not delete enrolled voice %s: %s", provider_voice_id, exc)
        return False
    return True


def clear_leftovers(voice: Voice) -> None:
    """Remove what an earlier attempt made before its worker died (SIGKILL, lost host):
    the provider-side voice it enrolled and the training and preview audio it stored.

    A voice that is ready is kept; so is a sample the user uploaded.
    """
    if voice.status == "ready":
        return
    model = voice.model
    enrolled = voice.provider_voice_id if voice.provider == "dashscope" else None
    made = [db.session.get(File, fid) for fid in (
        model.training_file_id if model else None, voice.preview_file_id) if fid]
    if not enrolled and not any(made):
        return
    log.warning("voice %s: clearing what an interrupted attempt left (%s, %d files)",
                voice.id, enrolled or "no provider voice", len([r for r in made if r]))
    voice.preview_file_id = None
    if model is not None:
        model.training_file_id = None
    db.session.commit()
    _undo(voice, _Attempt(made=[row for row in made if row is not None], enrolled=enrolled))


def delete_raw_uploads(file_ids: list[str]) -> None:
    """Samples uploaded with the voice request itself; files uploaded before stay."""
    for fid in file_ids:
        row = db.session.get(File, fid)
        if row is not None and row.kind == "voice_upload":
            files.delete(row)
