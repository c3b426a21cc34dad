"""The latest figures of every benchmark, kept in the repository: ``bench/FIGURES.json``.

Each benchmark ends by handing its figures to ``publish``, which prints them as one JSON
line (as before) and replaces that benchmark's entry in the file with them, the commit
they were taken on, the machine (cores, CPU model), the load average before and after
and the date. Commit the file with the change that moved the figures, so a reader can
check a claim against the commit and the conditions it was measured in.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

FIGURES_FILE = Path(__file__).with_name("FIGURES.json")
_load_at_start = os.getloadavg()


def _commit() -> str:
    """HEAD's hash, with ``-dirty`` when the work tree has changes (figures of a tree no
    commit holds)."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {"nproc": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version()}


def publish(name: str, figures: dict[str, Any]) -> None:
    """Print ``figures`` as one JSON line and keep them as ``name``'s latest entry."""
    print(json.dumps(figures, ensure_ascii=False, default=str), flush=True)
    entry = {"commit": _commit(), "date": datetime.datetime.now(datetime.UTC).isoformat(
                 timespec="seconds"),
             "machine": machine(),
             "load_average": {"before": [round(v, 2) for v in _load_at_start],
                              "after": [round(v, 2) for v in os.getloadavg()]},
             "figures": json.loads(json.dumps(figures, default=str))}
    kept = json.loads(FIGURES_FILE.read_text()) if FIGURES_FILE.exists() else {}
    kept[name] = entry
    FIGURES_FILE.write_text(json.dumps(dict(sorted(kept.items())), ensure_ascii=False,
                                       indent=1) + "\n")
