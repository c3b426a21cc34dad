"""An offline, deterministic stand-in for an LLM, for deployments without one.

It never pretends to think: the first sentence of every reply says it is a scripted
responder and not a language model. It then acknowledges what the user said and adds
a few short lines in the role's character, in the language of the user's last message
(Chinese if it contains CJK characters, English otherwise). The same conversation
always gets the same reply, streamed in pieces of 2–6 characters, optionally paced by
``SCRIPTED_LLM_DELAY`` seconds per piece (default 0) to mimic a real model's stream.

Persona convention: the first system message describes the role. A line
``Name: …`` or ``角色: …`` (either colon, ``:`` or ``：``) names it; every other line is
the role's description. Without a name line the role is called "your assistant" /
"你的助手". Without a system message, ``ChatOptions.persona`` is read the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from webapp.app.concurrency import sleep
from webapp.app.providers.base import ChatModelInterface, ChatOptions
from webapp.app.sentences import first_sentence

_NAME_LINE = re.compile(r"^\s*(?:name|角色|名字|姓名)\s*[:：]\s*(?P<name>.+?)\s*$",
                        re.IGNORECASE | re.MULTILINE)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")
_SPACES = re.compile(r"\s+")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")

_EN_QUESTION = (
    "That is a fair question, and a real model could answer it properly.",
    "Good question; I can only note it, not reason about it.",
    "I hear the question, though a script cannot work out an answer.",
)
_EN_STATEMENT = (
    "Thank you for telling me.",
    "I have noted that.",
    "That sounds worth talking about.",
)
_EN_CLOSING = (
    "Connect a language model to hear my real answer.",
    "Tell me more, and I will keep listening.",
    "Ask the operator to configure an LLM for a real conversation.",
)
_ZH_QUESTION = (
    "这是个好问题，真正的语言模型才能认真回答。",
    "我记下了这个问题，但脚本没法推理出答案。",
    "这个问题我听到了，可惜我只能按脚本回复。",
)
_ZH_STATEMENT = (
    "谢谢你告诉我。",
    "我记下了。",
    "这件事值得聊一聊。",
)
_ZH_CLOSING = (
    "接入语言模型后，我才能真正回答你。",
    "请继续说，我在听。",
    "请管理员配置大语言模型，就能真正对话了。",
)


def _text(content: Any) -> str:
    """Message content as text; OpenAI-style part lists keep their text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def parse_persona(system: str) -> tuple[str | None, str]:
    """Split a persona into the role's name (from a ``Name:``/``角色:`` line) and the rest."""
    match = _NAME_LINE.search(system)
    name = match.group("name") if match else None
    description = _NAME_LINE.sub("", system)
    return name, _SPACES.sub(" ", description).strip()


def _shorten(text: str, limit: int) -> str:
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _in_first_person(trait: str) -> str:
    """Personas are often written to the model ("You are …"); the role speaks as "I"."""
    trait = re.sub(r"^you are\b", "I am", trait, flags=re.IGNORECASE)
    return re.sub(r"^你是", "我是", trait)


def _reads_as(trait: str, chinese: bool) -> bool:
    """Whether the persona's line is all in the reply's language: a Chinese reply never
    quotes an English persona ("我的设定：I am 小雨"), nor an English reply a Chinese one."""
    if not trait:
        return False
    if chinese:
        return bool(_CJK.search(trait)) and not _LATIN_WORD.search(trait)
    return not _CJK.search(trait)


def _quoted(said: str, chinese: bool) -> str:
    ends = (".", "!", "?", "。", "！", "？", "…")
    if chinese:
        return f"你说：“{said}”" + ("" if said.endswith(ends) else "。")
    return f'You said: "{said}"' + ("" if said.endswith(ends) else ".")


class ScriptedChatModel(ChatModelInterface):
    """Always configured; replies from templates, never from a model."""

    name = "scripted"
    model = "scripted-responder"

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.delay = float(config.get("SCRIPTED_LLM_DELAY") or 0.0)
        # A hosted model's first token takes 300–800 ms; this adds that before the first piece.
        self.first_delay = float(config.get("SCRIPTED_LLM_FIRST_DELAY") or 0.0)

    def is_configured(self) -> bool:
        return True

    def reply(self, messages: list[dict[str, str]], options: ChatOptions) -> str:
        """The whole reply, decided only by the persona and the user's last message."""
        system = next((_text(m.get("content")) for m in messages if m.get("role") == "system"),
                      options.persona or "")
        user = next((_text(m.get("content")) for m in reversed(messages)
                     if m.get("role") == "user"), "")
        name, description = parse_persona(system)
        chinese = bool(_CJK.search(user))
        question = user.strip().endswith(("?", "？", "吗", "呢"))
        seed = hashlib.sha256(f"{system}\x00{user}".encode()).digest()
        middle = (_ZH_QUESTION if question else _ZH_STATEMENT) if chinese else (
            _EN_QUESTION if question else _EN_STATEMENT)
        closing = _ZH_CLOSING if chinese else _EN_CLOSING
        trait = _in_first_person(_shorten(first_sentence(description), 60)).rstrip("。.!！")
        said = _shorten(user, 60)
        if chinese:
            role = name or "你的助手"
            parts = [f"我是脚本应答程序，不是语言模型，现在以{role}的身份回复。"]
            parts.append(_quoted(said, True) if said else "你还什么都没说。")
            parts.append(middle[seed[0] % 3])
            parts.append(f"我的设定：{trait}。" if _reads_as(trait, chinese=True)
                         else f"我会继续扮演{role}。")
            parts.append(closing[seed[1] % 3])
            return "".join(parts)
        role = name or "your assistant"
        parts = [f"I am a scripted responder, not a language model, speaking as {role}."]
        parts.append(_quoted(said, False) if said else "You have not said anything yet.")
        parts.append(middle[seed[0] % 3])
        parts.append(f"My character: {trait}." if _reads_as(trait, chinese=False)
                     else f"I will stay in character as {role}.")
        parts.append(closing[seed[1] % 3])
        return " ".join(parts)

    def stream_chat(self, messages: list[dict[str, str]], options: ChatOptions) -> Iterator[str]:
        text = self.reply(messages, options)
        sizes = hashlib.sha256(text.encode()).digest()
        position = 0
        index = 0
        if self.first_delay > 0:
            sleep(self.first_delay)
        while position < len(text):
            size = 2 + sizes[index % len(sizes)] % 5
            yield text[position:position + size]
            position += size
            index += 1
            if self.delay > 0:
                sleep(self.delay)
