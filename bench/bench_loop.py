"""How long the event loop goes without running while blocking work is offloaded, as
the tests check it without timing it (``tests/eventlet_scripts``):

1. local engines: four Piper + eSpeak NG syntheses and a Whisper recognition at once;
2. DashScope engines (the real SDK against the fake): syntheses, LLM streams,
   recognitions and an enrollment at once;
3. a SQLite write waiting 0.5 s for a lock another connection holds.

Each prints the worst gap between ticks of a green ticker (20 ms, 20 ms and 10 ms apart
when idle), with the load average: on a busy machine the gaps grow with the load, which
is why they are figures here and not assertions in the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.figures import publish
from tests.fakes.fake_dashscope import start_fake_dashscope
from tests.fakes.file_server import serve_files
from tests.helpers.paths import ROOT
from tests.helpers.sounds import RATE, speech
from webapp.app import audio

TARGET_MS = 100


def _script(module: str, *arguments: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", f"tests.eventlet_scripts.{module}", *arguments],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def local_engines(work: Path) -> float:
    return _script("local_engines_under_eventlet", str(work / "whisper-base"))["worst_gap"] * 1000


def dashscope_engines() -> float:
    sample = audio.encode(speech("This is my voice, please clone it."), RATE, "wav")
    with start_fake_dashscope(frame_delay=0.002, deploy_seconds=0.3, token_delay=0.005) as fake, \
            serve_files({"/sample.wav": sample}) as files:
        arguments = json.dumps({"http_url": fake.http_url, "ws_url": fake.ws_url,
                                "api_key": fake.api_key, "sample_url": f"{files}/sample.wav"})
        return _script("dashscope_under_eventlet", arguments)["worst_gap_ms"]


def sqlite_lock(work: Path) -> float:
    from flask_migrate import upgrade

    from webapp.app import create_app
    from webapp.app.extensions import db

    path = work / "locked.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "INSTANCE_DIR": work,
                      "STORAGE_DIR": work / "storage", "WARM_UP": False})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()
    return _script("sqlite_locked", str(path), str(work))["longest_stall_s"] * 1000


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-loop-"))
    try:
        figures = {"local_engines_worst_gap_ms": round(local_engines(work), 1),
                   "dashscope_engines_worst_gap_ms": round(dashscope_engines(), 1),
                   "sqlite_lock_wait_worst_gap_ms": round(sqlite_lock(work), 1)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          f"({os.cpu_count()} cores)")
    print(f"{'worst gap of the event loop':36} {'ms':>8}  target")
    for name, value in figures.items():
        print(f"{name:36} {value:8.1f}  ≤ {TARGET_MS}")
    publish("loop", {"bench": "loop", **figures})


if __name__ == "__main__":
    main()
