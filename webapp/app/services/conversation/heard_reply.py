"""A stored reply cut back to what its listener heard, after the fact.

A client that plays the reply itself may say later how far it got (OpenAI's Realtime
API: ``conversation.item.truncate`` with ``audio_end_ms``). The reply is then kept as
heard: its audio cut at that point and its text reduced to the sentences whose audio
had ended by then (the reply's ``sentence_ends`` tell where each one ends).
"""

from __future__ import annotations

from webapp.app import audio
from webapp.app.concurrency import run_blocking
from webapp.app.errors import ApiError
from webapp.app.extensions import db
from webapp.app.models import Message
from webapp.app.services.platform import files

_RATE = 24000
# A device reports its position a little behind what it played: half a window of slack.
_SLACK_SECONDS = 0.05


def truncate(user_id: int, message_id: str, heard_seconds: float) -> Message:
    """Keep reply ``message_id`` of ``user_id`` as far as ``heard_seconds`` of its audio."""
    message = db.session.get(Message, message_id)
    if message is None or message.owner_id != user_id or message.role != "assistant":
        raise ApiError(404, "message_not_found", "MESSAGE_NOT_FOUND")
    heard_seconds = max(0.0, heard_seconds)
    meta = dict(message.meta or {})
    ends = meta.get("sentence_ends") or []
    if message.duration is not None and heard_seconds >= message.duration:
        # All of what was kept was heard (a reply cut by barge-in keeps what was sent):
        # nothing to cut, but the listener's position is recorded all the same.
        message.meta = {**meta, "heard_ms": round(heard_seconds * 1000)}
        db.session.commit()
        return message
    text = "".join(s for s, end in ends if end <= heard_seconds + _SLACK_SECONDS)
    old = files.get(message.audio_file_id) if message.audio_file_id else None
    kept = None
    if old is not None:
        data = files.read(old)
        db.session.rollback()  # nothing is held open while the thread pool cuts the audio

        def cut() -> bytes:
            pcm = audio.decode_pcm(data, _RATE)[:int(heard_seconds * _RATE) * 2]
            return audio.encode(pcm, _RATE, "mp3") if pcm else b""

        clip = run_blocking(cut)
        if clip:
            kept = files.save(user_id, clip, "mp3", heard_seconds, kind="generated")
        message = db.session.get(Message, message_id)
        assert message is not None
    meta.update(interrupted=True, spoken_text=text, heard_ms=round(heard_seconds * 1000))
    message.text, message.meta = text, meta
    message.audio_file_id = kept.id if kept else None
    message.format = "mp3" if kept else None
    message.duration = round(heard_seconds, 3) if kept else None
    db.session.commit()
    if old is not None:
        files.delete(files.get(old.id))
    return message
