"""The DashScope engines through the real ``dashscope`` SDK, against the fake server.

Every call goes over the wire to ``tests.fakes.fake_dashscope``; the fake's ``/__stats``
shows what the engines sent, and its fault modes drive the error mapping.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from tests.fakes.fake_dashscope import DEFAULT_ASR_TEXT, FakeDashScope, start_fake_dashscope
from tests.fakes.file_server import serve_files
from tests.helpers.paths import ROOT
from webapp.app import audio
from webapp.app.providers import ProviderRegistry
from webapp.app.providers.base import ChatOptions, ProviderError, SynthesisOptions
from webapp.app.providers.llm.dashscope import QwenChatModel
from webapp.app.providers.stt.dashscope import ParaformerSpeechToText, QwenAudioSpeechToText
from webapp.app.providers.tts.dashscope import (
    CosyVoiceTextToSpeech,
    clone_prefix,
    instruction_for,
    volume_level,
)

REPLY_TO_HELLO = "收到：你好。这是第二句话。这是第三句话！最后一句？"
SENTENCE = "你好，这是一段用来测试流式输出的比较长的句子。"
HELLO = [{"role": "user", "content": "你好"}]


def speech_wav(seconds: float, rate: int = 16000) -> bytes:
    """A voiced tone as WAV, the kind of recording users upload."""
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return audio.encode(audio.float_to_pcm(signal), rate, "wav")


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    """Audio at URLs, as the service's signed storage URLs would serve it to DashScope."""
    with serve_files({"/sample.wav": speech_wav(2.0), "/speech.wav": speech_wav(1.5)}) as url:
        yield url


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDashScope]:
    """Cloned voices deploy for 1 s; the timeout mode holds calls for 3 s."""
    with start_fake_dashscope(deploy_seconds=1.0, frame_delay=0.01, hold_seconds=3.0) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake: FakeDashScope) -> FakeDashScope:
    fake.reset()
    return fake


@pytest.fixture
def config(fake: FakeDashScope) -> dict[str, Any]:
    return {"DASHSCOPE_API_KEY": fake.api_key, "DASHSCOPE_HTTP_BASE_URL": fake.http_url,
            "DASHSCOPE_WEBSOCKET_BASE_URL": fake.ws_url, "DASHSCOPE_TIMEOUT": 10}


def sent_tts_parameters(fake: FakeDashScope) -> dict[str, Any]:
    return fake.stats()["last_request"]["tts"]["payload"]["parameters"]


def sdk_socket_threads() -> int:
    return sum(1 for t in threading.enumerate() if "run_forever" in t.name)


# --------------------------------------------------------------------------
# CosyVoice


def test_registry_builds_each_engine_from_settings(config: dict[str, Any]) -> None:
    registry = ProviderRegistry(config)
    assert isinstance(registry.tts("dashscope"), CosyVoiceTextToSpeech)
    assert isinstance(registry.stt("paraformer"), ParaformerSpeechToText)
    assert isinstance(registry.stt("qwen-audio"), QwenAudioSpeechToText)
    assert isinstance(registry.llm("qwen"), QwenChatModel)
    unset = ProviderRegistry({})
    for kind, name in [("tts", "dashscope"), ("stt", "paraformer"), ("stt", "qwen-audio"),
                       ("llm", "qwen")]:
        assert not unset.is_configured(kind, name)


def test_without_key_calls_are_refused_before_the_network(fake: FakeDashScope) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: list(CosyVoiceTextToSpeech({}).synthesize_sentence("你好。", SynthesisOptions())),
        lambda: CosyVoiceTextToSpeech({}).voice_status("cosyvoice-x-1"),
        lambda: ParaformerSpeechToText({}).transcribe(speech_wav(0.5)),
        lambda: QwenAudioSpeechToText({}).transcribe("http://127.0.0.1/a.wav"),
        lambda: QwenChatModel({}).chat(HELLO, ChatOptions()),
    ]
    for call in calls:
        with pytest.raises(ProviderError) as caught:
            call()
        assert caught.value.kind == "not_configured"
    assert fake.stats()["unauthorized"] == 0


