"""Server-sent events of a session (the six voice and playback events), across processes.

Without Redis, subscribers are queues in this process; with ``REDIS_URL`` every web
process publishes to and listens on Redis pub/sub, so a stream served by one process
hears what another did.
"""

from __future__ import annotations

import json
import logging
import queue
import time
from collections.abc import Iterator
from typing import Any, Protocol

from flask import current_app

from webapp.app.concurrency import real_lock

log = logging.getLogger(__name__)

# Pub/sub channels are shared by every database of a Redis server: the name carries the
# database number, so deployments on different databases never hear each other.
CHANNEL = "tingshuo:{}:events:{}"


class Subscription(Protocol):
    def next(self, timeout: float) -> tuple[str, Any] | None: ...

    def close(self) -> None: ...


class _LocalSubscription:
    def __init__(self, bus: LocalBus, channel: str) -> None:
        self.bus, self.channel = bus, channel
        self.inbox: queue.Queue = queue.Queue()

    def next(self, timeout: float) -> tuple[str, Any] | None:
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        with self.bus.lock:
            self.bus.subscribers.get(self.channel, set()).discard(self.inbox)


class LocalBus:
    def __init__(self) -> None:
        self.subscribers: dict[str, set[queue.Queue]] = {}
        self.lock = real_lock()

    def publish(self, channel: str, event: str, data: dict[str, Any]) -> None:
        with self.lock:
            targets = list(self.subscribers.get(channel, ()))
        for target in targets:
            target.put((event, data))

    def subscribe(self, channel: str) -> Subscription:
        subscription = _LocalSubscription(self, channel)
        with self.lock:
            self.subscribers.setdefault(channel, set()).add(subscription.inbox)
        return subscription


class _RedisSubscription:
    def __init__(self, pubsub: Any) -> None:
        self.pubsub = pubsub

    def next(self, timeout: float) -> tuple[str, Any] | None:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            message = self.pubsub.get_message(timeout=min(remaining, 1.0))
            if message is not None and message["type"] == "message":
                payload = json.loads(message["data"])
                return payload["event"], payload["data"]
        return None

    def close(self) -> None:
        self.pubsub.close()


class RedisBus:
    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_connect_timeout=2)
        self._database = self._client.connection_pool.connection_kwargs.get("db", 0)

    def publish(self, channel: str, event: str, data: dict[str, Any]) -> None:
        """Tell the channel's listeners; while Redis is unreachable the event is dropped
        with a warning (what it reports is stored and can be fetched), never the request."""
        from redis.exceptions import RedisError

        try:
            self._client.publish(CHANNEL.format(self._database, channel),
                                 json.dumps({"event": event, "data": data}))
        except RedisError as exc:
            log.warning("event %s for %s dropped: Redis unreachable (%s)", event, channel, exc)

    def subscribe(self, channel: str) -> Subscription:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(CHANNEL.format(self._database, channel))
        return _RedisSubscription(pubsub)


def build_bus(redis_url: str | None) -> LocalBus | RedisBus:
    return RedisBus(redis_url) if redis_url else LocalBus()


def publish(session_id: str | None, event: str, data: dict[str, Any]) -> None:
    """Tell a session's stream; without a session id nothing is told."""
    if session_id:
        current_app.extensions["events"].publish(str(session_id), event, data)


def sse_stream(subscription: Subscription, keepalive: float = 15.0) -> Iterator[str]:
    """The text of an SSE response: events as they come, a comment while it is quiet.

    The caller subscribes before the response starts, so nothing published after the
    client connected is missed.
    """
    try:
        yield ": connected\n\n"
        while True:
            item = subscription.next(keepalive)
            if item is None:
                yield ": keep-alive\n\n"
                continue
            event, data = item
            yield f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
    finally:
        subscription.close()
