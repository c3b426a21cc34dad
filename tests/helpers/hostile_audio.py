"""Audio a hostile client sends: small files that hold hours of sound, headers that lie,
truncated files, and text files FFmpeg would read as playlists or stream descriptions.

Long files are made quickly by encoding a few seconds once and muxing the same packets
again and again with later timestamps, so an hour of FLAC or Opus costs a fraction of a
second to build and a few hundred kilobytes to send. Every file is built with PyAV.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

HOUR = 3600.0


@dataclass(frozen=True)
class Hostile:
    name: str
    data: bytes
    claims: str  # what the file pretends or holds, for failure messages


def _signal(kind: str, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    if kind == "silence":
        return np.zeros_like(t)
    return 0.3 * np.sin(2 * np.pi * min(220.0, rate / 8) * t)


# container, codec, sample rate, options, seconds encoded once, bitrate
_RECIPES = {
    "flac": ("flac", "flac", 1000, {}, 4.608, None),
    "opus": ("ogg", "libopus", 48000, {}, 2.4, 6000),
    "mp3": ("mp3", "libmp3lame", 8000, {}, 2.88, 8000),
    "webm": ("matroska", "libopus", 48000, {}, 2.4, 6000),
}


def repeated(fmt: str, kind: str, seconds: float) -> bytes:
    """``seconds`` of silence or tone as ``fmt`` (flac, opus, mp3, webm, wav)."""
    if fmt == "wav":
        return _slow_wav(kind, seconds)
    container_fmt, codec, rate, options, chunk, bitrate = _RECIPES[fmt]
    buf = io.BytesIO()
    out = av.open(buf, mode="w", format=container_fmt, options=options)
    stream = out.add_stream(codec, rate=rate, layout="mono")
    if bitrate:
        stream.bit_rate = bitrate
    samples = _signal(kind, chunk, rate)
    frame = av.AudioFrame.from_ndarray(
        (samples * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    frame.pts = 0
    frame.time_base = Fraction(1, rate)
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono",
                                  rate=rate)
    packets = []
    for piece in [*resampler.resample(frame), *resampler.resample(None)]:
        packets.extend(stream.encode(piece))
    packets.extend(stream.encode(None))
    packets = [p for p in packets if p.duration]
    # The middle packets only: the first and last carry the encoder's start and end.
    middle = packets[1:-1] or packets
    span = sum(p.duration for p in middle)
    base = middle[0].pts
    offset = 0
    time_base = middle[0].time_base
    total = int(seconds / time_base)
    while offset < total:
        for packet in middle:
            copy = av.Packet(bytes(packet))
            copy.pts = copy.dts = packet.pts - base + offset
            copy.duration = packet.duration
            copy.time_base = time_base
            copy.stream = stream
            out.mux(copy)
        offset += span
    out.close()
    return buf.getvalue()


def _wav(rate: int, data: bytes, *, bits: int = 8, declared: int | None = None) -> bytes:
    block = bits // 8
    size = len(data) if declared is None else declared
    return (b"RIFF" + struct.pack("<I", min(36 + size, 0xFFFFFFFF)) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * block, block, bits)
            + b"data" + struct.pack("<I", min(size, 0xFFFFFFFF)) + data)


def _slow_wav(kind: str, seconds: float, rate: int = 100) -> bytes:
    """A WAV at a sample rate so low that an hour is 360 KB: resampled to 16 kHz for a
    recogniser, every byte becomes 320."""
    samples = _signal(kind, seconds, rate)
    return _wav(rate, (128 + samples * 100).astype(np.uint8).tobytes())


def lying_wav() -> bytes:
    """A header claiming 1 sample per second over 200 KB of data: 55 hours."""
    return _wav(1, bytes(200_000) + b"\x80" * 1000)


def zero_rate_wav() -> bytes:
    return _wav(0, bytes(16000))


def truncated(data: bytes, keep: int) -> bytes:
    return data[:keep]


PLAYLISTS = {
    "ffconcat": b"ffconcat version 1.0\nfile 'speech.wav'\nfile '/etc/hostname'\n",
    "m3u8": b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n"
            b"file:///etc/hostname\n#EXT-X-ENDLIST\n",
    "sdp": b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           b"m=audio 5004 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
    "concat_missing": b"ffconcat version 1.0\nfile 'no-such-file-anywhere.wav'\n",
}


def corpus(hours: float = 1.0) -> list[Hostile]:
    """Every hostile file, each well under a megabyte."""
    items = []
    for fmt in ("flac", "opus", "mp3", "webm", "wav"):
        for kind in ("silence", "tone"):
            items.append(Hostile(f"{fmt}_{kind}", repeated(fmt, kind, hours * HOUR),
                                 f"{hours:g} h of {kind}"))
    long_flac = repeated("flac", "silence", hours * HOUR)
    items += [
        Hostile("wav_lying_rate", lying_wav(), "1 Hz: 55 h"),
        Hostile("wav_zero_rate", zero_rate_wav(), "a sample rate of 0"),
        Hostile("flac_truncated_header", truncated(long_flac, 60), "a cut STREAMINFO"),
        Hostile("opus_headers_only", truncated(repeated("opus", "tone", 60), 200),
                "Ogg Opus cut after its headers"),
        Hostile("wav_truncated_header", truncated(_slow_wav("tone", 60), 30),
                "a cut RIFF header"),
        Hostile("matroska_header_only", b"\x1a\x45\xdf\xa3" + bytes(60), "EBML magic only"),
    ]
    items += [Hostile(name, text, "a text file FFmpeg reads as input")
              for name, text in PLAYLISTS.items()]
    return items