def test_cosyvoice_streams_pcm_with_the_mapped_controls(
    fake: FakeDashScope, config: dict[str, Any]
) -> None:
    tts = CosyVoiceTextToSpeech(config)
    options = SynthesisOptions(voice="longwan_v2", speed=1.5, pitch=0.8, volume=1.4)
    chunks = list(tts.synthesize_sentence(SENTENCE, options))
    assert len(chunks) >= 3
    assert all(c.sample_rate == 22050 and len(c.pcm) % 2 == 0 for c in chunks)
    seconds = audio.pcm_duration(b"".join(c.pcm for c in chunks), 22050)
    expected = len(SENTENCE) * 0.06 / 1.5
    assert seconds == pytest.approx(expected, rel=0.1)
    samples = np.frombuffer(b"".join(c.pcm for c in chunks), dtype="<i2")
    assert np.abs(samples).max() > 1000
    sent = sent_tts_parameters(fake)
    assert (sent["voice"], sent["format"], sent["sample_rate"]) == ("longwan_v2", "pcm", 22050)
    assert (sent["rate"], sent["pitch"], sent["volume"]) == (1.5, 0.8, 70)
    assert "instruction" not in sent
    assert fake.stats()["last_input"]["tts"] == SENTENCE


def test_cosyvoice_sample_rate_setting_and_clamped_controls(
    fake: FakeDashScope, config: dict[str, Any]
) -> None:
    tts = CosyVoiceTextToSpeech({**config, "DASHSCOPE_TTS_SAMPLE_RATE": 16000,
                                 "DASHSCOPE_DEFAULT_VOICE": "dashscope:longshu_v2"})
    assert tts.capabilities.sample_rate == 16000
    chunks = list(tts.synthesize_sentence("你好。", SynthesisOptions(speed=5, pitch=0.1, volume=9)))
    assert {c.sample_rate for c in chunks} == {16000}
    sent = sent_tts_parameters(fake)
    assert sent["voice"] == "longshu_v2"
    assert (sent["sample_rate"], sent["rate"], sent["pitch"], sent["volume"]) == (
        16000, 2.0, 0.5, 100)


def test_volume_emotion_and_prefix_mapping() -> None:
    assert [volume_level(v) for v in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)] == [0, 25, 50, 75, 100, 100]
    assert instruction_for(SynthesisOptions()) is None
    assert instruction_for(SynthesisOptions(emotion="happy")) is None
    assert instruction_for(SynthesisOptions(emotion="neutral", emotion_intensity=1)) is None
    assert instruction_for(SynthesisOptions(emotion="happy", emotion_intensity=0.5)) == (
        "请用开心的语气说话")
    assert instruction_for(SynthesisOptions(emotion="sad", emotion_intensity=0.9)) == (
        "请用非常悲伤的语气说话")
    assert instruction_for(SynthesisOptions(emotion="calm", emotion_intensity=0.1)) == (
        "请用略带平静的语气说话")
    assert instruction_for(SynthesisOptions(emotion="sad", instruction="慢慢地说")) == "慢慢地说"
    assert len(instruction_for(SynthesisOptions(instruction="长" * 300)) or "") == 128
    assert clone_prefix("My Voice 1!") == "myvoice1"
    assert clone_prefix("一个很长的名字abcdefghijk") == "abcdefghi"
    assert clone_prefix("小明") == "voice"


def test_emotion_reaches_cosyvoice_as_an_instruction(
    fake: FakeDashScope, config: dict[str, Any]
) -> None:
    tts = CosyVoiceTextToSpeech(config)
    assert tts.capabilities.emotion
    list(tts.synthesize_sentence("你好。", SynthesisOptions(emotion="happy",
                                                         emotion_intensity=0.5)))
    assert sent_tts_parameters(fake)["instruction"] == "请用开心的语气说话"
    list(tts.synthesize_sentence("你好。", SynthesisOptions(instruction="用激动的语气说")))
    assert sent_tts_parameters(fake)["instruction"] == "用激动的语气说"


