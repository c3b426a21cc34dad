"""Many calls at once, as a deployment carries them.

- DashScope engines on the production stack (two web processes under eventlet, a Celery
  worker, MariaDB, Redis; the fake DashScope through the real SDK): callers speaking at
  the same moment, each a phrase of its own, are all answered, each with its own words,
  and their recognitions really run side by side.
- Local engines: English calls whose Moonshine reads overlap are all answered and the
  web process lives on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakes.fake_dashscope import start_fake_dashscope
from tests.helpers.call_client import Caller
from tests.helpers.realtime import User
from tests.helpers.sounds import speech
from tests.helpers.stacks import Stack, run_production_stack
from tests.helpers.web_server import LiveServer

PHRASES = ("Could you tell me a little about the history of this old city?",
           "What is the weather usually like here in the spring?",
           "Which museum would you visit first on a rainy day?",
           "How long does it take to walk down to the harbour?",
           "Is there a good place nearby for a quiet dinner tonight?",
           "What do people here usually eat for breakfast?")
TURN_TIMEOUT = 90
CALLS = 4  # two on each web process


@pytest.fixture(scope="module")
def voices() -> dict[str, bytes]:
    return {text: speech(text) for text in PHRASES}


@pytest.fixture(scope="module")
def dashscope_stack(mysql_database: str, redis_url: str, voices: dict[str, bytes],
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Any]]:
    """The production stack with every engine on DashScope, whose fake takes as long as
    the service to answer and knows each phrase by its sound."""
    with start_fake_dashscope(asr_delay=0.15, tts_first_packet=0.2, frame_delay=0.002,
                              token_delay=0.005) as fake:
        fake.teach(voices)
        with run_production_stack(mysql_database, redis_url, fake,
                                  tmp_path_factory.mktemp("capacity"),
                                  STT_ENGINE="paraformer", LLM_ENGINE="qwen",
                                  CALL_IDLE_SECONDS="60") as stack:
            yield stack, fake


def speak_at_once(url_for: Any, people: list[User], lines: list[bytes],
                  language: str) -> list[dict[str, Any]]:
    """Every person calls and says a line at the same moment; what each one got back."""
    results: list[dict[str, Any]] = [{} for _ in people]
    ready = threading.Barrier(len(people))

    def call(i: int) -> None:
        caller = Caller(url_for(i), people[i].token)
        try:
            # Calls that start at once start their recognisers at once (a Paraformer
            # host process, Moonshine's): on a loaded machine that takes a while.
            started = caller.start(people[i].role_id, timeout=180, language=language)
            results[i]["session_id"] = started.get("session_id")
            ready.wait(240)
            mark = len(caller.events)
            caller.say(lines[i], then_silence=0)
            done = caller.wait_for(("response_complete", "error"), TURN_TIMEOUT, mark)
            results[i]["done"] = done
            results[i]["heard"] = [d["text"] for _, n, d in caller.events[mark:]
                                   if n == "asr_result"]
            results[i]["audio"] = sum(1 for _, n, _ in caller.events[mark:]
                                      if n == "tts_audio_chunk")
            caller.end()
            caller.wait_for("call_ended", 30, mark)
        except Exception as exc:  # noqa: BLE001 - asserted on below, with the others
            results[i]["failure"] = repr(exc)
        finally:
            caller.close()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(people))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TURN_TIMEOUT + 120)
    return results


def test_dashscope_calls_at_once_are_each_answered_with_their_own_words(
        dashscope_stack: tuple[Stack, Any], voices: dict[str, bytes]) -> None:
    stack, fake = dashscope_stack
    urls = [stack.url, stack.url_b]
    phrases = PHRASES[:CALLS]
    people = [User(urls[i % 2], voice_type="dashscope:longxiaochun_v2")
              for i in range(CALLS)]
    results = speak_at_once(lambda i: urls[i % 2], people, [voices[p] for p in phrases], "en")
    for person, phrase, result in zip(people, phrases, results, strict=True):
        assert "failure" not in result, ([r.get("failure") for r in results],
                                         stack.log("web"), stack.log("web_b"))
        assert result["done"].get("message_id"), result
        assert result["audio"] > 0, result
        assert result["heard"] == [phrase], result
        said = [m["transcription"] for m in person.call(
            "GET", f"/api/sessions/{result['session_id']}/messages")["data"]["list"]
            if m["role"] == "user"]
        assert said == [phrase]
    # Each web process had two callers speaking at once: their recognitions overlapped.
    assert fake.stats()["asr_open_most"] >= 2


@pytest.fixture(scope="module")
def local_server() -> Iterator[LiveServer]:
    live = LiveServer(SCRIPTED_LLM_DELAY="0.03", CALL_IDLE_SECONDS="60",
                      MOONSHINE_PROCESSES="2")
    live.process.start_timeout = 300  # loading every local model takes long on a busy machine
    live.start()
    yield live
    live.stop()


def test_overlapping_english_calls_on_local_engines_are_all_answered(
        local_server: LiveServer, voices: dict[str, bytes], tmp_path: Path) -> None:
    people = [User(local_server.url) for _ in range(3)]
    lines = list(voices.values())[:3]
    results = speak_at_once(lambda _: local_server.url, people, lines, "en")
    for result in results:
        assert "failure" not in result, ([r.get("failure") for r in results],
                                         local_server.log.read_text()[-3000:])
        assert result["done"].get("message_id"), result
        assert result["audio"] > 0 and len(result["heard"]) == 1 and result["heard"][0]
    keywords = ("history", "weather", "museum")
    for keyword, result in zip(keywords, results, strict=True):
        assert keyword in result["heard"][0].lower(), results
    assert requests.get(f"{local_server.url}/api/health", timeout=10).ok
    assert local_server.process.popen is not None and local_server.process.popen.poll() is None
