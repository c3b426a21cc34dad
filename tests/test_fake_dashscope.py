"""The fake DashScope server, driven only through the real ``dashscope`` SDK.

If these pass, the SDK calls the project makes behave against the fake as they
would against DashScope, so other tests can trust what the fake answers.
"""

from __future__ import annotations

import io
import json
import re
import threading
import wave
from collections.abc import Callable, Iterator
from typing import Any

import av
import dashscope
import numpy as np
import pytest
from dashscope import Generation, MultiModalConversation
from dashscope.audio.asr import Recognition, RecognitionCallback, RecognitionResult
from dashscope.audio.tts_v2 import (
    AudioFormat,
    ResultCallback,
    SpeechSynthesizer,
    VoiceEnrollmentService,
)
from dashscope.audio.tts_v2.enrollment import VoiceEnrollmentException

from tests.fakes.fake_dashscope import (
    DEFAULT_ASR_TEXT,
    FakeDashScope,
    start_fake_dashscope,
)
from tests.fakes.file_server import serve_files

TTS_MODEL = "cosyvoice-v2"
VOICE = "longxiaochun_v2"
EXPECTED_REPLY = "收到：你好。这是第二句话。这是第三句话！最后一句？"


def make_wav(seconds: float, sample_rate: int = 16000) -> bytes:
    """A mono 16-bit tone, the kind of recording users upload."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    samples = (np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def decode(audio: bytes) -> tuple[str, int, float]:
    """Container name, sample rate and duration of encoded audio."""
    with av.open(io.BytesIO(audio)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return container.format.name, stream.rate, samples / stream.rate


def run_bounded(call: Callable[[], Any], seconds: float = 15.0) -> tuple[Any, Any]:
    """Run ``call`` in a thread; fail the test instead of hanging forever."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = call()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"SDK call still running after {seconds} s"
    return outcome.get("result"), outcome.get("error")


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    """A local server for the audio URLs DashScope would fetch."""
    with serve_files({"/voice.wav": make_wav(2.0),
                      "/not-audio.wav": b"this is not audio at all" * 100}) as url:
        yield url


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDashScope]:
    """One server for the module; voices deploy slowly enough to see DEPLOYING."""
    with start_fake_dashscope(deploy_seconds=2.0, frame_delay=0.005) as server:
        yield server


@pytest.fixture(autouse=True)
def sdk(fake: FakeDashScope, monkeypatch: pytest.MonkeyPatch) -> FakeDashScope:
    """Point the SDK at the fake and start each test from a clean server state."""
    monkeypatch.setattr(dashscope, "base_http_api_url", fake.http_url)
    monkeypatch.setattr(dashscope, "base_websocket_api_url", fake.ws_url)
    monkeypatch.setattr(dashscope, "api_key", fake.api_key)
    fake.reset()
    return fake