def test_closing_the_stream_after_the_first_chunk_cancels_promptly(
    fake: FakeDashScope, config: dict[str, Any]
) -> None:
    baseline = sdk_socket_threads()
    tts = CosyVoiceTextToSpeech(config)
    stream = tts.synthesize_sentence(SENTENCE * 4, SynthesisOptions())
    first = next(stream)
    assert first.pcm
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 1.0
    deadline = time.monotonic() + 3
    while sdk_socket_threads() > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sdk_socket_threads() <= baseline
    assert fake.stats()["calls"]["tts"] == 1


def test_system_voices_are_listed_and_ready(config: dict[str, Any]) -> None:
    tts = CosyVoiceTextToSpeech(config)
    voices = tts.get_voices()
    ids = [v.voice_id for v in voices]
    assert {"longxiaochun_v2", "longwan_v2", "longcheng_v2", "longhua_v2", "longshu_v2",
            "loongbella_v2", "longxiaocheng_v2"} <= set(ids)
    assert len(ids) == len(set(ids))
    assert all(v.provider == "dashscope" and v.gender in ("female", "male") for v in voices)
    assert {v.category for v in voices} >= {"中文", "双语音色"}
    voice = tts.get_voice("longwan_v2")
    assert voice is not None and voice.name == "龙婉"
    assert tts.voice_status("longwan_v2") == "ready"
    described = tts.describe()
    assert described["cloning"] and described["streaming"] and described["configured"]
    assert described["formats"] == ("pcm", "mp3", "wav")


# --------------------------------------------------------------------------
# Voice enrollment


def wait_ready(tts: CosyVoiceTextToSpeech, voice_id: str, seconds: float = 5.0) -> str:
    deadline = time.monotonic() + seconds
    status = tts.voice_status(voice_id)
    while status == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
        status = tts.voice_status(voice_id)
    return status


def test_enrollment_lifecycle(fake: FakeDashScope, config: dict[str, Any], files: str) -> None:
    tts = CosyVoiceTextToSpeech(config)
    voice = tts.add_voice("My Voice 1", f"{files}/sample.wav", labels={"gender": "female"},
                          description="测试")
    assert voice.voice_id.startswith("cosyvoice-myvoice1-")
    assert voice.provider == "dashscope" and voice.name == "My Voice 1"
    assert voice.metadata == {"target_model": "cosyvoice-v2", "prefix": "myvoice1"}
    [stored] = fake.stats()["voices"]
    assert stored["voice_id"] == voice.voice_id
    assert stored["audio_seconds"] == pytest.approx(2.0, abs=0.01)

    assert tts.voice_status(voice.voice_id) == "pending"
    info = tts.get_voice(voice.voice_id)
    assert info is not None and info.metadata["status"] == "pending"
    assert wait_ready(tts, voice.voice_id) == "ready"

    chunks = list(tts.synthesize_sentence("你好。", SynthesisOptions(voice=voice.voice_id)))
    assert chunks and sent_tts_parameters(fake)["voice"] == voice.voice_id

    assert tts.edit_voice(voice.voice_id, {"name": "改名"})
    assert tts.voice_status(voice.voice_id) == "ready"
    assert tts.edit_voice(voice.voice_id, {"url": f"{files}/speech.wav"})
    assert tts.voice_status(voice.voice_id) == "pending"

    assert tts.delete_voice(voice.voice_id)
    assert fake.stats()["voices"] == []
    assert tts.get_voice(voice.voice_id) is None
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        list(tts.synthesize_sentence("你好。", SynthesisOptions(voice=voice.voice_id)))
    # Refused at once by the service, not given up on after DASHSCOPE_TIMEOUT (10 s).
    assert caught.value.kind in ("bad_input", "task_failed")
    assert "does not exist" in caught.value.message
    assert time.monotonic() - started < config["DASHSCOPE_TIMEOUT"] / 2


