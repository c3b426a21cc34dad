"""A role answering a voice assistant's command as its conversation agent (Home
Assistant through Wyoming): the command is one text turn of the role's conversation,
told to nobody while it runs, and the written reply is handed back when it is over.
"""

from __future__ import annotations

from typing import Any

from webapp.app.errors import ApiError
from webapp.app.services.conversation import turns
from webapp.app.services.conversation.reply_events import QuietSink
from webapp.app.services.speech import assistant_speech


def answer(text: str, session_id: str | None) -> tuple[str, str]:
    """The configured role's written reply to ``text`` in its conversation (the one
    ``session_id`` names, else a new one): the reply and the conversation's id."""
    user_id = assistant_speech.assistant_user()
    role = assistant_speech.agent_role(user_id)
    if role is None or user_id is None:
        raise ApiError(404, "role_not_found", "ROLE_NOT_FOUND")
    request = turns.TurnRequest(user_id=user_id, role_id=role.id, session_id=session_id,
                                text=text, response_type=turns.RESPONSE_TEXT)
    heard = _Silent()
    done = turns.run_turn(request, heard)
    return heard.text, done["session_id"]


class _Silent(QuietSink):
    """A turn told to nobody: the assistant gets the reply when the turn is over."""

    def __init__(self) -> None:
        self.text = ""

    def text_chunk(self, text: str) -> None:
        self.text += text

    def reply(self, payload: dict[str, Any]) -> None:
        self.text = str(payload.get("text") or self.text)