class Collector(ResultCallback):
    """Records the order of TTS callbacks."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.chunks: list[bytes] = []
        self.events: list[dict[str, Any]] = []
        self.done = threading.Event()

    def on_data(self, data: bytes) -> None:
        self.calls.append("data")
        self.chunks.append(bytes(data))

    def on_event(self, message: str) -> None:
        self.events.append(json.loads(message))

    def on_complete(self) -> None:
        self.calls.append("complete")
        self.done.set()

    def on_error(self, message: Any) -> None:
        self.calls.append("error")
        self.done.set()

    def sentence_events(self, kind: str) -> int:
        return sum(1 for e in self.events if e["payload"]["output"].get("type") == kind)


def test_call_returns_decodable_mp3() -> None:
    audio = SpeechSynthesizer(model=TTS_MODEL, voice=VOICE).call("你好，世界。")
    container, rate, seconds = decode(audio)
    assert container == "mp3"
    assert rate == 22050
    # 6 characters at 0.06 s each, plus the encoder's padding
    assert 0.3 <= seconds <= 0.6


def test_pcm_length_follows_text_and_rate() -> None:
    text = "你好，世界。"
    pcm_format = AudioFormat.PCM_16000HZ_MONO_16BIT
    normal = SpeechSynthesizer(model=TTS_MODEL, voice=VOICE, format=pcm_format)
    fast = SpeechSynthesizer(model=TTS_MODEL, voice=VOICE, format=pcm_format, speech_rate=2.0)
    audio = normal.call(text)
    assert len(audio) % 2 == 0
    assert len(audio) == 2 * round(0.06 * 16000) * len(text)
    assert len(fast.call(text)) == len(audio) // 2
    samples = np.frombuffer(audio, dtype="<i2")
    assert np.abs(samples).max() > 1000, "the audio is not silent"


def test_wav_format_and_sample_rate() -> None:
    synthesizer = SpeechSynthesizer(
        model=TTS_MODEL, voice=VOICE, format=AudioFormat.WAV_24000HZ_MONO_16BIT
    )
    audio = synthesizer.call("今天天气不错。")
    container, rate, seconds = decode(audio)
    assert audio[:4] == b"RIFF"
    assert (container, rate) == ("wav", 24000)
    assert seconds == pytest.approx(0.42, abs=0.01)


def test_callback_receives_several_chunks_before_complete() -> None:
    callback = Collector()
    synthesizer = SpeechSynthesizer(model=TTS_MODEL, voice=VOICE, callback=callback)
    assert synthesizer.call("你好，这是一段用来测试流式输出的比较长的句子。") is None
    assert callback.done.wait(10)
    assert callback.calls[-1] == "complete"
    assert callback.calls.count("data") >= 3
    assert "error" not in callback.calls
    assert decode(b"".join(callback.chunks))[0] == "mp3"
    assert callback.sentence_events("sentence-begin") == 1
    assert callback.sentence_events("sentence-end") == 1


def test_streaming_call_splits_sentences_across_pieces(sdk: FakeDashScope) -> None:
    callback = Collector()
    synthesizer = SpeechSynthesizer(
        model=TTS_MODEL,
        voice=VOICE,
        callback=callback,
        format=AudioFormat.PCM_22050HZ_MONO_16BIT,
    )
    pieces = ["今天天气", "不错。我们", "去公园", "吧！"]
    for piece in pieces:
        synthesizer.streaming_call(piece)
    synthesizer.streaming_complete()
    assert callback.calls[-1] == "complete"
    assert callback.sentence_events("sentence-begin") == 2
    audio = b"".join(callback.chunks)
    assert len(audio) == 2 * round(0.06 * 22050) * len("".join(pieces))
    assert sdk.stats()["last_input"]["tts"] == "".join(pieces)


def test_stats_record_synthesis_parameters(sdk: FakeDashScope) -> None:
    SpeechSynthesizer(
        model=TTS_MODEL, voice=VOICE, speech_rate=1.5, pitch_rate=0.8, volume=70
    ).call("你好。")
    stats = sdk.stats()
    assert stats["calls"]["tts"] == 1
    parameters = stats["last_request"]["tts"]["payload"]["parameters"]
    assert parameters["rate"] == 1.5
    assert parameters["pitch"] == 0.8
    assert parameters["volume"] == 70
    assert parameters["voice"] == VOICE
    assert (parameters["format"], parameters["sample_rate"]) == ("Default", 0)


def test_unknown_cloned_voice_fails_without_hanging() -> None:
    synthesizer = SpeechSynthesizer(model=TTS_MODEL, voice="cosyvoice-nobody-" + "0" * 32)
    result, error = run_bounded(lambda: synthesizer.call("你好。"))
    assert result is None
    assert error is not None
    assert "does not exist" in str(error)


def test_voice_enrollment_lifecycle(sdk: FakeDashScope, files: str) -> None:
    service = VoiceEnrollmentService()
    voice_id = service.create_voice(TTS_MODEL, "test", f"{files}/voice.wav")
    assert re.fullmatch(r"cosyvoice-test-[0-9a-f]{32}", voice_id)
    assert service.query_voice(voice_id)["status"] == "DEPLOYING"
    voices = sdk.stats()["voices"]
    assert [v["voice_id"] for v in voices] == [voice_id]
    assert voices[0]["audio_seconds"] == pytest.approx(2.0, abs=0.01)

    listed = service.list_voices(prefix="test")
    assert [v["voice_id"] for v in listed] == [voice_id]
    assert service.list_voices(prefix="other") == []

    deploying = SpeechSynthesizer(model=TTS_MODEL, voice=voice_id)
    _, error = run_bounded(lambda: deploying.call("你好。"))
    assert error is not None and "not ready" in str(error)

    for _ in range(50):
        if service.query_voice(voice_id)["status"] == "OK":
            break
        threading.Event().wait(0.1)
    assert service.query_voice(voice_id)["status"] == "OK"
    audio = SpeechSynthesizer(model=TTS_MODEL, voice=voice_id).call("你好。")
    assert decode(audio)[0] == "mp3"

    other_model = SpeechSynthesizer(model="cosyvoice-v1", voice=voice_id)
    _, error = run_bounded(lambda: other_model.call("你好。"))
    assert error is not None and "cosyvoice-v2" in str(error)

    service.update_voice(voice_id, f"{files}/voice.wav")
    assert service.query_voice(voice_id)["status"] == "DEPLOYING"

    service.delete_voice(voice_id)
    assert service.list_voices() == []
    deleted = SpeechSynthesizer(model=TTS_MODEL, voice=voice_id)
    _, error = run_bounded(lambda: deleted.call("你好。"))
    assert error is not None and "does not exist" in str(error)


@pytest.mark.parametrize("path", ["/missing.wav", "/not-audio.wav"])
def test_enrollment_rejects_bad_audio_url(files: str, path: str) -> None:
    with pytest.raises(VoiceEnrollmentException) as caught:
        VoiceEnrollmentService().create_voice(TTS_MODEL, "test", files + path)
    assert "InvalidParameter" in str(caught.value)
    assert "400" in str(caught.value)


def test_recognition_returns_sentence_timed_by_audio(tmp_path: Any) -> None:
    path = tmp_path / "speech.wav"
    path.write_bytes(make_wav(1.5))
    recognition = Recognition(
        model="paraformer-realtime-v2", callback=None, format="wav", sample_rate=16000
    )
    result = recognition.call(str(path))
    assert result.status_code == 200
    sentences = result.get_sentence()
    assert "".join(s["text"] for s in sentences) == DEFAULT_ASR_TEXT
    assert all(s["sentence_end"] for s in sentences)
    assert sentences[0]["begin_time"] == 0
    assert sentences[-1]["end_time"] == 1500


def test_streamed_recognition_hears_interim_sentences_then_the_final_ones() -> None:
    class Heard(RecognitionCallback):
        def __init__(self) -> None:
            self.interim: list[str] = []
            self.final: list[str] = []
            self.completed = threading.Event()

        def on_event(self, result: RecognitionResult) -> None:
            sentence = result.get_sentence()
            ended = RecognitionResult.is_sentence_end(sentence)
            (self.final if ended else self.interim).append(sentence["text"])

        def on_complete(self) -> None:
            self.completed.set()

    heard = Heard()
    recognition = Recognition(model="paraformer-realtime-v2", callback=heard, format="pcm",
                              sample_rate=16000)
    recognition.start()
    pcm = make_wav(1.5)[44:]
    for start in range(0, len(pcm), 3200):  # 100 ms pieces, as a microphone sends them
        recognition.send_audio_frame(pcm[start:start + 3200])
    recognition.stop()
    assert heard.completed.is_set()
    assert heard.interim and all(DEFAULT_ASR_TEXT.startswith(t) for t in heard.interim)
    assert heard.interim == sorted(heard.interim, key=len)
    assert "".join(heard.final) == DEFAULT_ASR_TEXT


def test_recognition_of_too_little_audio_returns_nothing(tmp_path: Any) -> None:
    path = tmp_path / "short.pcm"
    path.write_bytes(b"\x00\x01" * 1000)
    recognition = Recognition(
        model="paraformer-realtime-v2", callback=None, format="pcm", sample_rate=16000
    )
    result = recognition.call(str(path))
    assert result.status_code == 200
    assert result.get_sentence() is None


def test_recognition_task_failure_is_reported(sdk: FakeDashScope, tmp_path: Any) -> None:
    path = tmp_path / "speech.wav"
    path.write_bytes(make_wav(0.5))
    sdk.control("task_failed", count=1)
    recognition = Recognition(
        model="paraformer-realtime-v2", callback=None, format="wav", sample_rate=16000
    )
    result = recognition.call(str(path))
    assert result.status_code != 200
    assert result.code == "InternalError"
    assert result.message == "task failed for test"


def test_qwen_audio_fetches_the_url(sdk: FakeDashScope, files: str) -> None:
    messages = [
        {
            "role": "user",
            "content": [{"audio": f"{files}/voice.wav"}, {"text": "转写这段语音"}],
        }
    ]
    response = MultiModalConversation.call(model="qwen-audio-turbo", messages=messages)
    assert response.status_code == 200
    assert response.output.choices[0].message.content[0]["text"] == DEFAULT_ASR_TEXT
    assert sdk.stats()["last_input"]["multimodal"]["audio_seconds"] == pytest.approx(2.0, abs=0.01)
    messages[0]["content"][0]["audio"] = f"{files}/missing.wav"
    failed = MultiModalConversation.call(model="qwen-audio-turbo", messages=messages)
    assert failed.status_code == 400
    assert failed.code == "InvalidParameter"


def test_generation_streams_incremental_pieces() -> None:
    responses = list(
        Generation.call(
            model="qwen-turbo",
            messages=[{"role": "user", "content": "你好"}],
            result_format="message",
            stream=True,
            incremental_output=True,
        )
    )
    assert all(r.status_code == 200 for r in responses)
    choices = [r.output.choices[0] for r in responses]
    pieces = [c.message.content for c in choices]
    assert "".join(pieces) == EXPECTED_REPLY
    assert len(pieces) > 5
    assert all(1 <= len(p) <= 4 for p in pieces)
    assert [c.finish_reason for c in choices] == ["null"] * (len(pieces) - 1) + ["stop"]


def test_generation_without_stream_returns_whole_reply() -> None:
    response = Generation.call(
        model="qwen-turbo",
        messages=[{"role": "user", "content": "你好"}],
        result_format="message",
    )
    assert response.status_code == 200
    assert response.output.choices[0].message.content == EXPECTED_REPLY
    assert response.usage.output_tokens == len(EXPECTED_REPLY)


def test_bad_key_is_refused(sdk: FakeDashScope, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashscope, "api_key", "wrong-key")
    response = Generation.call(model="qwen-turbo", messages=[{"role": "user", "content": "你好"}])
    assert response.status_code == 401
    assert response.code == "InvalidApiKey"
    synthesizer = SpeechSynthesizer(model=TTS_MODEL, voice=VOICE)
    result, error = run_bounded(lambda: synthesizer.call("你好。"))
    assert result is None
    assert error is not None
    assert sdk.stats()["unauthorized"] >= 2
    assert sdk.stats()["calls"]["tts"] == 0


def test_quota_mode_applies_to_the_next_calls_only(sdk: FakeDashScope) -> None:
    sdk.control("quota", count=2)
    messages = [{"role": "user", "content": "你好"}]
    throttled = Generation.call(model="qwen-turbo", messages=messages)
    assert throttled.status_code == 429
    assert throttled.code == "Throttling.AllocationQuota"
    synthesizer = SpeechSynthesizer(model=TTS_MODEL, voice=VOICE)
    _, error = run_bounded(lambda: synthesizer.call("你好。"))
    assert error is not None and "Throttling.AllocationQuota" in str(error)
    assert Generation.call(model="qwen-turbo", messages=messages).status_code == 200


def test_server_error_mode_and_kinds_filter(sdk: FakeDashScope) -> None:
    sdk.control("server_error", kinds=["generation"])
    messages = [{"role": "user", "content": "你好"}]
    for _ in range(2):
        failed = Generation.call(model="qwen-turbo", messages=messages)
        assert (failed.status_code, failed.code) == (500, "InternalError")
    audio = SpeechSynthesizer(model=TTS_MODEL, voice=VOICE).call("你好。")
    assert decode(audio)[0] == "mp3"
    sdk.control("ok")
    assert Generation.call(model="qwen-turbo", messages=messages).status_code == 200


def test_timeout_mode_never_starts_the_task(sdk: FakeDashScope) -> None:
    sdk.control("timeout", count=1, kinds=["tts"])
    synthesizer = SpeechSynthesizer(model=TTS_MODEL, voice=VOICE)
    _, error = run_bounded(lambda: synthesizer.call("你好。"), seconds=20)
    assert isinstance(error, TimeoutError)
    assert sdk.stats()["calls"]["tts"] == 1


def test_options_reach_the_server_process(monkeypatch: pytest.MonkeyPatch) -> None:
    with start_fake_dashscope(api_key="other-key", llm_reply="-固定的回答。") as other:
        monkeypatch.setattr(dashscope, "base_http_api_url", other.http_url)
        monkeypatch.setattr(dashscope, "api_key", "other-key")
        response = Generation.call(
            model="qwen-turbo",
            messages=[{"role": "user", "content": "随便"}],
            result_format="message",
        )
        assert response.output.choices[0].message.content == "-固定的回答。"
        assert other.stats()["last_input"]["generation"] == "随便"
    assert other.process.poll() is not None
