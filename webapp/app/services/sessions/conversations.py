"""Sessions and their messages: one table for every kind of message, audio in
storage, and deletes that remove the audio too."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from webapp.app.errors import ApiError
from webapp.app.extensions import db
from webapp.app.models import Conversation, File, Message
from webapp.app.models.common import utcnow
from webapp.app.ownership import owned
from webapp.app.pagination import paginate
from webapp.app.services.platform import files
from webapp.app.services.sessions import roles


def create(owner_id: int, role_id: int | None = None, voice_type: str | None = None,
           title: str = "") -> Conversation:
    if role_id is not None:
        roles.usable(role_id, owner_id)
    session = Conversation(owner_id=owner_id, role_id=role_id, voice_type=voice_type,
                           title=title[:200])
    db.session.add(session)
    db.session.commit()
    return session


def get_owned(session_id: str, owner_id: int) -> Conversation:
    """A session of the caller; anyone else's looks absent."""
    return owned(Conversation, session_id, owner_id,
                 ApiError(404, "session_not_found", "SESSION_NOT_FOUND"))


def get_or_create(owner_id: int, session_id: str | None, **fields: Any) -> Conversation:
    return get_owned(session_id, owner_id) if session_id else create(owner_id, **fields)


def page(owner_id: int, page_no: int, page_size: int, role_id: int | None = None
         ) -> dict[str, Any]:
    query = select(Conversation).where(Conversation.owner_id == owner_id)
    if role_id is not None:
        query = query.where(Conversation.role_id == role_id)
    query = query.order_by(Conversation.started_at.desc(), Conversation.id)
    return paginate(query, page_no, page_size, Conversation.to_dict,
                    count=("sessions", f"owner:{owner_id}:role:{role_id}"))


def end(session: Conversation) -> Conversation:
    if session.status != "ended":
        session.status = "ended"
        session.ended_at = utcnow()
        db.session.commit()
    return session


def add_message(session: Conversation, *, role: str, type: str, text: str = "",
                transcription: str | None = None, audio: File | None = None,
                voice_type: str | None = None, meta: dict[str, Any] | None = None) -> Message:
    message = Message(session_id=session.id, owner_id=session.owner_id, role=role, type=type,
                      text=text, transcription=transcription,
                      audio_file_id=audio.id if audio else None, voice_type=voice_type,
                      format=audio.format if audio else None,
                      duration=round(audio.duration, 3) if audio else None, meta=meta or {})
    db.session.add(message)
    session.updated_at = utcnow()
    if role == "user" and not session.title:
        session.title = title_from(text or transcription or "")
    db.session.commit()
    return message


TITLE_CHARS = 60


def title_from(said: str) -> str:
    """A conversation's title from its first user message: its start, on one line, so a
    list of conversations reads as what each was about."""
    line = " ".join(said.split())
    return line if len(line) <= TITLE_CHARS else line[:TITLE_CHARS - 1].rstrip() + "…"


def render_message(message: Message) -> dict[str, Any]:
    audio = db.session.get(File, message.audio_file_id) if message.audio_file_id else None
    return message.to_dict(files.audio_url(audio) if audio else None)


def messages_page(session: Conversation, page_no: int, page_size: int, *,
                  voice_type: str | None = None, type: str | None = None,
                  role: str | None = None) -> dict[str, Any]:
    query = select(Message).where(Message.session_id == session.id)
    key = [f"session:{session.id}"]
    for column, value in (("voice_type", voice_type), ("type", type), ("role", role)):
        if value:
            query = query.where(getattr(Message, column) == value)
            key.append(f"{column}={value}")
    query = query.order_by(Message.timestamp, Message.id)
    return paginate(query, page_no, page_size, render_message, count=("messages", "|".join(key)))


def get_message(message_id: str, owner_id: int) -> Message:
    return owned(Message, message_id, owner_id,
                 ApiError(404, "message_not_found", "MESSAGE_NOT_FOUND"))


def _audio_rows(messages: list[Message]) -> list[File]:
    ids = [m.audio_file_id for m in messages if m.audio_file_id]
    return list(db.session.scalars(select(File).where(File.id.in_(ids)))) if ids else []


def delete_message(message: Message) -> None:
    audio = _audio_rows([message])
    db.session.delete(message)
    db.session.commit()
    for row in audio:
        files.delete(row)


def delete_messages(session: Conversation) -> int:
    """Every message of a session and its audio; the session stays."""
    messages = list(db.session.scalars(select(Message).where(Message.session_id == session.id)))
    audio = _audio_rows(messages)
    db.session.execute(sql_delete(Message).where(Message.session_id == session.id))
    db.session.commit()
    for row in audio:
        files.delete(row)
    return len(messages)


def delete(session: Conversation) -> None:
    delete_messages(session)
    db.session.delete(session)
    db.session.commit()

