"""Text is cut into speakable sentences: streamed as it arrives, or whole."""

from __future__ import annotations

import pytest

from webapp.app.sentences import (
    SentenceCutter,
    first_sentence,
    join_sentences,
    split_sentences,
)


def _stream(text: str, step: int, **kwargs: int) -> list[str]:
    cutter = SentenceCutter(**kwargs)
    out: list[str] = []
    for i in range(0, len(text), step):
        out += cutter.feed(text[i:i + step])
    return out + cutter.flush()


@pytest.mark.parametrize("step", [1, 2, 3, 7, 100])
def test_cuts_are_the_same_whatever_the_delta_size(step: int) -> None:
    text = ("你好，我是诸葛亮，今天天气很好。价格是3.5元！"
            "Hello there, Mr. Smith. How are you? 最后一句")
    assert _stream(text, step) == ["你好，我是诸葛亮，", "今天天气很好。", "价格是3.5元！",
                                   "Hello there, Mr. Smith.", "How are you?", "最后一句"]


def test_only_the_first_clause_is_cut_early() -> None:
    text = "Well, that is an interesting question, and here is my long answer. Next one, short."
    assert _stream(text, 4) == ["Well, that is an interesting question,",
                                "and here is my long answer.", "Next one, short."]


def test_decimal_points_and_initials_do_not_end_a_sentence() -> None:
    assert split_sentences("Pi is 3.14 roughly. J. R. Tolkien wrote it. Done") == [
        "Pi is 3.14 roughly.", "J. R. Tolkien wrote it.", "Done"]


def test_punctuation_alone_is_not_a_sentence() -> None:
    assert _stream("好的。。。！！", 1) == ["好的。。。！！"]
    assert _stream("……", 1) == []


def test_very_long_text_without_punctuation_is_still_cut() -> None:
    text = "word " * 120
    pieces = _stream(text, 5, max_weight=100)
    assert len(pieces) >= 5 and " ".join(pieces).split() == text.split()


@pytest.mark.parametrize("step", [1, 3, 7])
def test_a_sentence_too_long_is_cut_the_same_whatever_the_delta_size(step: int) -> None:
    text = "这是一段很长的话，" * 10 + "最后结束。Then a short one."
    whole = _stream(text, len(text), first_clause_min=None, max_weight=60)
    assert _stream(text, step, first_clause_min=None, max_weight=60) == whole
    assert all(len(piece) * 2 <= 60 and piece.endswith("，") for piece in whole[:-2])
    assert whole[-2:] == ["这是一段很长的话，最后结束。", "Then a short one."]
    assert "".join(whole).replace(" ", "") == text.replace(" ", "")


def test_whole_texts_are_not_cut_at_the_first_comma() -> None:
    assert split_sentences("你好，我是诸葛亮，今天天气很好。再见") == [
        "你好，我是诸葛亮，今天天气很好。", "再见"]
    assert split_sentences("你好，我是诸葛亮，今天天气很好。", first_clause_min=12) == [
        "你好，我是诸葛亮，", "今天天气很好。"]


def test_closing_quotes_and_semicolons() -> None:
    assert split_sentences("他说：“走吧！”我们就走了；路很长\n到了。") == [
        "他说：“走吧！”", "我们就走了；", "路很长", "到了。"]


def test_first_sentence() -> None:
    assert first_sentence("My name is Lin. I like tea.") == "My name is Lin."
    assert first_sentence("  我叫林。我喜欢喝茶。") == "我叫林。"
    assert first_sentence("Dr. Watson arrived, late as ever") == "Dr. Watson arrived, late as ever"
    assert first_sentence("Costs 3.5 yuan! Cheap.") == "Costs 3.5 yuan!"
    assert first_sentence("……") == "……"
    assert first_sentence("") == ""


@pytest.mark.parametrize("text", [
    "I am a scripted responder, not a language model, speaking as Ada. Thank you!",
    "我是脚本应答程序，不是语言模型。谢谢你告诉我。",
    "你说：“Hello there!”这是个好问题。Then English follows.",
])
def test_sentences_join_back_into_the_text_they_were_cut_from(text: str) -> None:
    cutter = SentenceCutter()
    pieces = [piece for i in range(0, len(text), 3) for piece in cutter.feed(text[i:i + 3])]
    pieces += cutter.flush()
    assert len(pieces) >= 2
    assert join_sentences(pieces) == text
