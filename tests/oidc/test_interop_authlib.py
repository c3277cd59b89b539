"""The OpenID provider walked by Authlib's client (its requests `OAuth2Session`), against the
project served by gunicorn as in production (DEBUG off, a fresh SQLite file, TOKEN_ISSUER its own
URL), through the hosted pages' HTML forms.

Authlib builds the authorization URL (PKCE S256, state, nonce), exchanges and refreshes codes,
revokes tokens; the ID token is verified as Authlib's own OpenID client does it: the signature with
joserfc (Authlib's JOSE library; `authlib.jose` is deprecated for it since Authlib 1.5) against the
published JWKS, the claims (iss, aud, exp, nonce, at_hash) with `authlib.oidc.core.CodeIDToken`.
The access token is verified offline a second time with PyJWT, as a resource server would
(RFC 9068). Nothing here imports the server's code.
"""

import jwt
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from tests.oidc.live import TIMEOUT, access_token_claims, auth_server, authorize

pytestmark = pytest.mark.slow

EMAIL = "ann.authlib@example.com"
NAME = "Ann Authlib"
GROUP = "reporters"
SCOPE = "openid profile email groups offline_access"
APP = "http://127.0.0.1:9/app"  # the app's addresses: nothing listens there, nothing is followed
REDIRECT_URI, AFTER_LOGOUT = f"{APP}/callback", f"{APP}/signed-out"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with auth_server(tmp_path_factory.mktemp("authlib")) as server:
        server.user(EMAIL, NAME)
        server.manage(
            "shell", "-c",
            "from django.contrib.auth.models import Group; from accounts.models import User; "
            f"User.objects.get(email={EMAIL!r}).groups.add(Group.objects.get_or_create(name={GROUP!r})[0])",
        )
        yield server


@pytest.fixture(scope="module")
def metadata(server):
    """The discovery document, as a client fetches it."""
    response = requests.get(f"{server.base}/.well-known/openid-configuration", timeout=TIMEOUT)
    assert response.status_code == 200
    return response.json()


@pytest.fixture(scope="module")
def confidential(server):
    return server.client(
        "Authlib confidential", "--redirect-uri", REDIRECT_URI, "--post-logout-redirect-uri", AFTER_LOGOUT, "--scopes", SCOPE
    )


@pytest.fixture(scope="module")
def public(server):
    return server.client("Authlib public", "--public", "--redirect-uri", REDIRECT_URI, "--scopes", SCOPE)


@pytest.fixture(scope="module")
def service(server):
    """A service of the same registry: client_credentials, and the introspection endpoint."""
    return server.service("Authlib service")


@pytest.fixture
def browser():
    with requests.Session() as session:
        yield session


def session_of(client: dict) -> OAuth2Session:
    """Authlib's client: client_secret_basic for a confidential client, `none` for a public one."""
    return OAuth2Session(
        client["client_id"],
        client.get("client_secret"),
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if "client_secret" in client else "none",
    )


def code_flow(oauth: OAuth2Session, metadata: dict, browser, server, pages=("sign-in", "consent")) -> tuple[dict, str]:
    """Authorization code + PKCE, the user at the hosted pages (the `pages` the server must show);
    return the token response and the nonce sent."""
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = oauth.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    callback, shown = authorize(browser, url, server.base, EMAIL)

    assert shown == list(pages)

    assert callback.startswith(f"{REDIRECT_URI}?")
    # Authlib checks the echoed state (a mismatch raises) before it sends the code.
    token = oauth.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, state=state, code_verifier=verifier
    )
    assert token["token_type"].lower() == "bearer"
    return dict(token), nonce


