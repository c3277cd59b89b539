"""An attacker's review of the OpenID provider: each test names the attack and shows it fails.

Open redirects (post_logout_redirect_uri, error redirects, the sign-in page's `next`), codes and
refresh tokens across clients, PKCE downgrades, tokens of one kind or client used for another,
CSRF and clickjacking on the hosted pages, session fixation, user enumeration and the rate
limits at /signin, forged tokens (alg none, HS256 with the public key), and garbage in every
parameter of every endpoint (never a 500).
"""

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import quote

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client as Browser
from rest_framework.test import APIClient

from accounts.audit.models import AuthEvent
from accounts.clients.services import client_create
from accounts.oidc.models import AccessToken, Grant, RefreshToken
from accounts.sessions.models import Session
from tests.support.api import PASSWORD, client_with, login
from tests.support.oidc_flow import (
    AUTHORIZE,
    INTROSPECT,
    LOGOUT,
    POST_LOGOUT_URI,
    REDIRECT_URI,
    REVOKE,
    TOKEN,
    USERINFO,
    authorize,
    authorize_params,
    basic,
    code_of,
    consent_fields,
    exchange,
    pkce,
    redirect_query,
    refresh,
    register,
    sign_in_app,
    signed_in_browser,
    token_request,
    userinfo,
)

EVIL = "https://evil.example.net/"


def assert_error_page(response, status: int = 400) -> None:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert "Location" not in response
    assert b'role="alert"' in response.content


def session_open(sid: str) -> bool:
    return Session.objects.filter(public_id=sid, ended_at__isnull=True).exists()


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.fixture
def logout_app(db):
    return register("Notes", post_logout_redirect_uris=[POST_LOGOUT_URI])


@pytest.fixture
def other_app(db):
    """Another app, registered with the same redirect and post-logout URIs."""
    return register("Other", post_logout_redirect_uris=["https://other.example.org/bye"])


# --- Open redirects ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [EVIL, POST_LOGOUT_URI + "/", POST_LOGOUT_URI + "?next=" + quote(EVIL), "https://app.example.com@evil.example.net/signed-out",
     "//evil.example.net/", "javascript:alert(1)", POST_LOGOUT_URI + "#x"],
)
@pytest.mark.parametrize("how", ["client_id", "id_token_hint", "nothing"])
def test_post_logout_redirect_uri_is_no_open_redirect(logout_app, user, uri, how):
    browser = signed_in_browser(user.email)
    tokens = sign_in_app(browser, logout_app)
    params = {"post_logout_redirect_uri": uri, "state": "s"}
    if how == "client_id":
        params["client_id"] = logout_app.client_id
    if how == "id_token_hint":
        params["id_token_hint"] = tokens["id_token"]

    for response in (browser.get(LOGOUT, params), browser.post(LOGOUT, {**params, "confirm": "yes"})):
        assert_error_page(response)

    assert session_open(claims_of(tokens["id_token"])["sid"])


