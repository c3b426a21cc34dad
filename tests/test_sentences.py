"""Streamed text is cut into speakable sentences as it arrives."""

from __future__ import annotations

import pytest

from webapp.app.services.sentences import SentenceCutter, split_all


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
    assert split_all("Pi is 3.14 roughly. J. R. Tolkien wrote it. Done") == [
        "Pi is 3.14 roughly.", "J. R. Tolkien wrote it.", "Done"]


def test_punctuation_alone_is_not_a_sentence() -> None:
    assert _stream("好的。。。！！", 1) == ["好的。。。！！"]
    assert _stream("……", 1) == []


def test_very_long_text_without_punctuation_is_still_cut() -> None:
    text = "word " * 120
    pieces = _stream(text, 5, max_weight=100)
    assert len(pieces) >= 5 and " ".join(pieces).split() == text.split()
