"""A fake DashScope server that the official ``dashscope`` SDK talks to unchanged.

Tests and benchmarks point ``dashscope.base_http_api_url`` and
``dashscope.base_websocket_api_url`` at this server on 127.0.0.1, so every
CosyVoice, voice-enrollment, Paraformer, Qwen-Audio and Qwen call goes through
the SDK's own encoding and parsing without reaching the internet.

One port serves both protocols:

* ``POST /api/v1/services/...`` for the HTTP models,
* ``GET /api-ws/v1/inference`` for the websocket tasks (TTS and ASR),
* ``POST /__control``, ``GET /__stats``, ``POST /__reset`` for the tests.

Run it with ``python -m tests.fakes.fake_dashscope --port 0``: it prints one
line ``READY <port>`` on stdout once it listens. ``start_fake_dashscope`` does
that in a subprocess, because the project's app runs under eventlet and a
server thread inside that process would be a green thread.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import logging
import math
import re
import subprocess
import sys
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
from aiohttp import web

from tests.fakes.process import FakeProcess, launch, serve

log = logging.getLogger("fake_dashscope")

HTTP_PREFIX = "/api/v1"
WS_PATH = "/api-ws/v1/inference"
DEFAULT_API_KEY = "test-key"
DEFAULT_ASR_TEXT = "这是一段测试语音"

KINDS = ("tts", "asr", "enrollment", "multimodal", "generation")
FAULT_MODES = ("ok", "quota", "task_failed", "timeout", "server_error", "bad_key", "mid_stream",
               "stall", "slow_first_byte")
"""``mid_stream`` fails a stream after its first sentence (TTS) or first pieces (SSE);
``stall`` stops sending there for ``hold`` seconds; ``slow_first_byte`` waits ``hold``
seconds and then answers normally; ``bad_key`` refuses the key (a 401; on the websocket,
at the handshake, as DashScope does)."""

SECONDS_PER_CHARACTER = 0.06
MIN_ASR_BYTES = 3200
PROBE_BYTES = 1600
INTERIM_SECONDS = 0.25
MAX_FETCH_BYTES = 10 * 1024 * 1024
DEFAULT_TTS_SAMPLE_RATE = 22050
VOICE_PREFIX_RE = re.compile(r"^[a-z0-9]{1,9}$")
SENTENCE_END = frozenset("。！？!?；;…\n")
LLM_PIECE_SIZES = (2, 1, 3, 4, 1, 2, 4, 3)

# container format and codec for each TTS ``format``; "pcm" is raw s16le.
ENCODINGS = {
    "mp3": ("mp3", "libmp3lame"),
    "wav": ("wav", "pcm_s16le"),
    "opus": ("ogg", "libopus"),
}


@dataclass
class FakeOptions:
    """Behaviour knobs of the fake; each is also a flag (``api_key`` is ``--api-key``)."""

    api_key: str = field(default=DEFAULT_API_KEY, metadata={"help": "the only key accepted"})
    frame_delay: float = field(default=0.01, metadata={"help": "seconds between audio frames"})
    deploy_seconds: float = field(
        default=0.5, metadata={"help": "seconds a cloned voice stays DEPLOYING"}
    )
    asr_text: str = field(default=DEFAULT_ASR_TEXT, metadata={"help": "transcript of any audio"})
    llm_reply: str | None = field(default=None, metadata={"help": "LLM reply, used verbatim"})
    token_delay: float = field(default=0.02, metadata={"help": "seconds between LLM events"})
    hold_seconds: float = field(
        default=30.0, metadata={"help": "how long the timeout mode holds a call"}
    )
    asr_delay: float = field(default=0.0, metadata={
        "help": "seconds from audio reaching Paraformer to its result (the service: ~0.15)"})
    tts_first_packet: float = field(default=0.0, metadata={
        "help": "seconds before a CosyVoice task's first audio (the service: ~0.2)"})
    tts_pace: float = field(default=0.0, metadata={
        "help": "send CosyVoice audio at this multiple of real time (0: frame_delay apart)"})

    def to_args(self) -> list[str]:
        """The command-line flags that reproduce these options."""
        args: list[str] = []
        for option in fields(self):
            value = getattr(self, option.name)
            if value is not None:
                args.append(f"{_flag(option.name)}={value}")
        return args


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass
class Voice:
    """A cloned voice; it keeps what was fetched so tests can assert on it."""

    voice_id: str
    prefix: str
    target_model: str
    url: str
    audio_bytes: int
    audio_seconds: float
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    ready_at: float = 0.0

    @property
    def status(self) -> str:
        return "OK" if time.time() >= self.ready_at else "DEPLOYING"

    def summary(self) -> dict[str, Any]:
        return {
            "voice_id": self.voice_id,
            "gmt_create": _gmt(self.created),
            "gmt_modified": _gmt(self.modified),
            "status": self.status,
        }

    def details(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "target_model": self.target_model,
            "resource_link": self.url,
            "prefix": self.prefix,
            "audio_bytes": self.audio_bytes,
            "audio_seconds": self.audio_seconds,
        }


def _gmt(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


class Faults:
    """Injected failures for the next N model calls, so error mapping can be tested."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.remaining: int | None = None
        self.kinds: frozenset[str] | None = None
        self.hold: float | None = None

    def set(self, mode: str, count: int | None, kinds: list[str] | None,
            hold: float | None = None) -> None:
        self.mode = mode
        self.hold = hold
        self.remaining = count
        self.kinds = frozenset(kinds) if kinds else None
        if mode == "ok" or count == 0:
            self.mode, self.remaining, self.kinds, self.hold = "ok", None, None, None

    def applies_to(self, kinds: tuple[str, ...]) -> bool:
        """Whether the current mode would hit a call of one of ``kinds``."""
        return self.mode != "ok" and (self.kinds is None or bool(self.kinds & set(kinds)))

    def take(self, kind: str) -> str:
        """Return the mode to apply to one call of ``kind``, spending one count."""
        if self.mode == "ok" or (self.kinds is not None and kind not in self.kinds):
            return "ok"
        mode = self.mode
        if self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                self.set("ok", None, None)
        return mode

    def describe(self) -> dict[str, Any]:
        kinds = sorted(self.kinds) if self.kinds else None
        return {"mode": self.mode, "remaining": self.remaining, "kinds": kinds,
                "hold": self.hold}


