"""Playback sessions: a playlist of messages played in order (or shuffled),
with the idle → playing ⇄ paused → stopped state machine and repeat modes. Every action
is told to the session's event stream."""

from __future__ import annotations

import random
import secrets
from typing import Any

from webapp.app.errors import ApiError
from webapp.app.extensions import db
from webapp.app.models import PlaybackSession
from webapp.app.ownership import owned
from webapp.app.services.sessions import conversations, events

ACTIONS = ("play", "pause", "stop", "seek", "next", "previous")


def _order(length: int, shuffle: bool) -> list[int]:
    order = list(range(length))
    if shuffle:
        random.shuffle(order)
    return order


def create(owner_id: int, conversation_id: str, playlist: list[Any], repeat_mode: str,
           shuffle: bool) -> PlaybackSession:
    conversations.get_owned(conversation_id, owner_id)
    row = PlaybackSession(id="sess_" + secrets.token_hex(8), owner_id=owner_id,
                          conversation_id=conversation_id, status="idle", playlist=list(playlist),
                          order=_order(len(playlist), shuffle), current_index=0,
                          current_position=0.0, repeat_mode=repeat_mode, shuffle=shuffle)
    db.session.add(row)
    db.session.commit()
    return row


def get_owned(session_id: str, owner_id: int) -> PlaybackSession:
    return owned(PlaybackSession, session_id, owner_id,
                 ApiError(404, "playback_not_found", "PLAYBACK_SESSION_NOT_FOUND"))


def _invalid(detail: str) -> ApiError:
    return ApiError(400, "bad_request", "INVALID_VOICE_PARAMETER", {"detail": detail})


def _emit(row: PlaybackSession, event: str) -> None:
    data: dict[str, Any] = {"messageId": row.current_message_id}
    if event != "voice_ended":
        data["position"] = row.current_position
    events.publish(row.conversation_id, event, data)


def _move(row: PlaybackSession, step: int) -> bool:
    """Advance by ``step``; False when the playlist has run out (repeat ``none``)."""
    if row.repeat_mode == "one":
        row.current_position = 0.0
        return True
    target = row.current_index + step
    if 0 <= target < len(row.order):
        row.current_index = target
    elif row.repeat_mode == "all":
        row.current_index = target % len(row.order)
    else:
        return False
    row.current_position = 0.0
    return True


def act(row: PlaybackSession, action: str, position: float | None = None,
        message_id: Any = None) -> PlaybackSession:
    """Apply one action; returns the session as it is afterwards."""
    if not row.playlist:
        raise _invalid("the playlist is empty")
    if message_id is not None:
        if message_id not in row.playlist:
            raise _invalid(f"message {message_id} is not in the playlist")
        row.current_index = row.order.index(row.playlist.index(message_id))
        row.current_position = 0.0
    emitted: str | None = None
    if action == "play":
        if row.status == "stopped":
            row.current_position = 0.0
        row.status = "playing"
        emitted = "voice_playing"
    elif action == "pause":
        if row.status != "playing":
            raise _invalid(f"cannot pause while {row.status}")
        row.status = "paused"
        emitted = "voice_paused"
    elif action == "stop":
        if row.status in ("idle", "stopped"):
            raise _invalid(f"cannot stop while {row.status}")
        _emit(row, "voice_ended")
        row.status = "stopped"
        row.current_position = 0.0
    elif action == "seek":
        # A seek names a place in the current message (position), another message (from
        # its start), or both; a seek that names neither has nowhere to go.
        if position is None and message_id is None:
            raise _invalid("seek needs a position ≥ 0 (seconds), a messageId, or both")
        if position is not None:
            if position < 0:
                raise _invalid("seek needs a position ≥ 0 (seconds)")
            row.current_position = float(position)
        emitted = {"playing": "voice_playing", "paused": "voice_paused"}.get(row.status)
    elif action in ("next", "previous"):
        if row.status == "playing":
            _emit(row, "voice_ended")
        if _move(row, 1 if action == "next" else -1):
            emitted = "voice_playing" if row.status == "playing" else None
        else:
            row.status = "stopped"
            row.current_position = 0.0
    if emitted:
        _emit(row, emitted)
    db.session.commit()
    return row


def delete(row: PlaybackSession) -> dict[str, Any]:
    session_id = row.id
    db.session.delete(row)
    db.session.commit()
    return {"sessionId": session_id, "deleted": True}
