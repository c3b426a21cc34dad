"""Exact list totals without counting 100,000 rows on every page.

Each table has a version, bumped after every commit that inserted, changed or deleted
its rows; a cached total is used only while its table's version is unchanged. With
Redis configured the versions are shared, so every web process sees every write.

While Redis is unreachable, totals are counted in the database (exact, only slower)
and the bumps that could not be made are kept and made once Redis answers again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from webapp.app.concurrency import real_lock

log = logging.getLogger(__name__)


class CountCache:
    def __init__(self, redis_url: str | None = None) -> None:
        self._redis: Any = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=2,
                                               socket_connect_timeout=2)
        self._versions: dict[str, int] = {}
        self._values: dict[str, tuple[int, int]] = {}
        self._unbumped: set[str] = set()
        self._lock = real_lock()

    def version(self, table: str) -> int:
        if self._redis is not None:
            return int(self._redis.get(f"tingshuo:ver:{table}") or 0)
        return self._versions.get(table, 0)

    def bump(self, tables: set[str]) -> None:
        if self._redis is not None:
            from redis.exceptions import RedisError

            with self._lock:
                tables = tables | self._unbumped
                self._unbumped = set()
            if not tables:
                return
            try:
                pipe = self._redis.pipeline()
                for table in tables:
                    pipe.incr(f"tingshuo:ver:{table}")
                pipe.execute()
            except RedisError as exc:
                log.warning("count cache: Redis unreachable, bump of %s deferred (%s)",
                            sorted(tables), exc)
                with self._lock:
                    self._unbumped |= tables
            return
        if not tables:
            return
        with self._lock:
            for table in tables:
                self._versions[table] = self._versions.get(table, 0) + 1

    def total(self, table: str, key: str, compute: Callable[[], int]) -> int:
        if self._redis is not None:
            from redis.exceptions import RedisError

            try:
                if self._unbumped:
                    self.bump(set())
                return self._shared_total(table, key, compute)
            except RedisError as exc:
                log.warning("count cache: Redis unreachable, counting %s directly (%s)",
                            table, exc)
                return compute()
        version = self.version(table)
        cache_key = f"tingshuo:count:{table}:{key}"
        with self._lock:
            hit = self._values.get(cache_key)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = compute()
        with self._lock:
            self._values[cache_key] = (version, value)
        return value

    def _shared_total(self, table: str, key: str, compute: Callable[[], int]) -> int:
        version = self.version(table)
        if self._unbumped:
            return compute()
        cache_key = f"tingshuo:count:{table}:{key}"
        cached = self._redis.get(cache_key)
        if cached is not None:
            seen, value = (int(x) for x in cached.split(b":"))
            if seen == version:
                return value
        value = compute()
        self._redis.set(cache_key, f"{version}:{value}", ex=3600)
        return value


def _cache() -> CountCache | None:
    return current_app.extensions.get("counts") if has_app_context() else None


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    touched = session.info.setdefault("touched_tables", set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__tablename__", None)
        if table:
            touched.add(table)


@event.listens_for(Session, "after_commit")
def _bump(session: Session) -> None:
    """Bump the version of every table a committed session wrote to."""
    touched = session.info.pop("touched_tables", set())
    cache = _cache() if touched else None
    if cache is not None:
        cache.bump(touched)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop("touched_tables", None)
