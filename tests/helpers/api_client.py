"""What a client of the API does, done through Flask's test client: sign in, wait for a
background job."""

from __future__ import annotations

import time
from typing import Any

from flask.testing import FlaskClient


def sign_in(client: FlaskClient, username: str, password: str = "long-enough"
            ) -> dict[str, str]:
    """Register ``username`` and log in; returns the auth headers for its access token."""
    credentials = {"username": username, "password": password}
    client.post("/api/auth/register", json=credentials)
    token = client.post("/api/auth/login", json=credentials).get_json()["data"]["access_token"]
    return {"Authorization": f"Bearer {token}"}


def wait_for_job(client: FlaskClient, headers: dict[str, str], job_id: str,
                 timeout: float = 120) -> dict[str, Any]:
    """Poll ``GET /api/jobs/<id>`` until the job ends."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/jobs/{job_id}", headers=headers).get_json()["data"]
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end in {timeout} s")
