"""OpenAI's audio API on Tingshuo's voices, engines, storage and accounts.

Speech and transcriptions go through the same paths as ``/api/tts/stream`` and
``/api/stt``: each call is a message in a session (the key's own session; a new one per
call for a JWT) unless the key was made with history off, and counts against the key's
monthly quota. Nothing here reads the request: routes hand in plain values.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import select

from webapp.app.errors import ApiError
from webapp.app.extensions import db
from webapp.app.models import ApiKey, File, Voice
from webapp.app.providers.base import Segment, Transcription
from webapp.app.providers.registry import ENGINES
from webapp.app.services.platform import api_keys, files, limits, usage_counters
from webapp.app.services.sessions import conversations
from webapp.app.services.speech import recorded_speech, transcripts
from webapp.app.services.speech.voice_input import VoiceInput
from webapp.app.services.voice_library import voice_choice, voices

MAX_INPUT_CHARACTERS = 4096
PCM_RATE = 24000  # OpenAI's raw PCM is 24 kHz 16-bit mono; clients assume that rate.

# OpenAI's voice names, with the gender each is heard as: a name maps onto a built-in
# voice of that gender on the engine the model names.
OPENAI_VOICES = {"alloy": "female", "ash": "male", "ballad": "male", "coral": "female",
                 "echo": "male", "fable": "male", "onyx": "male", "nova": "female",
                 "sage": "female", "shimmer": "female", "verse": "male"}
# OpenAI's model names → the engine that speaks for them. The "hd" and instruction-
# following models prefer the cloud engine when the deployment has one.
TTS_MODEL_ENGINES = {"tts-1": ("piper",), "tts-1-hd": ("dashscope", "piper"),
                     "gpt-4o-mini-tts": ("dashscope", "piper")}
STT_MODEL_ENGINES = {"whisper-1": None, "gpt-4o-transcribe": None,
                     "gpt-4o-mini-transcribe": None, "whisper": "whisper",
                     "paraformer": "paraformer"}
# Words in ``instructions`` that ask for one of the emotion service's moods.
_MOOD_WORDS = {
    "intense": ("excit", "energetic", "enthusias", "angry", "intense", "passion", "urgent",
                "loud", "cheerful", "激动", "兴奋", "强烈", "愤怒", "热情"),
    "calm": ("calm", "sooth", "gentle", "relax", "quiet", "soft", "slow", "whisper",
             "平静", "舒缓", "温和", "轻柔"),
}
INSTRUCTION_INTENSITY = 0.7


@dataclass(frozen=True)
class Caller:
    """Who is calling ``/v1``: a user, the key they came with (None for a JWT) and
    whether that key keeps history. Plain values: streams outlive the request's rows."""

    user_id: int
    key_id: str | None = None
    history: bool = True

    @classmethod
    def with_key(cls, key: ApiKey) -> Caller:
        return cls(key.owner_id, key.id, key.history)

    def session_id(self) -> str | None:
        """The key's session; None (a new session per call) for a JWT."""
        if self.key_id is None or not self.history:
            return None
        return api_keys.session_of(self.key_id).id

    def charge(self, **amounts: Any) -> Spent:
        """Count a request against the user's day and, inside it, the key's month; a
        refusal by either changes neither."""
        day = limits.charge(self.user_id, **amounts)
        try:
            month = api_keys.charge(self.key_id, **amounts) if self.key_id is not None else None
        except Exception:
            usage_counters.refund(day)
            raise
        return Spent(day, month)


@dataclass(frozen=True)
class Spent:
    """What a ``/v1`` request was counted for, so that a failed one can be given back."""

    day: usage_counters.Charge
    month: usage_counters.Charge | None = None

    def refund(self) -> None:
        usage_counters.refund(self.month)
        usage_counters.refund(self.day)


def _configured(kind: str, name: str) -> bool:
    return current_app.extensions["providers"].is_configured(kind, name)


def tts_engine_for_model(model: str) -> str:
    """The engine a speech model names: an OpenAI alias or an engine's own name."""
    if model in ENGINES["tts"]:
        return model
    choices = TTS_MODEL_ENGINES.get(model)
    if choices is None:
        raise ApiError(404, "model_not_found", "MODEL_NOT_FOUND", {"model": model},
                       {"param": "model"})
    return next((name for name in choices if _configured("tts", name)), choices[-1])


def _builtin_for(engine: str, openai_voice: str, language: str) -> Voice:
    """The built-in voice an OpenAI voice name stands for on ``engine``: same gender,
    in ``language`` where the engine has it (else English), spread over the engine's
    voices so different names sound different."""
    voices.sync_builtin_voices()
    rows = list(db.session.scalars(select(Voice).where(Voice.builtin.is_(True),
                                                       Voice.engine == engine)
                                   .order_by(Voice.voice_type)))
    if not rows:
        raise ApiError(503, "provider_not_configured", "VOICE_SERVICE_UNAVAILABLE",
                       {"provider": engine}, {"provider": engine})
    gender = OPENAI_VOICES[openai_voice]
    spoken = [v for v in rows if voice_choice.language_code(v.language) == language] or [
        v for v in rows if (v.language or "").startswith("en")] or rows
    matching = [v for v in spoken if v.gender == gender] or spoken
    same_gender = [name for name, g in OPENAI_VOICES.items() if g == gender]
    return matching[same_gender.index(openai_voice) % len(matching)]