class FakeState:
    """Everything the server remembers; reset by ``POST /__reset``."""

    def __init__(self, options: FakeOptions) -> None:
        self.options = options
        self.reset()

    def reset(self) -> None:
        self.voices: dict[str, Voice] = {}
        self.calls: Counter[str] = Counter()
        self.unauthorized = 0
        self.last_request: dict[str, Any] = {}
        self.last_input: dict[str, Any] = {}
        self.faults = Faults()
        self.deploy_seconds = self.options.deploy_seconds
        self.last_hold = self.options.hold_seconds
        self.phrases: list[tuple[str, bytes]] = []
        self.asr_open = 0
        self.asr_open_most = 0

    def asr_opened(self, change: int) -> None:
        """Count recognitions open right now, and the most that were ever open at once."""
        self.asr_open += change
        self.asr_open_most = max(self.asr_open_most, self.asr_open)

    def learn(self, phrases: list[dict[str, str]]) -> None:
        """Recognise these phrases from now on: each is a text and the base64 16-bit PCM
        that says it. A stretch from the middle of each is what recognition looks for."""
        self.phrases = []
        for phrase in phrases:
            pcm = base64.b64decode(phrase["pcm"])
            middle = len(pcm) // 4 * 2
            self.phrases.append((str(phrase["text"]), pcm[middle:middle + PROBE_BYTES]))

    def transcript_of(self, audio: bytes) -> str | None:
        """The learnt phrase heard in ``audio``, if any."""
        return next((text for text, probe in self.phrases if probe and probe in audio), None)

    def hold(self) -> float:
        """Seconds the fault just taken holds a call (its own ``hold``, else the option)."""
        return self.last_hold

    def record(self, kind: str, body: Any) -> str:
        """Count one model call and return the fault mode that applies to it."""
        self.calls[kind] += 1
        self.last_request[kind] = body
        hold = self.faults.hold
        mode = self.faults.take(kind)
        self.last_hold = self.options.hold_seconds if hold is None else hold
        return mode

    def stats(self) -> dict[str, Any]:
        return {
            "calls": {kind: self.calls.get(kind, 0) for kind in KINDS},
            "unauthorized": self.unauthorized,
            "voices": [voice.details() for voice in self.voices.values()],
            "last_request": self.last_request,
            "last_input": self.last_input,
            "fault": self.faults.describe(),
            "asr_open_most": self.asr_open_most,
        }


# --------------------------------------------------------------------------
# Audio


def voice_base_frequency(voice: str) -> float:
    """A stable fundamental per voice, so different voices sound different."""
    return 110.0 + zlib.crc32(voice.encode("utf-8")) % 130


def synthesize_speech(
    text: str,
    sample_rate: int,
    rate: float = 1.0,
    pitch: float = 1.0,
    volume: float = 50,
    voice: str = "",
) -> np.ndarray:
    """Render ``text`` as a voiced, syllable-shaped signal (int16 mono).

    Each non-space character gets one slot of 0.06 s / rate: a syllable with a
    few harmonics of a slowly falling pitch, or silence for punctuation.
    """
    symbols = [ch for ch in text if not ch.isspace()]
    if not symbols:
        return np.zeros(0, dtype=np.int16)
    slot = max(1, round(SECONDS_PER_CHARACTER / max(rate, 0.1) * sample_rate))
    total = slot * len(symbols)
    index = np.arange(total)
    seconds = index / sample_rate
    progress = index / total
    f0 = voice_base_frequency(voice) * max(pitch, 0.1)
    f0 = f0 * (1.08 - 0.16 * progress) * (1.0 + 0.03 * np.sin(2 * np.pi * 5.5 * seconds))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 6))
    harmonics /= sum(1 / k for k in range(1, 6))
    voiced = np.repeat(
        np.array([0.0 if _is_punctuation(ch) else 1.0 for ch in symbols]),
        slot,
    )
    envelope = np.sin(np.pi * (index % slot) / slot) ** 0.6 * voiced
    amplitude = min(0.95, 0.9 * max(volume, 0) / 100)
    signal = harmonics * envelope * amplitude
    return (signal * 32767).astype(np.int16)


def _is_punctuation(ch: str) -> bool:
    return not ch.isalnum()