def test_enrollment_rejects_what_dashscope_cannot_fetch(
    fake: FakeDashScope, config: dict[str, Any], files: str
) -> None:
    tts = CosyVoiceTextToSpeech(config)
    with pytest.raises(ProviderError) as caught:
        tts.add_voice("missing", f"{files}/missing.wav")
    assert caught.value.kind == "bad_input"
    for sample in (speech_wav(1.0), "/tmp/sample.wav"):
        with pytest.raises(ProviderError) as caught:
            tts.add_voice("local", sample)
        assert caught.value.kind == "bad_input" and "URL" in caught.value.message
    assert fake.stats()["calls"]["enrollment"] == 1
    assert fake.stats()["voices"] == []


# --------------------------------------------------------------------------
# Recognition


def test_paraformer_returns_the_transcript_with_segments(
    fake: FakeDashScope, config: dict[str, Any]
) -> None:
    stt = ParaformerSpeechToText(config)
    mp3 = audio.encode(audio.decode_pcm(speech_wav(1.5)), 16000, "mp3")
    result = stt.transcribe(mp3, language="zh-CN")
    assert result.text == DEFAULT_ASR_TEXT
    assert result.duration == pytest.approx(1.5, abs=0.1)
    assert result.segments and result.segments[0].start == 0.0
    assert result.segments[-1].end == pytest.approx(result.duration, abs=0.01)
    assert "".join(s.text for s in result.segments) == result.text
    for segment in result.segments:  # Paraformer's word times come through as words
        assert segment.words and all(w.word in segment.text for w in segment.words)
        assert all(segment.start <= w.start <= w.end <= segment.end for w in segment.words)
        assert [w.start for w in segment.words] == sorted(w.start for w in segment.words)
    parameters = fake.stats()["last_request"]["asr"]["payload"]["parameters"]
    assert (parameters["format"], parameters["sample_rate"]) == ("pcm", 16000)
    assert parameters["language_hints"] == ["zh"]
    assert fake.stats()["last_input"]["asr"]["audio_seconds"] == pytest.approx(1.5, abs=0.1)
    assert stt.record_audio()[:4] == b"RIFF"


def test_paraformer_takes_bytes_only(fake: FakeDashScope, config: dict[str, Any],
                                     files: str) -> None:
    stt = ParaformerSpeechToText(config)
    for bad in (f"{files}/speech.wav", b"not audio at all" * 20):
        with pytest.raises(ProviderError) as caught:
            stt.transcribe(bad)
        assert caught.value.kind == "bad_input"
    assert fake.stats()["calls"]["asr"] == 0


def test_qwen_audio_transcribes_a_url(fake: FakeDashScope, config: dict[str, Any],
                                      files: str) -> None:
    stt = QwenAudioSpeechToText(config)
    url = f"{files}/speech.wav"
    assert stt.transcribe(url).text == DEFAULT_ASR_TEXT
    content = fake.stats()["last_request"]["multimodal"]["input"]["messages"][0]["content"]
    assert content == [{"audio": url}, {"text": "请将这段语音准确转换为文字"}]
    stt.transcribe(url, additional_params={"prompt": "只输出文字"})
    content = fake.stats()["last_request"]["multimodal"]["input"]["messages"][0]["content"]
    assert content[1] == {"text": "只输出文字"}
    for bad in (speech_wav(1.0), "/tmp/speech.wav"):
        with pytest.raises(ProviderError) as caught:
            stt.transcribe(bad)
        assert caught.value.kind == "bad_input"
    with pytest.raises(ProviderError) as caught:
        stt.transcribe(f"{files}/missing.wav")
    assert caught.value.kind == "bad_input"


# --------------------------------------------------------------------------
# Qwen


