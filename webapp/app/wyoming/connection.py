"""One Wyoming connection: events in, events out, as Home Assistant exchanges them.

- ``describe`` → ``info``: the recognisers, the voices (built-in, public, and the
  cloned voices of ``WYOMING_USER``) and, with ``WYOMING_ROLE``, a role as a
  conversation agent;
- ``transcribe``, ``audio-start`` / ``audio-chunk`` / ``audio-stop`` → ``transcript-start``,
  a ``transcript-chunk`` per segment as the recogniser finds it, ``transcript``,
  ``transcript-stop``;
- ``synthesize`` → ``audio-start`` / ``audio-chunk`` / ``audio-stop``; streamed text
  (``synthesize-start`` / ``synthesize-chunk`` / ``synthesize-stop``) is spoken sentence by
  sentence as it arrives, one ``audio-start`` … ``audio-stop`` for the whole text, then
  ``synthesize-stopped``. The plain ``synthesize`` sent beside a stream for older
  servers is ignored, as Home Assistant expects;
- ``transcript`` (to a conversation agent) → ``handled`` with the role's reply, the
  conversation kept in ``context.session_id``; ``ping`` → ``pong``.

A request that fails is answered with ``error`` and the connection stays usable.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, BinaryIO

from flask import Flask
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, read_event, write_event
from wyoming.handle import Handled, NotHandled
from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Describe,
    HandleModel,
    HandleProgram,
    Info,
    TtsProgram,
    TtsVoice,
)
from wyoming.ping import Ping, Pong
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)

from webapp.app import audio
from webapp.app.audio import SPEECH_SAMPLE_RATE
from webapp.app.audio.telephony import to_mono
from webapp.app.errors import ApiError, as_error
from webapp.app.extensions import db
from webapp.app.sentences import SentenceCutter
from webapp.app.services.conversation import assistant_agent
from webapp.app.services.speech import assistant_speech

log = logging.getLogger(__name__)

_ATTRIBUTION = Attribution(name="Tingshuo", url="https://github.com/")
_VERSION = "1.0"


def _info() -> Info:
    found = assistant_speech.catalogue()
    asr = [AsrProgram(
        name="tingshuo", description="Tingshuo speech recognition", attribution=_ATTRIBUTION,
        installed=True, version=_VERSION, supports_transcript_streaming=True,
        models=[AsrModel(name=r.name, description=r.description, attribution=_ATTRIBUTION,
                         installed=True, version=_VERSION, languages=r.languages)
                for r in found.recognisers])]
    tts = [TtsProgram(
        name="tingshuo", description="Tingshuo voices", attribution=_ATTRIBUTION,
        installed=True, version=_VERSION, supports_synthesize_streaming=True,
        voices=[TtsVoice(name=v.name, description=v.description, attribution=_ATTRIBUTION,
                         installed=True, version=_VERSION, languages=v.languages)
                for v in found.voices])]
    handle = []
    if found.agent is not None:
        agent = found.agent
        handle = [HandleProgram(
            name="tingshuo", description=f"Tingshuo role {agent.description}",
            attribution=_ATTRIBUTION, installed=True, version=_VERSION,
            models=[HandleModel(name=agent.name, description=agent.description,
                                attribution=_ATTRIBUTION, installed=True, version=_VERSION,
                                languages=agent.languages)])]
    return Info(asr=asr, tts=tts, handle=handle)


class _Command:
    """A spoken command arriving: its audio, as 16 kHz mono PCM, and how to read it."""

    def __init__(self, max_seconds: float) -> None:
        self.language: str | None = None
        self.recogniser: str | None = None
        self.pcm = bytearray()
        self.channels = 1
        self.resampler: audio.StreamResampler | None = None
        self.max_bytes = int(max_seconds * SPEECH_SAMPLE_RATE) * 2

    def start(self, start: AudioStart) -> None:
        if start.width != 2:
            raise ApiError(400, "bad_request", "BAD_AUDIO",
                           {"detail": "audio must be 16-bit (width 2)"})
        self.pcm = bytearray()
        self.channels = start.channels
        self.resampler = audio.StreamResampler(start.rate, SPEECH_SAMPLE_RATE)

    def add(self, chunk: AudioChunk) -> None:
        if self.resampler is None:
            self.start(AudioStart(rate=chunk.rate, width=chunk.width, channels=chunk.channels))
        assert self.resampler is not None
        self.pcm += self.resampler.write(to_mono(chunk.audio, self.channels))
        if len(self.pcm) > self.max_bytes:
            self.pcm = bytearray()
            raise ApiError(400, "audio_too_long", "AUDIO_TOO_LONG",
                           {"limit": f"{self.max_bytes / 2 / SPEECH_SAMPLE_RATE:g}"})


class _Speaker:
    """One reply being spoken: a single ``audio-start`` … ``audio-stop`` around every
    sentence of it, at the rate of its first audio."""

    def __init__(self, send: Any, name: str | None, language: str | None) -> None:
        self.send, self.name, self.language = send, name, language
        self.rate: int | None = None

    def say(self, text: str) -> None:
        voice = assistant_speech.choose_voice(self.name, self.language, text)
        for chunk in assistant_speech.speak(voice, text):
            if self.rate is None:
                self.rate = chunk.sample_rate
                self.send(AudioStart(rate=self.rate, width=2, channels=1).event())
            pcm = audio.resample(chunk.pcm, chunk.sample_rate, self.rate)
            self.send(AudioChunk(rate=self.rate, width=2, channels=1, audio=pcm).event())

    def finish(self) -> None:
        if self.rate is None:  # nothing was said: still a well-formed (empty) stream
            self.rate = SPEECH_SAMPLE_RATE
            self.send(AudioStart(rate=self.rate, width=2, channels=1).event())
        self.send(AudioStop().event())


class Connection:
    """The state of one client's exchange; ``handle`` answers one event."""

    def __init__(self, writer: BinaryIO, max_seconds: float) -> None:
        self.writer = writer
        self.command = _Command(max_seconds)
        self.stream: _Speaker | None = None
        self.cutter: SentenceCutter | None = None

    def send(self, event: Event) -> None:
        write_event(event, self.writer)

    def handle(self, event: Event) -> None:
        kind = event.type
        if Describe.is_type(kind):
            self.send(_info().event())
        elif Ping.is_type(kind):
            self.send(Pong(text=Ping.from_event(event).text).event())
        elif Transcribe.is_type(kind):
            request = Transcribe.from_event(event)
            self.command.language, self.command.recogniser = request.language, request.name
        elif AudioStart.is_type(kind):
            self.command.start(AudioStart.from_event(event))
        elif AudioChunk.is_type(kind):
            self.command.add(AudioChunk.from_event(event))
        elif AudioStop.is_type(kind):
            self._transcribe()
        elif Synthesize.is_type(kind):
            if self.stream is None:  # beside a stream it only repeats the streamed text
                request = Synthesize.from_event(event)
                voice = request.voice
                speaker = _Speaker(self.send, voice.name if voice else None,
                                   voice.language if voice else None)
                speaker.say(request.text)
                speaker.finish()
        elif SynthesizeStart.is_type(kind):
            voice = SynthesizeStart.from_event(event).voice
            self.stream = _Speaker(self.send, voice.name if voice else None,
                                   voice.language if voice else None)
            self.cutter = SentenceCutter()
        elif SynthesizeChunk.is_type(kind):
            if self.stream is not None and self.cutter is not None:
                for sentence in self.cutter.feed(SynthesizeChunk.from_event(event).text):
                    self.stream.say(sentence)
        elif SynthesizeStop.is_type(kind):
            self._end_stream()
        elif Transcript.is_type(kind):
            self._converse(Transcript.from_event(event))

    def _transcribe(self) -> None:
        command, pcm = self.command, bytes(self.command.pcm)
        self.command = _Command(command.max_bytes / 2 / SPEECH_SAMPLE_RATE)
        language = command.language
        self.send(TranscriptStart(language=language).event())
        parts: list[str] = []
        if pcm:
            for segment in assistant_speech.transcribe(pcm, language, command.recogniser):
                text = segment.text.strip()
                if not text:
                    continue
                spaced = parts and text[0].isascii()
                self.send(TranscriptChunk(text=(" " if spaced else "") + text).event())
                parts.append((" " if spaced else "") + text)
        self.send(Transcript(text="".join(parts), language=language).event())
        self.send(TranscriptStop().event())

    def _end_stream(self) -> None:
        stream, cutter = self.stream, self.cutter
        self.stream, self.cutter = None, None
        if stream is None or cutter is None:
            return
        for sentence in cutter.flush():
            stream.say(sentence)
        stream.finish()
        self.send(SynthesizeStopped().event())

    def _converse(self, said: Transcript) -> None:
        session_id = (said.context or {}).get("session_id")
        try:
            reply, session_id = assistant_agent.answer(said.text, session_id)
        except ApiError as exc:
            self.send(NotHandled(text=as_error(exc, "en")["error"]).event())
            return
        self.send(Handled(text=reply, context={"session_id": session_id}).event())


def serve(app: Flask, conn: socket.socket) -> None:
    """Answer a client's events until it hangs up."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader, writer = conn.makefile("rb"), conn.makefile("wb")
    connection = Connection(writer, app.config["MAX_CHAT_AUDIO_SECONDS"])
    lang = "en"
    try:
        with app.app_context():
            while (event := read_event(reader)) is not None:
                try:
                    connection.handle(event)
                except (OSError, ConnectionError):
                    raise
                except Exception as exc:  # every failure becomes an error event
                    db.session.rollback()
                    if not isinstance(exc, ApiError):
                        log.exception("Wyoming %s failed", event.type)
                    error = as_error(exc, lang)
                    connection.stream, connection.cutter = None, None
                    connection.send(Error(text=error["error"],
                                          code=error.get("error_code")).event())
                finally:
                    db.session.remove()
    except (OSError, ConnectionError):
        log.info("Wyoming client went away")
    finally:
        for stream in (reader, writer, conn):
            try:
                stream.close()
            except OSError:
                pass
