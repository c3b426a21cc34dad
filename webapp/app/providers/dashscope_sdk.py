"""DashScope through its official SDK: where each call goes, and what its failures mean.

Settings: ``DASHSCOPE_API_KEY`` (an engine counts as configured once it is set),
``DASHSCOPE_HTTP_BASE_URL`` and ``DASHSCOPE_WEBSOCKET_BASE_URL`` (empty: the SDK's
defaults) and ``DASHSCOPE_TIMEOUT`` (seconds, default 30).

The SDK reports failures in several shapes: exceptions (``RequestFailure``,
``VoiceEnrollmentException``, ``TimeoutError``, ``requests`` errors) and, for the HTTP
models and Paraformer, responses whose ``status_code`` is not 200. ``provider_error``
turns every one of them into a ``ProviderError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

import dashscope
import requests
import urllib3
import websocket
from dashscope.audio.tts_v2.enrollment import VoiceEnrollmentException
from dashscope.common.constants import WEBSOCKET_ERROR_CODE
from dashscope.common.error import (
    DashScopeException,
    InputRequired,
    InvalidParameter,
    RequestFailure,
)

from webapp.app.concurrency import before_wait, real_lock
from webapp.app.providers.base import ProviderError

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
TIMEOUT_HINT = "timed out (check DASHSCOPE_API_KEY and the network)"

_sdk_lock = real_lock()


@dataclass(frozen=True)
class DashScopeSettings:
    """The DashScope settings every engine reads from the app's config."""

    api_key: str
    http_url: str
    websocket_url: str
    timeout: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DashScopeSettings:
        return cls(
            api_key=str(config.get("DASHSCOPE_API_KEY") or ""),
            http_url=str(config.get("DASHSCOPE_HTTP_BASE_URL") or ""),
            websocket_url=str(config.get("DASHSCOPE_WEBSOCKET_BASE_URL") or ""),
            timeout=float(config.get("DASHSCOPE_TIMEOUT") or DEFAULT_TIMEOUT),
        )

    @property
    def configured(self) -> bool:
        return bool(self.api_key)

    def http_kwargs(self) -> dict[str, Any]:
        """Per-call SDK arguments for HTTP models: key, endpoint and time limit.

        Passed on every call so that engines with different settings never race on the
        SDK's module attributes.
        """
        kwargs: dict[str, Any] = {"api_key": self.api_key, "request_timeout": self.timeout}
        if self.http_url:
            kwargs["base_address"] = self.http_url
        return kwargs

    def websocket_kwargs(self) -> dict[str, Any]:
        """Per-call SDK arguments for the websocket models that go through ``BaseApi``."""
        kwargs: dict[str, Any] = {"api_key": self.api_key, "request_timeout": self.timeout}
        if self.websocket_url:
            kwargs["base_address"] = self.websocket_url
        return kwargs


def point_sdk(settings: DashScopeSettings) -> None:
    """Set the SDK's module attributes (read by objects that take no per-call endpoint)."""
    dashscope.api_key = settings.api_key
    if settings.http_url:
        dashscope.base_http_api_url = settings.http_url
    if settings.websocket_url:
        dashscope.base_websocket_api_url = settings.websocket_url


def build_with_settings(settings: DashScopeSettings, factory: Callable[[], T]) -> T:
    """Point the SDK at ``settings`` and build an SDK object that reads them on creation.

    ``SpeechSynthesizer`` copies ``dashscope.api_key`` in its constructor; the lock keeps
    another thread from re-pointing the SDK in between. Nothing here does I/O, so holding
    an OS lock on the event loop is harmless.
    """
    with _sdk_lock:
        point_sdk(settings)
        return factory()


def _fields(failure: Any) -> tuple[int | None, str, str]:
    """Status, error code and message of an SDK exception or failed response."""
    if isinstance(failure, RequestFailure):
        return failure.http_code, str(failure.name or ""), str(failure.message or "")
    if isinstance(failure, VoiceEnrollmentException):
        # It keeps its details only in private attributes.
        return (failure._status_code, str(failure._code or ""),
                str(failure._error_message or ""))
    if hasattr(failure, "status_code") and not isinstance(failure, BaseException):
        status = failure.status_code
        return (int(status) if status is not None else None, str(failure.code or ""),
                str(failure.message or ""))
    return None, "", str(failure)


