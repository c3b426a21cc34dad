"""The engine registry: one engine per name, handed out to green threads and pool threads
alike, without ever stopping the event loop while one is built."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers.paths import ROOT
from webapp.app.providers.registry import ProviderRegistry


def test_each_engine_is_built_once_and_shared() -> None:
    engines = ProviderRegistry({})
    assert engines.llm("scripted") is engines.llm("scripted")
    assert engines.configured_names("llm")[0] == "scripted"


def test_green_threads_asking_for_an_engine_being_built_both_get_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.eventlet_scripts.registry_build"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["done"], "the event loop stopped: " + result.stderr[-2000:]
    assert report["same"] and report["built"] in (1, 2), report