class _ByteSink:
    """Write-only file for PyAV: no seek, so the muxer streams as it goes."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


class AudioEncoder:
    """Encodes one task's audio incrementally, so sentences can be streamed.

    A streamed WAV has the 0xFFFFFFFF sizes of a non-seekable output.
    """

    def __init__(self, audio_format: str, sample_rate: int) -> None:
        self.audio_format = audio_format
        self.sample_rate = sample_rate
        self._sink = _ByteSink()
        self._container: Any = None
        self._stream: Any = None
        if audio_format != "pcm":
            container_format, codec = ENCODINGS[audio_format]
            self._container = av.open(self._sink, mode="w", format=container_format)
            self._stream = self._container.add_stream(codec, rate=sample_rate, layout="mono")

    def encode(self, samples: np.ndarray) -> bytes:
        if self._container is None:
            return samples.astype("<i2").tobytes()
        if samples.size:
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = self.sample_rate
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._sink.take()

    def close(self) -> bytes:
        if self._container is None:
            return b""
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._sink.take()


def probe_audio_seconds(data: bytes) -> float:
    """Decode ``data`` fully and return its duration; ValueError if it is not audio."""
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio:
                raise ValueError("no audio stream")
            stream = container.streams.audio[0]
            samples = 0
            rate = stream.rate or 0
            for frame in container.decode(stream):
                samples += frame.samples
                rate = frame.sample_rate or rate
    except av.FFmpegError as exc:
        raise ValueError(str(exc)) from exc
    if samples == 0 or rate == 0:
        raise ValueError("no audio samples")
    return samples / rate


class AudioFetchError(Exception):
    """The audio URL could not be fetched or did not hold audio."""


async def fetch_audio(url: str) -> tuple[bytes, float]:
    """GET ``url`` as DashScope would and check that it decodes as audio."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise AudioFetchError(f"not an http(s) url: {url!r}")
    timeout = aiohttp.ClientTimeout(total=15)
    data = bytearray()
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout, trust_env=False) as session,
            session.get(url) as response,
        ):
            if response.status != 200:
                raise AudioFetchError(f"GET {url} answered {response.status}")
            async for chunk in response.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > MAX_FETCH_BYTES:
                    raise AudioFetchError("audio larger than 10 MB")
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise AudioFetchError(f"GET {url} failed: {exc}") from exc
    try:
        seconds = await asyncio.to_thread(probe_audio_seconds, bytes(data))
    except ValueError as exc:
        raise AudioFetchError(f"not valid audio: {exc}") from exc
    return bytes(data), seconds


def split_sentences(text: str, final: bool) -> tuple[list[str], str]:
    """Cut complete sentences off ``text``; the rest waits for more input unless final."""
    sentences: list[str] = []
    start = 0
    for i, ch in enumerate(text):
        ends = ch in SENTENCE_END or (ch == "." and i + 1 < len(text) and text[i + 1].isspace())
        if ends:
            sentences.append(text[start : i + 1])
            start = i + 1
    rest = text[start:]
    if final and rest.strip():
        sentences.append(rest)
        rest = ""
    return [s for s in sentences if s.strip()], rest


def wav_data_offset(data: bytes) -> int:
    """Offset of the samples in a RIFF/WAVE file, or 0 when there is no header."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return 0
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk_id == b"data":
            return pos + 8
        pos += 8 + size + (size & 1)
    return len(data)


# --------------------------------------------------------------------------
# HTTP

STATE = web.AppKey("state", FakeState)


def _request_id() -> str:
    return str(uuid.uuid4())


def error_response(status: int, code: str, message: str) -> web.Response:
    """A DashScope error body, which the SDK turns into ``status_code``/``code``."""
    return web.json_response(
        {"code": code, "message": message, "request_id": _request_id()}, status=status
    )


# status, code and message of each failure mode; websocket tasks send code and message.
FAULT_ERRORS = {
    "quota": (429, "Throttling.AllocationQuota", "Allocated quota exceeded"),
    "task_failed": (500, "InternalError", "task failed for test"),
    "server_error": (500, "InternalError", "Internal server error"),
}


async def _apply_http_fault(state: FakeState, mode: str, streamed: bool = False
                            ) -> web.Response | None:
    """The fault's answer to an HTTP call, or None to answer normally.

    ``mid_stream`` and ``stall`` act inside a streamed answer (``_answer_text``); a call
    answered in one piece fails or stalls before it.
    """
    if mode == "ok" or (streamed and mode in ("mid_stream", "stall")):
        return None
    if mode == "bad_key":
        state.unauthorized += 1
        return error_response(401, "InvalidApiKey", "Invalid API-key provided.")
    if mode == "slow_first_byte":
        await asyncio.sleep(state.hold())
        return None
    if mode in ("timeout", "stall"):
        await asyncio.sleep(state.hold())
        return error_response(504, "RequestTimeOut", "Request timed out, please try again later.")
    if mode == "mid_stream":
        return error_response(*FAULT_ERRORS["server_error"])
    return error_response(*FAULT_ERRORS[mode])


def _is_sse(request: web.Request) -> bool:
    return "text/event-stream" in request.headers.get("Accept", "") or (
        request.headers.get("X-DashScope-SSE", "").lower() == "enable"
    )


async def _read_json(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Reject model calls without the right bearer key, as DashScope does."""
    if request.path.startswith(("/api/", "/api-ws/")):
        state = request.app[STATE]
        if request.headers.get("Authorization", "") != f"Bearer {state.options.api_key}":
            state.unauthorized += 1
            return error_response(401, "InvalidApiKey", "Invalid API-key provided.")
    return await handler(request)


async def handle_customization(request: web.Request) -> web.Response:
    """Voice enrollment: create/list/query/update/delete cloned voices."""
    state = request.app[STATE]
    body = await _read_json(request)
    fault = state.record("enrollment", body)
    failed = await _apply_http_fault(state, fault)
    if failed is not None:
        return failed
    if body is None or not isinstance(body.get("input"), dict):
        return error_response(400, "InvalidParameter", "input is required")
    payload = body["input"]
    action = payload.get("action")
    if action == "create_voice":
        return await _create_voice(state, payload)
    if action == "list_voice":
        return _list_voices(state, payload)
    voice = state.voices.get(str(payload.get("voice_id")))
    if voice is None:
        return error_response(
            400, "InvalidParameter", f"voice {payload.get('voice_id')} does not exist"
        )
    if action == "query_voice":
        return _ok(voice.details())
    if action == "update_voice":
        return await _update_voice(state, voice, payload)
    if action == "delete_voice":
        del state.voices[voice.voice_id]
        return _ok({})
    return error_response(400, "InvalidParameter", f"unknown action {action!r}")


def _ok(output: dict[str, Any], usage: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"request_id": _request_id(), "output": output}
    if usage is not None:
        body["usage"] = usage
    return web.json_response(body)


