"""Debian's Chromium, headless, driven by Playwright, with a fake microphone that plays a
file: what the browser tests of the console and of calls run in."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.helpers.environment import service_missing

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_hearing(microphone: Path) -> Iterator[Any]:
    """Debian's Chromium, headless, whose fake microphone plays ``microphone`` in a loop."""
    if not Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is None:
        service_missing("Chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        service_missing("Playwright", exc)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={microphone}"])
        yield chromium
        chromium.close()


def csp_safe_waits(page: Any) -> None:
    """Make ``page.wait_for_function`` poll with ``page.evaluate``.

    Playwright's own polling evaluates the predicate with ``eval`` in the page on every
    try after the first, which the console's Content-Security-Policy (no
    ``'unsafe-eval'``) refuses; ``evaluate`` goes through the DevTools protocol, which the
    policy does not govern. The page keeps its real policy, so anything of the console's
    own that the policy refused still shows.
    """

    def wait_for_function(expression: str, arg: Any = None, timeout: float | None = None,
                          polling: float = 50, **_: Any) -> Any:
        limit = 20000 if timeout is None else timeout
        waited = 0.0
        while True:
            value = page.evaluate(expression, arg)
            if value:
                return value
            if waited >= limit:
                raise TimeoutError(f"wait_for_function: {expression!r} still false after "
                                   f"{limit:.0f} ms")
            page.wait_for_timeout(polling)
            waited += polling

    page.wait_for_function = wait_for_function
