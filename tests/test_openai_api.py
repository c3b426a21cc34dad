"""The official ``openai`` package against ``wsgi.py`` under eventlet, with an API key:
speech in every format (decoded and measured), streamed speech, transcriptions in every
format (word and segment times checked, subtitles parsed), translations, the requests
Open WebUI sends, and keys that run out or are revoked."""

from __future__ import annotations

import base64
import io
import json
import statistics
import time
from collections.abc import Iterator
from typing import Any

import av
import openai
import pytest
import requests
import srt
import webvtt

from tests.helpers.openai_accounts import Account, sign_up
from tests.helpers.web_server import LiveServer

SENTENCE = "The quick brown fox jumps over the lazy dog near the quiet river bank."
STORY = ("Hi. The morning was bright and cold when we left the village. We walked along "
         "the river for many hours, talking about everything and nothing. By noon the sun "
         "was high, and we stopped to eat beside an old stone bridge. Later the clouds "
         "came in from the west, and we hurried home before the rain began to fall.")


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer().start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def account(server: LiveServer) -> Account:
    return sign_up(server.url)


@pytest.fixture(scope="module")
def client(server: LiveServer, account: Account) -> openai.OpenAI:
    return openai.OpenAI(api_key=account.key, base_url=f"{server.url}/v1", max_retries=0,
                         timeout=120)


def decoded_seconds(data: bytes) -> tuple[str, int, float]:
    """Container name, sample rate and length of encoded audio, by decoding every frame."""
    with av.open(io.BytesIO(data)) as container:
        samples = rate = 0
        for frame in container.decode(audio=0):
            samples += frame.samples
            rate = frame.sample_rate
        return container.format.name, rate, samples / rate


@pytest.mark.parametrize("fmt,container", [("mp3", "mp3"), ("opus", "ogg"), ("aac", "aac"),
                                           ("flac", "flac"), ("wav", "wav"), ("pcm", None)])
def test_speech_in_every_format(client: openai.OpenAI, fmt: str, container: str | None) -> None:
    data = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE,
                                      response_format=fmt).content
    if container is None:
        seconds = len(data) / 2 / 24000  # OpenAI's raw PCM: 24 kHz, 16-bit, mono
        assert len(data) % 2 == 0
    else:
        name, rate, seconds = decoded_seconds(data)
        assert name == container and rate > 0
    # Fourteen words at a natural pace: between two and eight seconds whatever the codec.
    assert 2.0 < seconds < 8.0, (fmt, seconds)


def test_every_format_is_the_same_speech(client: openai.OpenAI) -> None:
    lengths = {fmt: decoded_seconds(client.audio.speech.create(
        model="tts-1", voice="onyx", input=SENTENCE, response_format=fmt).content)[2]
        for fmt in ("mp3", "wav", "flac")}
    pcm = client.audio.speech.create(model="tts-1", voice="onyx", input=SENTENCE,
                                     response_format="pcm").content
    lengths["pcm"] = len(pcm) / 2 / 24000
    # Each format is a separate synthesis, and Piper's durations vary a little from one
    # synthesis to the next (its duration predictor draws noise; 0.16 s seen on 4 s).
    assert max(lengths.values()) - min(lengths.values()) < 0.3, lengths


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus"])
def test_streamed_speech_arrives_before_synthesis_ends(client: openai.OpenAI, fmt: str) -> None:
    """The first bytes come while later sentences are still being synthesized."""
    started = time.perf_counter()
    arrivals: list[float] = []
    body = bytearray()
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="echo", input=STORY, response_format=fmt) as response:
        for chunk in response.iter_bytes():
            arrivals.append(time.perf_counter() - started)
            body += chunk
    first, last = arrivals[0], arrivals[-1]
    assert first < last / 2, (first, last)
    assert decoded_seconds(bytes(body))[2] > 10
    if fmt == "wav":
        # A streamed WAV announces an unknown length; players (FFmpeg here) accept it.
        assert response.headers["content-type"].startswith("audio/wav")
        assert body[:4] == b"RIFF" and int.from_bytes(body[40:44], "little") >= 0x7FFFFFFF


def test_speech_as_server_sent_events(server: LiveServer, account: Account) -> None:
    response = requests.post(f"{server.url}/v1/audio/speech", headers={
        "Authorization": f"Bearer {account.key}"}, json={
        "model": "tts-1", "voice": "nova", "input": SENTENCE, "stream_format": "sse"},
        stream=True, timeout=60)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in response.iter_lines(decode_unicode=True)
              if line.startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    assert events[-1]["type"] == "speech.audio.done" and events[-1]["usage"]["input_tokens"]
    mp3 = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert 2.0 < decoded_seconds(mp3)[2] < 8.0