async def _create_voice(state: FakeState, payload: dict[str, Any]) -> web.Response:
    prefix = payload.get("prefix")
    target_model = payload.get("target_model")
    if not isinstance(prefix, str) or not VOICE_PREFIX_RE.match(prefix):
        return error_response(
            400,
            "InvalidParameter",
            "prefix must be lowercase letters or digits, < 10 chars",
        )
    if not isinstance(target_model, str) or not target_model:
        return error_response(400, "InvalidParameter", "target_model is required")
    try:
        data, seconds = await fetch_audio(payload.get("url"))
    except AudioFetchError as exc:
        return _bad_audio(exc)
    voice = Voice(
        voice_id=f"cosyvoice-{prefix}-{uuid.uuid4().hex}",
        prefix=prefix,
        target_model=target_model,
        url=payload["url"],
        audio_bytes=len(data),
        audio_seconds=seconds,
    )
    voice.ready_at = voice.created + state.deploy_seconds
    state.voices[voice.voice_id] = voice
    return _ok({"voice_id": voice.voice_id}, {"count": 1})


async def _update_voice(state: FakeState, voice: Voice, payload: dict[str, Any]) -> web.Response:
    try:
        data, seconds = await fetch_audio(payload.get("url"))
    except AudioFetchError as exc:
        return _bad_audio(exc)
    voice.url = payload["url"]
    voice.audio_bytes, voice.audio_seconds = len(data), seconds
    voice.modified = time.time()
    voice.ready_at = voice.modified + state.deploy_seconds
    return _ok({})


def _bad_audio(exc: AudioFetchError) -> web.Response:
    log.info("audio fetch failed: %s", exc)
    return error_response(400, "InvalidParameter", "audio url not accessible / not valid audio")


def _list_voices(state: FakeState, payload: dict[str, Any]) -> web.Response:
    prefix = payload.get("prefix")
    voices = [voice for voice in state.voices.values() if not prefix or voice.prefix == prefix]
    page_index = int(payload.get("page_index") or 0)
    page_size = int(payload.get("page_size") or 10)
    page = voices[page_index * page_size : (page_index + 1) * page_size]
    return _ok({"voice_list": [voice.summary() for voice in page]})


def _last_user_text(messages: Any, prompt: Any) -> str:
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _content_text(message.get("content"))
    return prompt if isinstance(prompt, str) else ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            item["text"]
            for item in content
            if isinstance(item, dict) and isinstance(item.get("text"), str)
        )
    return ""


def llm_pieces(reply: str) -> list[str]:
    """Cut the reply into deterministic pieces of 1-4 characters."""
    pieces: list[str] = []
    pos = 0
    while pos < len(reply):
        size = LLM_PIECE_SIZES[len(pieces) % len(LLM_PIECE_SIZES)]
        pieces.append(reply[pos : pos + size])
        pos += size
    return pieces or [""]


def _choice_output(text: str, finish: str, result_format: str, multimodal: bool) -> dict[str, Any]:
    if multimodal:
        content: Any = [{"text": text}]
    else:
        content = text
    if result_format == "message" or multimodal:
        message = {"role": "assistant", "content": content}
        return {"choices": [{"finish_reason": finish, "message": message}]}
    return {"text": text, "finish_reason": finish}


