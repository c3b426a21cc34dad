"""The scripted responder and the OpenAI-compatible client (against a fake endpoint)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from tests.fakes.fake_openai import FakeOpenAI, start_fake_openai
from webapp.app.providers.base import ChatOptions, ProviderError
from webapp.app.providers.llm.openai_compat import OpenAICompatibleChatModel
from webapp.app.providers.llm.scripted import ScriptedChatModel, parse_persona
from webapp.app.sentences import first_sentence

CJK = re.compile(r"[\u4e00-\u9fff]")
POET = "Name: Li Bai\nA Tang dynasty poet who loves wine and the moon."
POET_ZH = "角色：李白\n唐代诗人，爱酒，爱月亮。"


def conversation(system: str | None, *users: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    for index, text in enumerate(users):
        if index:
            messages.append({"role": "assistant", "content": "…"})
        messages.append({"role": "user", "content": text})
    return messages


def test_scripted_is_always_configured_and_named() -> None:
    model = ScriptedChatModel({})
    assert model.is_configured()
    assert model.describe()["model"] == "scripted-responder"


def test_scripted_is_deterministic() -> None:
    messages = conversation(POET, "Tell me about the river at night.")
    first = ScriptedChatModel({}).chat(messages, ChatOptions())
    assert first == ScriptedChatModel({}).chat(messages, ChatOptions())
    assert list(ScriptedChatModel({}).stream_chat(messages, ChatOptions())) == list(
        ScriptedChatModel({}).stream_chat(messages, ChatOptions()))
    other = ScriptedChatModel({}).chat(conversation(POET, "Something else?"), ChatOptions())
    assert other != first


def test_scripted_says_it_is_not_a_language_model_in_english() -> None:
    reply = ScriptedChatModel({}).chat(conversation(POET, "What is your favourite season?"),
                                       ChatOptions())
    assert "not a language model" in first_sentence(reply)
    assert "scripted" in first_sentence(reply)
    assert not CJK.search(reply)
    assert "Li Bai" in reply
    assert "favourite season" in reply
    assert 4 <= len(re.findall(r"[.!?](?:\s|$)", reply)) <= 6


@pytest.mark.parametrize(("persona", "said"), [
    ("Name: 小雨\nYou are 小雨, a cheerful guide from Hangzhou.", "你今天好吗？"),
    ("角色：Ada\n你是Ada，一位爱讲故事的导游。", "How are you today?"),
])
def test_scripted_never_mixes_the_persona_language_into_its_reply(persona: str,
                                                                  said: str) -> None:
    reply = ScriptedChatModel({}).chat(conversation(persona, said), ChatOptions())
    chinese = bool(CJK.search(said))
    for sentence in re.split(r"(?<=[。.!?！？])\s*", reply):
        # A role's name may be in another script; no other words of another language.
        rest = sentence.replace("小雨", "").replace("Ada", "")
        rest = re.sub(r"“[^”]*”|\"[^\"]*\"", "", rest)  # what the user said is quoted as said
        if chinese:
            assert not re.search(r"[A-Za-z]{2,}", rest), reply
        else:
            assert not CJK.search(rest), reply


def test_scripted_answers_chinese_in_chinese() -> None:
    reply = ScriptedChatModel({}).chat(conversation(POET_ZH, "hello", "今晚的月亮很圆"),
                                       ChatOptions())
    assert "不是语言模型" in first_sentence(reply)
    assert "李白" in reply
    assert "今晚的月亮很圆" in reply
    assert len(CJK.findall(reply)) > 0.6 * len(reply.replace(" ", ""))


def test_scripted_follows_the_last_user_message_language() -> None:
    reply = ScriptedChatModel({}).chat(conversation(POET_ZH, "今晚的月亮很圆", "And in English?"),
                                       ChatOptions())
    assert not CJK.search(reply.replace("李白", "")) and "李白" in reply


def test_persona_convention() -> None:
    assert parse_persona("Name: Mia\nA cheerful barista.") == ("Mia", "A cheerful barista.")
    assert parse_persona("角色：小王\n热情的导游") == ("小王", "热情的导游")
    assert parse_persona("You are a helpful guide.") == (None, "You are a helpful guide.")
    reply = ScriptedChatModel({}).chat([{"role": "user", "content": "hi"}],
                                       ChatOptions(persona="Name: Mia\nA cheerful barista."))
    assert "Mia" in reply


def test_scripted_streams_small_pieces_with_optional_delay() -> None:
    messages = conversation(POET, "Sing me something short.")
    pieces = list(ScriptedChatModel({}).stream_chat(messages, ChatOptions()))
    assert all(2 <= len(piece) <= 6 for piece in pieces[:-1]) and 1 <= len(pieces[-1]) <= 6
    assert "".join(pieces) == ScriptedChatModel({}).chat(messages, ChatOptions())
    slow = ScriptedChatModel({"SCRIPTED_LLM_DELAY": 0.005})
    started = time.monotonic()
    count = sum(1 for _ in slow.stream_chat(messages, ChatOptions()))
    assert time.monotonic() - started >= count * 0.005 * 0.9


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with start_fake_openai(api_key="sk-test") as server:
        yield server


def client(fake: FakeOpenAI, **settings: object) -> OpenAICompatibleChatModel:
    config = {"LLM_BASE_URL": fake.base_url, "LLM_API_KEY": fake.api_key,
              "LLM_MODEL": "fake-model", "LLM_TIMEOUT": 5, **settings}
    return OpenAICompatibleChatModel(config)


def test_openai_is_configured_only_with_url_and_model() -> None:
    assert not OpenAICompatibleChatModel({}).is_configured()
    assert not OpenAICompatibleChatModel({"LLM_BASE_URL": "http://x/v1"}).is_configured()
    assert OpenAICompatibleChatModel({"LLM_BASE_URL": "http://x/v1",
                                      "LLM_MODEL": "m"}).is_configured()
    with pytest.raises(ProviderError) as error:
        list(OpenAICompatibleChatModel({}).stream_chat(conversation(None, "hi"), ChatOptions()))
    assert error.value.kind == "not_configured"


def test_openai_streams_from_the_endpoint(fake: FakeOpenAI) -> None:
    fake.reset()
    model = client(fake)
    pieces = list(model.stream_chat(conversation("Be brief.", "the moon over the river"),
                                    ChatOptions(temperature=0.2, max_tokens=64)))
    assert len(pieces) >= 4
    assert "".join(pieces) == "Echo: the moon over the river"
    request = fake.stats()["requests"][-1]
    assert request["model"] == "fake-model" and request["stream"] is True
    assert request["messages"][0] == {"role": "system", "content": "Be brief."}
    assert request["max_tokens"] == 64


def test_openai_adds_the_persona_as_system_message(fake: FakeOpenAI) -> None:
    fake.reset()
    client(fake).chat(conversation(None, "hi"), ChatOptions(persona="Name: Mia", model="other"))
    request = fake.stats()["requests"][-1]
    assert request["messages"][0] == {"role": "system", "content": "Name: Mia"}
    assert request["model"] == "other"


def test_openai_maps_401_to_auth(fake: FakeOpenAI) -> None:
    with pytest.raises(ProviderError) as error:
        client(fake, LLM_API_KEY="wrong").chat(conversation(None, "hi"), ChatOptions())
    assert error.value.kind == "auth" and not error.value.transient
    assert "API key" in error.value.message


def test_openai_maps_429_to_transient_quota(fake: FakeOpenAI) -> None:
    fake.fail_next(429)
    with pytest.raises(ProviderError) as error:
        client(fake).chat(conversation(None, "hi"), ChatOptions())
    assert error.value.kind == "quota" and error.value.transient
    assert client(fake).chat(conversation(None, "again"), ChatOptions()) == "Echo: again"


def test_openai_maps_server_errors_to_transient_unavailable(fake: FakeOpenAI) -> None:
    fake.fail_next(503)
    with pytest.raises(ProviderError) as error:
        client(fake).chat(conversation(None, "hi"), ChatOptions())
    assert error.value.kind == "unavailable" and error.value.transient


def test_openai_maps_slow_and_unreachable_endpoints_to_timeout(fake: FakeOpenAI) -> None:
    fake.delay_next(3.0)
    with pytest.raises(ProviderError) as error:
        client(fake, LLM_TIMEOUT=0.5).chat(conversation(None, "hi"), ChatOptions())
    assert error.value.kind == "timeout" and error.value.transient
    unreachable = OpenAICompatibleChatModel({"LLM_BASE_URL": "http://127.0.0.1:9/v1",
                                             "LLM_MODEL": "m", "LLM_TIMEOUT": 2})
    with pytest.raises(ProviderError) as error:
        unreachable.chat(conversation(None, "hi"), ChatOptions())
    assert error.value.kind == "timeout" and error.value.transient
    assert "connect" in error.value.message


def test_a_reply_told_sentence_by_sentence_keeps_its_spaces() -> None:
    from webapp.app.providers.base import SynthesisOptions
    from webapp.app.services.speech.reply_stream import stream_reply

    for said in ("What is your favourite season?", "今晚的月亮很圆"):
        reply = stream_reply(ScriptedChatModel({}), conversation(POET, said), None,
                             SynthesisOptions())
        assert reply.spoken_text == reply.text, (reply.spoken_text, reply.text)
        assert "responder, not" in reply.text or "不是语言模型" in reply.text
