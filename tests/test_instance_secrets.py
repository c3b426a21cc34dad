"""The embedded default signs with secrets of its own, made on first start and kept in
the instance folder; production refuses to start without real ones."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from config import SECRETS_FILE, instance_secrets
from webapp.app import create_app


@pytest.fixture
def no_secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SECRET_KEY", "JWT_SECRET_KEY", "APP_ENV"):
        monkeypatch.delenv(name, raising=False)


def _app(instance: Path, **overrides: object) -> object:
    return create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "INSTANCE_DIR": instance,
                       "STORAGE_DIR": instance / "storage", **overrides})


@pytest.mark.usefixtures("no_secret_env")
def test_first_start_makes_private_secrets_and_later_starts_reuse_them(tmp_path: Path) -> None:
    first = _app(tmp_path)
    path = tmp_path / SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kept = json.loads(path.read_text())
    assert first.config["SECRET_KEY"] == kept["SECRET_KEY"]
    assert first.config["JWT_SECRET_KEY"] == kept["JWT_SECRET_KEY"]
    assert len(kept["JWT_SECRET_KEY"]) >= 32 and kept["SECRET_KEY"] != kept["JWT_SECRET_KEY"]
    again = _app(tmp_path)
    assert again.config["JWT_SECRET_KEY"] == first.config["JWT_SECRET_KEY"]
    assert again.config["SECRET_KEY"] == first.config["SECRET_KEY"]
    assert list(tmp_path.glob(f".{SECRETS_FILE}.*")) == []


@pytest.mark.usefixtures("no_secret_env")
def test_two_installs_do_not_accept_each_others_tokens(tmp_path: Path) -> None:
    from flask_jwt_extended import create_access_token, decode_token
    from jwt.exceptions import InvalidSignatureError

    one, other = _app(tmp_path / "one"), _app(tmp_path / "other")
    assert one.config["JWT_SECRET_KEY"] != other.config["JWT_SECRET_KEY"]
    with one.app_context():
        token = create_access_token(identity="1")
    with other.app_context(), pytest.raises(InvalidSignatureError):
        decode_token(token)


def test_processes_starting_together_agree(tmp_path: Path) -> None:
    results: list[dict[str, str]] = []
    threads = [threading.Thread(target=lambda: results.append(instance_secrets(tmp_path)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and all(r == results[0] for r in results)


def test_given_secrets_are_used_and_nothing_is_written(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.delenv("APP_ENV", raising=False)
    monkeypatch.setenv("SECRET_KEY", "given-secret-0123456789abcdef")
    monkeypatch.setenv("JWT_SECRET_KEY", "given-jwt-secret-0123456789abcdef")
    app = _app(tmp_path)
    assert app.config["JWT_SECRET_KEY"] == "given-jwt-secret-0123456789abcdef"
    assert not (tmp_path / SECRETS_FILE).exists()
    overridden = _app(tmp_path, JWT_SECRET_KEY="override-0123456789abcdef")
    assert overridden.config["JWT_SECRET_KEY"] == "override-0123456789abcdef"


@pytest.mark.usefixtures("no_secret_env")
def test_a_damaged_secrets_file_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / SECRETS_FILE).write_text('{"SECRET_KEY": "short"}')
    with pytest.raises(RuntimeError, match="lacks SECRET_KEY"):
        _app(tmp_path)


@pytest.mark.parametrize("value", ["", "change-me-to-a-long-random-string"])
def test_production_refuses_missing_or_example_secrets(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path, value: str) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a-real-secret-0123456789")
    monkeypatch.setenv("JWT_SECRET_KEY", value)
    with pytest.raises(RuntimeError, match="JWT_SECRET_KEY"):
        _app(tmp_path)
    assert not (tmp_path / SECRETS_FILE).exists()
