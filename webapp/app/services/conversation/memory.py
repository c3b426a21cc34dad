"""A conversation's memory: its recent turns verbatim, and a rolling summary of all of
it that a background task updates after each reply."""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import func, select

from webapp.app.extensions import db
from webapp.app.models import Conversation, Message
from webapp.app.providers.base import ChatOptions
from webapp.app.sentences import first_sentence

log = logging.getLogger(__name__)

SUMMARY_LIMIT = 600
SUMMARY_TASK = "chat.summarize"
"""The task that runs ``update_summary`` after a reply (``webapp.app.tasks.summary``)."""


def _said(message: Message) -> str:
    return (message.text or message.transcription or "").strip()


def recent_turns(session_id: str, count: int) -> list[dict[str, str]]:
    """The last ``count`` messages as LLM chat messages, oldest first."""
    rows = db.session.scalars(select(Message).where(Message.session_id == session_id)
                              .order_by(Message.timestamp.desc(), Message.id.desc())
                              .limit(count)).all()
    return [{"role": row.role, "content": _said(row)} for row in reversed(rows) if _said(row)]


def extractive_summary(previous: str, messages: list[Message]) -> str:
    """A summary without a language model: the first sentence of each new message,
    appended to the previous summary and trimmed from the front to a fixed length."""
    parts = [previous] if previous else []
    for message in messages:
        said = _said(message)
        if not said:
            continue
        speaker = "用户" if message.role == "user" else "角色"
        parts.append(f"{speaker}：{first_sentence(said)}")
    summary = " ".join(parts)
    return summary[-SUMMARY_LIMIT:]


def update_summary(session_id: str) -> str | None:
    """Fold the messages since the last summary into it."""
    session = db.session.get(Conversation, session_id)
    if session is None:
        return None
    total = db.session.scalar(select(func.count()).select_from(Message)
                              .where(Message.session_id == session_id)) or 0
    if total <= session.summary_turns:
        return session.summary
    new = db.session.scalars(select(Message).where(Message.session_id == session_id)
                             .order_by(Message.timestamp, Message.id)
                             .offset(session.summary_turns)).all()
    llm = current_app.extensions["providers"].llm()
    if llm.name == "scripted":
        summary = extractive_summary(session.summary, list(new))
    else:
        transcript = "\n".join(f"{m.role}: {_said(m)}" for m in new if _said(m))
        prompt = [{"role": "system", "content": "Summarize the conversation in at most four "
                   "sentences, keeping names, facts and promises. Use the conversation's "
                   "language."},
                  {"role": "user", "content": f"Earlier summary: {session.summary or '-'}\n"
                   f"New messages:\n{transcript}"}]
        summary = llm.chat(prompt, ChatOptions(max_tokens=300)).strip()[:SUMMARY_LIMIT]
    session.summary = summary
    session.summary_turns = total
    db.session.commit()
    log.info("session %s summary updated (%d messages)", session_id, total)
    return summary
