"""An app of the OpenID provider, driven in process through the interface a browser and a relying
party use: register it, sign a browser in on the hosted page, authorize with code + PKCE (and the
consent form), then the token, userinfo, revocation and introspection endpoints.

Everything goes over Django's test client (HTTP requests to the real views); nothing here calls
the provider's functions, so a test that passes through these helpers passes through the server.
"""

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from django.test import Client as Browser

from accounts.clients.models import Client
from accounts.clients.services import client_create, resource_server_create
from tests.support.api import PASSWORD

REDIRECT_URI = "https://app.example.com/callback"
POST_LOGOUT_URI = "https://app.example.com/signed-out"
AUTHORIZE = "/oauth/authorize"
TOKEN = "/oauth/token"
USERINFO = "/oauth/userinfo"
REVOKE = "/oauth/revoke"
LOGOUT = "/oauth/logout"
INTROSPECT = "/api/introspect"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def pkce() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def register(name: str = "Notes", *, scopes: str = "openid profile email offline_access", **options) -> Client:
    """Register an app (confidential unless public=True); its secret is on `.secret` ("" if public)."""
    client, secret = client_create(name=name, redirect_uris=options.pop("redirect_uris", [REDIRECT_URI]), scopes=scopes, **options)
    client.secret = secret
    return client


def signed_in_browser(email: str, password: str = PASSWORD, **browser_options) -> Browser:
    """A browser signed in on the hosted page (/signin, fields `email` and `password`)."""
    browser = Browser(**browser_options)
    response = browser.post("/signin", {"email": email, "password": password, "next": ""})
    assert response.status_code == 302, response.content
    return browser


def authorize_params(client: Client, challenge: str, **params) -> dict:
    query = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email offline_access",
        "state": "state-" + secrets.token_hex(4),
        "nonce": "nonce-" + secrets.token_hex(4),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    query.update(params)
    return {name: value for name, value in query.items() if value is not None}


def redirect_query(response) -> dict:
    """The query of a redirect's Location, one value per name."""
    assert response.status_code == 302, (response.status_code, response.content[:500])
    return {name: values[0] for name, values in parse_qs(urlsplit(response["Location"]).query).items()}


def consent_fields(response) -> dict:
    """The consent form's fields, as the page renders them (hidden inputs and ui_locales)."""
    from html.parser import HTMLParser

    fields = {}

    class Inputs(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "input" and attrs.get("type") == "hidden" and attrs.get("name"):
                fields[attrs["name"]] = attrs.get("value") or ""

    Inputs().feed(response.content.decode())
    return fields


def authorize(browser: Browser, client: Client, challenge: str, *, allow: bool = True, **params):
    """GET /oauth/authorize; on the consent page, press `allow` (or `deny`). Return the final answer."""
    response = browser.get(AUTHORIZE, authorize_params(client, challenge, **params))
    if response.status_code == 200 and b'name="allow"' in response.content:
        fields = consent_fields(response)
        fields.pop("csrfmiddlewaretoken", None)
        fields["allow" if allow else "deny"] = "allow" if allow else "deny"
        response = browser.post(AUTHORIZE, fields)
    return response


def code_of(response) -> str:
    query = redirect_query(response)
    assert "code" in query, query
    return query["code"]


def token_request(client: Client, data: dict, *, auth: str = "basic", secret: str | None = None):
    """POST /oauth/token as the client: client_secret_basic, client_secret_post, or none (public)."""
    secret = client.secret if secret is None else secret
    data = dict(data)
    headers = {}
    if auth == "basic" and client.client_type == Client.CLIENT_CONFIDENTIAL:
        headers["HTTP_AUTHORIZATION"] = basic(client.client_id, secret)
    else:
        data["client_id"] = client.client_id
        if auth == "post":
            data["client_secret"] = secret
    return Browser().post(TOKEN, urlencode(data), content_type="application/x-www-form-urlencoded", **headers)


def exchange(client: Client, code: str, verifier: str, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    auth = extra.pop("auth", "basic")
    data.update(extra)
    return token_request(client, {k: v for k, v in data.items() if v is not None}, auth=auth)


def refresh(client: Client, refresh_token: str, **extra):
    return token_request(client, {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra})


def sign_in_app(browser: Browser, client: Client, **params) -> dict:
    """The whole code flow: authorize (consent allowed), exchange; return the token answer, with
    `state` and `nonce` of the request beside it."""
    verifier, challenge = pkce()
    query = authorize_params(client, challenge, **params)
    response = authorize(browser, client, challenge, **params)
    code = code_of(response)
    answer = exchange(client, code, verifier)
    assert answer.status_code == 200, answer.content
    return {**answer.json(), "request_state": query["state"], "request_nonce": query["nonce"], "code": code}


def userinfo(access_token: str):
    return Browser().get(USERINFO, HTTP_AUTHORIZATION=f"Bearer {access_token}")


class Introspector:
    """A resource server of the registry, asking POST /api/introspect."""

    def __init__(self, name: str = "reports"):
        self.server, self.secret = resource_server_create(name=name)

    def __call__(self, token: str) -> dict:
        response = Browser().post(
            INTROSPECT, urlencode({"token": token}), content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION=basic(self.server.client_id, self.secret),
        )
        assert response.status_code == 200, response.content
        return response.json()


def assert_dead(client: Client, tokens: dict, introspect: Introspector) -> None:
    """The grant's tokens are dead: refresh → invalid_grant, userinfo → 401, introspection inactive."""
    assert userinfo(tokens["access_token"]).status_code == 401
    assert introspect(tokens["access_token"]) == {"active": False}
    if "refresh_token" in tokens:
        assert introspect(tokens["refresh_token"]) == {"active": False}
        answer = refresh(client, tokens["refresh_token"])
        assert answer.status_code == 400, answer.content
        assert answer.json()["error"] == "invalid_grant"


def assert_alive(client: Client, tokens: dict, introspect: Introspector) -> None:
    assert userinfo(tokens["access_token"]).status_code == 200
    assert introspect(tokens["access_token"])["active"] is True
