"""Signing in through the API, one way for every test: in process (DRF's APIClient) with `login`
and `login_token`, over HTTP to a live server with `live_login`."""

import json
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from tests.support.contract import AUTHENTICATE_PATH, RECOVERY_PATH

PASSWORD = "correct horse battery"  # conftest's PASSWORD: the password of every user it makes
ANN = "ann@example.com"  # conftest's `user`
NEW_PASSWORD = "new secret phrase 42"

# Malformed values for a string field, as a JSON body can carry them.
WRONG_JSON_TYPES = [
    pytest.param(12345678, id="number"),
    pytest.param(["bob@example.com"], id="list"),
    pytest.param({"value": "bob@example.com"}, id="object"),
    pytest.param(None, id="null"),
]


def send(client: APIClient, method: str, path: str, data: dict | None = None, *, body: str | None = "json"):
    """Send `data` as a JSON ("json"), form ("form", urlencoded) or multipart ("multipart") body;
    body=None sends it in the client's default format (DRF's TEST_REQUEST_DEFAULT_FORMAT)."""
    if data is None:
        return getattr(client, method)(path)
    if body == "form":
        return getattr(client, method)(path, urlencode(data), content_type="application/x-www-form-urlencoded")
    return getattr(client, method)(path, data, format=body)


def login(client: APIClient, email: str = ANN, password: str = PASSWORD, *, body: str | None = "json", **extra):
    """POST /api/authenticate with the email, the password and any other field (`otp`,
    `remember`, ...) as `extra`; return the response."""
    return send(client, "post", AUTHENTICATE_PATH, {"email": email, "password": password, **extra}, body=body)


def assert_password_reset(client: APIClient, user, token: str, path: str = RECOVERY_PATH) -> None:
    """Reset `user`'s password to NEW_PASSWORD with the recovery `token`; require the answer, the
    stored password and a login with the new one to show it."""
    response = client.post(path, {"token": token, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, format="json")

    assert response.status_code == 200
    assert response.json() == {"message": "Password reset"}
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert login(client, user.email, NEW_PASSWORD).status_code == 200


def login_token(email: str = ANN, password: str = PASSWORD, *, client: APIClient | None = None, **extra) -> str:
    """Log in (with a fresh client unless given one), require a 200, and return the auth token."""
    response = login(client or APIClient(), email, password, **extra)
    assert response.status_code == 200, response.json()
    return response.json()["token"]


def client_with(token: str, **extra) -> APIClient:
    """An API client sending this auth token (raw, as the contract's clients do) with each request."""
    client = APIClient(**extra)
    client.credentials(HTTP_AUTHORIZATION=token)
    return client


def live_call(base: str, method: str, path: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    """Return status and JSON body of one request to a live server at `base` (a new connection
    each time); `data` goes as a JSON body."""
    headers = dict(headers or {})
    if data is not None:
        headers.setdefault("Content-Type", "application/json")
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(base + path, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def live_login(base: str, email: str, password: str = PASSWORD) -> str:
    """Log in to a live server at `base` (http://host:port) over HTTP; require a 200 and return the token."""
    status, body = live_call(base, "POST", AUTHENTICATE_PATH, {"email": email, "password": password})
    assert status == 200, body
    return body["token"]
