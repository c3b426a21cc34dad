"""Browser tests of the console: the real web process (``python wsgi.py``, eventlet,
embedded mode, local engines) on a free port with an instance folder of its own, driven
through Debian's Chromium with Playwright.

Without Chromium, Playwright or the Socket.IO client (``make install``) the tests are
skipped; with ``REQUIRE_SERVICES=1`` they fail instead, like the rest of the suite.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers.browser import chromium_hearing, csp_safe_waits

REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1"
ROOT = Path(__file__).resolve().parents[2]
VENDOR_JS = ROOT / "webapp" / "app" / "static" / "vendor" / "socket.io.min.js"
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
# About eight seconds of English, spoken by Piper: the voice sample, the STT upload, and
# (looped) what the fake microphone hears.
SPEECH_TEXT = ("Good morning, everyone. Today I would like to tell you about my trip to the "
               "mountains. We walked for hours along a quiet river, and it was a lovely day.")
SERVER_START_SECONDS = 90


def missing(what: str, reason: object) -> None:
    """Skip locally, fail under REQUIRE_SERVICES=1."""
    message = f"{what} unavailable: {reason}"
    if REQUIRE:
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(instance: Path, port: int) -> dict[str, str]:
    """The embedded mode, whatever the surrounding environment or .env says."""
    env = dict(os.environ)
    env.update({
        "APP_ENV": "development", "INSTANCE_DIR": str(instance), "HOST": "127.0.0.1",
        "PORT": str(port), "BASE_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": "", "REDIS_URL": "", "S3_BUCKET": "", "CELERY_BROKER_URL": "",
        "CELERY_RESULT_BACKEND": "", "SOCKETIO_MESSAGE_QUEUE": "",
        "SOCKETIO_ASYNC_MODE": "eventlet", "DASHSCOPE_API_KEY": "", "LLM_BASE_URL": "",
        "WYOMING_PORT": "0",
        "LLM_ENGINE": "scripted", "STT_ENGINE": "whisper", "RATELIMIT_ENABLED": "false",
        "RATELIMIT_STORAGE_URI": "memory://",
        # Pieces of the scripted reply arrive a little apart, as a language model's would.
        "SCRIPTED_LLM_DELAY": "0.05",
        "MODEL_CACHE_DIR": str(ROOT / "instance" / "models"),
        "WHISPER_MODEL_DIR": str(ROOT / "instance" / "models" / "whisper-base"),
        "FLASK_APP": "webapp.app:create_app", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
    })
    return env


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a freshly migrated web process serving the console at ``/``."""
    if not VENDOR_JS.is_file():
        missing("socket.io-client", f"{VENDOR_JS} is missing (run make install: npm ci)")
    instance = tmp_path_factory.mktemp("e2e-instance")
    port = _free_port()
    env = _server_env(instance, port)
    migrate = subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    log_path = instance / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "wsgi.py"], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"the web process exited ({process.returncode}):\n"
                            f"{log_path.read_text(errors='replace')[-4000:]}")
            try:
                if requests.get(f"{base}/api/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the web process did not answer within {SERVER_START_SECONDS} s")
            time.sleep(0.3)
        page = requests.get(f"{base}/", timeout=10)
        if page.status_code != 200 or 'id="screen-talk"' not in page.text:
            pytest.fail(f"GET / answered {page.status_code} without the console page: "
                        "create_app must register webapp.app.console.bp")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """English speech made by Piper through the project's engine, as a WAV file."""
    from webapp.app import audio
    from webapp.app.providers.base import SynthesisOptions
    from webapp.app.providers.tts.piper import PiperTextToSpeech

    engine = PiperTextToSpeech({})
    if not engine.is_configured():
        missing("Piper", "the piper package or its bundled voice is not installed")
    spoken = engine.synthesize(SPEECH_TEXT, SynthesisOptions())
    seconds = len(spoken.pcm) / 2 / spoken.sample_rate
    assert 6 <= seconds <= 12, seconds
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    path.write_bytes(audio.encode(spoken.pcm, spoken.sample_rate, "wav"))
    return path


@pytest.fixture(scope="package")
def browser(speech_wav: Path) -> Iterator[Any]:
    """The browser the console tests share; its microphone says ``speech_wav``.

    Closed when the browser tests end: Playwright's synchronous API keeps an asyncio loop
    marked as running in this thread while it is open, and later tests (Wyoming's
    clients) start loops of their own."""
    yield from chromium_hearing(speech_wav)


class PageErrors(list):
    """Uncaught exceptions in the page, and anything the Content-Security-Policy refused;
    a test fails when there are any."""

    def console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.append(message.text)


@pytest.fixture
def open_page(browser: Any, server: str) -> Iterator[Any]:
    """A function that opens the console in a new browser context (locale, viewport)."""
    contexts: list[Any] = []
    errors = PageErrors()

    def _open(locale: str = "zh-CN", viewport: dict[str, int] | None = None) -> Any:
        context = browser.new_context(base_url=server, locale=locale,
                                      viewport=viewport or {"width": 1280, "height": 860})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20000)
        csp_safe_waits(page)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", errors.console)
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto("/")
        page.wait_for_function("window.__console && window.__console.ready")
        return page

    yield _open
    for context in contexts:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def screenshot() -> Any:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def _shot(page: Any, name: str, full_page: bool = False) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return _shot


@pytest.fixture
def username() -> str:
    return "e2e" + uuid.uuid4().hex[:10]
