"""Every codec operation of the service, in one place (PyAV, which bundles FFmpeg).

Audio inside the service travels as 16-bit little-endian mono PCM with an explicit
sample rate; this module turns uploads into that and that into what clients get.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

ACCEPTED_FORMATS = ("mp3", "wav", "ogg", "aac", "m4a", "flac", "webm")
OUTPUT_FORMATS = ("mp3", "wav", "opus", "pcm", "aac", "flac")
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "m4a": "audio/mp4",
    "flac": "audio/flac",
    "webm": "audio/webm",
    "pcm": "audio/L16",
}
SPEECH_SAMPLE_RATE = 16000
"""The rate speech is heard at. Every recogniser, the voice-activity model and the
end-of-turn model take 16 kHz mono PCM, so speech is decoded or resampled to this once."""


class AudioError(ValueError):
    """The bytes are not audio the service accepts (or cannot be decoded)."""


class AudioTooLong(AudioError):
    """The audio goes on past the caller's limit; decoding stopped there."""

    def __init__(self, limit: float) -> None:
        super().__init__(f"audio longer than {limit:g} s")
        self.limit = limit


@dataclass(frozen=True)
class AudioInfo:
    format: str
    duration: float
    sample_rate: int
    channels: int


# The longest audio anything in the service decodes when its caller names no limit of
# its own (bytes that already passed an entry point's check: stored files, providers).
LONGEST_SECONDS = 1800.0
# Decoders disagree by a few frames about where a file ends (MP3 padding, Opus pre-skip),
# so decoding stops a little after the limit and the caller's own check has the last word.
LIMIT_MARGIN_SECONDS = 0.5

# FFmpeg demuxers that read one self-contained file and never open another (no
# playlists, concat lists, HLS, SDP, network or device inputs), by the magic bytes that
# start them. The format is named when the container is opened, so FFmpeg never guesses.
# (The MP4 demuxer could follow external data references, but only with `enable_drefs`,
# which is off unless asked for.)
_DEMUXERS = {"wav": "wav", "flac": "flac", "ogg": "ogg", "matroska": "webm", "mov": "m4a",
             "aac": "aac", "mp3": "mp3"}  # demuxer → the format the service calls it
_MPEG_SYNC = 0xE0
_MPEG_SEARCH = 4096


def sniff(data: bytes) -> str:
    """The FFmpeg demuxer for ``data``, chosen from its first bytes; anything else is
    refused before FFmpeg sees it."""
    head = data[:64]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[4:8] == b"ftyp":
        return "mov"
    start = _id3_length(data)
    # Some encoders leave a little padding before the first frame; FFmpeg skips it too.
    offset = data.find(b"\xff", start, start + _MPEG_SEARCH)
    while offset != -1:
        second = data[offset + 1] if offset + 1 < len(data) else 0
        if second & _MPEG_SYNC == _MPEG_SYNC:
            # ADTS (AAC) and MPEG audio share the sync word; ADTS has layer bits 00.
            return "aac" if second & 0x06 == 0 else "mp3"
        offset = data.find(b"\xff", offset + 1, start + _MPEG_SEARCH)
    raise AudioError("unrecognised audio")


def _id3_length(data: bytes) -> int:
    """Bytes taken by a leading ID3v2 tag (its size is four 7-bit bytes), else 0."""
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return 10 + size + (10 if data[5] & 0x10 else 0)


def _open(demuxer: str, data: bytes) -> av.container.InputContainer:
    try:
        return av.open(io.BytesIO(data), mode="r", format=demuxer)
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise AudioError("unrecognised audio") from exc


def probe(data: bytes, max_seconds: float = LONGEST_SECONDS) -> AudioInfo:
    """Recognise the audio by content and measure it by decoding its frames, stopping
    (``AudioTooLong``) once it passes ``max_seconds``.

    Containers written by browsers (WebM from MediaRecorder) carry no duration, and
    headers can lie, so the length is counted from decoded samples.
    """
    return _decode(data, None, max_seconds)[0]


