"""A tiny OpenAI-compatible chat server that the ``openai`` package talks to unchanged.

* ``POST /v1/chat/completions`` — bearer auth; streamed (SSE) or whole replies. The
  reply is ``Echo: <last user message>``, or ``--reply`` when given.
* ``GET /v1/models`` — the one model it serves is whatever the client asks for.
* ``POST /__control`` ``{"status": 429, "count": 1}`` makes the next ``count`` chat
  calls fail with that HTTP status (OpenAI's error body); ``{"delay": 2.0, "count": 1}``
  makes them wait first; ``{"fault": "mid_stream" | "stall", "hold": 30, "count": 1}``
  breaks their stream after a third of it (an error event, or ``hold`` seconds of
  silence). With ``"streams_only": true`` a status or delay waits for a streamed call
  (a turn's reply), so a whole-reply call made meanwhile (a conversation's summary,
  queued by an earlier turn) does not take it. ``GET /__stats`` lists the request
  bodies, ``POST /__reset`` clears faults and history.

Run it with ``python -m tests.fakes.fake_openai --port 0``: it prints one line
``READY <port>`` on stdout once it listens. ``start_fake_openai`` does that in a
subprocess, so that an eventlet-patched test process never hosts the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.process import FakeProcess, launch, serve

DEFAULT_API_KEY = "test-key"
_ERRORS = {
    400: ("invalid_request_error", "bad_request", "Bad request"),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided"),
    403: ("permission_denied", "permission_denied", "Permission denied"),
    404: ("invalid_request_error", "model_not_found", "The model does not exist"),
    429: ("rate_limit_error", "rate_limit_exceeded", "Rate limit reached for requests"),
    500: ("server_error", "server_error", "The server had an error"),
    503: ("server_error", "overloaded", "The server is overloaded"),
}


@dataclass
class _State:
    api_key: str
    reply: str | None
    chunk_delay: float
    fail_status: int | None = None
    fail_count: int = 0
    delay: float = 0.0
    delay_count: int = 0
    fault: str | None = None
    fault_count: int = 0
    hold: float = 30.0
    streams_only: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)

    def take_fault(self) -> str | None:
        if self.fault_count <= 0:
            return None
        self.fault_count -= 1
        return self.fault


def _error(status: int, message: str | None = None) -> web.Response:
    kind, code, default = _ERRORS.get(status, ("server_error", "error", f"HTTP {status}"))
    body = {"error": {"message": message or default, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


def _reply_text(state: _State, messages: list[dict[str, Any]]) -> str:
    if state.reply is not None:
        return state.reply
    user = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    return f"Echo: {user if isinstance(user, str) else json.dumps(user)}"


def _pieces(text: str) -> list[str]:
    """Words with their following space, so the deltas join back to ``text``."""
    parts = text.split(" ")
    return [part + " " for part in parts[:-1]] + [parts[-1]]


async def _chat(request: web.Request) -> web.StreamResponse:
    state: _State = request.app["state"]
    if request.headers.get("Authorization", "") != f"Bearer {state.api_key}":
        return _error(401)
    try:
        body = await request.json()
    except json.JSONDecodeError:
        return _error(400, "body is not JSON")
    state.requests.append(body)
    faulted = bool(body.get("stream")) or not state.streams_only
    if faulted and state.delay_count > 0:
        state.delay_count -= 1
        await asyncio.sleep(state.delay)
    if faulted and state.fail_count > 0 and state.fail_status is not None:
        state.fail_count -= 1
        return _error(state.fail_status)
    messages = body.get("messages")
    model = body.get("model")
    if not isinstance(messages, list) or not messages or not model:
        return _error(400, "'model' and a non-empty 'messages' list are required")
    text = _reply_text(state, messages)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if not body.get("stream"):
        return web.json_response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                    }
                ],
                "usage": {
                    "prompt_tokens": sum(len(str(m.get("content", ""))) for m in messages),
                    "completion_tokens": len(text.split()),
                    "total_tokens": 0,
                },
            }
        )
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)

    async def send(delta: dict[str, Any], finish: str | None = None) -> None:
        chunk = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        await response.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())

    fault = state.take_fault()
    await send({"role": "assistant", "content": ""})
    pieces = _pieces(text)
    cut = max(1, len(pieces) // 3) if fault else len(pieces)
    for number, piece in enumerate(pieces):
        if number >= cut:
            if fault == "stall":
                await asyncio.sleep(state.hold)
                return response
            error = {"error": {"message": "The server had an error while streaming",
                               "type": "server_error", "param": None, "code": "server_error"}}
            await response.write(f"data: {json.dumps(error)}\n\n".encode())
            await response.write_eof()
            return response
        if state.chunk_delay:
            await asyncio.sleep(state.chunk_delay)
        await send({"content": piece})
    await send({}, "stop")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def _models(request: web.Request) -> web.Response:
    state: _State = request.app["state"]
    if request.headers.get("Authorization", "") != f"Bearer {state.api_key}":
        return _error(401)
    return web.json_response(
        {
            "object": "list",
            "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "tests"}],
        }
    )


async def _control(request: web.Request) -> web.Response:
    state: _State = request.app["state"]
    body = await request.json()
    count = int(body.get("count") or 1)
    state.streams_only = bool(body.get("streams_only"))
    if body.get("status") is not None:
        state.fail_status, state.fail_count = int(body["status"]), count
    if body.get("delay") is not None:
        state.delay, state.delay_count = float(body["delay"]), count
    if body.get("fault") is not None:
        if body["fault"] not in ("mid_stream", "stall"):
            return _error(400, "fault must be mid_stream or stall")
        state.fault, state.fault_count = body["fault"], count
        state.hold = float(body.get("hold") or 30.0)
    return web.json_response({"ok": True})


async def _stats(request: web.Request) -> web.Response:
    state: _State = request.app["state"]
    return web.json_response({"count": len(state.requests), "requests": state.requests})


async def _reset(request: web.Request) -> web.Response:
    state: _State = request.app["state"]
    state.fail_status, state.fail_count = None, 0
    state.delay, state.delay_count = 0.0, 0
    state.fault, state.fault_count = None, 0
    state.streams_only = False
    state.requests.clear()
    return web.json_response({"ok": True})


def build_app(api_key: str, reply: str | None, chunk_delay: float) -> web.Application:
    app = web.Application()
    app["state"] = _State(api_key=api_key, reply=reply, chunk_delay=chunk_delay)
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_get("/v1/models", _models)
    app.router.add_post("/__control", _control)
    app.router.add_get("/__stats", _stats)
    app.router.add_post("/__reset", _reset)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--reply", default=None, help="fixed reply instead of the echo")
    parser.add_argument(
        "--chunk-delay", type=float, default=0.0, help="seconds between streamed pieces"
    )
    args = parser.parse_args(argv)
    asyncio.run(serve(build_app(args.api_key, args.reply, args.chunk_delay), args.host,
                      args.port))


class FakeOpenAI(FakeProcess):
    """A running fake server subprocess: ``base_url`` and ``api_key`` to give a client."""

    def __init__(
        self, process: subprocess.Popen[bytes], port: int, api_key: str, log_path: Path
    ) -> None:
        super().__init__(process, port, api_key, log_path)
        self.base_url = f"{self.root_url}/v1"

    def fail_next(self, status: int, count: int = 1, streams_only: bool = False) -> None:
        """Make the next ``count`` chat calls (streamed ones only, with ``streams_only``)
        answer with HTTP ``status``."""
        self._call("POST", "/__control", {"status": status, "count": count,
                                          "streams_only": streams_only})

    def delay_next(self, seconds: float, count: int = 1, streams_only: bool = False) -> None:
        """Make the next ``count`` chat calls (streamed ones only, with ``streams_only``)
        wait ``seconds`` before answering."""
        self._call("POST", "/__control", {"delay": seconds, "count": count,
                                          "streams_only": streams_only})

    def break_next(self, fault: str, count: int = 1, hold: float = 30.0) -> None:
        """Break the next ``count`` streams after a third: ``mid_stream`` or ``stall``."""
        self._call("POST", "/__control", {"fault": fault, "count": count, "hold": hold})


def start_fake_openai(
    *,
    api_key: str = DEFAULT_API_KEY,
    port: int = 0,
    reply: str | None = None,
    chunk_delay: float = 0.0,
    startup_timeout: float = 30.0,
) -> FakeOpenAI:
    """Start the fake in a subprocess and wait until it listens."""
    args = ["--port", str(port), "--api-key", api_key, "--chunk-delay", str(chunk_delay)]
    if reply is not None:
        args += ["--reply", reply]
    process, port, log_path = launch("tests.fakes.fake_openai", args, startup_timeout)
    return FakeOpenAI(process, port, api_key, log_path)


if __name__ == "__main__":
    main()
