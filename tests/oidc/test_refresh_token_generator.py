"""OAUTH2_PROVIDER["REFRESH_TOKEN_GENERATOR"]: refresh tokens are opaque, not access tokens.

Unset, oauthlib makes refresh tokens with the access tokens' generator: each refresh token was a
signed `at+jwt` access token (iss, aud, sub, scope), which a resource server verifying offline
accepted as one, and which introspection, taking it for an access token without a row, called
inactive. Walked in process: the hosted sign-in and consent forms, then the token endpoint.
"""

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from django.test import Client as Browser

from accounts.clients.services import client_create, resource_server_create
from accounts.oidc.tokens import access_token_verify
from tests.oidc.live import forms_of
from tests.oidc.test_introspection_api import INTROSPECT, basic
from tests.support.api import PASSWORD

REDIRECT_URI = "https://app.example.com/callback"


def _code(browser: Browser, client_id: str, verifier: str) -> str:
    """Sign in on the hosted page, allow the app on the consent page; return the code."""
    assert browser.post("/signin", {"email": "ann@example.com", "password": PASSWORD}).status_code == 302
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "scope": "openid offline_access",
        "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256",
    }
    consent = browser.get(f"/oauth/authorize?{urlencode(query)}")
    assert consent.status_code == 200
    (form,) = [form for form in forms_of(consent.content.decode()) if "allow" in form.buttons]
    allowed = browser.post("/oauth/authorize", {**form.fields, "allow": form.buttons["allow"]})
    assert allowed.status_code == 302
    return parse_qs(urlsplit(allowed["Location"]).query)["code"][0]


def test_a_refresh_token_is_opaque_and_introspects_as_a_refresh_token(user):
    app, secret = client_create(name="App", redirect_uris=[REDIRECT_URI], scopes="openid offline_access")
    service, service_secret = resource_server_create(name="reports")
    browser, verifier = Browser(), secrets.token_urlsafe(48)
    code = _code(browser, app.client_id, verifier)

    answer = browser.post(
        "/oauth/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
        HTTP_AUTHORIZATION=basic(app.client_id, secret),
    )

    assert answer.status_code == 200, answer.content
    refresh_token = answer.json()["refresh_token"]
    assert re.fullmatch(r"[A-Za-z0-9]{30}", refresh_token)
    with pytest.raises(jwt.DecodeError):
        jwt.get_unverified_header(refresh_token)
    assert access_token_verify(refresh_token) is None
    introspected = browser.post(INTROSPECT, {"token": refresh_token}, HTTP_AUTHORIZATION=basic(service.client_id, service_secret))
    assert introspected.json()["active"] is True
    assert (introspected.json()["token_type"], introspected.json()["client_id"]) == ("refresh_token", app.client_id)
