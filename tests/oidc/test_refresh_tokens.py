"""The provider's refresh tokens, got as an app gets them (the hosted sign-in page, /oauth/authorize
with PKCE, /oauth/token): issued only for `offline_access`, opaque (never a JWT that a resource
server verifying offline would take for an access token), introspectable, rotated."""

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from accounts.clients.services import client_create, resource_server_create
from accounts.oidc.models import AccessToken, RefreshToken
from tests.support.api import PASSWORD

REDIRECT_URI = "https://notes.example/callback"
OPAQUE = re.compile(r"[A-Za-z0-9]{30}")


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.fixture
def app(db):
    app, app.secret = client_create(
        name="Notes", redirect_uris=[REDIRECT_URI], first_party=True, scopes="openid profile email offline_access"
    )
    return app


def tokens_of(user, app, scope: str) -> dict:
    """Sign in on the hosted page, authorize with PKCE (S256), exchange the code: the token answer."""
    browser = Client()
    response = browser.post("/signin", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    response = browser.get(
        "/oauth/authorize",
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": scope,
            "state": "s1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 302 and response["Location"].startswith(REDIRECT_URI), response
    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]
    response = browser.post(
        "/oauth/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
        HTTP_AUTHORIZATION=basic(app.client_id, app.secret),
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_a_code_without_offline_access_brings_no_refresh_token(user, app):
    answer = tokens_of(user, app, "openid profile email")

    assert sorted(answer) == ["access_token", "expires_in", "id_token", "scope", "token_type"]
    assert answer["scope"] == "openid profile email"
    assert RefreshToken.objects.count() == 0
    assert AccessToken.objects.get().session is not None


def test_offline_access_brings_an_opaque_refresh_token_that_no_bearer_endpoint_takes(user, app):
    answer = tokens_of(user, app, "openid profile email offline_access")

    refresh_token = answer["refresh_token"]
    assert OPAQUE.fullmatch(refresh_token), refresh_token  # oauthlib's random token, not a signed JWT
    assert refresh_token.count(".") == 0
    response = Client().get("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {refresh_token}")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_the_refresh_token_is_introspected_as_one_and_rotates_into_another_opaque_one(user, app):
    answer = tokens_of(user, app, "openid offline_access")
    service, secret = resource_server_create(name="reports")

    response = Client().post(
        "/api/introspect", {"token": answer["refresh_token"]}, HTTP_AUTHORIZATION=basic(service.client_id, secret)
    )
    assert response.status_code == 200, response.content
    introspected = response.json()
    assert introspected["active"] is True
    assert introspected["token_type"] == "refresh_token"
    assert introspected["client_id"] == app.client_id
    assert introspected["sub"] == str(user.public_id)
    assert introspected["scope"] == "openid offline_access"

    response = Client().post(
        "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": answer["refresh_token"]},
        HTTP_AUTHORIZATION=basic(app.client_id, app.secret),
    )
    assert response.status_code == 200, response.content
    rotated = response.json()["refresh_token"]
    assert OPAQUE.fullmatch(rotated) and rotated != answer["refresh_token"]
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1
