"""A user with an API key on a running server, for the tests that talk to ``/v1`` the
way OpenAI's clients do."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import requests


@dataclass
class Account:
    url: str
    token: str
    key: str

    @property
    def jwt_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def new_key(self, **fields: Any) -> dict[str, Any]:
        response = requests.post(f"{self.url}/api/keys", headers=self.jwt_headers,
                                 json={"name": "test", **fields}, timeout=10)
        response.raise_for_status()
        return response.json()["data"]


def sign_up(url: str) -> Account:
    name = "u" + uuid.uuid4().hex[:10]
    credentials = {"username": name, "password": "long-enough"}
    requests.post(f"{url}/api/auth/register", json=credentials, timeout=10).raise_for_status()
    token = requests.post(f"{url}/api/auth/login", json=credentials,
                          timeout=10).json()["data"]["access_token"]
    account = Account(url, token, "")
    account.key = account.new_key()["key"]
    return account