def id_token_claims(id_token: str, *, metadata: dict, client_id: str, nonce: str, access_token: str) -> CodeIDToken:
    """Verify an ID token as Authlib's OpenID client does: signature against the JWKS, then iss,
    aud, exp, iat, nonce and at_hash."""
    jwks = requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json()
    decoded = jose_jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=metadata["id_token_signing_alg_values_supported"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {"iss": {"essential": True, "value": metadata["issuer"]}, "aud": {"essential": True, "value": client_id}},
        {"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    claims.validate(leeway=0)
    return claims


def introspect(server, service: dict, token: str) -> dict:
    response = requests.post(
        f"{server.base}/api/introspect",
        data={"token": token},
        auth=(service["client_id"], service["client_secret"]),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response.json()


def revoke(oauth: OAuth2Session, metadata: dict, token: str, hint: str) -> int:
    return oauth.revoke_token(metadata["revocation_endpoint"], token, token_type_hint=hint).status_code


def userinfo_status(metadata: dict, access_token: str) -> int:
    response = requests.get(metadata["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"}, timeout=TIMEOUT)
    if response.status_code == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return response.status_code


def refresh_refused(oauth: OAuth2Session, metadata: dict, refresh_token: str) -> str:
    """Try a refresh that must fail; return the OAuth error."""
    with pytest.raises(OAuthError) as refused:
        oauth.refresh_token(metadata["token_endpoint"], refresh_token=refresh_token)
    return refused.value.error


# --- Discovery -----------------------------------------------------------------------------------


def test_discovery_declares_an_openid_provider_at_its_issuer(server, metadata):
    base = server.base
    assert metadata["issuer"] == base
    assert {
        name: metadata[name]
        for name in (
            "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "revocation_endpoint",
            "introspection_endpoint", "end_session_endpoint",
        )
    } == {
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/api/introspect",
        "end_session_endpoint": f"{base}/oauth/logout",
    }
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert set(SCOPE.split()) <= set(metadata["scopes_supported"])
    # RFC 8414's document is the same one.
    assert requests.get(f"{base}/.well-known/oauth-authorization-server", timeout=TIMEOUT).json() == metadata


# --- The walk of a confidential client ------------------------------------------------------------


def test_confidential_client_code_pkce_refresh_revocation_and_end_session(server, metadata, confidential, service, browser):
    client_id = confidential["client_id"]
    oauth = session_of(confidential)

    token, nonce = code_flow(oauth, metadata, browser, server)

    # The ID token: signed by a key of the JWKS (RS256, OpenID's default), for this client.
    id_claims = id_token_claims(
        token["id_token"], metadata=metadata, client_id=client_id, nonce=nonce, access_token=token["access_token"]
    )
    assert id_claims.header["alg"] == "RS256"
    assert id_claims["nonce"] == nonce and id_claims["at_hash"]
    assert (id_claims["name"], id_claims["email"], id_claims["email_verified"], id_claims["groups"]) == (NAME, EMAIL, True, [GROUP])
    assert id_claims["amr"] == ["pwd"] and isinstance(id_claims["auth_time"], int) and id_claims["sid"]

    # The access token, verified offline (RFC 9068), names the user, the client and the session.
    access = access_token_claims(token["access_token"], metadata)
    assert (access["sub"], access["client_id"], access["sid"]) == (id_claims["sub"], client_id, id_claims["sid"])
    assert set(access["scope"].split()) == set(SCOPE.split())
    assert access["jti"]

    # The refresh token is opaque (no JWT a resource server could take for an access token),
    # and introspection knows it.
    with pytest.raises(jwt.DecodeError):
        jwt.get_unverified_header(token["refresh_token"])
    answer = introspect(server, service, token["refresh_token"])
    assert (answer["active"], answer["token_type"], answer["client_id"], answer["sid"]) == (
        True, "refresh_token", client_id, id_claims["sid"],
    )

    # Userinfo, with the access token as a Bearer token.
    userinfo = oauth.get(metadata["userinfo_endpoint"])
    assert userinfo.status_code == 200
    assert userinfo.json() == {"sub": id_claims["sub"], "name": NAME, "email": EMAIL, "email_verified": True, "groups": [GROUP]}

    # Refresh rotates: a new refresh token each time. The one just spent, retried at once (its
    # answer lost), gets the same answer (OIDC_REFRESH_REUSE_GRACE); once its child is spent too,
    # it is a reuse: invalid_grant, and the whole family is revoked.
    first = token["refresh_token"]
    second = oauth.refresh_token(metadata["token_endpoint"], refresh_token=first)
    assert second["refresh_token"] != first and second["access_token"] != token["access_token"]
    assert access_token_claims(second["access_token"], metadata)["sid"] == id_claims["sid"]
    retried = oauth.refresh_token(metadata["token_endpoint"], refresh_token=first)
    assert retried["refresh_token"] == second["refresh_token"]
    third = oauth.refresh_token(metadata["token_endpoint"], refresh_token=second["refresh_token"])
    assert third["refresh_token"] not in (first, second["refresh_token"])
    assert refresh_refused(oauth, metadata, first) == "invalid_grant"
    assert refresh_refused(oauth, metadata, third["refresh_token"]) == "invalid_grant"  # its family
    assert introspect(server, service, third["access_token"]) == {"active": False}

    # A new authorization: the browser is still signed in and the consent remembered, so the
    # server shows no page and redirects back at once.
    token, nonce = code_flow(oauth, metadata, browser, server, pages=())
    id_claims = id_token_claims(
        token["id_token"], metadata=metadata, client_id=client_id, nonce=nonce, access_token=token["access_token"]
    )
    assert introspect(server, service, token["access_token"])["active"] is True

    # RFC 7009: the access token revoked, introspection calls it inactive and userinfo refuses it;
    # its refresh token goes with it (RFC 7009 lets a server revoke both).
    assert revoke(oauth, metadata, token["access_token"], "access_token") == 200
    assert introspect(server, service, token["access_token"]) == {"active": False}
    assert userinfo_status(metadata, token["access_token"]) == 401
    assert introspect(server, service, token["refresh_token"]) == {"active": False}
    assert refresh_refused(oauth, metadata, token["refresh_token"]) == "invalid_grant"

    # The refresh token revoked: it refreshes nothing, and its access token goes with it.
    token, nonce = code_flow(oauth, metadata, browser, server, pages=())
    assert revoke(oauth, metadata, token["refresh_token"], "refresh_token") == 200
    assert introspect(server, service, token["refresh_token"]) == {"active": False}
    assert refresh_refused(oauth, metadata, token["refresh_token"]) == "invalid_grant"
    assert userinfo_status(metadata, token["access_token"]) == 401

    # RP-Initiated Logout with the ID token of the browser's session: signed out at once, sent
    # back to the registered address with the state.
    state = generate_token(20)
    signed_out = browser.get(
        metadata["end_session_endpoint"],
        params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": AFTER_LOGOUT, "state": state},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert signed_out.status_code == 302
    assert signed_out.headers["Location"] == f"{AFTER_LOGOUT}?state={state}"
    # The session is over: the next authorization asks the browser to sign in again.
    url, _state = oauth.create_authorization_url(metadata["authorization_endpoint"], code_verifier=generate_token(48))
    again = browser.get(url, allow_redirects=True, timeout=TIMEOUT)
    assert again.url.startswith(f"{server.base}/signin?")
    assert 'name="password"' in again.text


# --- A public client -------------------------------------------------------------------------------


def test_public_client_code_pkce_without_a_secret(server, metadata, public, service, browser):
    client_id = public["client_id"]
    oauth = session_of(public)

    token, nonce = code_flow(oauth, metadata, browser, server)

    id_claims = id_token_claims(
        token["id_token"], metadata=metadata, client_id=client_id, nonce=nonce, access_token=token["access_token"]
    )
    assert access_token_claims(token["access_token"], metadata)["client_id"] == client_id
    assert oauth.get(metadata["userinfo_endpoint"]).json()["sub"] == id_claims["sub"]
    refreshed = oauth.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert introspect(server, service, refreshed["access_token"])["client_id"] == client_id


# --- client_credentials ----------------------------------------------------------------------------


def test_client_credentials_gives_a_service_an_access_token_of_its_own(server, metadata, service):
    oauth = OAuth2Session(service["client_id"], service["client_secret"], token_endpoint_auth_method="client_secret_basic")

    token = oauth.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")

    assert "refresh_token" not in token and "id_token" not in token
    claims = access_token_claims(token["access_token"], metadata)
    # No user and no session behind it: the subject is the client itself.
    assert (claims["sub"], claims["client_id"]) == (service["client_id"], service["client_id"])
    assert "sid" not in claims
    answer = introspect(server, service, token["access_token"])
    assert (answer["active"], answer["client_id"], answer["sub"]) == (True, service["client_id"], service["client_id"])
