"""AliyunAPIService through the real SDK against the fake DashScope: synthesis
(sync, async, streaming into FileWriterCallback), recognition, and streamed LLM + TTS."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask

from tests.fakes.file_server import serve_files
from tests.helpers.paths import ROOT
from tests.helpers.stacks import dashscope_settings
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


PLAIN_SCRIPT = """
import json
import threading

from webapp.app.services import AliyunAPIService, FileWriterCallback

service = AliyunAPIService()
url = service.synthesize_speech("你好，这是脚本里的合成。", voice_id="longxiaochun_v2")
written = []
callback = FileWriterCallback(on_complete_callback=written.append)
service.synthesize_speech_streaming("流式合成，写进文件。", callback=callback)
done = threading.Event()
later = {}
service.synthesize_speech_async("异步合成。", on_complete=lambda u: (later.setdefault("url", u),
                                                                     done.set()))
assert done.wait(60)
print("URLS " + json.dumps([url, written[0], later["url"]]))
"""


def test_works_from_a_plain_script_without_an_app_context(app_factory: Any, tmp_path: Any,
                                                          fake_dashscope: Any) -> None:
    """The service is constructed in a plain script: no Flask app exists there, and the
    settings come from the environment."""
    import os
    import subprocess
    import sys

    settings = {"INSTANCE_DIR": str(tmp_path), "STORAGE_DIR": str(tmp_path / "storage"),
                "TMP_DIR": str(tmp_path / "tmp"), "BASE_URL": "http://tingshuo.test",
                "SECRET_KEY": "script-secret-0123456789", "PYTHONPATH": str(ROOT),
                **dashscope_settings(fake_dashscope)}
    run = subprocess.run([sys.executable, "-c", PLAIN_SCRIPT], env={**os.environ, **settings},
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(x for x in run.stdout.splitlines() if x.startswith("URLS "))
    import json

    urls = json.loads(line.removeprefix("URLS "))
    app = app_factory(STORAGE_DIR=tmp_path / "storage", SECRET_KEY=settings["SECRET_KEY"])
    for url in urls:
        assert url.startswith("http://tingshuo.test/api/tmp_audio/")
        assert audio.probe(_fetch(app, url)).duration > 0.2