def probe_and_decode(data: bytes, sample_rate: int = SPEECH_SAMPLE_RATE,
                     max_seconds: float = LONGEST_SECONDS) -> tuple[AudioInfo, bytes]:
    """``probe`` and ``decode_pcm`` in one pass over the frames: what an upload is, and
    its samples as s16le mono PCM at ``sample_rate``."""
    return _decode(data, sample_rate, max_seconds)


def decode_pcm(data: bytes, sample_rate: int = SPEECH_SAMPLE_RATE,
               max_seconds: float = LONGEST_SECONDS) -> bytes:
    """Decode any accepted audio to s16le mono PCM at ``sample_rate`` (``AudioTooLong``
    past ``max_seconds``)."""
    return _decode(data, sample_rate, max_seconds)[1]


def _decode(data: bytes, sample_rate: int | None,
            max_seconds: float) -> tuple[AudioInfo, bytes]:
    """The one decoding loop: frames are decoded one at a time and counted, so neither
    the time nor the memory spent can exceed what ``max_seconds`` of audio costs,
    whatever the file claims or holds."""
    if len(data) < 32:
        raise AudioError("file too small to be audio")
    demuxer = sniff(data)
    container = _open(demuxer, data)
    try:
        fmt = _DEMUXERS[demuxer]
        if not container.streams.audio:
            raise AudioError("no audio stream")
        stream = container.streams.audio[0]
        resampler = (av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
                     if sample_rate is not None else None)
        pieces: list[bytes] = []
        seconds = 0.0
        ceiling = max_seconds + LIMIT_MARGIN_SECONDS
        rate = stream.codec_context.sample_rate or 0
        channels = stream.codec_context.channels or 1
        for frame in container.decode(stream):
            if not frame.sample_rate:
                raise AudioError("undecodable audio")
            rate = frame.sample_rate
            seconds += frame.samples / rate
            if seconds > ceiling:
                raise AudioTooLong(max_seconds)
            if resampler is not None:
                pieces.extend(c.to_ndarray().tobytes() for c in resampler.resample(frame))
        if seconds == 0 or rate == 0:
            raise AudioError("no decodable audio")
        if resampler is not None:
            pieces.extend(c.to_ndarray().tobytes() for c in resampler.resample(None))
        info = AudioInfo(format=fmt, duration=seconds, sample_rate=rate, channels=channels)
        return info, b"".join(pieces)
    except av.FFmpegError as exc:
        raise AudioError("undecodable audio") from exc
    finally:
        container.close()


def pcm_duration(pcm: bytes, sample_rate: int) -> float:
    return len(pcm) / 2 / sample_rate


def pcm_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0


