"""Per-user limits, all in one place: what one account may cost the service.

Three kinds of bound, each a setting (README, "Limits"); a refusal is an ``ApiError``
429 whose ``retry_after`` every transport passes on (the ``Retry-After`` header on
REST and ``/v1``, a ``retry_after`` field in a socket's error frame).

- **Requests per minute** on the expensive routes and real-time turns, per user and
  family (``speech``, ``cloning``, ``uploads``, ``sessions``, ``turns``). Counted by the
  ``limits`` library (Flask-Limiter's own) in ``RATELIMIT_STORAGE_URI``: Redis when it is
  configured, so every web process counts the same window. Off with
  ``RATELIMIT_ENABLED=false``; while the store is unreachable each process counts in its
  memory (``RATELIMIT_FAIL_OPEN``).
- **At once**: jobs (cloning), calls and open streams (SSE, plain WebSockets). A held
  place is a member of a Redis sorted set scored by its expiry, taken by one Lua script
  (so two processes cannot both take the last place) and renewed while it is in use; a
  process that dies frees its places when they expire. Without Redis there is only one
  process, which counts in its memory.
- **Per day** (UTC): characters synthesized and seconds of audio recognised, counted on
  every path in ``user_daily_usage`` by one conditional ``UPDATE`` (a check and an
  addition that cannot be split, on SQLite as on MariaDB). An API key's monthly quota
  is counted inside these (``services.platform.api_keys``).

``0`` turns a bound off.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from flask import current_app
from limits import parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import select

from webapp.app.concurrency import real_lock
from webapp.app.errors import ApiError
from webapp.app.extensions import db
from webapp.app.models import UserDailyUsage
from webapp.app.models.common import utcnow
from webapp.app.services.platform import usage_counters

log = logging.getLogger(__name__)
T = TypeVar("T")

RATE_SETTINGS = {"speech": "RATELIMIT_SPEECH", "cloning": "RATELIMIT_CLONING",
                 "uploads": "RATELIMIT_UPLOADS", "sessions": "RATELIMIT_SESSIONS",
                 "turns": "RATELIMIT_TURNS"}
"""Each family of expensive requests and the setting that bounds it per user."""

SLOT_SETTINGS = {"jobs": "USER_MAX_JOBS", "calls": "USER_MAX_CALLS",
                 "streams": "USER_MAX_STREAMS"}
SLOT_RETRY_SECONDS = 10
"""What a refusal for want of a free place suggests: places free as work ends."""
RENEW_EVERY = 1 / 3
"""A held place is renewed once this share of its lifetime has passed."""

_TAKE = """
local now = tonumber(ARGV[1])
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
if not redis.call('zscore', KEYS[1], ARGV[2])
   and redis.call('zcard', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('zadd', KEYS[1], now + tonumber(ARGV[4]), ARGV[2])
redis.call('pexpire', KEYS[1], tonumber(ARGV[4]))
return 1
"""


def too_many(retry_after: float, **details: Any) -> ApiError:
    """The refusal every limit gives: 429, ``RATE_LIMITED``, and when to try again."""
    seconds = max(1, math.ceil(retry_after))
    return ApiError(429, "user_limited", "RATE_LIMITED", {"retry": seconds},
                    {**details, "retry_after": seconds}, retry_after=seconds)


def _state() -> Limits:
    return current_app.extensions["limits"]


# -- requests per minute ---------------------------------------------------------------

def hit(family: str, user_id: int) -> None:
    """Count one request of ``family`` for the user, or refuse it (429)."""
    _state().rates.hit(family, user_id)


class Rates:
    def __init__(self, config: dict[str, Any]) -> None:
        self.enabled = bool(config["RATELIMIT_ENABLED"])
        self.fail_open = bool(config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"])
        self.items = {family: parse(config[setting]) for family, setting
                      in RATE_SETTINGS.items() if str(config[setting]).strip() not in ("", "0")}
        self.limiter = MovingWindowRateLimiter(storage_from_string(
            config["RATELIMIT_STORAGE_URI"]))
        self.fallback = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, family: str, user_id: int) -> None:
        item = self.items.get(family)
        if not self.enabled or item is None:
            return
        keys = ("user", family, str(user_id))
        limiter = self.limiter
        try:
            allowed = limiter.hit(item, *keys)
        except Exception as exc:
            if not self.fail_open:
                raise
            log.warning("rate limit store unreachable, counting in memory: %s", exc)
            limiter = self.fallback
            allowed = limiter.hit(item, *keys)
        if not allowed:
            reset = limiter.get_window_stats(item, *keys).reset_time
            raise too_many(reset - time.time(), limit=str(item), family=family)


# -- at once ---------------------------------------------------------------------------

@dataclass
class Slot:
    """A place held by one job, call or stream; ``renew`` while in use, ``release`` after."""

    slots: Slots
    kind: str
    user_id: int
    token: str
    ttl: float
    renewed_at: float = 0.0

    def renew(self) -> None:
        """Keep the place; cheap to call often (it goes to the store now and then)."""
        now = time.monotonic()
        if now - self.renewed_at >= self.ttl * RENEW_EVERY:
            self.renewed_at = now
            self.slots.take(self.kind, self.user_id, self.token, self.ttl, limit=None)

    def release(self) -> None:
        self.slots.release(self.kind, self.user_id, self.token)


class Slots:
    """Places per user and kind, in Redis when it is configured, else in this process."""

    def __init__(self, redis_url: str | None) -> None:
        self._redis: Any = None
        self._script: Any = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=2,
                                               socket_connect_timeout=2)
            self._script = self._redis.register_script(_TAKE)
        self._local: dict[tuple[str, int], dict[str, float]] = {}
        self._lock = real_lock()

    @staticmethod
    def _key(kind: str, user_id: int) -> str:
        return f"tingshuo:slots:{kind}:{user_id}"

    def take(self, kind: str, user_id: int, token: str, ttl: float,
             limit: int | None) -> bool:
        """Hold (or renew, ``limit=None``) ``token``'s place; False when none is free."""
        if self._redis is not None:
            from redis.exceptions import RedisError

            try:
                return bool(self._script(keys=[self._key(kind, user_id)], args=[
                    int(time.time() * 1000), token, limit if limit is not None else 2 ** 31,
                    int(ttl * 1000)]))
            except RedisError as exc:
                # As with call claims: the work matters more than the count meanwhile.
                log.warning("%s places of user %s: Redis unreachable, counting here (%s)",
                            kind, user_id, exc)
        now = time.monotonic()
        with self._lock:
            held = self._local.setdefault((kind, user_id), {})
            for other, expiry in list(held.items()):
                if expiry <= now:
                    del held[other]
            if token not in held and limit is not None and len(held) >= limit:
                return False
            held[token] = now + ttl
            return True

    def release(self, kind: str, user_id: int, token: str) -> None:
        if self._redis is not None:
            from redis.exceptions import RedisError

            try:
                self._redis.zrem(self._key(kind, user_id), token)
            except RedisError as exc:
                log.warning("releasing a %s place of user %s: Redis unreachable (%s)",
                            kind, user_id, exc)
        with self._lock:
            self._local.get((kind, user_id), {}).pop(token, None)

    def held(self, kind: str, user_id: int) -> int:
        """How many places the user holds now (for operators and tests)."""
        if self._redis is not None:
            key = self._key(kind, user_id)
            return int(self._redis.zcount(key, int(time.time() * 1000) + 1, "+inf"))
        now = time.monotonic()
        with self._lock:
            return sum(1 for expiry in self._local.get((kind, user_id), {}).values()
                       if expiry > now)


def hold(kind: str, user_id: int, ttl: float, token: str | None = None) -> Slot:
    """Take one of the user's places of ``kind`` (``jobs``, ``calls``, ``streams``) for
    ``ttl`` seconds unless renewed, or refuse (429) when all are taken."""
    state = _state()
    limit = int(current_app.config[SLOT_SETTINGS[kind]])
    slot = Slot(state.slots, kind, user_id, token or uuid.uuid4().hex, ttl,
                renewed_at=time.monotonic())
    if limit <= 0:
        return slot
    if not state.slots.take(kind, user_id, slot.token, ttl, limit):
        raise too_many(SLOT_RETRY_SECONDS, limit=limit, kind=kind)
    return slot


def renewed_while(slot: Slot, chunks: Iterator[T]) -> Iterator[T]:
    """``chunks`` passed through, the place renewed as they go (whoever sends them gives
    the place back when the client goes away)."""
    for chunk in chunks:
        slot.renew()
        yield chunk


def release(kind: str, user_id: int, token: str) -> None:
    """Give back the place ``token`` holds (a job's id names its place)."""
    _state().slots.release(kind, user_id, token)


def job_seconds() -> float:
    """How long a job's place lasts: past its deadline, when it is failed anyway."""
    return float(current_app.config["JOB_TIME_LIMIT"] + 60)


def stream_seconds() -> float:
    """How long an unrenewed stream's place lasts: a stream is renewed at least every
    ``CHAT_IDLE_SECONDS`` (or closed)."""
    return max(60.0, 2 * float(current_app.config["CHAT_IDLE_SECONDS"]))


CALL_SLOT_SECONDS = 30.0
"""A call renews its place every second or so while it runs."""


# -- per day ---------------------------------------------------------------------------

def today() -> str:
    return utcnow().strftime("%Y-%m-%d")


def _until_tomorrow() -> float:
    now = utcnow()
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()


def _daily_limits() -> tuple[int, float]:
    config = current_app.config
    return int(config["USER_DAILY_CHARACTERS"]), float(config["USER_DAILY_AUDIO_SECONDS"])


def _refused(characters: int, audio_seconds: float) -> ApiError:
    max_characters, max_seconds = _daily_limits()
    return too_many(_until_tomorrow(), daily_characters=max_characters or None,
                    daily_audio_seconds=max_seconds or None,
                    asked={"characters": characters, "audio_seconds": audio_seconds})


def charge(user_id: int, *, characters: int = 0, audio_seconds: float = 0.0,
           over: bool = False) -> usage_counters.Charge:
    """Count today's use, or refuse it (429) if it would pass a daily limit; committed.

    The check and the addition are one statement: two requests racing for the last of a
    day's allowance cannot both get it. ``over=True`` counts what was already spent (a
    reply spoken, call audio heard) even past the limit: the next request is refused.
    """
    max_characters, max_seconds = (0, 0.0) if over else _daily_limits()
    spent = usage_counters.add(UserDailyUsage, {"user_id": user_id, "day": today()},
                               characters=characters, audio_seconds=audio_seconds,
                               max_characters=max_characters or None,  # 0: no limit
                               max_audio_seconds=max_seconds or None)
    if spent is None:
        raise _refused(characters, audio_seconds)
    return spent


def require_allowance(user_id: int) -> None:
    """Refuse (429) a request of unknown cost (a chat turn) once a daily limit is used up."""
    max_characters, max_seconds = _daily_limits()
    row = db.session.execute(select(UserDailyUsage.characters, UserDailyUsage.audio_seconds)
                             .where(UserDailyUsage.user_id == user_id,
                                    UserDailyUsage.day == today())).first()
    if row is None:
        return
    if (max_characters > 0 and row.characters >= max_characters) or (
            max_seconds > 0 and row.audio_seconds >= max_seconds):
        raise _refused(0, 0.0)


def usage(user_id: int) -> dict[str, Any]:
    """Today's use and limits, as the user sees them."""
    max_characters, max_seconds = _daily_limits()
    row = db.session.get(UserDailyUsage, (user_id, today()))
    return {"day": today(), "characters": int(row.characters) if row else 0,
            "audio_seconds": round(row.audio_seconds, 3) if row else 0.0,
            "daily_characters": max_characters or None,
            "daily_audio_seconds": max_seconds or None}


# -- the app's state ---------------------------------------------------------------------

class Limits:
    """What one app keeps for its limits: the rate windows and the places held."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.rates = Rates(config)
        self.slots = Slots(config["REDIS_URL"] or None)
