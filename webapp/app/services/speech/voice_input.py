"""A voice message in hand for one request: recognised from what the service already
holds, written to storage beside the recognition, and kept only with what it belongs to.

An upload is decoded once, which checks it, measures it and gives the 16 kHz samples a
recogniser takes (``pcm``); a live call hands over its samples as they are. A recogniser
that fetches audio itself asks for ``url`` instead, and the file is stored before it is
asked (a signed URL must lead to a stored file). Otherwise ``store_beside`` writes the
file in the background while recognition runs. ``keep`` then adds the file's row to the
caller's transaction, and ``discard`` removes whatever was written for the request, so a
request that fails leaves neither a file nor a row behind.
"""

from __future__ import annotations

import threading

from flask import Flask, current_app
from sqlalchemy import inspect

from webapp.app import audio
from webapp.app.concurrency import run_blocking, spawn
from webapp.app.extensions import db
from webapp.app.models import File
from webapp.app.providers.base import ProviderError
from webapp.app.services.platform import files


class _Write:
    """One object being written to storage in the background; ``wait`` re-raises its
    failure in the caller."""

    def __init__(self, row: File, data: bytes) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        spawn(self._run, current_app._get_current_object(), row, data)

    def _run(self, app: Flask, row: File, data: bytes) -> None:
        try:
            with app.app_context():
                files.put_object(row, data)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
            self.error = exc
        finally:
            self.done.set()

    def wait(self) -> None:
        self.done.wait()
        if self.error is not None:
            raise self.error


class VoiceInput:
    """A recording for one request (see the module's docstring); a ``SpeechSource``."""

    def __init__(self, owner_id: int, data: bytes | None, fmt: str, duration: float, *,
                 pcm: bytes | None = None, row: File | None = None,
                 original_name: str = "", may_store: bool = True) -> None:
        self.owner_id, self.data, self.format, self.duration = owner_id, data, fmt, duration
        self.original_name = original_name
        self.may_store = may_store
        self._pcm = pcm
        self._row = row
        self._made_here = row is None  # only a file made for this request is discarded
        self._write: _Write | None = None

    @classmethod
    def upload(cls, owner_id: int, data: bytes, *, max_seconds: float | None = None,
               original_name: str = "") -> VoiceInput:
        """Audio a client sent: checked, measured and decoded in one pass."""
        info, pcm = files.inspect_speech(data, max_seconds)
        return cls(owner_id, data, info.format, info.duration, pcm=pcm,
                   original_name=original_name)

    @classmethod
    def heard(cls, owner_id: int, pcm: bytes) -> VoiceInput:
        """Speech a live call already holds as 16 kHz samples; it is stored as a WAV."""
        return cls(owner_id, audio.encode(pcm, audio.SPEECH_SAMPLE_RATE, "wav"), "wav",
                   audio.pcm_duration(pcm, audio.SPEECH_SAMPLE_RATE), pcm=pcm)

    @classmethod
    def stored(cls, row: File) -> VoiceInput:
        """One of the user's files, already in storage (read only if a recogniser needs
        its samples)."""
        return cls(row.owner_id, None, row.format, row.duration, row=row)

    # -- what a recogniser takes ---------------------------------------------------------

    def pcm(self) -> bytes:
        if self._pcm is None:
            data = self.data if self.data is not None else files.read(self._stored_row())
            try:
                self._pcm = run_blocking(audio.decode_pcm, data, audio.SPEECH_SAMPLE_RATE)
            except audio.AudioError as exc:
                raise files.decode_error(exc) from exc
        return self._pcm

    def url(self) -> str:
        if not self.may_store and self._row is None:
            raise ProviderError("stt", "not_supported",
                                "this recogniser reads stored audio, and this request keeps none")
        row = self._written()
        if not _saved(row):
            db.session.add(row)
            db.session.commit()
        return files.download_url(row, seconds=600)

    # -- storage -------------------------------------------------------------------------

    def store_beside(self) -> None:
        """Start writing the file in the background (nothing to do for a stored file)."""
        if self._row is not None or self.data is None or not self.may_store:
            return
        self._row = files.new_row(self.owner_id, self.data, self.format, self.duration,
                                  kind="upload", original_name=self.original_name)
        self._write = _Write(self._row, self.data)

    def keep(self) -> File:
        """The file's row, written to the session's transaction so that the caller's
        commit (next, with no wait between) keeps it with what it belongs to; waits for
        the write to storage first (and raises its failure)."""
        row = self._written()
        if not _saved(row):
            db.session.add(row)
            db.session.flush()  # before the rows that point at it
        return row

    def discard(self) -> None:
        """Remove the file written for this request, if any; a stored file stays."""
        if not self._made_here or self._row is None:
            return
        row, self._row = self._row, None
        try:
            if self._write is not None:
                self._write.wait()
        except Exception:  # noqa: BLE001 - the write failed: nothing was stored
            return
        if _saved(row):
            files.delete(row)
            return
        if row in db.session:  # added for a commit that is not going to happen
            db.session.expunge(row)
        files.delete_object(row.storage_key)

    def _written(self) -> File:
        self.store_beside()
        if self._write is not None:
            self._write.wait()
        return self._stored_row()

    def _stored_row(self) -> File:
        assert self._row is not None
        return self._row


def _saved(row: File) -> bool:
    """True once the row is in the database (a rolled-back insert does not count)."""
    return inspect(row).has_identity
