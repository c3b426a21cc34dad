"""The console at ``/`` in headless Chromium against the real web process.

What the page saw (streamed chunks, scheduled audio, jobs) is read from
``window.__console``; what the server stored is checked over REST with the page's token.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
import srt
import webvtt

try:
    from playwright.sync_api import expect
except ImportError:  # the fixtures skip (or fail under REQUIRE_SERVICES) without Playwright
    expect = None

PASSWORD = "s3cret-pass"
PIPER_VOICE = "piper:en_US-joe-medium"
REPLY_SECONDS = 120
HISTORY_PATH = re.compile(r"/api/sessions/[^/?]+/messages")
SPOKEN_WORDS = {"morning", "everyone", "today", "trip", "mountains", "walked", "hours", "river"}


# ---- steps shared by the tests ------------------------------------------------------------

def sign_up(page: Any, username: str) -> None:
    page.fill("#login-username", username)
    page.fill("#login-password", PASSWORD)
    page.click("#register-submit")
    # A new account lands on Talk, with a starter role to talk to.
    expect(page.locator("#screen-talk")).to_be_visible()
    expect(page.locator("#user-name")).to_have_text(username)


def rest(page: Any, server: str, method: str, path: str, lang: str = "zh-CN",
         **kwargs: Any) -> requests.Response:
    """Call the API as the signed-in page does (its token, its language)."""
    token = page.evaluate("localStorage.getItem('tingshuo.access_token')")
    headers = {"Accept-Language": lang}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, f"{server}{path}", headers=headers, timeout=30, **kwargs)


def go(page: Any, screen: str) -> None:
    page.click(f"#nav a[data-screen={screen}]")
    expect(page.locator(f"#screen-{screen}")).to_be_visible()


def create_role(page: Any, name: str, description: str, voice_type: str = PIPER_VOICE) -> None:
    go(page, "roles")
    page.wait_for_selector(f"#role-voice option[value='{voice_type}']", state="attached")
    page.fill("#role-name", name)
    page.fill("#role-description", description)
    page.select_option("#role-gender", "女")
    page.fill("#role-age", "28")
    page.select_option("#role-voice", voice_type)
    page.click("#role-submit")
    expect(page.locator("#roles-list .role-item .role-name", has_text=name)).to_be_visible()


# The page's stream player given three 0.2 s chunks at once (each scheduled to start as
# the one before ends), then, once they have played, a fourth (late: after a gap).
PLAYER_ON_TIME_THEN_LATE = """async () => {
  const { PcmStreamPlayer, audioTime } = await import("/static/console/audio.js");
  const player = new PcmStreamPlayer();
  player.begin(16000);
  const chunk = () => new Uint8Array(16000 * 2 / 5);
  for (const seq of [0, 1, 2]) player.push(chunk(), seq);
  const playedOut = player.stats.timeline[2].end + 0.05;
  while (audioTime() < playedOut) await new Promise((done) => setTimeout(done, 50));
  player.push(chunk(), 3);
  const result = { timeline: player.stats.timeline, underruns: player.stats.underruns };
  player.stop();
  return result;
}"""


def talk_stats(page: Any) -> dict[str, Any]:
    return page.evaluate("""() => {
      const s = window.__console.talk;
      return {
        connection: s.connection, sessionId: s.sessionId, joins: s.joins,
        textChunks: s.textChunks, replyText: s.replyText, replies: s.replies,
        textShownWhileStreaming: s.textShownWhileStreaming,
        chunkStarts: s.chunkStarts, chunkEnds: s.chunkEnds, sampleRate: s.sampleRate,
        chunksReceived: s.chunksReceived, chunksScheduled: s.chunksScheduled,
        lastChunkEnd: s.lastChunkEnd, lastResponse: s.lastResponse, lastComplete: s.lastComplete,
        asr: s.asr, errors: s.errors, interrupts: s.interrupts,
        audio: JSON.parse(JSON.stringify(s.audio)),
      };
    }""")


def audio_playing(page: Any, selector: str) -> None:
    """The <audio> element plays: not paused, and its clock moves."""
    page.wait_for_function(
        """(selector) => {
          const audio = document.querySelector(selector);
          return audio && audio.readyState >= 2 && !audio.paused && audio.currentTime > 0.15;
        }""", arg=selector, timeout=20000)


def canvas_has_waveform(page: Any, selector: str) -> int:
    """How many pixel columns of the canvas have something drawn at 20 % of its height."""
    return page.evaluate("""(selector) => {
      const canvas = document.querySelector(selector);
      const g = canvas.getContext('2d');
      const row = Math.floor(canvas.height * 0.3);
      const data = g.getImageData(0, row, canvas.width, 1).data;
      let columns = 0;
      for (let x = 0; x < canvas.width; x += 1) if (data[x * 4 + 3] > 0) columns += 1;
      return columns;
    }""", selector)


def no_horizontal_scroll(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


# ---- tests ---------------------------------------------------------------------------------

def test_sign_up_log_out_and_log_in(open_page: Any, server: str, username: str,
                                    screenshot: Any) -> None:
    page = open_page()
    expect(page.locator("#screen-login h1")).to_have_text("欢迎使用听说")
    screenshot(page, "login")

    sign_up(page, username)
    assert page.evaluate("localStorage.getItem('tingshuo.access_token')")
    assert rest(page, server, "GET", "/api/auth/me").json()["data"]["username"] == username

    # Signing up twice: the envelope's message is what the page shows.
    page.click("#logout")
    expect(page.locator("#screen-login")).to_be_visible()
    assert page.evaluate("localStorage.getItem('tingshuo.access_token')") is None
    page.fill("#login-username", username)
    page.fill("#login-password", PASSWORD)
    page.click("#register-submit")
    taken = requests.post(f"{server}/api/auth/register", json={"username": username,
                          "password": PASSWORD}, headers={"Accept-Language": "zh-CN"}, timeout=10)
    assert taken.status_code == 409
    expect(page.locator("#login-status")).to_have_text(taken.json()["message"])

    page.fill("#login-password", "wrong-password")
    page.click("#login-submit")
    wrong = requests.post(f"{server}/api/auth/login", json={"username": username,
                          "password": "wrong-password"}, headers={"Accept-Language": "zh-CN"},
                          timeout=10)
    assert wrong.status_code == 401
    expect(page.locator("#login-status")).to_have_text(wrong.json()["message"])

    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#nav")).to_be_visible()
    expect(page.locator("#user-name")).to_have_text(username)

    # The token is kept in the browser: a reload stays signed in.
    page.reload()
    page.wait_for_function("window.__console && window.__console.ready")
    expect(page.locator("#screen-talk")).to_be_visible()

    # An access token the server refuses is renewed with the refresh token.
    page.evaluate("localStorage.setItem('tingshuo.access_token', 'not-a-valid-token')")
    page.reload()
    page.wait_for_function("window.__console && window.__console.ready")
    expect(page.locator("#screen-talk")).to_be_visible()
    renewed = page.evaluate("localStorage.getItem('tingshuo.access_token')")
    assert renewed != "not-a-valid-token"
    assert rest(page, server, "GET", "/api/auth/me").status_code == 200

    # Without a usable refresh token either, the sign-in screen explains why.
    page.evaluate("localStorage.setItem('tingshuo.access_token', 'not-a-valid-token');"
                  "localStorage.setItem('tingshuo.refresh_token', 'not-valid-either')")
    page.reload()
    expect(page.locator("#screen-login")).to_be_visible()
    expect(page.locator("#login-status")).to_have_text("登录已过期，请重新登录。")


def test_roles_create_edit_list_and_delete(open_page: Any, server: str, username: str,
                                           screenshot: Any) -> None:
    page = open_page()
    sign_up(page, username)
    go(page, "roles")

    # Rules are explained before anything is sent.
    page.fill("#role-name", "Li")
    page.fill("#role-description", "short")
    page.click("#role-submit")
    expect(page.locator("#role-status")).to_have_text("人设描述至少 10 个字符。")

    create_role(page, "小雨", "一位热情的导游，说话简短、亲切，喜欢讲山里的故事。",
                voice_type="espeak:cmn+f3")
    create_role(page, "Ada", "A cheerful mountain guide who answers briefly and kindly.")
    user_id = page.evaluate("JSON.parse(localStorage.getItem('tingshuo.user')).id")
    mine = rest(page, server, "GET", f"/api/role/user/{user_id}").json()["data"]
    assert {role["name"] for role in mine["list"]} == {"小听", "小雨", "Ada"}  # 小听: the starter
    ada = next(role for role in mine["list"] if role["name"] == "Ada")
    assert ada["voice_type"] == PIPER_VOICE and ada["gender"] == "女" and ada["age"] == 28

    item = page.locator("#roles-list .role-item", has_text="Ada")
    expect(item).to_contain_text("Joe")  # the voice's name, not its id
    item.get_by_role("button", name="编辑").click()
    expect(page.locator("#role-form-title")).to_have_text("编辑角色：Ada")
    assert ada["is_public"] is False
    expect(page.locator("#role-public")).not_to_be_checked()
    page.fill("#role-age", "31")
    page.fill("#role-name", "Ada Lovelace")
    page.check("#role-public")
    page.click("#role-submit")
    expect(page.locator("#roles-list .role-name", has_text="Ada Lovelace")).to_be_visible()
    expect(page.locator("#roles-list .role-item", has_text="Ada Lovelace")).to_contain_text("公开")
    stored = rest(page, server, "GET", f"/api/role/{ada['id']}").json()["data"]
    assert stored["name"] == "Ada Lovelace" and stored["age"] == 31 and stored["is_public"]

    page.click("#roles-scope-all")
    expect(page.locator("#roles-list .role-item", has_text="Ada Lovelace")).to_be_visible()
    screenshot(page, "roles")

    page.click("#roles-scope-mine")
    rain = page.locator("#roles-list .role-item", has_text="小雨")
    rain.get_by_role("button", name="删除").click()
    expect(rain).to_have_count(0)
    everyone = rest(page, server, "GET", "/api/role/list").json()["data"]["list"]
    names = [role["name"] for role in everyone]
    assert "小雨" not in names and "Ada Lovelace" in names
    # The browser tests share one server: a public role left behind would be offered to
    # every user signed up after this one.
    assert rest(page, server, "DELETE", f"/api/role/{ada['id']}").status_code == 200


def test_voice_from_an_upload_and_from_a_recording(open_page: Any, server: str, username: str,
                                                   speech_wav: Path, screenshot: Any) -> None:
    page = open_page()
    sign_up(page, username)
    go(page, "voices")

    # Built-in voice types, each with a sample that plays.
    joe = page.locator("#voice-types .chip", has_text="Joe")
    expect(joe).to_be_visible()
    joe.locator("button.play").click()
    audio_playing(page, "#shared-audio")
    joe.locator("button.play").click()  # the same button stops it
    assert page.evaluate("document.querySelector('#shared-audio').paused")

    # Something that is not audio: the API's own message appears.
    page.fill("#voice-name", "Not audio")
    page.set_input_files("#voice-file", files=[{"name": "notes.wav", "mimeType": "audio/wav",
                                               "buffer": b"these are not sound samples" * 20}])
    page.click("#voice-submit")
    refused = rest(page, server, "POST", "/api/voices", data={"name": "Not audio"},
                   files={"files": ("notes.wav", b"these are not sound samples" * 20)})
    assert refused.status_code in (400, 415)
    expect(page.locator("#voice-status")).to_have_text(refused.json()["message"])

    # An uploaded sample: upload progress, then the job until the voice is ready.
    page.fill("#voice-name", "E2E voice")
    page.select_option("#voice-gender", "male")
    page.select_option("#voice-language", "en")
    page.set_input_files("#voice-file", str(speech_wav))
    expect(page.locator("#voice-sample")).to_be_visible()
    page.click("#voice-submit")
    item = page.locator("#voices-mine .voice-item", has_text="E2E voice")
    expect(item.locator(".badge.status.ready")).to_be_visible(timeout=120000)
    expect(page.locator("#voice-status")).to_contain_text("E2E voice")
    voices = page.evaluate("window.__console.voices")
    assert voices["progressShown"] >= 1
    assert voices["lastJob"]["status"] == "succeeded", voices["lastJob"]
    assert voices["jobStates"][-1] == "succeeded"
    voice_id = item.get_attribute("data-voice-id")
    stored = rest(page, server, "GET", f"/api/voices/{voice_id}").json()["data"]
    assert stored["status"] == "ready" and stored["labels"] == {"language": "en"}
    assert stored["gender"] == "male" and stored["provider"] == "local"

    # Its preview plays; it is offered among the voice types now.
    item.locator("button.play").click()
    audio_playing(page, "#shared-audio")
    item.locator("button.play").click()
    expect(page.locator("#voice-types .chip", has_text="E2E voice")).to_be_visible()
    screenshot(page, "voices", full_page=True)

    # Edit, publish, delete.
    item.get_by_role("button", name="编辑").click()
    page.locator("#voices-mine .edit-form input").first.fill("E2E voice renamed")
    page.locator("#voices-mine .edit-form button[type=submit]").click()
    renamed = page.locator("#voices-mine .voice-item", has_text="E2E voice renamed")
    expect(renamed).to_be_visible()
    renamed.get_by_role("button", name="设为公开").click()
    expect(renamed.locator(".badge.public")).to_be_visible()
    stored = rest(page, server, "GET", f"/api/voices/{voice_id}").json()["data"]
    assert stored["name"] == "E2E voice renamed" and stored["is_public"] is True
    renamed.get_by_role("button", name="删除").click()
    expect(renamed).to_have_count(0)
    assert rest(page, server, "GET", f"/api/voices/{voice_id}").status_code == 404

    # A sample recorded with the microphone (Chromium's fake one plays the same speech).
    page.fill("#voice-name", "Recorded voice")
    page.click("#voice-record")
    expect(page.locator("#voice-record")).to_have_class(re.compile(r"\bon\b"))
    page.wait_for_timeout(5000)
    page.click("#voice-record")
    expect(page.locator("#voice-sample-label")).to_contain_text("录音")
    assert page.evaluate("document.querySelector('#voice-sample-audio').src").startswith("blob:")
    page.click("#voice-submit")
    recorded = page.locator("#voices-mine .voice-item", has_text="Recorded voice")
    expect(recorded.locator(".badge.status.ready")).to_be_visible(timeout=120000)


def test_talk_streams_reply_text_and_audio(open_page: Any, server: str, username: str,
                                           screenshot: Any) -> None:
    page = open_page()
    sign_up(page, username)
    create_role(page, "Ada", "A cheerful mountain guide who answers briefly and kindly.")
    ada = page.locator("#roles-list .role-item", has_text="Ada")
    ada.get_by_role("button", name="对话").click()
    expect(page.locator("#screen-talk")).to_be_visible()
    expect(page.locator("#talk-conn")).to_have_attribute("data-state", "on")
    expect(page.locator("#talk-title")).to_have_text("与 Ada 对话")

    # Every read of the conversation's stored messages the page makes from here on.
    history_reads: list[str] = []
    page.on("request", lambda request: history_reads.append(request.url)
            if request.method == "GET" and HISTORY_PATH.search(request.url) else None)

    page.select_option("#talk-reply-type", "1")
    page.fill("#talk-input", "Hello Ada! What should I bring for a walk in the mountains?")
    page.click("#talk-send")
    # Mid-reply: part of the text is on screen and the first audio is scheduled.
    page.wait_for_function("""() => {
      const s = window.__console.talk;
      return s.replies >= 1 || (s.textChunks >= 5 && s.chunksScheduled >= 1);
    }""", timeout=REPLY_SECONDS * 1000)
    screenshot(page, "talk")
    page.wait_for_function("window.__console.talk.replies >= 1", timeout=REPLY_SECONDS * 1000)
    stats = talk_stats(page)
    assert not stats["errors"], stats["errors"]

    # The reply's text streamed into the page piece by piece while the reply was running.
    assert stats["textChunks"] >= 2, stats
    assert stats["textShownWhileStreaming"] >= 2
    reply_text = stats["replyText"].strip()
    assert reply_text
    bubble = page.locator("#talk-log .bubble.assistant").last
    expect(bubble.locator(".text")).to_contain_text(reply_text[:30])

    # Its audio arrived as PCM chunks, every one scheduled, in order and back to back.
    assert stats["chunkStarts"] >= 1 and stats["chunkEnds"] >= 1
    assert stats["sampleRate"] and stats["sampleRate"] >= 8000
    assert stats["chunksReceived"] >= 2
    assert stats["chunksScheduled"] == stats["chunksReceived"]
    assert stats["audio"]["secondsScheduled"] > 0.5
    timeline = stats["audio"]["timeline"]
    assert [entry["seq"] for entry in timeline] == list(range(len(timeline)))
    # A chunk that came while the one before was still to play starts exactly at its end;
    # one that came after (``late``, an underrun) starts as soon as it can, after a gap.
    for before, after in zip(timeline, timeline[1:], strict=False):
        in_time = after["at"] + 0.005 <= before["end"]
        assert after["late"] is not in_time, (before, after)
        if in_time:
            assert abs(after["start"] - before["end"]) < 1e-6, (before, after)
        else:
            assert after["start"] > before["end"], (before, after)
    assert stats["audio"]["underruns"] == sum(entry["late"] for entry in timeline[1:])
    # Which branch the reply's chunks took depends on the machine's load; both are held
    # to their rule here with chunks handed over on time, then one late.
    own = page.evaluate(PLAYER_ON_TIME_THEN_LATE)
    *on_time, late = own["timeline"]
    assert len(on_time) == 3 and not any(entry["late"] for entry in on_time), own
    for before, after in zip(on_time, on_time[1:], strict=False):
        assert abs(after["start"] - before["end"]) < 1e-6, own
    assert late["late"] and late["start"] > on_time[-1]["end"], own
    assert own["underruns"] == 1, own
    assert stats["lastChunkEnd"]["audio_url"]
    assert stats["lastComplete"]["session_id"] == stats["sessionId"]
    assert not stats["lastComplete"]["interrupted"]
    # The page's audio clock runs past what was scheduled: the chunks were played.
    page.wait_for_function("""() => {
      const timeline = window.__console.talk.audio.timeline;
      return window.__console.audioTime() > timeline[timeline.length - 1].end;
    }""", timeout=60000)
    expect(bubble.locator("button.replay")).to_be_visible()

    # Hold to talk: the fake microphone speaks; the server recognises it and answers.
    hold = page.locator("#talk-hold")
    hold.hover()
    page.mouse.down()
    expect(hold).to_have_class(re.compile(r"\bon\b"))
    page.wait_for_timeout(4500)
    page.mouse.up()
    page.wait_for_function("window.__console.talk.replies >= 2", timeout=REPLY_SECONDS * 1000)
    stats = talk_stats(page)
    assert not stats["errors"], stats["errors"]
    assert stats["asr"] and SPOKEN_WORDS & set(re.findall(r"[a-z]+", stats["asr"][-1].lower())), \
        stats["asr"]
    expect(page.locator("#talk-log .bubble.user").last).to_contain_text(stats["asr"][-1][:12])

    # History: the stored conversation, after a reload, with replay of every message.
    session_id = stats["sessionId"]
    stored = rest(page, server, "GET", f"/api/sessions/{session_id}/messages",
                  params={"page_size": 100}).json()["data"]["list"]
    assert [message["role"] for message in stored] == ["user", "assistant", "user", "assistant"]
    # The page knew every stored message's id from the replies' own events, without
    # reading the conversation back after either reply.
    shown_ids = page.eval_on_selector_all("#talk-log .bubble",
                                          "bubbles => bubbles.map(b => b.dataset.messageId)")
    assert shown_ids == [message["message_id"] for message in stored]
    expect(page.locator("#talk-log .bubble.user").last.locator("button.delete")).to_be_visible()
    assert history_reads == [], history_reads
    page.reload()
    page.wait_for_function("window.__console && window.__console.ready")
    expect(page.locator("#screen-talk")).to_be_visible()
    expect(page.locator("#talk-log .bubble")).to_have_count(4)
    # Opening the conversation reads it once (one page: it has four messages).
    assert len(history_reads) == 1 and session_id in history_reads[0], history_reads
    expect(page.locator("#talk-sessions .session.active")).to_have_count(1)
    first_reply = page.locator("#talk-log .bubble.assistant").first
    first_reply.locator("button.replay").click()
    audio_playing(page, "#shared-audio")
    first_reply.locator("button.replay").click()

    # Delete one message, then the whole conversation.
    page.locator("#talk-log .bubble.user").first.locator("button.delete").click()
    expect(page.locator("#talk-log .bubble")).to_have_count(3)
    left = rest(page, server, "GET", f"/api/sessions/{session_id}/messages").json()["data"]
    assert left["total"] == 3
    page.click("#talk-delete")
    expect(page.locator("#talk-sessions .session")).to_have_count(0)
    assert rest(page, server, "GET", f"/api/sessions/{session_id}").status_code == 404


def test_talk_stop_interrupts_the_reply(open_page: Any, username: str) -> None:
    page = open_page()
    sign_up(page, username)
    create_role(page, "Ada", "A cheerful mountain guide who answers briefly and kindly.")
    go(page, "talk")
    page.select_option("#talk-role", label="Ada")
    expect(page.locator("#talk-conn")).to_have_attribute("data-state", "on")
    page.select_option("#talk-reply-type", "1")
    page.fill("#talk-input", "Please tell me a long story about the mountains, the river "
                             "and the people who live there, with every detail you know.")
    page.click("#talk-send")
    page.wait_for_function("window.__console.talk.chunksScheduled >= 1",
                           timeout=REPLY_SECONDS * 1000)
    expect(page.locator("#talk-stop")).to_be_visible()
    page.click("#talk-stop")
    page.wait_for_function("window.__console.talk.replies >= 1 || "
                           "window.__console.talk.errors.length > 0", timeout=30000)
    stats = talk_stats(page)
    assert stats["interrupts"] == 1
    assert not stats["errors"], stats["errors"]
    assert stats["lastComplete"]["interrupted"] is True, stats["lastComplete"]
    assert not page.evaluate("window.__console.talk.audio.timeline.length === 0")
    expect(page.locator("#talk-send")).to_be_enabled()
    expect(page.locator("#talk-log .bubble.assistant").last).to_contain_text("已打断")


def test_playground_tts_and_stt(open_page: Any, username: str, speech_wav: Path,
                                screenshot: Any) -> None:
    page = open_page()
    sign_up(page, username)
    go(page, "playground")
    page.wait_for_selector(f"#tts-voice option[value='{PIPER_VOICE}']", state="attached")
    # The voice follows the text's language until the user picks one.
    expect(page.locator("#tts-voice")).to_have_value("")

    # Stored synthesis (MP3): playable, with its waveform drawn.
    page.fill("#tts-text", "Hello from the playground. The weather is lovely today.")
    page.select_option("#tts-voice", PIPER_VOICE)
    page.select_option("#tts-format", "mp3")
    page.fill("#tts-speed", "1.2")
    page.click("#tts-submit")
    page.wait_for_function("window.__console.playground.tts >= 1", timeout=60000)
    audio_playing(page, "#tts-audio")
    last = page.evaluate("window.__console.playground.lastTts")
    assert last["format"] == "mp3" and last["duration"] > 1
    assert canvas_has_waveform(page, "#tts-wave") > 50
    expect(page.locator("#tts-meta")).to_contain_text("MP3")

    # Raw PCM is wrapped into WAV in the page so that it plays too.
    page.select_option("#tts-format", "pcm")
    page.click("#tts-submit")
    page.wait_for_function("window.__console.playground.tts >= 2", timeout=60000)
    assert page.evaluate("document.querySelector('#tts-audio').src").startswith("blob:")
    audio_playing(page, "#tts-audio")

    # Streamed synthesis: WAV header first, then PCM played as it arrives.
    page.click("#tts-stream")
    page.wait_for_function("window.__console.playground.streams >= 1", timeout=60000)
    stream = page.evaluate("JSON.parse(JSON.stringify(window.__console.playground))")
    assert stream["lastStream"]["sampleRate"] == 22050
    assert stream["lastStream"]["firstAudioMs"] is not None
    assert stream["stream"]["chunksScheduled"] >= 1
    assert stream["stream"]["secondsScheduled"] > 1

    # Emotion goes through the voice generation API (/api/voice/generate).
    page.select_option("#tts-emotion", "intense")
    expect(page.locator("#tts-format")).to_be_disabled()
    page.click("#tts-submit")
    page.wait_for_function("window.__console.playground.tts >= 3", timeout=60000)
    last = page.evaluate("window.__console.playground.lastTts")
    assert last["emotionType"] == "intense" and last["audioUrl"]
    audio_playing(page, "#tts-audio")

    # Speech to text of an upload: the transcript and the timing of its segments.
    page.set_input_files("#stt-file", str(speech_wav))
    page.select_option("#stt-language", "en")
    page.click("#stt-submit")
    page.wait_for_function("window.__console.playground.stt >= 1", timeout=90000)
    expect(page.locator("#stt-transcript")).to_contain_text(re.compile("morning", re.I))
    expect(page.locator("#stt-segments li").first).to_contain_text(re.compile(r"0\.00–\d+\.\d\d s"))
    assert page.locator("#stt-segments li").count() >= 2
    # Every word is shown with its time, in order, within the audio.
    heard = page.evaluate("window.__console.playground.lastStt")
    starts = [float(s) for s in page.eval_on_selector_all(
        "#stt-segments .word", "words => words.map(w => w.dataset.start)")]
    assert len(starts) >= 15 and starts == sorted(starts)
    assert 0 <= starts[0] and starts[-1] <= heard["duration"]
    words_shown = page.eval_on_selector_all("#stt-segments .word .word-text",
                                            "words => words.map(w => w.textContent)")
    assert {w.strip(".,").lower() for w in words_shown} & SPOKEN_WORDS
    # The transcript downloads as subtitles that the subtitle libraries read.
    with page.expect_download() as srt_download:
        page.click("#stt-download-srt")
    cues = list(srt.parse(Path(srt_download.value.path()).read_text()))
    assert srt_download.value.suggested_filename == "transcript.srt"
    assert cues and cues[-1].end.total_seconds() <= heard["duration"]
    with page.expect_download() as vtt_download:
        page.click("#stt-download-vtt")
    captions = webvtt.read(vtt_download.value.path()).captions
    assert [c.text for c in captions] == [c.content for c in cues]
    screenshot(page, "playground", full_page=True)

    # ...and of a recording from the microphone.
    page.click("#stt-record")
    page.wait_for_timeout(4000)
    page.click("#stt-record")
    expect(page.locator("#stt-sample-label")).to_contain_text("录音")
    page.click("#stt-submit")
    page.wait_for_function("window.__console.playground.stt >= 2", timeout=90000)
    recognised = page.evaluate("window.__console.playground.lastStt")
    assert recognised["duration"] >= 3
    assert recognised["transcription"].strip()


def test_language_follows_the_browser_and_switches(open_page: Any, server: str,
                                                   username: str) -> None:
    english = open_page(locale="en-US")
    expect(english.locator("#screen-login h1")).to_have_text("Welcome to Tingshuo")
    assert english.evaluate("document.documentElement.lang") == "en"

    page = open_page(locale="zh-CN")
    expect(page.locator("#screen-login h1")).to_have_text("欢迎使用听说")
    page.click("#lang-switch")
    expect(page.locator("#screen-login h1")).to_have_text("Welcome to Tingshuo")
    expect(page.locator("#login-submit")).to_have_text("Log in")

    # The API answers in the page's language too.
    page.fill("#login-username", "nobody" + username)
    page.fill("#login-password", "wrong-password")
    page.click("#login-submit")
    wrong = requests.post(f"{server}/api/auth/login", json={"username": "nobody" + username,
                          "password": "wrong-password"}, headers={"Accept-Language": "en"},
                          timeout=10)
    assert wrong.status_code == 401
    expect(page.locator("#login-status")).to_have_text(wrong.json()["message"])
    assert re.search("[a-z]", wrong.json()["message"])
    # A field the server refuses is named, in the page's language.
    page.fill("#login-username", "nobody-" + username)
    page.click("#login-submit")
    expect(page.locator("#login-status")).to_have_text(
        "Username: must be 3–64 letters, digits, underscores or Chinese characters")

    sign_up_english = page.locator("#register-submit")
    page.fill("#login-username", username)
    page.fill("#login-password", PASSWORD)
    sign_up_english.click()
    expect(page.locator("#nav a[data-screen=voices]")).to_have_text("Voices")
    go(page, "voices")
    expect(page.locator("#voice-create h2")).to_have_text("Create a voice")

    # The choice survives a reload, then switches back.
    page.reload()
    page.wait_for_function("window.__console && window.__console.ready")
    expect(page.locator("#nav a[data-screen=talk]")).to_have_text("Talk")
    page.click("#lang-switch")
    expect(page.locator("#nav a[data-screen=voices]")).to_have_text("音色")
    expect(page.locator("#voice-create h2")).to_have_text("创建音色")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"


def test_keys_create_use_and_revoke(open_page: Any, server: str, username: str,
                                    screenshot: Any) -> None:
    page = open_page()
    sign_up(page, username)
    go(page, "keys")
    expect(page.locator("#keys-empty")).to_be_visible()
    page.fill("#key-name", "Open WebUI")
    page.fill("#key-characters", "200")
    page.click("#key-submit")
    expect(page.locator("#key-created")).to_be_visible()
    secret = page.locator("#key-secret").text_content()
    assert secret.startswith("tsk-")
    curl = page.locator("#key-curl").text_content()
    python = page.locator("#key-python").text_content()
    assert f"{server}/v1/audio/speech" in curl and secret in curl
    assert f'base_url="{server}/v1"' in python and secret in python
    expect(page.locator("#keys-list .key-item")).to_have_count(1)
    expect(page.locator("#keys-list .key-prefix")).to_have_text(secret[:11] + "…")
    screenshot(page, "keys")

    # The key works with OpenAI's own client, and its use shows in the list.
    client = openai.OpenAI(api_key=secret, base_url=f"{server}/v1", max_retries=0)
    text = "Hello from a key."
    spoken = client.audio.speech.create(model="tts-1", voice="alloy", input=text)
    assert len(spoken.content) > 1000
    page.click("#keys-refresh")
    expect(page.locator("#keys-list .key-usage")).to_contain_text(f"{len(text)} / 200")

    # Leaving the screen forgets the secret; revoking shuts the key out.
    go(page, "voices")
    go(page, "keys")
    expect(page.locator("#key-created")).to_be_hidden()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#keys-list .key-revoke")
    expect(page.locator("#keys-empty")).to_be_visible()
    with pytest.raises(openai.AuthenticationError):
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hello again.")
    assert rest(page, server, "GET", "/api/keys").json()["data"]["list"] == []


@pytest.mark.parametrize("screen", ["voices", "roles", "talk", "playground", "keys"])
def test_phone_sized_screens_fit(open_page: Any, username: str, screen: str,
                                 screenshot: Any) -> None:
    page = open_page(viewport={"width": 390, "height": 844})
    sign_up(page, f"{username}{screen[:2]}")
    assert no_horizontal_scroll(page)
    go(page, screen)
    page.wait_for_timeout(800)
    assert no_horizontal_scroll(page), screen
    nav = page.locator("#nav")
    assert nav.bounding_box()["width"] <= 390
    screenshot(page, f"phone-{screen}")
