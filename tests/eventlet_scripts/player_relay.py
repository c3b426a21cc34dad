"""Under eventlet: a reply's audio written from green code and from real pool threads
(a turn's sink and its WebSocketAudioPlayer) reaches a real Socket.IO client in order,
and the reply's completion, told from green code, comes after its audio. Prints JSON."""

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import socketio as sio_client  # noqa: E402
from eventlet import tpool  # noqa: E402
from flask import Flask  # noqa: E402
from flask_socketio import SocketIO, join_room  # noqa: E402

from webapp.app.services.conversation.reply_events import ReplyEvents  # noqa: E402

app = Flask(__name__)
socketio = SocketIO(app, async_mode="eventlet")
ready = eventlet.event.Event()


@socketio.on("join")
def on_join(data: dict) -> None:
    join_room(data["room"])
    ready.send(True)


def play(room: str, chunks: int) -> None:
    sink = ReplyEvents(lambda event, data, **_: socketio.emit(event, data, room=room), room)
    sink.audio_start("pcm", 16000, "m1")
    for i in range(chunks):
        payload = bytes([i % 256]) * 64
        if i % 2:
            tpool.execute(sink.audio_chunk, payload)
        else:
            sink.audio_chunk(payload)
    tpool.execute(sink.audio_end, "http://x/audio.mp3", 1.5, None)
    sink.complete({"message_id": "m1"})


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

    @client.on("response_complete")
    def _complete(data: dict) -> None:
        received.append(("complete", data))
        done.send(True)

    client.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
    client.emit("join", {"room": "room-1"})
    ready.wait(10)
    started = time.time()
    eventlet.spawn(play, "room-1", 40)
    finished = done.wait(20)
    eventlet.sleep(0.5)  # anything still relayed after the completion arrives meanwhile
    client.disconnect()
    print(json.dumps({"finished": bool(finished), "seconds": time.time() - started,
                      "events": received}))


if __name__ == "__main__":
    main()