def test_a_post_logout_uri_of_one_app_is_refused_for_another(logout_app, other_app, user):
    browser = signed_in_browser(user.email)
    tokens = sign_in_app(browser, logout_app)

    by_client_id = browser.get(LOGOUT, {"client_id": other_app.client_id, "post_logout_redirect_uri": POST_LOGOUT_URI})
    by_hint = browser.get(LOGOUT, {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://other.example.org/bye"})

    assert_error_page(by_client_id)
    assert_error_page(by_hint)
    assert session_open(claims_of(tokens["id_token"])["sid"])


def test_the_registered_post_logout_uri_gets_the_state_and_nothing_else(logout_app, user):
    browser = signed_in_browser(user.email)
    tokens = sign_in_app(browser, logout_app)

    response = browser.get(LOGOUT, {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": POST_LOGOUT_URI, "state": "a&b=c"})

    assert response.status_code == 302
    assert response["Location"] == POST_LOGOUT_URI + "?state=a%26b%3Dc"
    assert not session_open(claims_of(tokens["id_token"])["sid"])


def test_an_id_token_of_one_app_is_no_hint_for_another_apps_logout(logout_app, other_app, user):
    """Token substitution: client B names itself, with an ID token of client A."""
    browser = signed_in_browser(user.email)
    tokens = sign_in_app(browser, logout_app)

    response = browser.get(LOGOUT, {
        "id_token_hint": tokens["id_token"], "client_id": other_app.client_id,
        "post_logout_redirect_uri": "https://other.example.org/bye",
    })

    assert_error_page(response)
    assert session_open(claims_of(tokens["id_token"])["sid"])


@pytest.mark.parametrize(
    "redirect_uri",
    ["https://other.example.org/callback", EVIL, "https://app.example.com/callback?x=" + quote(EVIL), "https://app.example.com/callback#"],
)
def test_error_redirects_go_only_to_a_uri_of_the_client(db, user, redirect_uri):
    app = register("Notes", scopes="openid")
    register("Other", redirect_uris=["https://other.example.org/callback"])
    browser = signed_in_browser(user.email)
    _verifier, challenge = pkce()

    # A request with an error (a scope not allowed) and a redirect URI that is not this app's.
    response = browser.get(AUTHORIZE, authorize_params(app, challenge, redirect_uri=redirect_uri, scope="openid email"))

    assert_error_page(response)


@pytest.mark.parametrize(
    "next_url",
    [EVIL, "//evil.example.net/", "/\\evil.example.net/", "\\\\evil.example.net", "https:evil.example.net",
     "javascript:alert(1)", " //evil.example.net", "/\t/evil.example.net", "\x00//evil.example.net"],
)
def test_the_sign_in_pages_next_is_no_open_redirect(user, next_url):
    response = Browser().post("/signin", {"email": user.email, "password": PASSWORD, "next": next_url})

    assert response.status_code == 302
    assert response["Location"] == "/signin/done"


def test_a_next_the_page_cannot_carry_still_signs_in(user):
    """Found: a `next` the hidden field refused (a NUL, or longer than 4096) answered 400 with the
    form and no message, the password right."""
    for next_url in ("/oauth/authorize?state=" + "x" * 5000, "/\x00"):
        response = Browser().post("/signin", {"email": user.email, "password": PASSWORD, "next": next_url})
        assert response.status_code == 302 and response["Location"] == "/signin/done"


# --- Codes and refresh tokens across clients -----------------------------------------------------


def test_a_code_of_one_client_cannot_be_redeemed_by_another(db, user):
    victim, attacker = register("Victim"), register("Attacker")
    browser = signed_in_browser(user.email)
    verifier, challenge = pkce()
    code = code_of(authorize(browser, victim, challenge))

    stolen = exchange(attacker, code, verifier)

    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()
    # Nor does the attempt spend the victim's code.
    assert exchange(victim, code, verifier).status_code == 200


def test_a_code_of_a_confidential_client_cannot_be_redeemed_as_public(db, user):
    victim = register("Victim")
    browser = signed_in_browser(user.email)
    verifier, challenge = pkce()
    code = code_of(authorize(browser, victim, challenge))

    response = token_request(
        victim, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}, auth="none"
    )

    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_a_public_client_cannot_redeem_a_code_with_another_public_clients_id(db, user):
    victim, attacker = register("Victim SPA", public=True), register("Attacker SPA", public=True)
    browser = signed_in_browser(user.email)
    verifier, challenge = pkce()
    code = code_of(authorize(browser, victim, challenge))

    response = exchange(attacker, code, verifier)

    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_another_client_cannot_revoke_a_clients_tokens(app, browser, introspect):
    tokens = sign_in_app(browser, app)
    attacker = register("Attacker")

    for token in (tokens["refresh_token"], tokens["access_token"]):
        Browser().post(REVOKE, {"token": token}, HTTP_AUTHORIZATION=basic(attacker.client_id, attacker.secret))

    assert introspect(tokens["access_token"])["active"] is True
    assert refresh(app, tokens["refresh_token"]).status_code == 200


def test_a_clients_own_revocation_works(app, browser, introspect):
    tokens = sign_in_app(browser, app)

    response = Browser().post(REVOKE, {"token": tokens["refresh_token"]}, HTTP_AUTHORIZATION=basic(app.client_id, app.secret))

    assert response.status_code == 200
    assert introspect(tokens["refresh_token"]) == {"active": False}
    assert refresh(app, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_live_refresh_token_presented_by_another_client_revokes_nothing(app, browser, introspect):
    tokens = sign_in_app(browser, app)
    attacker = register("Attacker")

    assert refresh(attacker, tokens["refresh_token"]).json()["error"] == "invalid_grant"

    assert introspect(tokens["refresh_token"])["active"] is True


def test_a_spent_refresh_token_presented_by_another_client_is_a_leak_revoked_and_recorded(app, browser, introspect, user, settings):
    """A spent token out in the open leaked, whoever presents it: its family is revoked (the
    toolkit does so before it checks the client). Found: the audit trail missed it then."""
    settings.OIDC_REFRESH_REUSE_GRACE = 0
    first = sign_in_app(browser, app)
    child = refresh(app, first["refresh_token"]).json()
    attacker = register("Attacker")

    assert refresh(attacker, first["refresh_token"]).json()["error"] == "invalid_grant"

    assert introspect(child["refresh_token"]) == {"active": False}
    event = AuthEvent.objects.get(type=AuthEvent.Type.REFRESH_REUSED)
    assert event.user == user and event.detail == "Notes: its family revoked, presented by Attacker"


# --- PKCE downgrades -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"code_challenge_method": "plain"}, id="plain"),
        pytest.param({"code_challenge": "", "code_challenge_method": ""}, id="removed"),
        pytest.param({"code_challenge_method": "S512"}, id="unknown-method"),
    ],
)
def test_the_consent_forms_pkce_fields_cannot_be_downgraded(app, browser, tamper):
    verifier, challenge = pkce()
    page = browser.get(AUTHORIZE, authorize_params(app, challenge))
    fields = {**consent_fields(page), **tamper, "allow": "allow"}

    response = browser.post(AUTHORIZE, fields)

    assert "code=" not in response.get("Location", "")
    assert not Grant.objects.exists()


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"nonce": "n" * 256}, id="long-nonce"),
        pytest.param({"code_challenge": "c" * 129}, id="long-challenge"),
        pytest.param({"code_challenge": "short"}, id="short-challenge"),
        pytest.param({"code_challenge": "x" * 42 + "/"}, id="challenge-not-base64url"),
    ],
)
@pytest.mark.parametrize("first_party", [True, False], ids=["first-party", "consent"])
def test_a_nonce_or_challenge_that_cannot_be_stored_is_invalid_request(db, user, params, first_party):
    """Found: a nonce over 255 characters or a challenge over 128 were stored as they came, a
    500 on PostgreSQL (SQLite stores anything); a challenge is checked as RFC 7636 says."""
    app = register("Own app", first_party=first_party)
    browser = signed_in_browser(user.email)
    _verifier, challenge = pkce()
    query = authorize_params(app, challenge, **params)

    response = browser.get(AUTHORIZE, query)

    assert redirect_query(response)["error"] == "invalid_request"
    assert redirect_query(response)["state"] == query["state"]
    if not first_party:
        # The consent form, posted as if the page had carried them, is refused the same way.
        page = browser.get(AUTHORIZE, authorize_params(app, challenge))
        posted = browser.post(AUTHORIZE, {**consent_fields(page), **params, "allow": "allow"})
        assert redirect_query(posted)["error"] == "invalid_request"
    assert not Grant.objects.exists()


