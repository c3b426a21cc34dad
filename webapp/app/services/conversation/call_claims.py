"""One call per session, across every web process.

A call claims its session when it starts and gives it back when it ends. Each process
knows its own calls; with ``REDIS_URL`` the claim is also a Redis key
(``tingshuo:call:<session>``) set only when absent, so that a call started on another
web process is refused too. The key lives ``CLAIM_SECONDS`` and the call renews it while
it runs: a process that dies without hanging up frees its sessions within that time.

While Redis is unreachable a call is let through with a warning (each process still
refuses a second call of its own): a voice call matters more than the rule.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from webapp.app.concurrency import real_lock

log = logging.getLogger(__name__)

CLAIM_SECONDS = 30
_KEY = "tingshuo:call:{}"
# Renew or give back a claim only while it is still this call's (another process may
# hold the key once this one's expired).
_RENEW = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] or not holder then
  return redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) and 1 or 0
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

_local: dict[str, str] = {}
_local_lock = real_lock()
_clients: dict[str, Any] = {}
_clients_lock = real_lock()


def _client(redis_url: str) -> Any:
    with _clients_lock:
        if redis_url not in _clients:
            import redis

            _clients[redis_url] = redis.Redis.from_url(redis_url, socket_timeout=2,
                                                       socket_connect_timeout=2)
        return _clients[redis_url]


class Claim:
    """A session held by one call; ``renew`` while the call runs, ``release`` at its end."""

    def __init__(self, session_id: str, redis_url: str | None) -> None:
        self.session_id, self.redis_url = session_id, redis_url
        self.token = uuid.uuid4().hex
        self.renewed_at = time.monotonic()

    def _shared(self, script: str, *args: Any) -> int | None:
        from redis.exceptions import RedisError

        assert self.redis_url
        try:
            return int(_client(self.redis_url).eval(script, 1, _KEY.format(self.session_id),
                                                    self.token, *args))
        except RedisError as exc:
            log.warning("call claim on session %s: Redis unreachable (%s)",
                        self.session_id, exc)
            return None

    def renew(self) -> None:
        """Keep the claim alive; cheap to call often (it goes to Redis every few seconds)."""
        now = time.monotonic()
        if not self.redis_url or now - self.renewed_at < CLAIM_SECONDS / 3:
            return
        self.renewed_at = now
        if self._shared(_RENEW, CLAIM_SECONDS * 1000) == 0:
            log.warning("call in session %s: another process holds the session's claim",
                        self.session_id)

    def release(self) -> None:
        with _local_lock:
            if _local.get(self.session_id) == self.token:
                del _local[self.session_id]
        if self.redis_url:
            self._shared(_RELEASE)


def claim(session_id: str, redis_url: str | None) -> Claim | None:
    """The session for a new call, or None when a call already holds it (in this process
    or, with Redis, in any)."""
    held = Claim(session_id, redis_url)
    with _local_lock:
        if session_id in _local:
            return None
        _local[session_id] = held.token
    if redis_url:
        from redis.exceptions import RedisError

        try:
            taken = _client(redis_url).set(_KEY.format(session_id), held.token, nx=True,
                                           px=CLAIM_SECONDS * 1000)
        except RedisError as exc:
            log.warning("call claim on session %s: Redis unreachable, checked in this "
                        "process only (%s)", session_id, exc)
            taken = True
        if not taken:
            with _local_lock:
                del _local[session_id]
            return None
    return held