def float_to_pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Change the sample rate of s16le mono PCM (FFmpeg's resampler)."""
    if from_rate == to_rate or not pcm:
        return pcm
    resampler = av.AudioResampler(format="s16", layout="mono", rate=to_rate)
    frame = av.AudioFrame.from_ndarray(
        np.frombuffer(pcm, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
    )
    frame.sample_rate = from_rate
    out = bytearray()
    for converted in resampler.resample(frame):
        out += converted.to_ndarray().tobytes()
    for converted in resampler.resample(None):
        out += converted.to_ndarray().tobytes()
    return bytes(out)


class StreamResampler:
    """Resample a live s16le mono stream piece by piece without clicks at the joins
    (one FFmpeg resampler keeps its filter state across pieces)."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate, self.to_rate = from_rate, to_rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=to_rate)
        self._pts = 0

    def write(self, pcm: bytes) -> bytes:
        if self.from_rate == self.to_rate or not pcm:
            return pcm
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(pcm, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = self.from_rate
        frame.pts = self._pts
        frame.time_base = Fraction(1, self.from_rate)
        self._pts += frame.samples
        return b"".join(c.to_ndarray().tobytes() for c in self._resampler.resample(frame))


def wav_header(sample_rate: int, data_bytes: int = 0xFFFFFFFF - 36) -> bytes:
    """A PCM WAV header; the default length marks a stream whose end is not yet known."""
    import struct

    riff = min(36 + data_bytes, 0xFFFFFFFF)
    return (
        b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data" + struct.pack("<I", min(data_bytes, 0xFFFFFFFF))
    )


class _Sink:
    """A write-only sink: without ``seek`` the muxer never rewrites bytes already sent."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class StreamEncoder:
    """Encode PCM pushed in pieces into one continuous file, handing out bytes as made.

    Concatenating everything ``write`` and ``close`` return yields a valid file, so a
    client can play the stream as it arrives and the server can store the whole.
    ``output_rate`` resamples (continuously, across pieces) to a rate a client expects,
    e.g. the 24 kHz of OpenAI's raw PCM.
    """

    # Every container here can be written front to back: nothing is patched afterwards.
    _CODECS = {"mp3": ("mp3", "libmp3lame"), "opus": ("ogg", "libopus"),
               "aac": ("adts", "aac"), "flac": ("flac", "flac")}

    def __init__(self, fmt: str, sample_rate: int, bitrate: int = 64000,
                 output_rate: int | None = None) -> None:
        if fmt not in OUTPUT_FORMATS:
            raise AudioError(f"unsupported output format {fmt}")
        self.format = fmt
        self.input_rate = sample_rate
        self.sample_rate = 48000 if fmt == "opus" else (output_rate or sample_rate)
        self._header_sent = False
        self._sink = _Sink()
        self._container = None
        self._stream = None
        self._pts = 0
        sample_format = "s16"
        if fmt in self._CODECS:
            container_name, codec = self._CODECS[fmt]
            # No Xing header: it would be rewritten at the end. Ogg pages are cut every
            # 100 ms instead of every second, so Opus leaves as it is made.
            options = {"mp3": {"write_xing": "0"}, "opus": {"page_duration": "100000"}
                       }.get(fmt, {})
            self._container = av.open(
                self._sink, mode="w", format=container_name, options=options
            )
            self._stream = self._container.add_stream(codec, rate=self.sample_rate,
                                                      layout="mono")
            if fmt != "flac":
                self._stream.bit_rate = bitrate
            sample_format = self._stream.codec_context.format.name
        self._resampler = (
            av.AudioResampler(format=sample_format, layout="mono", rate=self.sample_rate)
            if self._container is not None or self.sample_rate != sample_rate else None
        )

    def _frame(self, pcm: bytes) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(pcm, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = self.input_rate
        return frame

    def _resampled_pcm(self, frame: av.AudioFrame | None) -> bytes:
        assert self._resampler is not None
        return b"".join(f.to_ndarray().tobytes() for f in self._resampler.resample(frame))

    def _encode_frames(self, frame: av.AudioFrame | None) -> None:
        assert self._container is not None and self._stream is not None
        assert self._resampler is not None
        for converted in self._resampler.resample(frame):
            converted.pts = self._pts
            converted.time_base = Fraction(1, converted.sample_rate)
            self._pts += converted.samples
            for packet in self._stream.encode(converted):
                self._container.mux(packet)

    def _raw(self, pcm: bytes) -> bytes:
        """PCM at the output rate (WAV and raw PCM carry it as is)."""
        if self._resampler is None or not pcm:
            return pcm
        return self._resampled_pcm(self._frame(pcm))

    def write(self, pcm: bytes) -> bytes:
        if self.format in ("pcm", "wav"):
            data = self._raw(pcm)
            if self.format == "wav" and not self._header_sent:
                self._header_sent = True
                return wav_header(self.sample_rate) + data
            return data
        if not pcm:
            return b""
        self._encode_frames(self._frame(pcm))
        return self._sink.take()

    def close(self) -> bytes:
        if self._container is None:
            tail = self._resampled_pcm(None) if self._resampler is not None else b""
            if self.format == "wav" and not self._header_sent:
                self._header_sent = True
                return wav_header(self.sample_rate, len(tail)) + tail
            return tail
        self._encode_frames(None)
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None
        return self._sink.take()


def encode(pcm: bytes, sample_rate: int, fmt: str) -> bytes:
    """Encode a whole PCM buffer; WAV gets a header with its true length."""
    if fmt == "wav":
        return wav_header(sample_rate, len(pcm)) + pcm
    encoder = StreamEncoder(fmt, sample_rate)
    return encoder.write(pcm) + encoder.close()
