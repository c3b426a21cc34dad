"""Under eventlet: the app writes to a SQLite database another connection holds locked
for 0.5 s. Prints whether the write went through, how long it waited, how many times a
green ticker (every 10 ms) ran meanwhile, and the event loop's longest stall (a figure
for ``bench loop``; it depends on the machine's load).

Usage: ``python -m tests.eventlet_scripts.sqlite_locked <migrated.db> <instance dir>``
"""

import eventlet
import eventlet.event

eventlet.monkey_patch()

import json  # noqa: E402
import sqlite3  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from webapp.app import create_app  # noqa: E402
from webapp.app.extensions import db  # noqa: E402
from webapp.app.models import User  # noqa: E402

HOLD_SECONDS = 0.5


def main() -> None:
    path, instance = sys.argv[1], Path(sys.argv[2])
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "INSTANCE_DIR": instance,
                      "STORAGE_DIR": instance / "storage", "TESTING": True, "WARM_UP": False})
    with app.app_context():
        db.session.get(User, 1)  # the pool's connection exists (and is configured) before
        db.session.commit()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    ticks: list[float] = []
    running = [True]

    def ticker() -> None:
        ticks.append(time.perf_counter())
        while running[0]:
            eventlet.sleep(0.01)
            ticks.append(time.perf_counter())

    writing = eventlet.event.Event()

    def release() -> None:
        # Counted from the write's start, so that a stall of a busy machine before the
        # write cannot eat into the time it must wait.
        writing.wait()
        eventlet.sleep(HOLD_SECONDS)
        holder.execute("COMMIT")

    eventlet.spawn(ticker)
    eventlet.spawn(release)
    eventlet.sleep(0.05)
    started = time.perf_counter()
    writing.send()
    error = None
    with app.app_context():
        try:
            db.session.add(User(username="waited-for-the-lock", password_hash="x"))
            db.session.commit()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            error = f"{exc.__class__.__name__}: {exc}"
    ended = time.perf_counter()
    eventlet.sleep(0.05)
    running[0] = False
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    print(json.dumps({"error": error, "waited_s": round(ended - started, 3),
                      "ticks_while_waiting": sum(started < t < ended for t in ticks),
                      "longest_stall_s": round(max(gaps), 3)}))


if __name__ == "__main__":
    main()