def test_qwen_streams_deltas(fake: FakeDashScope, config: dict[str, Any]) -> None:
    llm = QwenChatModel(config)
    pieces = list(llm.stream_chat(HELLO, ChatOptions(temperature=0.3, max_tokens=64)))
    assert len(pieces) > 5
    assert "".join(pieces) == REPLY_TO_HELLO
    request = fake.stats()["last_request"]["generation"]
    assert request["model"] == "qwen-turbo"
    assert request["parameters"]["temperature"] == 0.3
    assert request["parameters"]["max_tokens"] == 64
    assert request["parameters"]["incremental_output"] is True
    assert llm.chat(HELLO, ChatOptions(model="qwen-plus", persona="你是李白")) == REPLY_TO_HELLO
    request = fake.stats()["last_request"]["generation"]
    assert request["model"] == "qwen-plus"
    assert request["input"]["messages"][0] == {"role": "system", "content": "你是李白"}


# --------------------------------------------------------------------------
# Error mapping


def engine_calls(config: dict[str, Any], files: str) -> dict[str, Callable[[], Any]]:
    """One representative call per engine, each through a different SDK path."""
    tts = CosyVoiceTextToSpeech(config)
    return {
        "tts": lambda: list(tts.synthesize_sentence("你好。", SynthesisOptions())),
        "enrollment": lambda: tts.add_voice("err", f"{files}/sample.wav"),
        "asr": lambda: ParaformerSpeechToText(config).transcribe(speech_wav(0.5)),
        "multimodal": lambda: QwenAudioSpeechToText(config).transcribe(f"{files}/speech.wav"),
        "generation": lambda: QwenChatModel(config).chat(HELLO, ChatOptions()),
    }


def failure(call: Callable[[], Any]) -> tuple[ProviderError, float]:
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        call()
    return caught.value, time.monotonic() - started


def test_bad_key_over_http_and_paraformer_is_auth(
    fake: FakeDashScope, config: dict[str, Any], files: str
) -> None:
    calls = engine_calls({**config, "DASHSCOPE_API_KEY": "wrong-key"}, files)
    for kind in ("enrollment", "asr", "multimodal", "generation"):
        error, _ = failure(calls[kind])
        assert (kind, error.kind, error.transient) == (kind, "auth", False)
        assert "DASHSCOPE_API_KEY" in error.message
    assert fake.stats()["unauthorized"] == 4


def test_bad_key_on_the_tts_handshake_is_a_timeout(
    fake: FakeDashScope, config: dict[str, Any], files: str
) -> None:
    error, seconds = failure(engine_calls({**config, "DASHSCOPE_API_KEY": "wrong"}, files)["tts"])
    assert (error.kind, error.transient) == ("timeout", True)
    assert "timed out (check DASHSCOPE_API_KEY and the network)" in error.message
    assert seconds < 8
    assert fake.stats()["calls"]["tts"] == 0


@pytest.mark.parametrize("kind", ["tts", "enrollment", "asr", "multimodal", "generation"])
def test_quota_is_transient(fake: FakeDashScope, config: dict[str, Any], files: str,
                            kind: str) -> None:
    fake.control("quota", count=1, kinds=[kind])
    error, _ = failure(engine_calls(config, files)[kind])
    assert (error.kind, error.transient) == ("quota", True)
    assert "Throttling" in error.message


@pytest.mark.parametrize("kind", ["tts", "enrollment", "asr", "multimodal", "generation"])
def test_task_failed_is_transient_task_failed(fake: FakeDashScope, config: dict[str, Any],
                                              files: str, kind: str) -> None:
    fake.control("task_failed", count=1, kinds=[kind])
    error, _ = failure(engine_calls(config, files)[kind])
    assert (error.kind, error.transient) == ("task_failed", True)
    assert "task failed for test" in error.message


@pytest.mark.parametrize("kind", ["tts", "enrollment", "asr", "multimodal", "generation"])
def test_timeout_mode_gives_up_after_dashscope_timeout(
    fake: FakeDashScope, config: dict[str, Any], files: str, kind: str
) -> None:
    # The fake holds the call for 3 s: an answer before that is the engine's own 1 s
    # time-out, which can come late on a busy machine but never early.
    fake.control("timeout", count=1, kinds=[kind])
    error, seconds = failure(engine_calls({**config, "DASHSCOPE_TIMEOUT": 1}, files)[kind])
    assert (error.kind, error.transient) == ("timeout", True)
    assert 0.95 <= seconds < 3.0


