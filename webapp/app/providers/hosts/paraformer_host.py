"""The child program that runs Paraformer real-time recognition for one web process.

The ``dashscope`` SDK runs each recognition on threads of its own with an asyncio loop on
one of them. In an eventlet process those threads are green and share one OS thread, so
only one recognition could run at a time; here, in a plain process, every recognition
runs on real threads beside the others.

Messages in (``frames``): ``open`` (``id``, ``model``, ``sample_rate``, ``options``,
``api_key``, ``url``, ``timeout``), ``audio`` (``id``, PCM body), ``finish`` (``id``).
Messages out: ``sentence`` (``id``, the SDK's sentence), ``error`` (``id``, ``status_code``,
``code``, ``message``, or ``exception`` for one raised), ``done`` (``id``: the task is
over and nothing more will come for it). The process ends when its socket closes.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import frames  # found through the line above
from dashscope.audio.asr import (
    Recognition,
    RecognitionCallback,
    RecognitionResult,
)


class Host:
    """The open recognitions, and the socket to the web process (one writer at a time)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.write_lock = threading.Lock()
        self.tasks: dict[int, Task] = {}

    def send(self, header: dict[str, Any]) -> None:
        with self.write_lock:
            try:
                frames.send(self.sock, header)
            except OSError:
                os._exit(0)  # the web process is gone

    def serve(self) -> None:
        while (message := frames.receive(self.sock)) is not None:
            header, body = message
            task_id = int(header["id"])
            if header["kind"] == "open":
                task = Task(self, task_id)
                self.tasks[task_id] = task
                task.start(header)
            elif (task := self.tasks.get(task_id)) is not None:
                if header["kind"] == "audio":
                    task.audio(body)
                elif header["kind"] == "finish":
                    del self.tasks[task_id]
                    threading.Thread(target=task.finish, daemon=True).start()
        # Recognitions still open have no one to answer to.
        os._exit(0)


class Task(RecognitionCallback):
    """One recognition; the SDK calls back on its own threads."""

    def __init__(self, host: Host, task_id: int) -> None:
        super().__init__()
        self.host, self.id = host, task_id
        self.recognition: Recognition | None = None
        self.failed = False

    def start(self, request: dict[str, Any]) -> None:
        kwargs: dict[str, Any] = {"api_key": request["api_key"],
                                  "request_timeout": request["timeout"]}
        if request.get("url"):
            kwargs["base_address"] = request["url"]
        try:
            self.recognition = Recognition(model=request["model"], callback=self,
                                           format="pcm", sample_rate=request["sample_rate"],
                                           **kwargs)
            self.recognition.start(**request.get("options") or {})
        except Exception as exc:  # noqa: BLE001 - reported to the web process
            self.raised(exc)

    def raised(self, exc: Exception) -> None:
        if not self.failed:
            self.failed = True
            self.host.send({"kind": "error", "id": self.id,
                            "exception": exc.__class__.__name__, "message": str(exc)})

    def audio(self, pcm: bytes) -> None:
        if self.recognition is None or self.failed:
            return
        try:
            self.recognition.send_audio_frame(pcm)
        except Exception as exc:  # noqa: BLE001 - stopped by a failure already reported
            self.raised(exc)

    def finish(self) -> None:
        """End the task: the SDK sends what is left, waits for the service's last
        sentences (they arrive through ``on_event``), then this says it is done."""
        try:
            if self.recognition is not None:
                self.recognition.stop()
        except Exception:  # noqa: BLE001 - already stopped by a failure
            pass
        self.host.send({"kind": "done", "id": self.id})

    def on_event(self, result: RecognitionResult) -> None:
        sentence = result.get_sentence()
        if isinstance(sentence, dict):
            self.host.send({"kind": "sentence", "id": self.id, "sentence": sentence})

    def on_error(self, result: RecognitionResult) -> None:
        self.failed = True
        self.host.send({"kind": "error", "id": self.id, "status_code": result.status_code,
                        "code": result.code, "message": result.message})


if __name__ == "__main__":
    link = socket.socket(fileno=int(sys.argv[1]))
    link.setblocking(True)  # an eventlet parent made the pair non-blocking
    Host(link).serve()
