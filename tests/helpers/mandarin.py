"""Mandarin speech measured: the sentences users type, how many characters Whisper reads
back wrong, and the duration, pitch and loudness of a clip. The Mandarin voice's tests
hold these to bounds; ``bench mandarin`` prints them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from pypinyin import Style, lazy_pinyin

from tests.helpers.transcripts import edit_distance
from webapp.app.audio import dsp, encode, pcm_to_float
from webapp.app.providers.base import SynthesisOptions, TextToSpeechInterface
from webapp.app.providers.stt.whisper import WhisperSpeechToText
from webapp.app.providers.tts.mandarin_text import MandarinFrontEnd

# What users type: plain sentences, then numbers, dates, times, money, percentages,
# phone numbers, Latin letters, emoji, full-width forms, rare characters and 儿化.
SENTENCES = (
    "今天天气很好，我们一起去公园散步吧。",
    "请问去火车站怎么走？",
    "这家餐厅的菜又便宜又好吃。",
    "他每天早上六点起床，然后去跑步。",
    "图书馆周末也开门，欢迎大家来看书。",
    "会议定在2024年5月18日下午3点。",
    "明天15:30在三楼会议室开会。",
    "这件衣服打八折以后只要¥199.5。",
    "今年的销售额增长了12.5%。",
    "有事请拨打13812345678联系我。",
    "北京到上海大约1200公里。",
    "小明考了98分，全班第1名。",
    "室外温度是-5℃，注意保暖。",
    "请在2024/12/31之前提交报告。",
    "人工智能，也就是AI，正在改变我们的生活。",
    "这个周末我们去看NBA比赛吧！",
    "你好😀，很高兴认识你！",
    "「你吃饭了吗？」她笑着问。",
    "他说：“这真是太棒了！”",
    "我的房间号是Ｂ３０２，在三楼。",
    "一会儿我们去哪儿玩儿？",
    "饕餮是古代传说中的一种怪兽。",
)
LONG_TEXT = ("今天天气很好，我们一起去公园散步。公园里有很多花，还有一个安静的小湖。"
             "散步以后，我们回家做一顿丰盛的晚饭，然后早点休息。")
_HAN = re.compile(r"[\u3400-\u9fff]")


def spoken_characters(text: str, front_end: MandarinFrontEnd) -> str:
    """The Chinese characters a text is read as (numbers, letters and dates in words)."""
    return "".join(_HAN.findall(front_end.normalise(text)))


def readings(characters: str) -> list[str]:
    """Each character's pinyin with its tone (Simplified and Traditional read the same)."""
    return lazy_pinyin(characters, style=Style.TONE3, neutral_tone_with_five=True)


def character_error_rate(reference: Sequence[str], hypothesis: Sequence[str]
                         ) -> tuple[int, int]:
    """(edits, reference length) over characters (or their readings)."""
    return edit_distance(reference, hypothesis), len(reference)


def read_back(engine: TextToSpeechInterface, whisper: WhisperSpeechToText,
              front_end: MandarinFrontEnd, sentences: tuple[str, ...] = SENTENCES,
              voice: str | None = None) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Synthesize each sentence, let Whisper read it, and return the set's error rates.

    ``cer`` compares characters by their reading (pinyin with tone), so that the
    recogniser's choice of script (it writes Traditional now and then) or of a
    homophone (定/订) is not counted against the voice; ``cer_strict`` compares the
    characters themselves. Both count a wrong tone as an error.
    """
    edits = strict_edits = total = 0
    rows = []
    for sentence in sentences:
        chunk = engine.synthesize(sentence, SynthesisOptions(voice=voice))
        heard = whisper.transcribe(encode(chunk.pcm, chunk.sample_rate, "wav"), "zh").text
        ref, hyp = spoken_characters(sentence, front_end), spoken_characters(heard, front_end)
        wrong, length = character_error_rate(readings(ref), readings(hyp))
        strict, _ = character_error_rate(ref, hyp)
        edits, strict_edits, total = edits + wrong, strict_edits + strict, total + length
        rows.append({"text": sentence, "heard": heard, "cer": round(wrong / max(1, length), 3)})
    return ({"cer": round(edits / max(1, total), 4),
             "cer_strict": round(strict_edits / max(1, total), 4)}, rows)


def measure(pcm: bytes, rate: int) -> dict[str, float]:
    """Length (s), median F0 (Hz) and RMS (0–1) of speech."""
    samples = pcm_to_float(pcm)
    return {"duration": len(samples) / rate, "pitch": dsp.estimate_pitch(pcm, rate) or 0.0,
            "rms": float(np.sqrt(np.mean(samples ** 2)))}
