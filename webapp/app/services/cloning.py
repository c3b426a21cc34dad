"""Making a voice from a sample: check and normalise it, clone it (DashScope enrollment,
or a locally derived approximation), preview it, and mark it ready — or failed with the
reason, with nothing half-made left behind."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from flask import current_app

from webapp.app import audio
from webapp.app.api import ApiError
from webapp.app.audio import dsp
from webapp.app.concurrency import run_blocking, sleep
from webapp.app.extensions import db
from webapp.app.models import File, Voice, VoiceModel
from webapp.app.providers.base import ProviderError
from webapp.app.services import files, jobs, synthesis

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
MIN_SECONDS, MAX_SECONDS = 5.0, 60.0
MIN_SPEECH_RATIO = 0.3
READY_WAIT_SECONDS = 300
MAX_ATTEMPTS = 3


class SampleRejected(Exception):
    """The sample cannot make a voice; the message says why."""


def normalise(samples: list[bytes]) -> tuple[bytes, float]:
    """Decode, join and level the sample(s); check length and that speech is present.

    Returns 16-bit mono WAV at 24 kHz (what enrollment wants) and its length.
    """
    pcm = b"".join(audio.decode_pcm(data, SAMPLE_RATE) for data in samples)
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
    """Piper speaks English best; eSpeak NG speaks everything else."""
    lang = (language or "").lower()
    registry = current_app.extensions["providers"]
    if lang.startswith("en") and registry.is_configured("tts", "piper"):
        return "piper"
    return "espeak"


def run(job_id: str) -> dict[str, Any] | None:
    """The body of the cloning task. ProviderErrors that may pass are re-raised for retry."""
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
    made: list[File] = []
    enrolled: str | None = None
    try:
        model = voice.model or VoiceModel(voice=voice, model_metadata={})
        sample_ids = list((model.model_metadata or {}).get("sample_file_ids", []))
        samples = [files.read(files.get(fid)) for fid in sample_ids]
        wav, seconds = run_blocking(normalise, samples)
        training = files.save(voice.owner_id, wav, "wav", seconds, kind="sample")
        made.append(training)
        model.training_file_id = training.id
        if voice.provider == "dashscope":
            enrolled = _enroll(voice, model, training)
        else:
            _derive_locally(voice, model, wav)
        rendered = synthesis.render(voice, synthesis.sample_text(voice), "mp3")
        preview = files.save(voice.owner_id, rendered.data, "mp3", rendered.duration,
                             kind="preview")
        made.append(preview)
        voice.preview_file_id = preview.id
        voice.status = "ready"
        voice.error = None
        model.model_metadata = {**model.model_metadata, "sample_seconds": round(seconds, 2)}
        db.session.commit()
        delete_raw_uploads(sample_ids)
        result = {"voice_id": voice.id, "voice_type": voice.voice_type,
                  "provider_voice_id": voice.provider_voice_id, "sample_seconds": seconds,
                  "preview_url": files.audio_url(preview)}
        jobs.succeed(job, result)
        return result
    except ProviderError as exc:
        _undo(voice, made, enrolled)
        if exc.transient and job.attempts < MAX_ATTEMPTS:
            db.session.commit()
            raise
        jobs.fail(job, f"{exc.provider}: {exc.message}")
    except (SampleRejected, audio.AudioError, ApiError) as exc:
        _undo(voice, made, enrolled)
        jobs.fail(job, _reason(exc))
    except Exception as exc:
        log.exception("cloning voice %s failed", voice.id)
        _undo(voice, made, enrolled)
        jobs.fail(job, f"internal error: {exc.__class__.__name__}")
        raise
    return None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return exc.params.get("detail") or exc.key
    return str(exc)


def _enroll(voice: Voice, model: VoiceModel, training: File) -> str:
    engine = current_app.extensions["providers"].tts("dashscope")
    url = files.download_url(training, seconds=3600)
    info = engine.add_voice(voice.name, url, voice.labels, voice.description)
    voice.provider_voice_id = info.voice_id
    db.session.commit()
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while (status := engine.voice_status(info.voice_id)) == "pending":
        if time.monotonic() > deadline:
            raise ProviderError("dashscope", "timeout", "the cloned voice never became ready")
        sleep(1.0)
    if status != "ready":
        raise ProviderError("dashscope", "task_failed", f"voice enrollment ended as {status}")
    model.local_training = False
    model.model_metadata = {**info.metadata, "approximation": False}
    return info.voice_id


def _derive_locally(voice: Voice, model: VoiceModel, wav: bytes) -> None:
    engine_name = local_engine_for(voice.language)
    engine = current_app.extensions["providers"].tts(engine_name)
    labels = {**(voice.labels or {}), "language": voice.language or "cmn"}
    info = run_blocking(engine.add_voice, voice.name, wav, labels, voice.description)
    voice.engine = engine_name
    voice.provider_voice_id = info.voice_id
    model.local_training = True
    model.model_file_path = info.metadata.get("model_file_path")
    model.model_metadata = {**info.metadata, "engine": engine_name}


def _undo(voice: Voice, made: list[File], enrolled: str | None) -> None:
    """Remove what this attempt made: stored audio and a provider-side voice."""
    db.session.rollback()
    deleted = bool(enrolled) and delete_enrolled(enrolled)
    for row in made:
        existing = db.session.get(File, row.id)
        if existing is not None:
            files.delete(existing)
    voice = db.session.get(Voice, voice.id)
    if voice is not None:
        if deleted and voice.provider_voice_id == enrolled:
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
    _undo(voice, [row for row in made if row is not None], enrolled)


def delete_raw_uploads(file_ids: list[str]) -> None:
    """Samples uploaded with the voice request itself; files uploaded before stay."""
    for fid in file_ids:
        row = db.session.get(File, fid)
        if row is not None and row.kind == "voice_upload":
            files.delete(row)