def resolve_voice(caller: Caller, voice: str, model: str, text: str = "") -> Voice:
    """An OpenAI voice name, or any voice the caller may use.

    A name maps onto the model's engine; an OpenAI model served locally (``tts-1``)
    speaks ``text`` in the local engine for its language, so Chinese is read by the
    Mandarin voice and French by eSpeak NG's, not spelled by Piper."""
    engine = tts_engine_for_model(model)
    if voice.lower() not in OPENAI_VOICES:
        return voices.resolve_usable(voice, caller.user_id)
    language = voice_choice.spoken_language(text, None)
    if model not in ENGINES["tts"] and engine not in voice_choice.MULTILINGUAL_ENGINES \
            and language != "en":
        engine = current_app.extensions["providers"].local_tts_for(language)
    return _builtin_for(engine, voice.lower(), language)


def mood_of(instructions: str | None) -> str | None:
    """``intense`` or ``calm`` when the instructions ask for it in so many words."""
    text = (instructions or "").lower()
    for mood, words in _MOOD_WORDS.items():
        if any(word in text for word in words):
            return mood
    return None


@dataclass
class SpeechRequest:
    model: str
    input: str
    voice: str
    response_format: str = "mp3"
    speed: float = 1.0
    instructions: str | None = None
    stream_format: str = "audio"


@dataclass
class AudioOut:
    """A response body made while it is sent: bytes (audio or SSE) and its type."""

    chunks: Iterator[bytes]
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


def synthesize(caller: Caller, request: SpeechRequest) -> AudioOut:
    """``POST /v1/audio/speech``: audio bytes as made, or SSE events carrying them."""
    text = request.input.strip()
    if not text:
        raise ApiError(400, "input_empty", "INVALID_INPUT", details={"param": "input"})
    voice = resolve_voice(caller, request.voice, request.model, text)
    mood = mood_of(request.instructions)
    spent = caller.charge(characters=len(request.input))
    try:
        tts_request = recorded_speech.TtsRequest(
            text=text, voice=voice.voice_type, session_id=caller.session_id(),
            format=request.response_format,
            # OpenAI accepts 0.25–4; the engines speak between half and double speed.
            speed=min(max(request.speed, 0.5), 2.0),
            emotion=mood, emotion_intensity=INSTRUCTION_INTENSITY if mood else 0.0,
            instruction=request.instructions or None,
            output_rate=PCM_RATE if request.response_format == "pcm" else None)
        # The voice is passed as resolved; the stream has made its first audio before it
        # returns, so a failure before any audio is an error response, not a cut stream.
        stream = recorded_speech.tts_stream(caller.user_id, tts_request, history=caller.history,
                                            counted=True, voice=voice)
        chunks = stream.chunks
    except Exception:
        spent.refund()
        raise
    headers = {"X-Message-Id": stream.message_id, "X-Session-Id": stream.session_id}
    headers = {k: v for k, v in headers.items() if v}
    if request.stream_format == "sse":
        return AudioOut(_speech_events(chunks, len(request.input)), "text/event-stream",
                        headers)
    return AudioOut(chunks, stream.content_type, headers)


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


def _speech_events(chunks: Iterator[bytes], characters: int) -> Iterator[bytes]:
    for chunk in chunks:
        yield _event({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()})
    yield _event({"type": "speech.audio.done", "usage": {
        "input_tokens": characters, "output_tokens": 0, "total_tokens": characters}})


@dataclass
class TranscriptionRequest:
    model: str = "whisper-1"
    language: str | None = None
    prompt: str | None = None
    response_format: str = "json"
    temperature: float = 0.0
    timestamp_granularities: tuple[str, ...] = ()
    stream: bool = False
    itn: bool | None = None


def stt_engine_for_model(model: str) -> Any:
    if model not in STT_MODEL_ENGINES:
        raise ApiError(404, "model_not_found", "MODEL_NOT_FOUND", {"model": model},
                       {"param": "model"})
    return recorded_speech.stt_engine(STT_MODEL_ENGINES[model])


@dataclass
class TranscriptOut:
    """A finished transcription (``body``) or an SSE stream of one (``chunks``)."""

    content_type: str
    body: dict[str, Any] | str | None = None
    chunks: Iterator[bytes] | None = None


