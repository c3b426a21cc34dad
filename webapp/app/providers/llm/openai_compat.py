"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, LM Studio, DashScope's
compatible mode…) through the ``openai`` package, streamed.

Settings: ``LLM_BASE_URL`` and ``LLM_MODEL`` (both required to count as configured),
``LLM_API_KEY`` (optional for endpoints without auth) and ``LLM_TIMEOUT`` (seconds,
default 60). The client never retries on its own: errors come back at once as
``ProviderError`` with ``transient`` set where a retry may help, so the caller decides.
Network-bound, so it runs on green threads under eventlet (its lock is green there).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from webapp.app.concurrency import before_wait
from webapp.app.providers.base import ChatModelInterface, ChatOptions, ProviderError


class OpenAICompatibleChatModel(ChatModelInterface):
    """Streams chat completions from ``LLM_BASE_URL``."""

    name = "openai"

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.base_url = str(config.get("LLM_BASE_URL") or "").rstrip("/")
        self.api_key = str(config.get("LLM_API_KEY") or "")
        self.model = str(config.get("LLM_MODEL") or "")
        self.timeout = float(config.get("LLM_TIMEOUT") or 60.0)
        self._client: Any = None
        self._lock = threading.Lock()

    def is_configured(self) -> bool:
        return bool(self.base_url and self.model)

    def _get_client(self) -> Any:
        if not self.is_configured():
            raise ProviderError(self.name, "not_configured", "set LLM_BASE_URL and LLM_MODEL")
        with self._lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    base_url=self.base_url, api_key=self.api_key or "unused",
                    timeout=self.timeout, max_retries=0,
                )
            return self._client

    def _error(self, exc: Exception) -> ProviderError:
        """Translate the ``openai`` package's exceptions into the service's error kinds."""
        import openai

        where = f"LLM endpoint {self.base_url}"
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError(self.name, "timeout", f"{where} did not answer in time",
                                 transient=True)
        if isinstance(exc, openai.APIConnectionError):
            return ProviderError(self.name, "timeout", f"cannot connect to {where}",
                                 transient=True)
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return ProviderError(self.name, "auth", f"{where} refused the API key (LLM_API_KEY)")
        if isinstance(exc, openai.RateLimitError):
            code = getattr(exc, "code", None)
            if code == "insufficient_quota":
                return ProviderError(self.name, "quota", f"{where}: quota used up")
            return ProviderError(self.name, "quota", f"{where} is rate limiting requests",
                                 transient=True)
        if isinstance(exc, openai.NotFoundError):
            return ProviderError(self.name, "not_configured",
                                 f"{where} has no model {self.model!r} (LLM_MODEL)")
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code >= 500:
                return ProviderError(self.name, "unavailable",
                                     f"{where} failed with HTTP {exc.status_code}",
                                     transient=True)
            return ProviderError(self.name, "bad_input",
                                 f"{where} rejected the request (HTTP {exc.status_code})")
        return ProviderError(self.name, "task_failed", f"{where}: {exc}")

    def stream_chat(self, messages: list[dict[str, str]], options: ChatOptions) -> Iterator[str]:
        """Yield the reply's text deltas as the endpoint sends them."""
        import openai

        client = self._get_client()
        before_wait(f"LLM endpoint {self.base_url}")
        if options.persona and not any(m.get("role") == "system" for m in messages):
            messages = [{"role": "system", "content": options.persona}, *messages]
        try:
            stream = client.chat.completions.create(
                model=options.model or self.model, messages=messages, stream=True,
                temperature=options.temperature, max_tokens=options.max_tokens,
            )
            with stream:
                for chunk in stream:
                    delta = chunk.choices[0].delta.content if chunk.choices else None
                    if delta:
                        yield delta
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
