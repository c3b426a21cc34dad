"""The OpenAPI document as a contract the tests hold the service to: every response the
Flask test client gets is checked against the document's response for that route and
status (documented status, media type, and for JSON the body's schema)."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from openapi_schema_validator import OAS30Validator
from werkzeug.exceptions import HTTPException

from webapp.app.openapi import build_spec

_CONVERTER = re.compile(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-zA-Z_]+)>")


class ContractViolation(AssertionError):
    pass


class Contract:
    """One app's document, and the check of one response against it."""

    _spec: dict[str, Any] | None = None  # every app has the same routes: built once per run

    def __init__(self, app: Flask) -> None:
        self.app = app
        if Contract._spec is None:
            Contract._spec = build_spec(app)
        self.spec = Contract._spec

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        """The documented operation that serves ``method path``, or None (undocumented
        routes such as the console, the WebSocket upgrades and the document itself)."""
        adapter = self.app.url_map.bind("localhost")
        try:
            rule, _ = adapter.match(path, method=method, return_rule=True)
        except HTTPException:
            return None
        template = _CONVERTER.sub(r"{\1}", rule.rule)
        operation = self.spec["paths"].get(template, {}).get(method.lower())
        return (template, operation) if operation is not None else None

    def check(self, method: str, path: str, status: int, mimetype: str,
              body: Any = None) -> None:
        found = self.operation(method, path)
        if found is None:
            return
        template, operation = found
        where = f"{method} {template} → {status}"
        documented = operation["responses"].get(str(status)) or operation["responses"].get(
            "default")
        if documented is None:
            raise ContractViolation(f"{where}: status not documented "
                                    f"(documented: {sorted(operation['responses'])})")
        content = documented.get("content", {})
        if content and mimetype not in content and not any(
                kind.endswith("/*") and mimetype.startswith(kind[:-1]) for kind in content):
            raise ContractViolation(f"{where}: answered {mimetype}, documented "
                                    f"{sorted(content)}")
        schema = content.get(mimetype, {}).get("schema")
        if schema is not None and mimetype == "application/json":
            document = {**schema, "components": self.spec["components"]}
            errors = sorted(OAS30Validator(document).iter_errors(body), key=str)
            if errors:
                details = "; ".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                                    for e in errors[:5])
                raise ContractViolation(f"{where}: body does not match the document: {details}")


class ContractClient(FlaskClient):
    """A test client whose every response is checked against the OpenAPI document."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        contract = self.application.extensions.get("test_contract")
        if contract is None:
            contract = self.application.extensions["test_contract"] = Contract(self.application)
        request = response.request
        # A streamed body (audio, server-sent events) is not read here: only its type counts.
        body = response.get_json(silent=True) if response.mimetype == "application/json" else None
        contract.check(request.method, request.path, response.status_code, response.mimetype,
                       body)
        return response