def test_a_code_verifier_cannot_be_the_challenge_itself(public_app, browser):
    _verifier, challenge = pkce()
    code = code_of(authorize(browser, public_app, challenge))

    assert exchange(public_app, code, challenge).json()["error"] == "invalid_grant"


def test_a_token_request_cannot_choose_its_own_challenge_method(public_app, browser):
    verifier, challenge = pkce()
    code = code_of(authorize(browser, public_app, challenge))

    response = exchange(public_app, code, challenge, code_challenge_method="plain")

    assert response.json()["error"] == "invalid_grant"
    assert exchange(public_app, code, verifier).json()["error"] == "invalid_grant"  # spent by the attempt


# --- Tokens of one kind used as another ----------------------------------------------------------


def test_a_refresh_token_is_opaque_and_no_access_token(app, browser, introspect):
    """Found: refresh tokens were made by the access tokens' generator, so each was a signed
    at+jwt access token that a resource server verifying offline would accept."""
    tokens = sign_in_app(browser, app)

    assert tokens["refresh_token"].count(".") == 0 and len(tokens["refresh_token"]) < 64
    assert userinfo(tokens["refresh_token"]).status_code == 401
    answer = introspect(tokens["refresh_token"])
    assert answer["active"] is True and answer["token_type"] == "refresh_token" and answer["client_id"] == app.client_id


def test_no_refresh_token_without_offline_access(db, user, introspect):
    """Found: a refresh token came with every code, also to a client never allowed offline_access."""
    app = register("Online only", scopes="openid profile")
    browser = signed_in_browser(user.email)

    tokens = sign_in_app(browser, app, scope="openid profile")

    assert "refresh_token" not in tokens
    assert not RefreshToken.objects.exists()
    assert userinfo(tokens["access_token"]).status_code == 200


def test_a_refresh_that_drops_offline_access_still_rotates(app, browser, introspect, settings):
    settings.OIDC_REFRESH_REUSE_GRACE = 0
    tokens = sign_in_app(browser, app)

    narrowed = refresh(app, tokens["refresh_token"], scope="openid profile")

    assert narrowed.status_code == 200, narrowed.content
    assert introspect(tokens["refresh_token"]) == {"active": False}
    assert refresh(app, tokens["refresh_token"]).json()["error"] == "invalid_grant"


@pytest.mark.parametrize("with_redirect", [True, False], ids=["with-redirect", "without-redirect"])
@pytest.mark.parametrize("kind", ["access_token", "refresh_token", "auth_token", "logout_token"])
def test_only_an_id_token_is_an_id_token_hint(logout_app, user, token_for, kind, with_redirect):
    """A token of the browser's own session, of another kind, must not sign it out unasked
    (an access token reaches resource servers; a logout token, the app's back channel). Found:
    access and logout tokens were taken for ID tokens, and signed the browser out at once."""
    browser = signed_in_browser(user.email)
    tokens = sign_in_app(browser, logout_app)
    sid = claims_of(tokens["id_token"])["sid"]
    if kind == "auth_token":
        hint = token_for(user)
    elif kind == "logout_token":
        from accounts.oidc.tokens import logout_token_make

        hint = logout_token_make(client_id=logout_app.client_id, subject=str(user.public_id), session_id=sid, algorithm="RS256")
    else:
        hint = tokens[kind]

    params = {"id_token_hint": hint, **({"post_logout_redirect_uri": POST_LOGOUT_URI} if with_redirect else {})}

    response = browser.get(LOGOUT, params)

    assert_error_page(response)
    assert session_open(sid)


