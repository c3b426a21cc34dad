"""Qwen chat through DashScope's official SDK, streamed as text deltas.

Settings: ``DASHSCOPE_API_KEY`` (required), ``DASHSCOPE_LLM_MODEL`` (default
``qwen-turbo``; ``ChatOptions.model`` overrides it per call), ``DASHSCOPE_TIMEOUT``
(longest wait for the next piece of the stream) and the endpoint settings read by
``dashscope_sdk``. The SDK reports failures as responses with a status other than 200;
each is checked and raised as ``ProviderError``. Network-bound: call it from green
threads under eventlet.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from dashscope import Generation

from webapp.app.providers.base import ChatModelInterface, ChatOptions, ProviderError
from webapp.app.providers.dashscope_sdk import (
    SDK_ERRORS,
    DashScopeSettings,
    about_to_call,
    provider_error,
    raise_for_status,
)

DEFAULT_MODEL = "qwen-turbo"


class QwenChatModel(ChatModelInterface):
    """Streams Qwen replies (``incremental_output``: each event carries only new text)."""

    name = "qwen"

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.settings = DashScopeSettings.from_config(config)
        self.model = str(config.get("DASHSCOPE_LLM_MODEL") or DEFAULT_MODEL)

    def is_configured(self) -> bool:
        return self.settings.configured

    def stream_chat(self, messages: list[dict[str, str]], options: ChatOptions) -> Iterator[str]:
        """Yield the reply's text deltas as DashScope sends them."""
        about_to_call(self.name, self.settings)
        if not messages:
            raise ProviderError(self.name, "bad_input", "no messages to answer")
        if options.persona and not any(m.get("role") == "system" for m in messages):
            messages = [{"role": "system", "content": options.persona}, *messages]
        try:
            responses = Generation.call(
                model=options.model or self.model, messages=messages,
                result_format="message", stream=True, incremental_output=True,
                temperature=options.temperature, max_tokens=options.max_tokens,
                **self.settings.http_kwargs(),
            )
            for response in responses:
                raise_for_status(self.name, response, "chat")
                choices = (response.output or {}).get("choices") or []
                if not choices:
                    continue
                content = choices[0]["message"].get("content")
                if isinstance(content, str) and content:
                    yield content
        except SDK_ERRORS as exc:
            raise provider_error(self.name, exc, "chat") from exc