async def _answer_text(
    request: web.Request,
    state: FakeState,
    reply: str,
    input_tokens: int,
    parameters: dict[str, Any],
    multimodal: bool,
    fault: str = "ok",
) -> web.StreamResponse:
    """Answer with ``reply``, as one JSON or as an SSE stream of pieces.

    A ``mid_stream`` fault ends the stream with an error event after a third of the
    pieces; ``stall`` stops sending there for the fault's hold time.
    """
    result_format = parameters.get("result_format") or "text"
    request_id = _request_id()
    if not _is_sse(request):
        usage = _usage(input_tokens, len(reply))
        output = _choice_output(reply, "stop", result_format, multimodal)
        return web.json_response({"request_id": request_id, "output": output, "usage": usage})
    incremental = bool(parameters.get("incremental_output"))
    response = web.StreamResponse(
        status=200, headers={"Content-Type": "text/event-stream;charset=UTF-8"}
    )
    await response.prepare(request)
    pieces = llm_pieces(reply)
    cut = max(1, len(pieces) // 3) if fault in ("mid_stream", "stall") else len(pieces)
    sent = ""
    for number, piece in enumerate(pieces, start=1):
        if number > cut:
            if fault == "stall":
                await asyncio.sleep(state.hold())
                return response
            status, code, message = FAULT_ERRORS["server_error"]
            error = json.dumps({"code": code, "message": message, "request_id": request_id})
            await response.write(f"id:{number}\nevent:error\n:HTTP_STATUS/{status}\n"
                                 f"status:{status}\ndata:{error}\n\n".encode())
            await response.write_eof()
            return response
        sent += piece
        finish = "stop" if number == len(pieces) else "null"
        text = piece if incremental else sent
        event = {
            "output": _choice_output(text, finish, result_format, multimodal),
            "usage": _usage(input_tokens, len(sent)),
            "request_id": request_id,
        }
        data = json.dumps(event, ensure_ascii=False)
        frame = f"id:{number}\nevent:result\n:HTTP_STATUS/200\ndata:{data}\n\n"
        await response.write(frame.encode("utf-8"))
        if number < len(pieces):
            await asyncio.sleep(state.options.token_delay)
    await response.write_eof()
    return response


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


async def handle_generation(request: web.Request) -> web.StreamResponse:
    """Qwen text generation: a deterministic reply derived from the last user message."""
    state = request.app[STATE]
    body = await _read_json(request)
    fault = state.record("generation", body)
    failed = await _apply_http_fault(state, fault, _is_sse(request))
    if failed is not None:
        return failed
    if body is None or not isinstance(body.get("input"), dict):
        return error_response(400, "InvalidParameter", "input is required")
    payload = body["input"]
    user_text = _last_user_text(payload.get("messages"), payload.get("prompt"))
    state.last_input["generation"] = user_text
    reply = state.options.llm_reply
    if reply is None:
        reply = f"收到：{user_text}。这是第二句话。这是第三句话！最后一句？"
    parameters = body.get("parameters") or {}
    return await _answer_text(request, state, reply, len(user_text), parameters, False, fault)


async def handle_multimodal(request: web.Request) -> web.StreamResponse:
    """Qwen-Audio: fetch every audio URL of the messages and answer the set transcript."""
    state = request.app[STATE]
    body = await _read_json(request)
    fault = state.record("multimodal", body)
    failed = await _apply_http_fault(state, fault, _is_sse(request))
    if failed is not None:
        return failed
    payload = body.get("input") if body else None
    messages = payload.get("messages") if isinstance(payload, dict) else None
    if not isinstance(messages, list):
        return error_response(400, "InvalidParameter", "input.messages is required")
    urls = [
        item["audio"]
        for message in messages
        if isinstance(message, dict) and isinstance(message.get("content"), list)
        for item in message["content"]
        if isinstance(item, dict) and "audio" in item
    ]
    if not urls:
        return error_response(400, "InvalidParameter", "no audio in the messages")
    seconds = 0.0
    for url in urls:
        try:
            _, duration = await fetch_audio(url)
        except AudioFetchError as exc:
            return _bad_audio(exc)
        seconds += duration
    state.last_input["multimodal"] = {"audio_urls": urls, "audio_seconds": seconds}
    parameters = body.get("parameters") or {}
    input_tokens = max(1, round(seconds * 25))
    return await _answer_text(
        request, state, state.options.asr_text, input_tokens, parameters, True, fault
    )


async def handle_control(request: web.Request) -> web.Response:
    """Set the fault mode for the next ``count`` model calls (all of them if omitted)."""
    state = request.app[STATE]
    body = await _read_json(request) or {}
    mode = body.get("mode", "ok")
    count = body.get("count")
    kinds = body.get("kinds")
    hold = body.get("hold")
    if body.get("deploy_seconds") is not None:
        state.deploy_seconds = float(body["deploy_seconds"])
    if isinstance(body.get("phrases"), list):
        state.learn(body["phrases"])
    if mode not in FAULT_MODES:
        return error_response(400, "InvalidParameter", f"mode must be one of {FAULT_MODES}")
    if count is not None and (not isinstance(count, int) or count < 0):
        return error_response(400, "InvalidParameter", "count must be a non-negative integer")
    if kinds is not None and (not isinstance(kinds, list) or not set(kinds) <= set(KINDS)):
        return error_response(400, "InvalidParameter", f"kinds must be a list out of {KINDS}")
    if hold is not None and (not isinstance(hold, int | float) or hold < 0):
        return error_response(400, "InvalidParameter", "hold must be a non-negative number")
    state.faults.set(mode, count, kinds, hold)
    return web.json_response(state.faults.describe())


async def handle_stats(request: web.Request) -> web.Response:
    """What the server saw, so tests can check the parameters the SDK sent."""
    state = request.app[STATE]
    return web.json_response(state.stats(), dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def handle_reset(request: web.Request) -> web.Response:
    """Back to a fresh server without restarting the process."""
    state = request.app[STATE]
    state.reset()
    return web.json_response({"reset": True})


# --------------------------------------------------------------------------
# Websocket tasks


def _event(task_id: str, name: str, payload: dict[str, Any] | None = None) -> str:
    header = {"task_id": task_id, "event": name, "attributes": {}}
    return json.dumps({"header": header, "payload": payload or {}}, ensure_ascii=False)


def _failed_event(task_id: str, code: str, message: str) -> str:
    header = {
        "task_id": task_id,
        "event": "task-failed",
        "error_code": code,
        "error_message": message,
        "attributes": {},
    }
    return json.dumps({"header": header, "payload": {}}, ensure_ascii=False)


_FINISH = object()
_FLUSH = object()


class TtsTask:
    """One CosyVoice task: texts in, sentence events and binary audio frames out."""

    def __init__(
        self,
        connection: Connection,
        task_id: str,
        voice: str,
        parameters: dict[str, Any],
        fault: str = "ok",
        hold: float = 0.0,
    ) -> None:
        self.connection = connection
        self.task_id = task_id
        self.voice = voice
        self.fault = fault
        self.hold = hold
        self.failed = False
        audio_format = str(parameters.get("format") or "mp3").lower()
        self.audio_format = "mp3" if audio_format == "default" else audio_format
        self.sample_rate = int(parameters.get("sample_rate") or 0) or DEFAULT_TTS_SAMPLE_RATE
        self.rate = float(parameters.get("rate") or 1.0)
        self.pitch = float(parameters.get("pitch") or 1.0)
        volume = parameters.get("volume")
        self.volume = float(50 if volume is None else volume)
        self.cancelled = False
        self.texts: list[str] = []
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._sentence_index = 0
        self._characters = 0
        self.first_sent = False
        self.worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.worker = asyncio.create_task(self._run())

    def feed(self, text: str) -> None:
        self.texts.append(text)
        self._queue.put_nowait(text)

    def flush(self) -> None:
        self._queue.put_nowait(_FLUSH)

    def finish(self, cancel: bool) -> None:
        self.cancelled = self.cancelled or cancel
        self._queue.put_nowait(_FINISH)

    async def _run(self) -> None:
        ws = self.connection.ws
        try:
            encoder = AudioEncoder(self.audio_format, self.sample_rate)
            pending = ""
            while True:
                item = await self._queue.get()
                if item is _FINISH:
                    break
                if item is _FLUSH:
                    sentences, pending = split_sentences(pending, final=True)
                else:
                    sentences, pending = split_sentences(pending + item, final=False)
                for sentence in sentences:
                    await self._speak(encoder, sentence)
            sentences, _ = split_sentences(pending, final=True)
            for sentence in sentences:
                await self._speak(encoder, sentence)
            tail = encoder.close()
            if tail and not self.cancelled:
                await ws.send_bytes(tail)
        except (ConnectionError, RuntimeError) as exc:
            log.info("tts task %s stopped: %s", self.task_id, exc)
        except Exception:
            log.exception("tts task %s broke; finishing it anyway", self.task_id)
        finally:
            self.connection.state.last_input["tts"] = "".join(self.texts)
            self.connection.tasks.pop(self.task_id, None)
            self.connection.ended.add(self.task_id)
            if not ws.closed and not self.failed:
                usage = {"characters": self._characters}
                await ws.send_str(
                    _event(self.task_id, "task-finished", {"output": {}, "usage": usage})
                )

    async def _speak(self, encoder: AudioEncoder, sentence: str) -> None:
        if self.cancelled:
            return
        ws = self.connection.ws
        delay = self.connection.state.options.frame_delay
        index = self._sentence_index
        self._sentence_index += 1
        self._characters += len(sentence.strip())
        usage = {"characters": self._characters}

        def sentence_event(kind: str) -> str:
            output = {
                "type": kind,
                "sentence": {"index": index, "words": []},
                "original_text": sentence,
            }
            return _event(self.task_id, "result-generated", {"output": output, "usage": usage})

        await ws.send_str(sentence_event("sentence-begin"))
        samples = synthesize_speech(
            sentence, self.sample_rate, self.rate, self.pitch, self.volume, self.voice
        )
        audio = encoder.encode(samples)
        frames = max(3, math.ceil(len(audio) / 8192))
        step = max(1, math.ceil(len(audio) / frames))
        options = self.connection.state.options
        if options.tts_pace > 0:
            # Each frame as long after the last as the audio it carries lasts.
            delay = len(samples) / self.sample_rate / frames / options.tts_pace
        if not self.first_sent and options.tts_first_packet > 0:
            await asyncio.sleep(options.tts_first_packet)
        self.first_sent = True
        for start in range(0, len(audio), step):
            if self.cancelled:
                return
            if self.fault == "slow_first_byte":
                self.fault = "ok"
                await asyncio.sleep(self.hold)
            if start > 0 and self.fault in ("mid_stream", "stall"):
                await self._break_off()
                return
            await ws.send_bytes(audio[start : start + step])
            await ws.send_str(sentence_event("sentence-synthesis"))
            await asyncio.sleep(delay)
        await ws.send_str(sentence_event("sentence-end"))

    async def _break_off(self) -> None:
        """The injected mid-stream fault: fail the task, or go silent for ``hold`` s."""
        self.cancelled = True
        if self.fault == "stall":
            await asyncio.sleep(self.hold)
            self.failed = True
            return
        self.failed = True
        self.connection.ended.add(self.task_id)
        await self.connection.ws.send_str(
            _failed_event(self.task_id, "InternalError", "synthesis failed mid-stream for test"))


class AsrTask:
    """One Paraformer realtime task: binary audio in, sentences out on finish.

    While audio streams in, as the real service does for a live microphone, every
    ``INTERIM_SECONDS`` of it brings an interim result: the sentence so far (a growing
    prefix of the transcript, one character per ``INTERIM_SECONDS``), not yet ended and
    without an end time, which ``Recognition.call`` ignores and a streaming callback sees.
    The transcript is the learnt phrase found in the audio (``FakeState.learn``), else
    ``asr_text``. Every result leaves ``asr_delay`` seconds after the audio it is about.
    """

    def __init__(self, connection: Connection, task_id: str, parameters: dict[str, Any],
                 fault: str = "ok", hold: float = 0.0) -> None:
        self.connection = connection
        self.task_id = task_id
        self.fault = fault
        self.hold = hold
        self.sample_rate = int(parameters.get("sample_rate") or 16000)
        self.audio_format = str(parameters.get("format") or "pcm").lower()
        self.audio = bytearray()
        self.interims = 0
        self.heard: str | None = None
        self._outbox: asyncio.Queue[tuple[float, str | None]] = asyncio.Queue()
        self._sender = asyncio.create_task(self._send_due())
        connection.state.asr_opened(1)
        self._sender.add_done_callback(lambda _: connection.state.asr_opened(-1))

    @property
    def text(self) -> str:
        if self.heard is None and self.connection.state.phrases:
            self.heard = self.connection.state.transcript_of(bytes(self.audio))
        return self.heard or self.connection.state.options.asr_text

    async def _send_due(self) -> None:
        """Send each result once its delay is over, in order; None ends the task."""
        while True:
            due, message = await self._outbox.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if message is None:
                return
            try:
                await self.connection.ws.send_str(message)
            except (ConnectionError, RuntimeError):
                return

    def _later(self, message: str | None) -> None:
        self._outbox.put_nowait(
            (time.monotonic() + self.connection.state.options.asr_delay, message))

    async def add(self, data: bytes) -> None:
        self.audio += data
        if self.fault != "ok" or self.audio_format != "pcm":
            return
        text = self.text
        due = int(len(self.audio) / (2 * self.sample_rate) / INTERIM_SECONDS)
        while self.interims < min(due, len(text) - 1):
            self.interims += 1
            sentence = {"sentence_id": 1, "begin_time": 0, "end_time": None,
                        "text": text[:self.interims], "sentence_end": False, "words": []}
            self._later(_event(self.task_id, "result-generated",
                               {"output": {"sentence": sentence}}))

    def audio_seconds(self) -> tuple[int, float]:
        """Bytes of audio payload received and their duration."""
        data = bytes(self.audio)
        if self.audio_format == "wav":
            data = data[wav_data_offset(data) :]
        elif self.audio_format != "pcm":
            try:
                return len(data), probe_audio_seconds(data)
            except ValueError:
                pass
        return len(data), len(data) / (2 * self.sample_rate)

    async def finish(self) -> None:
        ws = self.connection.ws
        state = self.connection.state
        self.connection.tasks.pop(self.task_id, None)
        size, seconds = self.audio_seconds()
        state.last_input["asr"] = {"audio_bytes": size, "audio_seconds": seconds}
        if self.fault in ("stall", "slow_first_byte"):
            await asyncio.sleep(self.hold)
            if self.fault == "stall":
                self._later(None)
                return
        if self.fault == "mid_stream":
            self._later(None)
            await ws.send_str(_failed_event(self.task_id, "InternalError",
                                            "recognition failed mid-stream for test"))
            return
        if size >= MIN_ASR_BYTES:
            for sentence in transcript_sentences(self.text, seconds):
                payload = {
                    "output": {"sentence": sentence},
                    "usage": {"duration": math.ceil(seconds)},
                }
                self._later(_event(self.task_id, "result-generated", payload))
        self._later(_event(self.task_id, "task-finished", {"output": {}}))
        self._later(None)
        await self._sender


def transcript_sentences(text: str, seconds: float) -> list[dict[str, Any]]:
    """Spread the transcript's sentences over the audio, proportional to their length."""
    sentences, _ = split_sentences(text, final=True)
    total_ms = round(seconds * 1000)
    weights = [max(1, len(s.strip())) for s in sentences]
    result = []
    begin = 0
    done = 0
    for index, (sentence, weight) in enumerate(zip(sentences, weights, strict=True)):
        done += weight
        end = total_ms * done // sum(weights)
        chars = [ch for ch in sentence.strip() if not _is_punctuation(ch)]
        words = []
        for i, ch in enumerate(chars):
            word_begin = begin + (end - begin) * i // len(chars)
            word_end = begin + (end - begin) * (i + 1) // len(chars)
            words.append(
                {
                    "begin_time": word_begin,
                    "end_time": word_end,
                    "text": ch,
                    "punctuation": "",
                }
            )
        result.append(
            {
                "sentence_id": index + 1,
                "begin_time": begin,
                "end_time": end,
                "text": sentence.strip(),
                "sentence_end": True,
                "words": words,
            }
        )
        begin = end
    return result


class Connection:
    """One websocket: routes run/continue/finish actions and binary frames to tasks."""

    def __init__(self, state: FakeState, ws: web.WebSocketResponse) -> None:
        self.state = state
        self.ws = ws
        self.tasks: dict[str, TtsTask | AsrTask] = {}
        self.ended: set[str] = set()
        self.asr: AsrTask | None = None
        self._timers: set[asyncio.Task[None]] = set()

    async def handle_text(self, text: str) -> None:
        try:
            message = json.loads(text)
            header = message["header"]
            action = header["action"]
            task_id = str(header["task_id"])
        except (json.JSONDecodeError, KeyError, TypeError):
            log.warning("ignoring malformed message: %.200s", text)
            return
        payload = message.get("payload") or {}
        task_input = payload.get("input") or {}
        if action == "run-task":
            await self._run_task(task_id, message, payload)
            return
        if task_id in self.ended:
            return
        task = self.tasks.get(task_id)
        if task is None:
            await self.ws.send_str(_failed_event(task_id, "InvalidParameter", "task not found"))
            return
        if action == "continue-task" and isinstance(task, TtsTask):
            if task_input.get("flush"):
                task.flush()
            if isinstance(task_input.get("text"), str):
                task.feed(task_input["text"])
        elif action == "finish-task":
            if isinstance(task, TtsTask):
                task.finish(cancel=task_input.get("directive") == "cancel")
            else:
                self.ended.add(task_id)
                await task.finish()

    async def handle_binary(self, data: bytes) -> None:
        if self.asr is not None and self.asr.task_id in self.tasks:
            await self.asr.add(data)

    async def _run_task(self, task_id: str, message: dict[str, Any], payload: dict) -> None:
        task_name = payload.get("task")
        kind = {"tts": "tts", "asr": "asr"}.get(task_name)
        if kind is None:
            await self._fail(task_id, "InvalidParameter", f"unsupported task {task_name!r}")
            return
        fault = self.state.record(kind, message)
        if fault == "timeout":
            self.ended.add(task_id)
            timer = asyncio.create_task(self._expire(task_id, self.state.hold()))
            self._timers.add(timer)
            timer.add_done_callback(self._timers.discard)
            return
        if fault in FAULT_ERRORS:
            await self._fail(task_id, *FAULT_ERRORS[fault][1:])
            return
        parameters = payload.get("parameters") or {}
        model = str(payload.get("model") or "")
        if kind == "asr":
            self.asr = AsrTask(self, task_id, parameters, fault, self.state.hold())
            self.tasks[task_id] = self.asr
            await self.ws.send_str(_event(task_id, "task-started"))
            return
        problem = self._tts_problem(model, parameters)
        if problem is not None:
            await self._fail(task_id, "InvalidParameter", problem)
            return
        task = TtsTask(self, task_id, str(parameters["voice"]), parameters, fault,
                       self.state.hold())
        self.tasks[task_id] = task
        await self.ws.send_str(_event(task_id, "task-started"))
        task.start()
        text = (payload.get("input") or {}).get("text")
        if isinstance(text, str):
            task.feed(text)

    def _tts_problem(self, model: str, parameters: dict[str, Any]) -> str | None:
        voice_id = parameters.get("voice")
        if not isinstance(voice_id, str) or not voice_id:
            return "voice is required"
        audio_format = str(parameters.get("format") or "mp3").lower()
        if audio_format not in ("default", "pcm", *ENCODINGS):
            return f"format {audio_format!r} is not supported"
        if not voice_id.startswith("cosyvoice-"):
            return None
        voice = self.state.voices.get(voice_id)
        if voice is None:
            return f"voice {voice_id} does not exist"
        if voice.target_model != model:
            return f"voice {voice_id} was created for {voice.target_model}, not {model}"
        if voice.status != "OK":
            return f"voice {voice_id} is not ready (status {voice.status})"
        return None

    async def _fail(self, task_id: str, code: str, message: str) -> None:
        self.ended.add(task_id)
        await self.ws.send_str(_failed_event(task_id, code, message))

    async def _expire(self, task_id: str, hold: float) -> None:
        await asyncio.sleep(hold)
        if not self.ws.closed:
            await self.ws.send_str(_failed_event(task_id, "ResponseTimeout", "task timed out"))

    async def close(self) -> None:
        pending = [t.worker for t in self.tasks.values() if isinstance(t, TtsTask) and t.worker]
        pending += [t._sender for t in self.tasks.values() if isinstance(t, AsrTask)]
        for job in [*pending, *self._timers]:
            job.cancel()
        await asyncio.gather(*pending, *self._timers, return_exceptions=True)


async def handle_websocket(request: web.Request) -> web.WebSocketResponse:
    """The inference websocket shared by CosyVoice and Paraformer."""
    state = request.app[STATE]
    if state.faults.mode == "bad_key" and state.faults.applies_to(("tts", "asr")):
        state.faults.take(next(iter(sorted(state.faults.kinds or {"tts"}))))
        state.unauthorized += 1
        return error_response(401, "InvalidApiKey", "Invalid API-key provided.")
    ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
    await ws.prepare(request)
    connection = Connection(request.app[STATE], ws)
    try:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                await connection.handle_text(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await connection.handle_binary(message.data)
    except ConnectionError as exc:
        log.info("websocket closed: %s", exc)
    finally:
        await connection.close()
    return ws


def build_app(options: FakeOptions) -> web.Application:
    """The aiohttp application; exposed so it can also be served in-process."""
    app = web.Application(middlewares=[auth_middleware], client_max_size=MAX_FETCH_BYTES)
    app[STATE] = FakeState(options)
    services = f"{HTTP_PREFIX}/services"
    app.router.add_post(f"{services}/audio/tts/customization", handle_customization)
    app.router.add_post(f"{services}/aigc/text-generation/generation", handle_generation)
    app.router.add_post(f"{services}/aigc/multimodal-generation/generation", handle_multimodal)
    app.router.add_get(WS_PATH, handle_websocket)
    app.router.add_get(f"{WS_PATH}/", handle_websocket)
    app.router.add_post("/__control", handle_control)
    app.router.add_get("/__stats", handle_stats)
    app.router.add_post("/__reset", handle_reset)
    return app


def parse_args(argv: list[str] | None = None) -> tuple[FakeOptions, str, int]:
    """Options, host and port from the command line; flags mirror ``FakeOptions``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    for option in fields(FakeOptions):
        parser.add_argument(
            _flag(option.name),
            type=float if isinstance(option.default, float) else str,
            default=option.default,
            help=option.metadata["help"],
        )
    args = parser.parse_args(argv)
    options = FakeOptions(
        **{option.name: getattr(args, option.name) for option in fields(FakeOptions)}
    )
    return options, args.host, args.port


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m tests.fakes.fake_dashscope``; logs go to stderr."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    options, host, port = parse_args(argv)
    asyncio.run(serve(build_app(options), host, port))


# --------------------------------------------------------------------------
# Running it from tests


class FakeDashScope(FakeProcess):
    """A running fake server subprocess and the URLs to give the SDK."""

    def __init__(
        self, process: subprocess.Popen[bytes], port: int, api_key: str, log_path: Path
    ) -> None:
        super().__init__(process, port, api_key, log_path)
        self.base_url = self.root_url
        self.http_url = f"{self.base_url}{HTTP_PREFIX}"
        self.ws_url = f"ws://127.0.0.1:{port}{WS_PATH}"

    def control(
        self, mode: str, count: int | None = None, kinds: list[str] | None = None,
        hold: float | None = None,
    ) -> dict[str, Any]:
        """Make the next ``count`` model calls (of ``kinds``, default all) behave as ``mode``.

        ``hold`` is how long ``timeout``, ``stall`` and ``slow_first_byte`` wait.
        """
        body: dict[str, Any] = {"mode": mode, "count": count, "kinds": kinds}
        if hold is not None:
            body["hold"] = hold
        return self._call("POST", "/__control", body)

    def deploy_in(self, seconds: float) -> None:
        """Keep voices cloned from now on DEPLOYING for ``seconds``."""
        self._call("POST", "/__control", {"mode": "ok", "deploy_seconds": seconds})

    def teach(self, phrases: dict[str, bytes]) -> None:
        """Recognise each text of ``phrases`` in audio holding its 16 kHz PCM (the rest
        is heard as ``asr_text``); clears fault modes, as every control call does."""
        self._call("POST", "/__control", {"mode": "ok", "phrases": [
            {"text": text, "pcm": base64.b64encode(pcm).decode("ascii")}
            for text, pcm in phrases.items()]})


def start_fake_dashscope(
    *, port: int = 0, startup_timeout: float = 30.0, **options: Any
) -> FakeDashScope:
    """Start the fake in a subprocess and wait until it listens.

    ``options`` are the fields of ``FakeOptions``. A subprocess rather than a
    thread: under eventlet monkey-patching a server thread in the test process
    would be green and stall with the app.
    """
    settings = FakeOptions(**options)
    process, port, log_path = launch(
        "tests.fakes.fake_dashscope", ["--port", str(port), *settings.to_args()],
        startup_timeout)
    return FakeDashScope(process, port, settings.api_key, log_path)


if __name__ == "__main__":
    main()