def transcribe(caller: Caller, data: bytes, filename: str, request: TranscriptionRequest,
               task: str = "transcribe") -> TranscriptOut:
    """``POST /v1/audio/transcriptions`` (and ``translations`` with ``task="translate"``)."""
    engine = stt_engine_for_model(request.model)
    if task == "translate" and engine.name != "whisper":
        raise ApiError(400, "bad_request", "NOT_SUPPORTED",
                       {"detail": f"{engine.name} cannot translate"}, {"param": "model"})
    if engine.name == "qwen-audio":
        raise ApiError(400, "bad_request", "NOT_SUPPORTED",
                       {"detail": "qwen-audio reads stored files only"}, {"param": "model"})
    info = files.inspect_upload(data)
    spent = caller.charge(audio_seconds=round(info.duration, 3))
    row = None
    try:
        if caller.history:
            row = files.save(caller.user_id, data, info.format, info.duration, kind="upload",
                             original_name=filename)
        params: dict[str, Any] = {"task": task, "temperature": request.temperature,
                                  "word_timestamps": "word" in request.timestamp_granularities}
        if request.prompt:
            params["prompt"] = request.prompt
        language = None if task == "translate" and not request.language else request.language
        if request.stream:
            return TranscriptOut("text/event-stream", chunks=_transcript_events(
                caller, engine, data, language, params, info.duration,
                row.id if row else None, spent, request))
        # The audio in hand is what is recognised; it is stored only with history on.
        heard = VoiceInput(caller.user_id, data, info.format, info.duration, row=row,
                           may_store=False)
        result, elapsed_ms = recorded_speech.recognise(engine, heard, language, params)
        result = recorded_speech.polished(result, request.itn, request.language)
    except Exception:
        spent.refund()
        if row is not None:
            files.delete(row)
        raise
    _keep(caller, engine, result, elapsed_ms, row, task)
    body = transcripts.render(result, request.response_format, task,
                              request.timestamp_granularities)
    return TranscriptOut(transcripts.CONTENT_TYPES[request.response_format], body=body)


def _keep(caller: Caller, engine: Any, result: Transcription, elapsed_ms: float,
          row: Any, task: str) -> None:
    """The recognition as a message of the caller's session (with history on)."""
    if row is None:
        return
    session = conversations.get_or_create(caller.user_id, caller.session_id())
    meta = recorded_speech.transcribed_meta(engine, result, elapsed_ms, task=task, api="openai")
    conversations.add_message(session, role="user", type="voice", transcription=result.text,
                              audio=row, meta=meta)


def _transcript_events(caller: Caller, engine: Any, data: bytes, language: str | None,
                       params: dict[str, Any], duration: float, row_id: str | None,
                       spent: Spent, request: TranscriptionRequest) -> Iterator[bytes]:
    """``transcript.text.delta`` per segment as the engine finds it, then ``done``.

    It runs after the route has returned, so rows are looked up again here.
    """
    started = time.perf_counter()
    row = db.session.get(File, row_id) if row_id else None
    segments: list[Segment] = []
    try:
        itn = recorded_speech.itn_wanted(request.itn)
        for heard in engine.transcribe_segments(data, language, params):
            segment = transcripts.polish_segment(heard, language, itn=itn,
                                                 reader_language=request.language)
            delta = segment.text if not segments or _unspaced(segment.text) else " " + segment.text
            segments.append(segment)
            yield _event({"type": "transcript.text.delta", "delta": delta})
    except Exception:
        spent.refund()
        if row is not None:
            files.delete(row)
        raise
    result = Transcription(
        text="".join(s.text if i == 0 or _unspaced(s.text) else " " + s.text
                     for i, s in enumerate(segments)),
        language=language, duration=round(duration, 3), segments=segments)
    _keep(caller, engine, result, round((time.perf_counter() - started) * 1000, 1), row,
          params["task"])
    yield _event({"type": "transcript.text.done", "text": result.text})


def _unspaced(text: str) -> bool:
    """Chinese and Japanese text runs on without spaces between segments."""
    return bool(text) and ord(text[0]) >= 0x2E80


def models() -> list[dict[str, Any]]:
    """Every model name ``/v1`` answers to: OpenAI's aliases and the engines' own."""
    registry = current_app.extensions["providers"]
    names = [*TTS_MODEL_ENGINES, *registry.configured_names("tts"),
             *[m for m in STT_MODEL_ENGINES if STT_MODEL_ENGINES[m] is None
               or registry.is_configured("stt", STT_MODEL_ENGINES[m])]]
    return [{"id": name, "object": "model", "created": 0, "owned_by": "tingshuo"}
            for name in dict.fromkeys(names)]


def speech_models() -> list[dict[str, str]]:
    registry = current_app.extensions["providers"]
    return [{"id": name} for name in dict.fromkeys(
        [*TTS_MODEL_ENGINES, *registry.configured_names("tts")])]


def voice_list(caller: Caller) -> list[dict[str, str]]:
    """OpenAI's names first, then every voice the caller may use, by the id ``voice``
    takes (a built-in's voice type, a cloned voice's id)."""
    out = [{"id": name, "name": name.capitalize()} for name in OPENAI_VOICES]
    voices.sync_builtin_voices()
    query = voices.usable_query(caller.user_id).order_by(Voice.builtin.desc(), Voice.engine,
                                                         Voice.name)
    for voice in db.session.scalars(query):
        out.append({"id": voice.voice_type if voice.builtin else voice.id, "name": voice.name})
    return out
