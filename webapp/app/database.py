"""How the service uses its database from many green threads at once.

Two rules keep one writer from stopping everyone else:

1. **No transaction with writes is held across a wait.** A write (a flushed insert,
   update or delete) locks rows on MySQL and the whole database on SQLite until the
   transaction ends. Waiting on the thread pool, a sleep or a network call with that
   lock held stops every other writer for as long. ``check_no_writes_held`` is
   registered as a wait guard in ``concurrency``: it raises ``HeldTransaction`` under
   test (``TESTING`` or ``DB_WAIT_CHECK=raise``) and logs the offending stack otherwise.
   The fix at a call site is to commit before the wait, or to write after it.

2. **SQLite never blocks the event loop.** SQLite's own busy handler sleeps in C on the
   one OS thread that runs every green thread, so the lock holder could never finish.
   Its busy timeout is 0 instead, and a statement that finds the database locked is
   retried here with a green sleep. The journal is WAL (readers never wait for the
   writer), ``synchronous=NORMAL`` (safe in WAL, one fsync per checkpoint), and foreign
   keys are enforced (the schema's ``ON DELETE`` rules then apply).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Flask, current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from webapp.app.concurrency import add_wait_guard, pause
from webapp.app.extensions import db

log = logging.getLogger(__name__)
T = TypeVar("T")

WRITES = "tingshuo.uncommitted_writes"
BUSY_WAIT_SECONDS = 30.0
SQLITE_PRAGMAS = ("busy_timeout=0", "journal_mode=WAL", "synchronous=NORMAL",
                  "foreign_keys=ON")


class HeldTransaction(RuntimeError):
    """A wait began while the session held uncommitted writes (and so their locks)."""


def prepare(app: Flask) -> None:
    """Before ``db.init_app``: SQLite connections come from ``GreenSQLiteConnection``."""
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
        app.config["SQLALCHEMY_DATABASE_URI"], app.config["SQLALCHEMY_ENGINE_OPTIONS"])


def install(app: Flask) -> None:
    """After ``db.init_app``: configure SQLite engines on connect; track writes on the
    session and check them before every wait."""
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", configure_sqlite)
    _track_writes()
    add_wait_guard(check_no_writes_held)


def engine_options(url: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """SQLite connections are made by ``GreenSQLiteConnection``; other engines unchanged."""
    if not str(url).startswith("sqlite"):
        return dict(options)
    connect_args = {**options.get("connect_args", {}), "factory": GreenSQLiteConnection,
                    "timeout": 0}
    return {**options, "connect_args": connect_args}


def configure_sqlite(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    """Pragmas for every new SQLite connection (migrations turn foreign keys off for
    their table rebuilds and back on after), and the database kept private."""
    cursor = dbapi_connection.cursor()
    files = [row[2] for row in cursor.execute("PRAGMA database_list") if row[2]]
    _owner_only(files)  # before WAL: SQLite gives -wal and -shm the database's mode
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
    _owner_only(files)


def _owner_only(databases: list[str]) -> None:
    """Mode 0600 for each database file and its -wal / -shm, as for the instance
    secrets: they hold password hashes and API key hashes."""
    for database in databases:
        for path in (database, database + "-wal", database + "-shm"):
            try:
                os.chmod(path, 0o600)
            except FileNotFoundError:
                continue


def check_no_writes_held(what: str) -> None:
    """The wait guard: refuse to wait on ``what`` while this session holds writes."""
    if not has_app_context() or not db.session.registry.has():
        return
    session = db.session()
    if not (session.info.get(WRITES) and session.in_transaction()):
        return
    message = (f"waiting on {what} with uncommitted database writes: commit before the wait "
               "(the write locks would stop every other writer meanwhile)")
    config = current_app.config
    if config.get("TESTING") or config.get("DB_WAIT_CHECK") == "raise":
        raise HeldTransaction(message)
    log.error(message, stack_info=True)


_tracking: list[bool] = []


def _track_writes() -> None:
    """Mark the session when a write reaches the database; unmark when its transaction ends."""
    if _tracking:
        return
    _tracking.append(True)

    @event.listens_for(db.session, "after_flush")
    def _flushed(session: Session, _context: Any) -> None:
        session.info[WRITES] = True

    @event.listens_for(db.session, "do_orm_execute")
    def _executed(state: ORMExecuteState) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            state.session.info[WRITES] = True

    @event.listens_for(db.session, "after_transaction_end")
    def _ended(session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:
            session.info.pop(WRITES, None)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return "database is locked" in str(exc)
    return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _retry_while_busy(connection: sqlite3.Connection, call: Callable[[], T]) -> T:
    """Run ``call`` (a statement), waiting green while another writer holds the database.

    Only a statement that opened the transaction is retried: the BEGIN it came with is
    rolled back (nothing else was in it) so the retry starts a fresh snapshot. A statement
    inside a transaction that already wrote never finds the lock taken (this connection
    holds it), so it is left to fail.
    """
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    delay = 0.001
    while True:
        opens_transaction = not connection.in_transaction
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not (opens_transaction and _is_busy(exc)) or time.monotonic() > deadline:
                raise
            if connection.in_transaction:
                connection.rollback()
        pause(delay)
        delay = min(delay * 2, 0.05)


class GreenSQLiteCursor(sqlite3.Cursor):
    """A cursor whose statements wait green, not in C, for a locked database."""

    def execute(self, sql: str, parameters: Any = (), /) -> GreenSQLiteCursor:
        return _retry_while_busy(self.connection,
                                 lambda: super(GreenSQLiteCursor, self).execute(sql, parameters))

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> GreenSQLiteCursor:
        rows = list(seq_of_parameters)
        return _retry_while_busy(
            self.connection, lambda: super(GreenSQLiteCursor, self).executemany(sql, rows))


class GreenSQLiteConnection(sqlite3.Connection):
    """``sqlite3.connect(factory=…)``: statements and commits wait green for the lock."""

    def cursor(self, factory: type[sqlite3.Cursor] = GreenSQLiteCursor) -> sqlite3.Cursor:
        return super().cursor(factory)

    def commit(self) -> None:
        # A COMMIT that finds readers in the way (outside WAL) stays pending and may be
        # retried as it is.
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        delay = 0.001
        while True:
            try:
                return super().commit()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
            pause(delay)
            delay = min(delay * 2, 0.05)
