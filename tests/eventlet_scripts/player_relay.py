"""Under eventlet: a WebSocketAudioPlayer written to from green code and from real pool
threads delivers every chunk to a real Socket.IO client, in order. Prints JSON."""

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import socketio as sio_client  # noqa: E402
from eventlet import tpool  # noqa: E402
from flask import Flask  # noqa: E402
from flask_socketio import SocketIO, join_room  # noqa: E402

from webapp.app.services.speech.audio_player import WebSocketAudioPlayer  # noqa: E402

app = Flask(__name__)
socketio = SocketIO(app, async_mode="eventlet")
ready = eventlet.event.Event()


@socketio.on("join")
def on_join(data: dict) -> None:
    join_room(data["room"])
    ready.send(True)


def play(room: str, chunks: int) -> None:
    player = WebSocketAudioPlayer(socketio.emit, room, event_name="tts_audio_chunk",
                                  format="pcm", sample_rate=16000, message_id="m1")
    player.start()
    for i in range(chunks):
        payload = bytes([i % 256]) * 64
        if i % 2:
            tpool.execute(player.write, payload)
        else:
            player.write(payload)
    tpool.execute(player.stop, "http://x/audio.mp3", 1.5)


def main() -> None:
    port = int(sys.argv[1])
    eventlet.spawn(socketio.run, app, host="127.0.0.1", port=port, log_output=False)
    eventlet.sleep(0.5)
    received: list = []
    done = eventlet.event.Event()
    client = sio_client.Client()

    @client.on("tts_audio_chunk_start")
    def _start(data: dict) -> None:
        received.append(("start", data))

    @client.on("tts_audio_chunk")
    def _chunk(data: dict) -> None:
        received.append(("chunk", data["seq"]))

    @client.on("tts_audio_chunk_end")
    def _end(data: dict) -> None:
        received.append(("end", data))
        done.send(True)

    client.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
    client.emit("join", {"room": "room-1"})
    ready.wait(10)
    started = time.time()
    eventlet.spawn(play, "room-1", 40)
    finished = done.wait(20)
    client.disconnect()
    print(json.dumps({"finished": bool(finished), "seconds": time.time() - started,
                      "events": received}))


if __name__ == "__main__":
    main()
