"""The one place that knows whether the process runs green (eventlet) or on OS threads.

CPU-bound work (inference, transcoding) must leave the eventlet hub: ``run_blocking``
and ``iterate_blocking`` hand it to eventlet's OS thread pool when the process is
monkey-patched and call it directly otherwise (Celery workers, scripts, tests).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()


def is_green() -> bool:
    """True when eventlet has patched the threading module of this process."""
    if "eventlet" not in sys.modules:
        return False
    from eventlet import patcher

    return patcher.is_monkey_patched("thread")


def run_blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` off the event loop when there is one; results and errors come back."""
    if is_green():
        from eventlet import tpool

        return tpool.execute(fn, *args, **kwargs)
    return fn(*args, **kwargs)


def iterate_blocking(iterable: Iterable[T]) -> Iterator[T]:
    """Drain a CPU-bound iterator one item per hop to the thread pool, yielding green."""
    iterator = iter(iterable)
    if not is_green():
        yield from iterator
        return
    from eventlet import tpool

    while True:
        item = tpool.execute(next, iterator, _DONE)
        if item is _DONE:
            return
        yield item


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
    if is_green():
        import eventlet

        eventlet.sleep(seconds)
    else:
        import time

        time.sleep(seconds)


def spawn(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Start ``fn`` in the background: a green thread under eventlet, a daemon thread otherwise."""
    if is_green():
        import eventlet

        return eventlet.spawn(fn, *args, **kwargs)
    thread = threading.Thread(target=fn, args=args, kwargs=kwargs, daemon=True)
    thread.start()
    return thread
