"""Where audio objects live: one interface, a local-folder and an S3 implementation."""

from __future__ import annotations

from typing import Any

from webapp.app.storage.base import Storage, StorageError, StorageUnavailable
from webapp.app.storage.local import LocalStorage
from webapp.app.storage.s3 import S3Storage


def build_storage(config: Any) -> Storage:
    if config["STORAGE_BACKEND"] == "s3":
        return S3Storage(
            bucket=config["S3_BUCKET"], prefix=config["S3_PREFIX"],
            endpoint_url=config["S3_ENDPOINT_URL"], region=config["S3_REGION"],
            access_key=config["S3_ACCESS_KEY_ID"], secret_key=config["S3_SECRET_ACCESS_KEY"],
            timeout=float(config.get("S3_TIMEOUT") or 10.0),
        )
    return LocalStorage(config["STORAGE_DIR"])


__all__ = ["LocalStorage", "S3Storage", "Storage", "StorageError", "StorageUnavailable",
           "build_storage"]
