from __future__ import annotations

import re
from abc import ABC, abstractmethod

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,254}$")


class StorageError(Exception):
    """The store failed (disk, network, permissions)."""


class StorageUnavailable(StorageError):
    """The store could not be reached; trying again later may work."""


def check_key(key: str) -> str:
    """Keys are made by the service; refuse anything that could escape the store."""
    if not _KEY.match(key) or ".." in key or "//" in key:
        raise StorageError(f"invalid storage key {key!r}")
    return key


class Storage(ABC):
    """Objects addressed by key. ``presigned_url`` is None where the app serves bytes itself."""

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    @abstractmethod
    def get(self, key: str) -> bytes: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    def presigned_url(self, key: str, expires: int, content_type: str) -> str | None:
        return None

    def local_path(self, key: str) -> str | None:
        return None