def test_instructions_change_how_it_speaks(client: openai.OpenAI) -> None:
    def seconds(instructions: str | None) -> float:
        # Piper draws each sound's length at random: one reading varies by a few percent,
        # so each side is the median of three.
        extra = {"instructions": instructions} if instructions else {}
        return statistics.median(decoded_seconds(client.audio.speech.create(
            model="gpt-4o-mini-tts", voice="coral", input=SENTENCE, response_format="wav",
            **extra).content)[2] for _ in range(3))

    plain, calm = seconds(None), seconds("Speak in a calm, soothing voice.")
    assert calm > plain * 1.05, (plain, calm)


def test_any_voice_the_caller_may_use(client: openai.OpenAI) -> None:
    voices = {v["id"] for v in client.get("/audio/voices", cast_to=dict[str, Any])["voices"]}
    assert {"alloy", "espeak:en-gb", "piper:en_US-joe-medium"} <= voices
    data = client.audio.speech.create(model="espeak", voice="espeak:en-gb", input=SENTENCE,
                                      response_format="mp3").content
    assert decoded_seconds(data)[2] > 2
    with pytest.raises(openai.BadRequestError) as refused:
        client.audio.speech.create(model="tts-1", voice="nobody", input="Hello.")
    assert refused.value.code == "invalid_voice_type"


@pytest.fixture(scope="module")
def speech_file(speech_wav: bytes) -> tuple[bytes, float]:
    return speech_wav, decoded_seconds(speech_wav)[2]


def _file(speech_file: tuple[bytes, float]) -> tuple[str, bytes, str]:
    return ("speech.wav", speech_file[0], "audio/wav")


def test_transcription_json_and_text(client: openai.OpenAI,
                                     speech_file: tuple[bytes, float]) -> None:
    result = client.audio.transcriptions.create(model="whisper-1", file=_file(speech_file))
    assert "voice library" in result.text.lower()
    text = client.audio.transcriptions.create(model="whisper-1", file=_file(speech_file),
                                              response_format="text")
    assert isinstance(text, str) and text.strip() == result.text


def test_transcription_verbose_json_with_words_and_segments(
        client: openai.OpenAI, speech_file: tuple[bytes, float]) -> None:
    duration = speech_file[1]
    result = client.audio.transcriptions.create(
        model="whisper-1", file=_file(speech_file), response_format="verbose_json",
        timestamp_granularities=["word", "segment"], language="en")
    assert result.language == "english" and abs(result.duration - duration) < 0.05
    words, segments = result.words, result.segments
    assert len(words) >= 20 and len(segments) >= 1
    for items in (words, segments):
        starts = [item.start for item in items]
        assert starts == sorted(starts)
        assert all(0 <= item.start <= item.end <= duration for item in items)
    assert "library" in {w.word.strip(".,").lower() for w in words}
    assert " ".join(s.text for s in segments) == result.text
    only_words = client.audio.transcriptions.create(
        model="whisper-1", file=_file(speech_file), response_format="verbose_json",
        timestamp_granularities=["word"])
    assert only_words.words and only_words.segments is None


def test_transcription_subtitles_parse(client: openai.OpenAI,
                                       speech_file: tuple[bytes, float]) -> None:
    as_srt = client.audio.transcriptions.create(model="whisper-1", file=_file(speech_file),
                                                response_format="srt")
    cues = list(srt.parse(as_srt))
    assert cues and cues[0].start.total_seconds() >= 0
    assert cues[-1].end.total_seconds() <= speech_file[1]
    assert [c.start for c in cues] == sorted(c.start for c in cues)
    as_vtt = client.audio.transcriptions.create(model="whisper-1", file=_file(speech_file),
                                                response_format="vtt")
    captions = webvtt.from_string(as_vtt).captions
    assert [c.text for c in captions] == [c.content for c in cues]
    assert captions[-1].end_in_seconds <= speech_file[1] + 0.001


def test_transcription_streamed_as_events(client: openai.OpenAI,
                                          speech_file: tuple[bytes, float]) -> None:
    events = list(client.audio.transcriptions.create(model="whisper-1", file=_file(speech_file),
                                                     stream=True))
    assert [e.type for e in events[:-1]] == ["transcript.text.delta"] * (len(events) - 1)
    assert events[-1].type == "transcript.text.done"
    assert "".join(e.delta for e in events[:-1]) == events[-1].text
    assert "voice library" in events[-1].text.lower()


