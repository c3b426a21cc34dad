"""Seed 003's AliyunAPIService through the real SDK against the fake DashScope: synthesis
(sync, async, streaming into FileWriterCallback), recognition, and streamed LLM + TTS."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask

from tests.conftest import dashscope_settings
from tests.fakes.file_server import serve_files
from webapp.app import audio
from webapp.app.services import AliyunAPIService, FileWriterCallback


def _fetch(app: Flask, url: str) -> bytes:
    response = app.test_client().get(url.removeprefix(app.config["BASE_URL"]))
    assert response.status_code == 200, url
    return response.data


def test_synthesis_sync_async_and_streaming(app_factory: Any, fake_dashscope: Any) -> None:
    app = app_factory(**dashscope_settings(fake_dashscope))
    with app.app_context():
        service = AliyunAPIService()
        url = service.synthesize_speech("你好，这是一条测试消息。", voice_id="longxiaochun_v2")
        assert audio.probe(_fetch(app, url)).duration > 0.5
        done = threading.Event()
        results: dict[str, str] = {}
        service.synthesize_speech_async("第二条。", on_complete=lambda u: (
            results.setdefault("url", u), done.set()))
        assert done.wait(30) and audio.probe(_fetch(app, results["url"])).format == "mp3"
        written: list[str] = []
        callback = FileWriterCallback(on_complete_callback=written.append)
        service.synthesize_speech_streaming("第三条，流式合成。", callback=callback)
        assert written and audio.probe(_fetch(app, written[0])).duration > 0.5
        assert not callback.path.exists()


def test_recognition_and_streamed_llm_with_tts(app_factory: Any, fake_dashscope: Any) -> None:
    app = app_factory(**dashscope_settings(fake_dashscope))
    with app.app_context():
        service = AliyunAPIService()
        sample = _fetch(app, service.synthesize_speech("用来识别的一段话。"))
        with serve_files({"/question.mp3": sample}) as base:
            assert service.recognize_audio(f"{base}/question.mp3") == "这是一段测试语音"
        texts: list[str] = []
        chunks: list[bytes] = []
        completed = threading.Event()
        reply = service.stream_llm_with_tts("你好", system_prompt="你是一个友善的助手",
                                            on_text_chunk=texts.append,
                                            on_audio_chunk=chunks.append,
                                            on_complete=completed.set)
        assert completed.is_set() and "".join(texts) == reply and len(chunks) >= 2
        assert audio.probe(b"".join(chunks)).duration > 1.0
