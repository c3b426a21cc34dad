"""The one place that knows whether the process runs green (eventlet) or on OS threads.

CPU-bound work (inference, transcoding) must leave the eventlet hub: ``run_blocking``
and ``iterate_blocking`` hand it to eventlet's OS thread pool when the process is
monkey-patched and call it directly otherwise (Celery workers, scripts, tests).

Every wait (those two, ``sleep``, and network calls that announce themselves with
``before_wait``) first runs the registered wait guards. The database layer registers one
that refuses to wait while its session holds uncommitted writes: a write lock held
across a wait stops every other writer (on SQLite, the whole database) for as long.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)
_DONE = object()
_wait_guards: list[Callable[[str], None]] = []


def add_wait_guard(guard: Callable[[str], None]) -> None:
    """Have ``guard(what)`` run before every wait; it raises to refuse the wait."""
    if guard not in _wait_guards:
        _wait_guards.append(guard)


def before_wait(what: str) -> None:
    """Announce a wait (thread-pool work, a sleep, a network call) to the wait guards."""
    for guard in _wait_guards:
        guard(what)


def is_green() -> bool:
    """True when eventlet has patched the threading module of this process."""
    if "eventlet" not in sys.modules:
        return False
    from eventlet import patcher

    return patcher.is_monkey_patched("thread")


def run_blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` off the event loop when there is one; results and errors come back."""
    before_wait(_name(fn))
    if is_green():
        from eventlet import tpool

        return tpool.execute(fn, *args, **kwargs)
    return fn(*args, **kwargs)


def iterate_blocking(iterable: Iterable[T]) -> Iterator[T]:
    """Drain a CPU-bound iterator one item per hop to the thread pool, yielding green."""
    before_wait(_name(iterable))
    iterator = iter(iterable)
    if not is_green():
        yield from iterator
        return
    from eventlet import tpool

    try:
        while True:
            item = tpool.execute(next, iterator, _DONE)
            if item is _DONE:
                return
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            tpool.execute(close)


def _name(work: Any) -> str:
    return getattr(work, "__qualname__", None) or work.__class__.__qualname__


def real_lock() -> threading.Lock:
    """An OS-level lock, even after monkey patching (green locks lose wake-ups across threads)."""
    if "eventlet" in sys.modules:
        from eventlet import patcher

        return patcher.original("threading").Lock()
    return threading.Lock()


def real_queue() -> Any:
    """An OS-level queue for handing results from real threads back to green code."""
    if "eventlet" in sys.modules:
        from eventlet import patcher

        return patcher.original("queue").Queue()
    import queue

    return queue.Queue()


def sleep(seconds: float) -> None:
    """Yield to other green threads (or the OS) for ``seconds``."""
    before_wait("sleep")
    pause(seconds)


def pause(seconds: float) -> None:
    """``sleep`` without the wait guards, for the database layer's own retries. On a real
    thread of a green process it sleeps that thread only (a green sleep there would fail)."""
    if not is_green():
        import time

        time.sleep(seconds)
        return
    from eventlet import patcher

    if in_os_thread():
        patcher.original("time").sleep(seconds)
        return
    import eventlet

    eventlet.sleep(seconds)


def spawn(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Start ``fn`` in the background: a green thread under eventlet, a daemon thread otherwise."""
    if is_green():
        import eventlet

        return eventlet.spawn(fn, *args, **kwargs)
    thread = threading.Thread(target=fn, args=args, kwargs=kwargs, daemon=True)
    thread.start()
    return thread


def in_os_thread() -> bool:
    """True on one of the thread pool's real threads of a green process (emitting is unsafe)."""
    if not is_green():
        return False
    from eventlet import patcher

    threading_ = patcher.original("threading")
    return threading_.get_ident() != threading_.main_thread().ident


class ThreadRelay:
    """Runs, on a green thread, calls submitted from real OS threads (e.g. SDK callbacks).

    A pipe wakes the green side, so nothing polls; calls run in submission order.
    """

    def __init__(self) -> None:
        import os

        self._queue = real_queue()
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        spawn(self._run)

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        import os

        self._queue.put((fn, args))
        os.write(self._write, b"\0")

    def _run(self) -> None:
        import os

        from eventlet.hubs import trampoline

        while True:
            trampoline(self._read, read=True)
            try:
                os.read(self._read, 4096)
            except BlockingIOError:
                continue
            while not self._queue.empty():
                fn, args = self._queue.get_nowait()
                try:
                    fn(*args)
                except Exception:
                    log.exception("relayed call failed")


_relay: list[ThreadRelay] = []


def thread_relay() -> ThreadRelay:
    """The process's relay; first call must come from the green side (it spawns a task)."""
    if not _relay:
        if in_os_thread():
            raise RuntimeError("the thread relay must be created on the event loop")
        _relay.append(ThreadRelay())
    return _relay[0]