def test_translation_to_english(client: openai.OpenAI,
                                speech_file: tuple[bytes, float]) -> None:
    result = client.audio.translations.create(model="whisper-1", file=_file(speech_file))
    assert "voice" in result.text.lower()
    as_srt = client.audio.translations.create(model="whisper-1", file=_file(speech_file),
                                              response_format="srt")
    assert list(srt.parse(as_srt))


def test_what_open_webui_sends(server: LiveServer, account: Account,
                               speech_file: tuple[bytes, float]) -> None:
    """Open WebUI's OpenAI audio engine: voice and model lists, JSON speech, multipart STT."""
    headers = {"Authorization": f"Bearer {account.key}"}
    voices = requests.get(f"{server.url}/v1/audio/voices", headers=headers, timeout=10).json()
    assert all(set(v) == {"id", "name"} for v in voices["voices"])
    models = requests.get(f"{server.url}/v1/audio/models", headers=headers, timeout=10).json()
    assert {"tts-1", "tts-1-hd"} <= {m["id"] for m in models["models"]}
    speech = requests.post(f"{server.url}/v1/audio/speech", headers=headers, json={
        "model": "tts-1", "input": "Hello from Open WebUI.", "voice": "alloy"}, timeout=60)
    assert speech.headers["content-type"] == "audio/mpeg" and decoded_seconds(speech.content)[2]
    heard = requests.post(f"{server.url}/v1/audio/transcriptions", headers=headers,
                          files={"file": ("recording.wav", speech_file[0], "audio/wav")},
                          data={"model": "whisper-1", "language": "en"}, timeout=60).json()
    assert "voice library" in heard["text"].lower()


def test_key_quota_and_revocation(server: LiveServer, account: Account) -> None:
    limited = account.new_key(monthly_characters=len(SENTENCE) + 5)
    sdk = openai.OpenAI(api_key=limited["key"], base_url=f"{server.url}/v1", max_retries=0)
    assert sdk.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE).content
    with pytest.raises(openai.RateLimitError) as exhausted:
        sdk.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE)
    assert exhausted.value.code == "quota_exceeded"
    requests.delete(f"{server.url}/api/keys/{limited['key_id']}", headers=account.jwt_headers,
                    timeout=10).raise_for_status()
    with pytest.raises(openai.AuthenticationError):
        sdk.models.list()
    stranger = openai.OpenAI(api_key="tsk-never-issued", base_url=f"{server.url}/v1",
                             max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.audio.speech.create(model="tts-1", voice="alloy", input="Hello.")


def test_models_list(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "whisper-1", "piper"} <= ids


def test_concurrent_calls_share_the_quota_exactly(server: LiveServer, account: Account,
                                                  speech_file: tuple[bytes, float]) -> None:
    """Six speech requests at once against a quota for three, beside a transcription:
    exactly three are spoken, the rest refused, and the count is exact."""
    from concurrent.futures import ThreadPoolExecutor

    text = "Three at a time."
    limited = account.new_key(monthly_characters=3 * len(text))
    sdk = openai.OpenAI(api_key=limited["key"], base_url=f"{server.url}/v1", max_retries=0,
                        timeout=120)
    other = openai.OpenAI(api_key=account.key, base_url=f"{server.url}/v1", max_retries=0,
                          timeout=120)

    def speak(_: int) -> str:
        try:
            data = sdk.audio.speech.create(model="tts-1", voice="alloy", input=text,
                                           response_format="wav").content
        except openai.RateLimitError:
            return "refused"
        return "spoken" if decoded_seconds(data)[2] > 0.5 else "empty"

    with ThreadPoolExecutor(max_workers=7) as pool:
        heard = pool.submit(other.audio.transcriptions.create, model="whisper-1",
                            file=_file(speech_file))
        outcomes = sorted(pool.map(speak, range(6)))
        assert "voice library" in heard.result().text.lower()
    assert outcomes == ["refused"] * 3 + ["spoken"] * 3
    keys = requests.get(f"{server.url}/api/keys", headers=account.jwt_headers, timeout=10)
    usage = next(k for k in keys.json()["data"]["list"] if k["key_id"] == limited["key_id"])
    assert usage["usage"]["characters"] == 3 * len(text)
