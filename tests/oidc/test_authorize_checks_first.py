"""/oauth/authorize checks the request before anyone is asked to sign in."""

import pytest
from urllib.parse import urlsplit, parse_qs
from django.test import Client as Browser
from accounts.clients.services import client_create

@pytest.fixture
def app(db):
    client, _ = client_create(name="Shop", redirect_uris=["https://shop.example.com/cb"], scopes="openid")
    return client

def test_bad_redirect_uri_without_session_is_error_page(app):
    r = Browser().get("/oauth/authorize", {"client_id": app.client_id, "redirect_uri": "https://evil.example.com/cb", "response_type": "code", "scope": "openid", "state": "s", "code_challenge": "x"*43, "code_challenge_method": "S256"})
    assert r.status_code == 400 and "Location" not in r.headers

def test_missing_pkce_without_session_goes_back_to_app(app):
    r = Browser().get("/oauth/authorize", {"client_id": app.client_id, "redirect_uri": "https://shop.example.com/cb", "response_type": "code", "scope": "openid", "state": "s"})
    assert r.status_code == 302
    loc = urlsplit(r["Location"]); q = parse_qs(loc.query)
    assert loc.netloc == "shop.example.com" and q["error"] == ["invalid_request"] and q["state"] == ["s"]

def test_good_request_without_session_goes_to_signin(app):
    r = Browser().get("/oauth/authorize", {"client_id": app.client_id, "redirect_uri": "https://shop.example.com/cb", "response_type": "code", "scope": "openid", "state": "s", "code_challenge": "x"*43, "code_challenge_method": "S256"})
    assert r.status_code == 302 and r["Location"].startswith("/signin?")
