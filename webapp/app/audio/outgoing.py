"""Audio on its way out: encoded piece by piece as it is made, and kept.

Every stream the service sends (a reply in a conversation, a streamed synthesis, seed
003's MP3 callbacks) is also the file it stores afterwards. ``OutgoingAudio`` encodes
each piece once: what ``write`` and ``close`` return is sent, and the same bytes joined
are the stored file, so nothing is encoded a second time. Encoding is CPU work, so it
runs in the thread pool when called from the event loop.
"""

from __future__ import annotations

from webapp.app.audio import StreamEncoder, wav_header
from webapp.app.concurrency import run_blocking


class OutgoingAudio:
    """PCM pushed in pieces, encoded as ``fmt`` (resampled to ``output_rate`` if given).

    ``keep_as`` names another format to keep instead, for a stream whose own bytes are
    not what is stored (raw PCM sent, MP3 kept): that copy is encoded alongside, piece by
    piece, in the same trip to the thread pool. ``whole()`` is the file to store;
    ``sample_rate`` and ``duration`` describe the PCM that went in.
    """

    def __init__(self, fmt: str, *, output_rate: int | None = None,
                 keep_as: str | None = None) -> None:
        self.format = fmt
        self.kept_format = keep_as or fmt
        self._keep_as = keep_as if keep_as and keep_as != fmt else None
        self.output_rate = output_rate
        self._encoder: StreamEncoder | None = None
        self._keeper: StreamEncoder | None = None
        self._kept: list[bytes] = []
        self.samples = 0
        self.sample_rate = 0

    @property
    def started(self) -> bool:
        return self._encoder is not None

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate if self.sample_rate else 0.0

    def write(self, pcm: bytes, sample_rate: int) -> bytes:
        """Encode one piece of 16-bit mono PCM; returns the bytes to send now."""
        if self._encoder is None:
            self.sample_rate = sample_rate
            self._encoder = StreamEncoder(self.format, sample_rate, output_rate=self.output_rate)
            if self._keep_as:
                self._keeper = StreamEncoder(self._keep_as, sample_rate)
        self.samples += len(pcm) // 2
        return run_blocking(self._step, pcm)

    def close(self) -> bytes:
        """Flush the encoder; returns the last bytes to send (empty if nothing came)."""
        return run_blocking(self._step, None) if self._encoder is not None else b""

    def _step(self, pcm: bytes | None) -> bytes:
        assert self._encoder is not None
        data = self._encoder.close() if pcm is None else self._encoder.write(pcm)
        if self._keeper is not None:
            kept = self._keeper.close() if pcm is None else self._keeper.write(pcm)
        else:
            kept = data
        if kept:
            self._kept.append(kept)
        return data

    def whole(self) -> bytes:
        """Everything kept, as one file (a WAV gets its true length in the header)."""
        data = b"".join(self._kept)
        if data and self.kept_format == "wav":
            rate = (self._keeper or self._encoder).sample_rate  # type: ignore[union-attr]
            data = wav_header(rate, len(data) - 44) + data[44:]
        return data