def failure_from_event(message: str) -> RequestFailure:
    """The SDK's own exception for a ``task-failed`` event handed to ``on_error``."""
    try:
        header = json.loads(message)["header"]
    except (ValueError, KeyError, TypeError):
        return RequestFailure(message=str(message), name="TaskFailed",
                              http_code=WEBSOCKET_ERROR_CODE)
    return RequestFailure(request_id=header.get("task_id"), name=header.get("error_code"),
                          message=header.get("error_message"), http_code=WEBSOCKET_ERROR_CODE)


def _read_timed_out(failure: Any) -> bool:
    """``requests`` reports a stalled stream as a ConnectionError wrapping a read time-out."""
    return isinstance(failure, requests.ConnectionError) and any(
        isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in failure.args)


def provider_error(provider: str, failure: Any, action: str = "call") -> ProviderError:
    """Translate an SDK failure (exception, or response with ``status_code`` != 200).

    ``action`` names what was attempted, for a message a user can act on.
    """
    where = f"DashScope {action}"
    if isinstance(failure, ProviderError):
        return failure
    if isinstance(failure, (TimeoutError, requests.Timeout)) or _read_timed_out(failure):
        return ProviderError(provider, "timeout", f"{where} {TIMEOUT_HINT}", transient=True)
    if isinstance(failure, (OSError, requests.ConnectionError, websocket.WebSocketException)):
        return ProviderError(provider, "unavailable", f"cannot reach DashScope for {action}: "
                             f"{failure}", transient=True)
    if isinstance(failure, (InvalidParameter, InputRequired)):
        return ProviderError(provider, "bad_input", f"{where} rejected the input: {failure}")
    status, code, message = _fields(failure)
    detail = f"{code}: {message}" if code else message
    if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN) or code in (
        "InvalidApiKey", "401", "403",
    ):
        return ProviderError(provider, "auth", f"DashScope refused the API key "
                             f"(DASHSCOPE_API_KEY) for {action}: {detail}")
    if code.startswith("Throttling") or status == HTTPStatus.TOO_MANY_REQUESTS:
        return ProviderError(provider, "quota", f"DashScope quota or rate limit reached "
                             f"for {action}: {detail}", transient=True)
    if "timeout" in code.lower() or status == HTTPStatus.GATEWAY_TIMEOUT or (
        status == -1 and "TimeoutError" in message
    ):
        return ProviderError(provider, "timeout", f"{where} {TIMEOUT_HINT}: {detail}",
                             transient=True)
    if status == -1 or status == HTTPStatus.SERVICE_UNAVAILABLE:
        return ProviderError(provider, "unavailable", f"cannot reach DashScope for {action}: "
                             f"{detail}", transient=True)
    if code == "InternalError" or (status is not None and status >= 500):
        return ProviderError(provider, "task_failed", f"{where} failed: {detail}",
                             transient=True)
    if code.startswith("InvalidParameter") or (status is not None and 400 <= status < 500):
        return ProviderError(provider, "bad_input", f"{where} rejected the input: {detail}")
    return ProviderError(provider, "task_failed", f"{where} failed: {detail}")


def raise_for_status(provider: str, response: Any, action: str) -> None:
    """Raise the mapped error when an SDK response reports a failure instead of raising."""
    if response is None:
        raise ProviderError(provider, "task_failed", f"DashScope {action} returned nothing")
    if response.status_code != HTTPStatus.OK:
        raise provider_error(provider, response, action)


class FailFastSession(requests.Session):
    """A ``requests`` session whose time-outs and refused connections skip SDK retries.

    ``VoiceEnrollmentService`` retries ``requests`` time-outs and connection errors three
    times with 2 s sleeps and then fails with ``UnboundLocalError`` (SDK 2.0.2). Raised as
    the builtin ``TimeoutError`` / ``ConnectionError`` they reach the caller at once.
    """

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        try:
            return super().request(*args, **kwargs)
        except requests.Timeout as exc:
            raise TimeoutError(str(exc)) from exc
        except requests.ConnectionError as exc:
            raise ConnectionError(str(exc)) from exc


SDK_ERRORS: tuple[type[BaseException], ...] = (
    DashScopeException, VoiceEnrollmentException, OSError, websocket.WebSocketException,
)
"""What the SDK raises for failed calls (``requests`` errors are ``OSError``)."""


def require_key(provider: str, settings: DashScopeSettings) -> None:
    """Refuse to call DashScope without a key (the SDK would fall back to files in ~)."""
    if not settings.configured:
        raise ProviderError(provider, "not_configured", "set DASHSCOPE_API_KEY to use DashScope")


def about_to_call(provider: str, settings: DashScopeSettings) -> None:
    """Every DashScope call starts here: it needs a key, and it is a network wait."""
    require_key(provider, settings)
    before_wait(f"DashScope ({provider})")