def test_an_id_token_of_another_session_does_not_sign_the_browser_out_unasked(logout_app, user, user_factory):
    """The attacker's own, valid ID token (same app) as the hint, in the victim's browser."""
    attacker = user_factory(email="mallory@example.net")
    attackers_token = sign_in_app(signed_in_browser(attacker.email), logout_app)["id_token"]
    victim = signed_in_browser(user.email)
    sid = claims_of(sign_in_app(victim, logout_app)["id_token"])["sid"]

    response = victim.get(LOGOUT, {"id_token_hint": attackers_token, "post_logout_redirect_uri": POST_LOGOUT_URI})

    assert response.status_code == 200 and b'name="confirm"' in response.content
    assert session_open(sid)


def test_an_id_token_hint_of_the_browsers_session_signs_out_at_once(logout_app, user):
    browser = signed_in_browser(user.email)
    tokens = sign_in_app(browser, logout_app)

    response = browser.get(LOGOUT, {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": POST_LOGOUT_URI})

    assert response.status_code == 302 and response["Location"] == POST_LOGOUT_URI
    assert not session_open(claims_of(tokens["id_token"])["sid"])


def test_a_client_credentials_token_opens_nothing_of_a_user(db, introspect):
    service, secret = client_create(name="Batch", service=True, scopes="openid profile")
    response = Browser().post(TOKEN, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(service.client_id, secret))
    assert response.status_code == 200, response.content
    access = response.json()["access_token"]

    assert "sid" not in claims_of(access) and claims_of(access)["sub"] == service.client_id
    assert userinfo(access).status_code == 401
    assert client_with(access).get("/api/user").status_code == 401


def test_client_credentials_is_refused_to_an_app_and_to_a_public_client(app, public_app):
    as_app = Browser().post(TOKEN, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(app.client_id, app.secret))
    as_public = Browser().post(TOKEN, {"grant_type": "client_credentials", "client_id": public_app.client_id})

    assert as_app.status_code in (400, 401) and "access_token" not in as_app.json()
    assert as_public.status_code in (400, 401) and "access_token" not in as_public.json()


@pytest.mark.parametrize("grant_type", ["password", "urn:ietf:params:oauth:grant-type:device_code", "implicit", "x"])
@pytest.mark.parametrize("which", ["app", "public_app"])
def test_other_grant_types_are_unsupported(request, user, grant_type, which):
    client = request.getfixturevalue(which)

    answers = [
        token_request(client, {"grant_type": grant_type, "username": user.email, "password": password, "device_code": "x"}, auth="post")
        for password in (PASSWORD, "wrong")
    ]

    for response in answers:
        assert response.status_code == 400
        assert response.json()["error"] == "unsupported_grant_type"


def test_the_password_grant_is_no_password_oracle(public_app, user, settings):
    """Found: POST /oauth/token with grant_type=password checked the password (Django's
    authenticate) before refusing the grant: unauthorized_client for the right password,
    invalid_grant for a wrong one. No secret needed (a public client's id), no rate limit,
    no audit trail, no two-factor: a free password oracle."""
    settings.LOGIN_ACCOUNT_RATE = "2/hour"
    answers = set()
    for password in ["wrong"] * 5 + [PASSWORD]:
        response = token_request(public_app, {"grant_type": "password", "username": user.email, "password": password}, auth="none")
        answers.add((response.status_code, response.content))

    assert len(answers) == 1
    # The account's limit was not touched: the API's login still answers the right password.
    assert login(APIClient(), user.email).status_code == 200


def test_userinfo_takes_no_access_token_in_the_query(app, browser):
    tokens = sign_in_app(browser, app)

    assert Browser().get(USERINFO, {"access_token": tokens["access_token"]}).status_code == 401


# --- Tokens replayed after their session or consent ended ---------------------------------------


def test_an_access_token_replayed_after_sign_out_is_inactive(app, browser, introspect):
    tokens = sign_in_app(browser, app)
    assert introspect(tokens["access_token"])["active"] is True

    browser.post("/signout")

    assert claims_of(tokens["access_token"])["exp"] > time.time()  # not expired: refused for its session
    assert introspect(tokens["access_token"]) == {"active": False}
    assert userinfo(tokens["access_token"]).status_code == 401


def test_tokens_replayed_after_the_consent_was_withdrawn_are_dead(app, browser, user, token_for, introspect):
    tokens = sign_in_app(browser, app)
    api = client_with(token_for(user))
    [consent] = api.get("/api/authorizations").json()["authorizations"]

    assert api.delete(f"/api/authorizations/{consent['id']}").status_code == 200

    assert introspect(tokens["access_token"]) == {"active": False}
    assert userinfo(tokens["access_token"]).status_code == 401
    assert refresh(app, tokens["refresh_token"]).json()["error"] == "invalid_grant"


# --- Forged tokens: alg none, HS256 with the public key -------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict, claims: dict, key: bytes | None) -> str:
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key is not None else b""
    return signing_input + "." + _b64(signature)


def forgeries(token: str) -> list[str]:
    """The token's header and claims under forged signatures: alg none (with and without the
    signature segment), and HS256 keyed with the published key (PEM, DER, JWK)."""
    header, claims = jwt.get_unverified_header(token), claims_of(token)
    jwk = next(key for key in Browser().get("/.well-known/jwks.json").json()["keys"] if key["kid"] == header["kid"])
    public = jwt.PyJWK(jwk).key
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    tokens = []
    for alg in ("none", "None", "NONE"):
        unsigned = forged({**header, "alg": alg}, claims, None)
        tokens += [unsigned, unsigned[:-1]]  # with the empty signature segment, and without
    for key in (pem, der, json.dumps(jwk).encode(), pem.strip()):
        tokens.append(forged({**header, "alg": "HS256"}, claims, key))
    return tokens


def test_forged_id_token_hints_are_refused(logout_app, user):
    browser = signed_in_browser(user.email)
    tokens = sign_in_app(browser, logout_app)
    sid = claims_of(tokens["id_token"])["sid"]

    for forgery in forgeries(tokens["id_token"]):
        response = browser.get(LOGOUT, {"id_token_hint": forgery, "post_logout_redirect_uri": POST_LOGOUT_URI})
        assert_error_page(response)
        assert session_open(sid)


def test_forged_access_tokens_are_refused_by_userinfo_and_introspection(app, browser, introspect):
    tokens = sign_in_app(browser, app)

    for forgery in forgeries(tokens["access_token"]):
        assert userinfo(forgery).status_code == 401
        assert introspect(forgery) == {"active": False}
        assert client_with(forgery).get("/api/user").status_code == 401


# --- CSRF, clickjacking, session fixation ---------------------------------------------------------


def test_the_sign_in_form_refuses_a_post_without_its_csrf_token(user):
    """Login CSRF: another site posting its own credentials into the victim's browser."""
    browser = Browser(enforce_csrf_checks=True)

    response = browser.post("/signin", {"email": user.email, "password": PASSWORD})

    assert response.status_code == 403
    assert not Session.objects.exists()


def test_the_sign_in_form_works_with_its_csrf_token(user):
    browser = Browser(enforce_csrf_checks=True)
    page = browser.get("/signin")
    token = consent_fields(page)["csrfmiddlewaretoken"]

    response = browser.post("/signin", {"email": user.email, "password": PASSWORD, "csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert Session.objects.filter(user=user).count() == 1


def test_the_consent_form_refuses_a_post_without_its_csrf_token(app, user):
    """Another site submitting `allow` in the victim's signed-in browser."""
    browser = Browser(enforce_csrf_checks=True)
    token = consent_fields(browser.get("/signin"))["csrfmiddlewaretoken"]
    browser.post("/signin", {"email": user.email, "password": PASSWORD, "csrfmiddlewaretoken": token})
    _verifier, challenge = pkce()
    page = browser.get(AUTHORIZE, authorize_params(app, challenge))
    fields = consent_fields(page)
    assert fields["csrfmiddlewaretoken"]

    forged_post = browser.post(AUTHORIZE, {**{k: v for k, v in fields.items() if k != "csrfmiddlewaretoken"}, "allow": "allow"})

    assert forged_post.status_code == 403
    assert not Grant.objects.exists()
    assert browser.post(AUTHORIZE, {**fields, "allow": "allow"}).status_code == 302
    assert Grant.objects.count() == 1


def test_sign_out_refuses_a_post_without_its_csrf_token(app, user):
    browser = Browser(enforce_csrf_checks=True)
    token = consent_fields(browser.get("/signin"))["csrfmiddlewaretoken"]
    browser.post("/signin", {"email": user.email, "password": PASSWORD, "csrfmiddlewaretoken": token})
    [session] = Session.objects.filter(user=user)

    assert browser.post("/signout").status_code == 403
    assert browser.post(LOGOUT, {"confirm": "yes"}).status_code == 403
    # A GET asks first, it does not sign out.
    assert browser.get(LOGOUT).status_code == 200
    assert browser.get("/signout").status_code == 200
    assert session_open(session.public_id)


PAGES = ["/signin", "/signin/two-factor", "/signin/done", "/signout", LOGOUT]


@pytest.mark.parametrize("path", [*PAGES, "consent", "error"])
def test_the_pages_cannot_be_framed(app, browser, path):
    if path == "consent":
        _verifier, challenge = pkce()
        response = browser.get(AUTHORIZE, authorize_params(app, challenge))
        assert b'name="allow"' in response.content
    elif path == "error":
        response = browser.get(AUTHORIZE, {"client_id": "nobody"})
        assert_error_page(response)
    else:
        response = browser.get(path, follow=True)
        assert response.status_code == 200

    assert response["X-Frame-Options"] == "DENY"
    policy = response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src" not in policy or "'unsafe-inline'" not in policy
    assert "default-src 'none'" in policy
    assert response["Referrer-Policy"] == "same-origin"  # no-referrer makes Chromium post forms with Origin: null


def test_signing_in_rotates_the_session_key(user):
    """Session fixation: a session key planted in the victim's browser must not become signed in."""
    planted = SessionStore()
    planted["planted"] = True
    planted.create()
    browser = Browser()
    browser.cookies[settings.SESSION_COOKIE_NAME] = planted.session_key

    browser.post("/signin", {"email": user.email, "password": PASSWORD})

    assert browser.cookies[settings.SESSION_COOKIE_NAME].value != planted.session_key
    assert "_auth_user_id" not in SessionStore(session_key=planted.session_key).load()


def test_the_two_factor_step_rotates_the_session_key_twice(user, totp_clock):
    from tests.conftest import totp_code

    api = client_with(login(APIClient(), user.email).json()["token"])
    secret = api.post("/api/mfa/totp", {"password": PASSWORD}, format="json").json()["secret"]
    assert api.put("/api/mfa/totp", {"code": totp_code(secret, totp_clock.now)}, format="json").status_code == 200
    planted = SessionStore()
    planted["planted"] = True
    planted.create()
    browser = Browser()
    browser.cookies[settings.SESSION_COOKIE_NAME] = planted.session_key

    assert browser.post("/signin", {"email": user.email, "password": PASSWORD})["Location"].startswith("/signin/two-factor")
    between = browser.cookies[settings.SESSION_COOKIE_NAME].value
    totp_clock.tick()
    assert browser.post("/signin/two-factor", {"otp": totp_code(secret, totp_clock.now)}).status_code == 302

    after = browser.cookies[settings.SESSION_COOKIE_NAME].value
    assert len({planted.session_key, between, after}) == 3
    assert Session.objects.filter(user=user, amr=["pwd", "otp"]).exists()


# --- User enumeration and rate limits at /signin -------------------------------------------------


class CountingHasher(MD5PasswordHasher):
    """MD5, counting how many passwords it hashes (what a failed sign-in costs)."""

    algorithm = "counting_md5"
    hashed = 0

    def encode(self, password, salt):
        CountingHasher.hashed += 1
        return super().encode(password, salt)


def _page_text(response) -> str:
    """The page without its CSRF token (the email typed back is the caller's)."""
    return response.content.decode().replace(consent_fields(response)["csrfmiddlewaretoken"], "")


def test_the_sign_in_page_tells_no_one_which_emails_exist(user_factory, settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    user_factory(email="known@example.com")
    user_factory(email="unconfirmed@example.com", confirmed=False)
    user_factory(email="disabled@example.com", disabled=True)
    Browser().post("/signin", {"email": "warm-up@example.com", "password": "x"})  # the timing hashes, made once

    answers = {}
    for email in ("ghost@example.com", "known@example.com", "unconfirmed@example.com", "disabled@example.com"):
        CountingHasher.hashed = 0
        response = Browser().post("/signin", {"email": email, "password": "wrong password"})
        answers[email] = (response.status_code, _page_text(response).replace(email, "EMAIL"), CountingHasher.hashed)

    assert len(set(answers.values())) == 1, answers
    status, text, hashed = answers["ghost@example.com"]
    assert status == 401 and "Invalid email or password" in text and hashed == 1


def test_the_sign_in_page_shares_the_apis_account_limit(user, settings):
    settings.LOGIN_ACCOUNT_RATE = "3/hour"
    settings.LOGIN_RATE = "100/min"

    login(APIClient(REMOTE_ADDR="198.51.100.1"), user.email, "wrong")
    Browser(REMOTE_ADDR="198.51.100.2").post("/signin", {"email": user.email, "password": "wrong"})
    login(APIClient(REMOTE_ADDR="198.51.100.3"), user.email, "wrong")

    response = Browser(REMOTE_ADDR="198.51.100.4").post("/signin", {"email": user.email, "password": PASSWORD})

    assert response.status_code == 429
    assert b"Too many attempts" in response.content
    assert not Session.objects.exists()
    assert login(APIClient(REMOTE_ADDR="198.51.100.5"), user.email).status_code == 429


def test_the_sign_in_page_shares_the_apis_address_limit(user_factory, settings):
    settings.LOGIN_ADDRESS_RATE = "3/hour"
    settings.LOGIN_RATE = "100/min"
    victim = user_factory(email="victim@example.com")

    for index in range(2):
        Browser(REMOTE_ADDR="203.0.113.9").post("/signin", {"email": f"guess{index}@example.com", "password": "x"})
    login(APIClient(REMOTE_ADDR="203.0.113.9"), "guess9@example.com", "x")

    refused = Browser(REMOTE_ADDR="203.0.113.9").post("/signin", {"email": victim.email, "password": PASSWORD})
    elsewhere = Browser(REMOTE_ADDR="203.0.113.10").post("/signin", {"email": victim.email, "password": PASSWORD})

    assert refused.status_code == 429
    assert elsewhere.status_code == 302


def test_the_two_factor_step_shares_the_apis_limit_on_codes(user, totp_clock, settings):
    from tests.conftest import totp_code

    api = client_with(login(APIClient(), user.email).json()["token"])
    secret = api.post("/api/mfa/totp", {"password": PASSWORD}, format="json").json()["secret"]
    assert api.put("/api/mfa/totp", {"code": totp_code(secret, totp_clock.now)}, format="json").status_code == 200
    settings.LOGIN_ACCOUNT_RATE = "2/hour"
    browser = Browser()
    browser.post("/signin", {"email": user.email, "password": PASSWORD})
    totp_clock.tick()
    right = totp_code(secret, totp_clock.now)
    wrong = str((int(right) + 1) % 1_000_000).zfill(6)

    assert browser.post("/signin/two-factor", {"otp": wrong}).status_code == 401
    assert login(APIClient(), user.email, otp=wrong).status_code == 401
    refused = browser.post("/signin/two-factor", {"otp": right})

    assert refused.status_code == 429
    assert not Session.objects.filter(amr=["pwd", "otp"]).exists()


def test_the_sign_in_page_counts_against_login_rate(user, settings):
    settings.LOGIN_RATE = "2/min"

    for _ in range(2):
        Browser().post("/signin", {"email": user.email, "password": "wrong"})

    assert Browser().post("/signin", {"email": user.email, "password": PASSWORD}).status_code == 429


# --- Garbage in every parameter: never a 500 -----------------------------------------------------

GARBAGE = [
    "", " ", "\x00", "a\x00b", "%00", "\u00e9\U0001d54f", "<script>alert(1)</script>", "' OR 1=1 --", "A" * 5000,
    "-1", "99999999999999999999999999", "1e309", "null", "[]", '{"a":1}', "javascript:alert(1)",
    "\r\nSet-Cookie: x=y", "https://evil.example.net/", "..%2F..%2F", "\t", "code id_token", "none login",
]
BROKEN_QUERIES = ["%ff%fe=%ff", "a=%", "=&=&&", "client_id=%00", "scope=%ff", "redirect_uri=%zz"]


def check(response, *, redirects=(REDIRECT_URI, "/signin", "/signin/", POST_LOGOUT_URI)) -> None:
    assert response.status_code < 500, (response.status_code, response.content[:300])
    assert b"<script>alert(1)</script>" not in response.content
    if 300 <= response.status_code < 400:
        assert response["Location"].startswith(redirects), response["Location"]
    elif response.status_code >= 400:
        if response["Content-Type"].startswith("application/json"):
            body = response.json()
            assert "error" in body or "message" in body, body
        else:
            assert b'role="alert"' in response.content or b"errorlist" in response.content or response.status_code in (403, 405, 429), response.content[:300]


def lenient() -> Browser:
    """A client that returns a 500 as a response (to be checked) instead of raising it."""
    return Browser(raise_request_exception=False)


AUTHORIZE_PARAMS = ["response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
                    "code_challenge_method", "prompt", "max_age", "login_hint", "ui_locales", "resource", "claims",
                    "request", "request_uri", "id_token_hint", "display", "acr_values", "response_mode"]


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "anonymous"])
def test_garbage_at_authorize(app, user, signed_in):
    browser = signed_in_browser(user.email, raise_request_exception=False) if signed_in else lenient()
    _verifier, challenge = pkce()
    for name in AUTHORIZE_PARAMS:
        for value in GARBAGE:
            check(browser.get(AUTHORIZE, authorize_params(app, challenge, **{name: value})))
        check(browser.get(AUTHORIZE, [*authorize_params(app, challenge).items(), (name, "x"), (name, "y")]))
    for query in BROKEN_QUERIES:
        check(browser.get(f"{AUTHORIZE}?{query}"))
        check(browser.get(f"{AUTHORIZE}?{'&'.join(f'{k}={quote(v)}' for k, v in authorize_params(app, challenge).items())}&{query}"))


def test_garbage_in_the_consent_form(app, user):
    browser = signed_in_browser(user.email, raise_request_exception=False)
    _verifier, challenge = pkce()
    fields = consent_fields(browser.get(AUTHORIZE, authorize_params(app, challenge)))
    for name in [*fields, "allow", "deny"]:
        for value in GARBAGE:
            check(browser.post(AUTHORIZE, {**fields, "allow": "allow", name: value}))
    check(browser.post(AUTHORIZE, b"\xff\xfe", content_type="application/x-www-form-urlencoded"))
    check(browser.post(AUTHORIZE, {"a": "b"}, content_type="application/json"))


TOKEN_FIELDS = ["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "client_id", "client_secret",
                "scope", "resource", "code_challenge_method"]


@pytest.mark.parametrize("grant_type", ["authorization_code", "refresh_token", "client_credentials"])
def test_garbage_at_the_token_endpoint(app, user, grant_type):
    browser = signed_in_browser(user.email)
    verifier, challenge = pkce()
    code = code_of(authorize(browser, app, challenge))
    tokens = sign_in_app(browser, app)
    valid = {"grant_type": grant_type, "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier,
             "refresh_token": tokens["refresh_token"]}
    auth = basic(app.client_id, app.secret)
    for name in TOKEN_FIELDS:
        for value in GARBAGE:
            check(lenient().post(TOKEN, {**valid, name: value}, HTTP_AUTHORIZATION=auth))
            check(lenient().post(TOKEN, {**valid, name: value, "client_id": app.client_id, "client_secret": app.secret}))
    for header in GARBAGE + ["Basic", "Basic " + "\xe9", "Basic !!!", "Basic " + base64.b64encode(b"\x00:\x00").decode(),
                             "Basic " + base64.b64encode(b"nocolon").decode(), "Bearer x", "Basic " + base64.b64encode(b"%00:%ff").decode()]:
        check(lenient().post(TOKEN, valid, HTTP_AUTHORIZATION=header))
    for body, content_type in ((b"\xff\xfe", "application/x-www-form-urlencoded"), (b'{"grant_type": "x"}', "application/json"),
                               (b"--x\r\n", "multipart/form-data; boundary=x"), (b"grant_type=%ff", "application/x-www-form-urlencoded")):
        check(lenient().post(TOKEN, body, content_type=content_type, HTTP_AUTHORIZATION=auth))
    check(lenient().get(TOKEN))
    check(lenient().put(TOKEN))


def test_garbage_at_revocation_userinfo_and_introspection(app, browser, introspect):
    tokens = sign_in_app(browser, app)
    auth = basic(app.client_id, app.secret)
    resource_server = basic(introspect.server.client_id, introspect.secret)
    for value in GARBAGE:
        check(lenient().post(REVOKE, {"token": value, "token_type_hint": "refresh_token"}, HTTP_AUTHORIZATION=auth))
        check(lenient().post(REVOKE, {"token": tokens["access_token"], "token_type_hint": value}, HTTP_AUTHORIZATION=auth))
        check(lenient().post(REVOKE, {"token": value}, HTTP_AUTHORIZATION=value))
        check(lenient().get(USERINFO, HTTP_AUTHORIZATION=f"Bearer {value}"))
        check(lenient().get(USERINFO, HTTP_AUTHORIZATION=value))
        check(lenient().post(USERINFO, {"access_token": value}))
        check(lenient().post(INTROSPECT, {"token": value}, HTTP_AUTHORIZATION=resource_server))
        check(lenient().post(INTROSPECT, {"token": value, "token_type_hint": value}, HTTP_AUTHORIZATION=resource_server))
    for path in (REVOKE, USERINFO, INTROSPECT):
        check(lenient().post(path, b"\xff\xfe", content_type="application/x-www-form-urlencoded", HTTP_AUTHORIZATION=auth))
        check(lenient().post(path, b"{", content_type="application/json", HTTP_AUTHORIZATION=auth))
        check(lenient().generic("PATCH", path))


def test_garbage_at_end_session(logout_app, user):
    browser = signed_in_browser(user.email, raise_request_exception=False)
    tokens = sign_in_app(signed_in_browser(user.email), logout_app)
    valid = {"id_token_hint": tokens["id_token"], "client_id": logout_app.client_id,
             "post_logout_redirect_uri": POST_LOGOUT_URI, "state": "s", "ui_locales": "de"}
    hint = tokens["id_token"]
    broken_hints = [hint + "x", hint[:-1], hint.replace(".", "..", 1), "a.b.c", "..", hint.split(".")[0] + ".e30.", "e30.e30.e30"]
    for name in valid:
        for value in GARBAGE + (broken_hints if name == "id_token_hint" else []):
            check(browser.get(LOGOUT, {**valid, name: value}))
            check(browser.post(LOGOUT, {**valid, name: value}))
    for query in BROKEN_QUERIES:
        check(browser.get(f"{LOGOUT}?{query}"))


def test_garbage_at_the_sign_in_pages(user, totp_clock, settings):
    from tests.conftest import totp_code

    settings.LOGIN_RATE = settings.LOGIN_ACCOUNT_RATE = settings.LOGIN_ADDRESS_RATE = "none"

    for value in GARBAGE:
        for name in ("email", "password", "next"):
            check(lenient().post("/signin", {"email": user.email, "password": "wrong", "next": "/", name: value}))
        check(lenient().get("/signin", {"next": value, "login_hint": value, "ui_locales": value}))
        check(lenient().get("/signin/two-factor", {"next": value}))
        check(lenient().post("/signin/two-factor", {"otp": value, "next": value}))
        check(lenient().get("/signin/done", {"ui_locales": value}))
        check(lenient().post("/signout", {"ui_locales": value}))
    api = client_with(login(APIClient(), user.email).json()["token"])
    secret = api.post("/api/mfa/totp", {"password": PASSWORD}, format="json").json()["secret"]
    assert api.put("/api/mfa/totp", {"code": totp_code(secret, totp_clock.now)}, format="json").status_code == 200
    pending = lenient()
    assert pending.post("/signin", {"email": user.email, "password": PASSWORD}).status_code == 302
    for value in GARBAGE:
        check(pending.post("/signin/two-factor", {"otp": value, "next": value}))
    for path in ("/signin", "/signin/two-factor", "/signout"):
        check(lenient().post(path, b"\xff\xfe", content_type="application/x-www-form-urlencoded"))
        check(lenient().generic("DELETE", path))
