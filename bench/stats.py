"""Latency figures and concurrent load, shared by the benchmarks."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(values_ms: list[float]) -> dict[str, float]:
    return {"n": len(values_ms), "median_ms": round(statistics.median(values_ms), 2),
            "p95_ms": round(percentile(values_ms, 0.95), 2),
            "max_ms": round(max(values_ms), 2)}


def run_concurrently(clients: int, per_client: int, call: Callable[[int, int], Any],
                     interval: float | None = None) -> tuple[list[float], int]:
    """``clients`` threads each make ``per_client`` calls; returns latencies (ms) and errors.

    Without ``interval`` each client calls again as soon as it has an answer (a closed
    loop: the server is saturated). With it, each client starts a call every
    ``interval`` seconds (a paced load), so latency is measured below saturation.
    """
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def worker(client: int) -> None:
        nonlocal errors
        schedule = time.perf_counter() + (interval or 0) * client / max(clients, 1)
        for i in range(per_client):
            if interval:
                time.sleep(max(0.0, schedule - time.perf_counter()))
                schedule += interval
            started = time.perf_counter()
            try:
                ok = call(client, i)
            except Exception:  # noqa: BLE001 - a failed call is counted, not raised
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                errors += 0 if ok else 1

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors
