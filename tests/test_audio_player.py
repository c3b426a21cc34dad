"""WebSocketAudioPlayer: events, payloads, order — also under eventlet with
writes coming from real OS threads."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

from tests.helpers.paths import ROOT
from tests.helpers.processes import free_port
from webapp.app.services import WebSocketAudioPlayer


def test_start_write_stop_emit_start_chunk_end_events_to_the_room() -> None:
    sent: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    player = WebSocketAudioPlayer(lambda event, data, **kw: sent.append((event, data, kw)),
                                  "session-9", event_name="tts_audio_chunk", namespace="/chat",
                                  format="mp3", sample_rate=22050, message_id=7)
    player.start()
    player.write(b"\x01\x02")
    player.write(b"")
    player.write(b"\x03")
    player.stop(audio_url="http://h/a.mp3", duration=1.25)
    player.write(b"late")
    assert [event for event, _, _ in sent] == ["tts_audio_chunk_start", "tts_audio_chunk",
                                               "tts_audio_chunk", "tts_audio_chunk_end"]
    assert all(kw == {"room": "session-9", "namespace": "/chat"} for _, _, kw in sent)
    assert sent[0][1] == {"format": "mp3", "sample_rate": 22050, "message_id": 7}
    assert base64.b64decode(sent[1][1]["audio_data"]) == b"\x01\x02"
    assert [sent[1][1]["seq"], sent[2][1]["seq"]] == [0, 1]
    assert sent[3][1]["audio_url"] == "http://h/a.mp3" and sent[3][1]["chunks"] == 2


def test_default_event_name_is_audio_chunk() -> None:
    sent: list[str] = []
    player = WebSocketAudioPlayer(lambda event, data, **kw: sent.append(event), "s")
    player.write(b"x")
    player.stop(reason="interrupted")
    assert sent == ["audio_chunk_start", "audio_chunk", "audio_chunk_end"]


def test_a_reply_written_from_real_threads_arrives_in_order_under_eventlet() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.eventlet_scripts.player_relay", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["finished"], result.stderr[-2000:]
    events = report["events"]
    assert events[0][0] == "start" and [kind for kind, _ in events[-2:]] == ["end", "complete"]
    assert [seq for kind, seq in events if kind == "chunk"] == list(range(40))
    assert events[-2][1]["audio_url"] == "http://x/audio.mp3"
