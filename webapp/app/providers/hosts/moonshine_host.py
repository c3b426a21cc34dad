"""The child program that holds one Moonshine model and reads audio for the web process.

Moonshine's native library crashes the whole process when two reads overlap, even on
separate models on separate threads, so each model lives in a process of its own and
reads one piece of audio at a time; a crash then ends only this child.

Arguments: the socket's file descriptor, the model folder. It says ``ready`` once the
model is loaded; then every ``read`` (body: 16 kHz 16-bit mono PCM) is answered with
``lines`` (each ``[text, start_time, is_updated]``) or ``error`` (``message``).
"""

from __future__ import annotations

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import frames  # found through the line above
import numpy as np
from moonshine_voice import ModelArch, Transcriber

# A copy of audio.SPEECH_SAMPLE_RATE: this script runs under `python -I` with only its
# own folder on the path, so it cannot import the service's packages.
SAMPLE_RATE = 16000


def serve(link: socket.socket, model_dir: str) -> None:
    model = Transcriber(model_path=model_dir, model_arch=ModelArch.TINY)
    frames.send(link, {"kind": "ready"})
    while (message := frames.receive(link)) is not None:
        _, pcm = message
        samples = (np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0).tolist()
        try:
            transcript = model.transcribe_without_streaming(samples, SAMPLE_RATE)
        except Exception as exc:  # noqa: BLE001 - reported to the web process
            frames.send(link, {"kind": "error", "message": str(exc)})
            continue
        frames.send(link, {"kind": "lines", "lines": [
            [line.text, line.start_time, line.is_updated] for line in transcript.lines]})


if __name__ == "__main__":
    connection = socket.socket(fileno=int(sys.argv[1]))
    connection.setblocking(True)  # an eventlet parent may have made the pair non-blocking
    serve(connection, sys.argv[2])