def test_a_stream_that_stalls_midway_times_out() -> None:
    with start_fake_dashscope(token_delay=3.0, frame_delay=3.0) as slow:
        config = {"DASHSCOPE_API_KEY": slow.api_key, "DASHSCOPE_HTTP_BASE_URL": slow.http_url,
                  "DASHSCOPE_WEBSOCKET_BASE_URL": slow.ws_url, "DASHSCOPE_TIMEOUT": 1}
        streams = [QwenChatModel(config).stream_chat(HELLO, ChatOptions()),
                   CosyVoiceTextToSpeech(config).synthesize_sentence("你好。", SynthesisOptions())]
        for stream in streams:
            assert next(stream)
            started = time.monotonic()
            # The next piece would come after 3 s: a time-out rather than that piece shows
            # the 1 s limit cut the wait short.
            with pytest.raises(ProviderError) as caught:
                next(stream)
            assert (caught.value.kind, caught.value.transient) == ("timeout", True)
            assert time.monotonic() - started >= 0.9


def test_unreachable_service_is_unavailable(config: dict[str, Any], files: str) -> None:
    closed = {**config, "DASHSCOPE_HTTP_BASE_URL": "http://127.0.0.1:9/api/v1",
              "DASHSCOPE_WEBSOCKET_BASE_URL": "ws://127.0.0.1:9/api-ws/v1/inference"}
    calls = engine_calls(closed, files)
    for kind in ("enrollment", "asr", "multimodal", "generation"):
        error, seconds = failure(calls[kind])
        assert (kind, error.kind, error.transient) == (kind, "unavailable", True)
        assert seconds < config["DASHSCOPE_TIMEOUT"] / 2, "refused, not timed out"


# --------------------------------------------------------------------------
# Under eventlet


def test_engines_share_an_eventlet_loop_without_stalling(fake: FakeDashScope, files: str) -> None:
    arguments = json.dumps({"http_url": fake.http_url, "ws_url": fake.ws_url,
                            "api_key": fake.api_key, "sample_url": f"{files}/sample.wav"})
    process = subprocess.run(
        [sys.executable, "-m", "tests.eventlet_scripts.dashscope_under_eventlet", arguments],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert report["finished"], report
    outcomes = report["outcomes"]
    assert sorted(outcomes) == ["enroll", "llm0", "llm1", "stt0", "stt1",
                                "tts0", "tts1", "tts2", "tts3"]
    assert all(o["ok"] for o in outcomes.values()), outcomes
    for i in range(4):
        assert outcomes[f"tts{i}"]["chunks"] >= 3
        assert outcomes[f"tts{i}"]["bytes"] > 22050
    for i in range(2):
        assert outcomes[f"llm{i}"]["text"] == REPLY_TO_HELLO.replace("你好", f"问题{i}")
        assert outcomes[f"stt{i}"]["text"] == DEFAULT_ASR_TEXT
    assert outcomes["enroll"]["statuses"][-1] == "ready"
    assert fake.stats()["calls"]["asr"] == 3
    # The loop was never held by one call: calls of a kind ran at the same time (each
    # began before any of them finished) and the ticker ran while they did. How long
    # the loop's worst gap was depends on the machine's load: ``bench loop`` prints it.
    for group in (["tts0", "tts1", "tts2", "tts3"], ["llm0", "llm1"]):
        together_from = max(outcomes[name]["began"] for name in group)
        together_to = min(outcomes[name]["finished"] for name in group)
        assert together_from < together_to, {name: outcomes[name] for name in group}
    first = min(o["began"] for o in outcomes.values())
    last = max(o["finished"] for o in outcomes.values())
    assert sum(first < tick < last for tick in report["ticks"]) >= 2, report
    print(f"\nDashScope engines under eventlet: worst loop gap {report['worst_gap_ms']:.0f} ms")
