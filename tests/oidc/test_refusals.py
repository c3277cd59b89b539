"""What the OpenID provider refuses, and how: the error page (never a redirect) when the client or
its redirect URI cannot be trusted, an OAuth error redirected with `state` (and `iss`) when they
can, and the token endpoint's JSON errors. Codes work once; refresh tokens rotate, and a reused
one revokes its whole family; a grant's tokens die with its session.

Everything goes through the endpoints (tests/support/oidc_flow.py), as a browser and an app would.
"""

import time
from datetime import timedelta

import jwt
import pytest
from django.db import connection
from django.test import Client as Browser
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.audit.models import AuthEvent
from accounts.clients.models import Client
from accounts.oidc.models import AccessToken, Grant, RefreshToken
from tests.support.api import client_with
from tests.support.oidc_flow import (
    AUTHORIZE,
    REDIRECT_URI,
    authorize,
    authorize_params,
    code_of,
    exchange,
    pkce,
    redirect_query,
    refresh,
    register,
    sign_in_app,
    token_request,
    userinfo,
)

ISSUER = "http://localhost:8000"


def assert_error_page(response, status: int = 400) -> None:
    """The hosted error page: HTML, the status, and no redirect anywhere."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert "Location" not in response
    assert response["Content-Type"].startswith("text/html")
    assert b'role="alert"' in response.content


def assert_redirected_error(response, error: str, state: str) -> dict:
    """An OAuth error sent back to the registered redirect URI, with the request's state and the
    issuer (RFC 9207, which the metadata declares)."""
    assert response.status_code == 302, response.content[:300]
    assert response["Location"].startswith(REDIRECT_URI + "?")
    query = redirect_query(response)
    assert query["error"] == error, query
    assert query["state"] == state
    assert query["iss"] == ISSUER
    assert "code" not in query
    return query


def token_error(response, status: int, error: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["error"] == error
    assert "access_token" not in response.json()


def id_token_claims(id_token: str, audience: str) -> dict:
    """Verify an ID token against the JWKS, as a relying party would (PyJWT)."""
    jwks = Browser().get("/.well-known/jwks.json").json()
    header = jwt.get_unverified_header(id_token)
    key = jwt.PyJWK(next(key for key in jwks["keys"] if key["kid"] == header["kid"]))
    return jwt.decode(id_token, key.key, algorithms=[key.algorithm_name], audience=audience, issuer=ISSUER)


# --- The redirect URI: matched exactly, or the error page ---------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param("https://evil.example.net/callback", id="another-site"),
        pytest.param(REDIRECT_URI + "/", id="trailing-slash"),
        pytest.param("https://app.example.com/Callback", id="path-case"),
        pytest.param("https://APP.example.com/callback", id="host-case"),
        pytest.param("HTTPS://app.example.com/callback", id="scheme-case"),
        pytest.param("https://app.example.com:443/callback", id="default-port-spelled"),
        pytest.param("https://app.example.com/%63allback", id="percent-encoded"),
        pytest.param(REDIRECT_URI + "?next=/admin", id="added-query"),
        pytest.param("http://app.example.com/callback", id="http"),
        pytest.param("https://app.example.com:444/callback", id="port"),
        pytest.param("https://app.example.com/callback/../callback", id="dot-segments"),
        pytest.param("", id="empty"),
    ],
)
def test_a_redirect_uri_not_registered_ends_on_the_error_page(app, browser, redirect_uri):
    _verifier, challenge = pkce()

    response = browser.get(AUTHORIZE, authorize_params(app, challenge, redirect_uri=redirect_uri))

    assert_error_page(response)
    assert not Grant.objects.exists()


@pytest.mark.parametrize(
    "other_errors",
    [
        pytest.param({"scope": "openid admin"}, id="bad-scope"),
        pytest.param({"response_type": "token"}, id="bad-response-type"),
        pytest.param({"code_challenge": None, "code_challenge_method": None}, id="no-pkce"),
        pytest.param({"prompt": "none"}, id="prompt-none"),
    ],
)
@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "anonymous"])
def test_an_unregistered_redirect_uri_is_never_followed_even_with_other_errors(app, user, browser, other_errors, signed_in):
    _verifier, challenge = pkce()
    params = authorize_params(app, challenge, redirect_uri="https://evil.example.net/", **other_errors)

    response = (browser if signed_in else Browser()).get(AUTHORIZE, params)

    assert_error_page(response)


def test_an_unknown_client_ends_on_the_error_page(browser):
    _verifier, challenge = pkce()
    params = authorize_params(Client(client_id="nobody"), challenge)

    assert_error_page(browser.get(AUTHORIZE, params))


def test_the_registered_redirect_uri_matches_exactly(app, browser):
    tokens = sign_in_app(browser, app)

    assert tokens["token_type"] == "Bearer"


# --- PKCE: required, S256 only, and checked ----------------------------------------------------


@pytest.mark.parametrize("which", ["public_app", "app"])
def test_pkce_is_required_of_every_client(request, browser, which):
    client = request.getfixturevalue(which)
    params = authorize_params(client, "x", code_challenge=None, code_challenge_method=None)

    response = browser.get(AUTHORIZE, params)

    assert_redirected_error(response, "invalid_request", params["state"])
    assert not Grant.objects.exists()


def test_the_plain_pkce_method_is_refused(public_app, browser):
    verifier, _challenge = pkce()
    params = authorize_params(public_app, verifier, code_challenge_method="plain")

    response = browser.get(AUTHORIZE, params)

    assert_redirected_error(response, "invalid_request", params["state"])
    assert not Grant.objects.exists()


@pytest.mark.parametrize(
    "verifier, error",
    [
        pytest.param("wrong-verifier-" + "x" * 40, "invalid_grant", id="wrong"),
        pytest.param("", "invalid_grant", id="empty"),
        pytest.param(None, "invalid_request", id="missing"),
    ],
)
@pytest.mark.parametrize("which", ["public_app", "app"])
def test_a_wrong_or_missing_code_verifier_is_refused(request, browser, which, verifier, error):
    client = request.getfixturevalue(which)
    right, challenge = pkce()
    code = code_of(authorize(browser, client, challenge))

    response = exchange(client, code, verifier)

    token_error(response, 400, error)
    assert not AccessToken.objects.exists()
    # The code was spent by the attempt: the right verifier comes too late.
    token_error(exchange(client, code, right), 400, "invalid_grant")


def test_the_verifier_of_the_challenge_as_plain_text_is_refused(public_app, browser):
    """A downgrade: the challenge itself sent as the verifier (what `plain` would accept)."""
    _verifier, challenge = pkce()
    code = code_of(authorize(browser, public_app, challenge))

    token_error(exchange(public_app, code, challenge), 400, "invalid_grant")


# --- Codes: once, and not for long ---------------------------------------------------------------


def test_a_code_used_twice_is_refused_and_revokes_what_the_first_use_issued(app, user, browser, introspect):
    verifier, challenge = pkce()
    code = code_of(authorize(browser, app, challenge))
    first = exchange(app, code, verifier)
    assert first.status_code == 200
    tokens = first.json()
    assert userinfo(tokens["access_token"]).status_code == 200

    second = exchange(app, code, verifier)

    token_error(second, 400, "invalid_grant")
    assert userinfo(tokens["access_token"]).status_code == 401
    assert introspect(tokens["access_token"]) == {"active": False}
    assert introspect(tokens["refresh_token"]) == {"active": False}
    token_error(refresh(app, tokens["refresh_token"]), 400, "invalid_grant")
    assert AuthEvent.objects.filter(type=AuthEvent.Type.CODE_REUSED, user=user).count() == 1


def test_a_code_used_twice_revokes_the_tokens_refreshed_since(app, browser, introspect):
    verifier, challenge = pkce()
    code = code_of(authorize(browser, app, challenge))
    tokens = exchange(app, code, verifier).json()
    refreshed = refresh(app, tokens["refresh_token"]).json()

    token_error(exchange(app, code, verifier), 400, "invalid_grant")

    assert userinfo(refreshed["access_token"]).status_code == 401
    assert introspect(refreshed["refresh_token"]) == {"active": False}
    token_error(refresh(app, refreshed["refresh_token"]), 400, "invalid_grant")


def test_an_expired_code_is_invalid_grant(app, browser):
    verifier, challenge = pkce()
    code = code_of(authorize(browser, app, challenge))
    # The clock moves past the code's minute.
    Grant.objects.filter(code=code).update(expires=timezone.now() - timedelta(seconds=1))

    token_error(exchange(app, code, verifier), 400, "invalid_grant")
    assert not AccessToken.objects.exists()


def test_the_code_must_come_back_with_the_redirect_uri_it_was_issued_for(app, browser):
    verifier, challenge = pkce()
    code = code_of(authorize(browser, app, challenge))

    token_error(exchange(app, code, verifier, redirect_uri=REDIRECT_URI + "/"), 400, "invalid_grant")


# --- Client authentication -----------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["basic", "post"])
def test_a_wrong_client_secret_is_invalid_client(app, browser, auth):
    verifier, challenge = pkce()
    code = code_of(authorize(browser, app, challenge))

    response = token_request(
        app,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
        auth=auth,
        secret=app.secret[:-2] + "xx",
    )

    token_error(response, 401, "invalid_client")
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize("auth", ["basic", "post"])
def test_the_right_secret_works_both_ways(app, browser, auth):
    verifier, challenge = pkce()
    code = code_of(authorize(browser, app, challenge))

    response = exchange(app, code, verifier, auth=auth)

    assert response.status_code == 200, response.content


def test_a_confidential_client_without_its_secret_is_invalid_client(app, browser):
    verifier, challenge = pkce()
    code = code_of(authorize(browser, app, challenge))

    response = token_request(
        app,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
        auth="none",
    )

    token_error(response, 401, "invalid_client")


# --- Scopes, prompt, response_type ---------------------------------------------------------------


def test_a_scope_the_client_may_not_have_is_invalid_scope_redirected_with_state(browser, db):
    client = register(scopes="openid profile")
    _verifier, challenge = pkce()
    params = authorize_params(client, challenge, scope="openid email")

    assert_redirected_error(browser.get(AUTHORIZE, params), "invalid_scope", params["state"])


def test_an_unknown_scope_is_invalid_scope(app, browser):
    _verifier, challenge = pkce()
    params = authorize_params(app, challenge, scope="openid admin")

    assert_redirected_error(browser.get(AUTHORIZE, params), "invalid_scope", params["state"])


def test_prompt_none_without_a_session_is_login_required(app):
    _verifier, challenge = pkce()
    params = authorize_params(app, challenge, prompt="none")

    assert_redirected_error(Browser().get(AUTHORIZE, params), "login_required", params["state"])


def test_prompt_none_without_consent_is_consent_required(app, browser):
    _verifier, challenge = pkce()
    params = authorize_params(app, challenge, prompt="none")

    assert_redirected_error(browser.get(AUTHORIZE, params), "consent_required", params["state"])


def test_prompt_none_after_consent_gives_a_code(app, browser):
    sign_in_app(browser, app)
    _verifier, challenge = pkce()
    params = authorize_params(app, challenge, prompt="none")

    query = redirect_query(browser.get(AUTHORIZE, params))

    assert set(query) == {"code", "state", "iss"} and query["state"] == params["state"]


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "code token", "none"])
def test_a_response_type_other_than_code_is_unsupported(app, browser, response_type):
    _verifier, challenge = pkce()
    params = authorize_params(app, challenge, response_type=response_type)

    response = browser.get(AUTHORIZE, params)

    assert_redirected_error(response, "unsupported_response_type", params["state"])
    assert "#" not in response["Location"]
    assert not Grant.objects.exists()


def test_state_and_nonce_are_echoed(app, browser):
    tokens = sign_in_app(browser, app, state="s-\u00e9 &=?", nonce="n-42")

    claims = id_token_claims(tokens["id_token"], app.client_id)
    assert claims["nonce"] == "n-42"
    # sign_in_app checked the code came back; the state with it:
    verifier, challenge = pkce()
    query = redirect_query(authorize(browser, app, challenge, state="s-\u00e9 &=?"))
    assert query["state"] == "s-\u00e9 &=?"


def test_consent_denied_is_access_denied_with_state(app, browser, user):
    _verifier, challenge = pkce()
    params = authorize_params(app, challenge, state="deny-me")

    response = authorize(browser, app, challenge, allow=False, state="deny-me")

    assert_redirected_error(response, "access_denied", "deny-me")
    assert AuthEvent.objects.filter(type=AuthEvent.Type.CONSENT_REFUSED, user=user).exists()


# --- A disabled client ---------------------------------------------------------------------------


def test_a_disabled_client_is_refused_at_authorize(app, browser):
    Client.objects.filter(pk=app.pk).update(is_active=False)
    _verifier, challenge = pkce()

    assert_error_page(browser.get(AUTHORIZE, authorize_params(app, challenge)))


def test_a_disabled_client_is_refused_at_the_token_endpoint(app, browser, introspect):
    verifier, challenge = pkce()
    code = code_of(authorize(browser, app, challenge))
    tokens = sign_in_app(browser, app)
    Client.objects.filter(pk=app.pk).update(is_active=False)

    token_error(exchange(app, code, verifier), 401, "invalid_client")
    token_error(refresh(app, tokens["refresh_token"]), 401, "invalid_client")


def test_a_disabled_client_is_refused_between_the_consent_page_and_its_answer(app, browser):
    verifier, challenge = pkce()
    page = browser.get(AUTHORIZE, authorize_params(app, challenge))
    assert page.status_code == 200 and b'name="allow"' in page.content
    Client.objects.filter(pk=app.pk).update(is_active=False)

    response = authorize(browser, app, challenge)

    assert "code=" not in response.get("Location", "")
    assert not Grant.objects.exists()


# --- Refresh tokens: rotation, reuse, the grace, the session -----------------------------------


def _family(app, browser, rotations: int) -> list[dict]:
    """The answers of a sign-in and of `rotations` refreshes, in order."""
    answers = [sign_in_app(browser, app)]
    for _ in range(rotations):
        response = refresh(app, answers[-1]["refresh_token"])
        assert response.status_code == 200, response.content
        answers.append(response.json())
    return answers


def test_a_refresh_rotates_the_refresh_token(app, browser, introspect):
    first, second = _family(app, browser, 1)

    assert second["refresh_token"] != first["refresh_token"]
    assert introspect(first["refresh_token"]) == {"active": False}
    assert introspect(second["refresh_token"])["active"] is True


@pytest.mark.parametrize("grace", [0, 10])
def test_a_reused_refresh_token_revokes_its_whole_family_at_once(app, browser, introspect, user, settings, grace):
    settings.OIDC_REFRESH_REUSE_GRACE = grace
    family = _family(app, browser, 4)
    table = RefreshToken._meta.db_table

    with CaptureQueriesContext(connection) as queries:
        # Two generations back: never within the grace.
        response = refresh(app, family[2]["refresh_token"])

    token_error(response, 400, "invalid_grant")
    # One UPDATE revokes the family's refresh tokens (by family, whatever its size), one DELETE its
    # access tokens; the other UPDATE is the delete's SET NULL of the pointers to them.
    revocations = [query["sql"] for query in queries if query["sql"].startswith(f'UPDATE "{table}" SET "revoked"')]
    assert len(revocations) == 1, revocations
    assert '"token_family" = ' in revocations[0]
    deletes = [query["sql"] for query in queries if query["sql"].startswith(f'DELETE FROM "{AccessToken._meta.db_table}"')]
    assert len(deletes) == 1, deletes
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert not AccessToken.objects.exists()
    token_error(refresh(app, family[-1]["refresh_token"]), 400, "invalid_grant")
    assert userinfo(family[-1]["access_token"]).status_code == 401
    assert introspect(family[-1]["refresh_token"]) == {"active": False}
    assert AuthEvent.objects.filter(type=AuthEvent.Type.REFRESH_REUSED, user=user).count() >= 1


def test_the_immediate_parent_retried_within_the_grace_gets_the_same_child(app, browser, introspect, settings):
    settings.OIDC_REFRESH_REUSE_GRACE = 10
    first, child = _family(app, browser, 1)

    retried = refresh(app, first["refresh_token"])

    assert retried.status_code == 200, retried.content
    assert retried.json() == child
    assert retried["Cache-Control"] == "no-store"
    assert introspect(child["refresh_token"])["active"] is True
    assert refresh(app, child["refresh_token"]).status_code == 200


def test_only_the_immediate_parent_has_a_grace(app, browser, introspect, settings):
    settings.OIDC_REFRESH_REUSE_GRACE = 10
    first, second, third = _family(app, browser, 2)

    token_error(refresh(app, first["refresh_token"]), 400, "invalid_grant")

    assert introspect(third["refresh_token"]) == {"active": False}
    token_error(refresh(app, third["refresh_token"]), 400, "invalid_grant")


def test_a_retry_after_the_grace_revokes_the_family(app, browser, introspect, settings):
    settings.OIDC_REFRESH_REUSE_GRACE = 1
    first, child = _family(app, browser, 1)
    time.sleep(1.5)  # the one-second window is over

    token_error(refresh(app, first["refresh_token"]), 400, "invalid_grant")

    assert introspect(child["refresh_token"]) == {"active": False}
    token_error(refresh(app, child["refresh_token"]), 400, "invalid_grant")


def test_no_grace_when_it_is_zero(app, browser, introspect, settings):
    settings.OIDC_REFRESH_REUSE_GRACE = 0
    first, child = _family(app, browser, 1)

    token_error(refresh(app, first["refresh_token"]), 400, "invalid_grant")

    assert introspect(child["refresh_token"]) == {"active": False}


def test_the_grace_is_not_a_way_around_client_authentication(app, browser, settings):
    settings.OIDC_REFRESH_REUSE_GRACE = 10
    first, _child = _family(app, browser, 1)

    for auth, secret in (("basic", "wrong"), ("post", "wrong"), ("none", "")):
        response = token_request(app, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, auth=auth, secret=secret)
        token_error(response, 401, "invalid_client")


def test_the_grace_gives_nothing_once_the_session_ended(app, browser, user, token_for, settings):
    settings.OIDC_REFRESH_REUSE_GRACE = 10
    first, child = _family(app, browser, 1)
    sid = id_token_claims(first["id_token"], app.client_id)["sid"]
    assert client_with(token_for(user)).delete(f"/api/sessions/{sid}").status_code == 200

    token_error(refresh(app, first["refresh_token"]), 400, "invalid_grant")


def test_a_refresh_after_the_session_was_revoked_is_invalid_grant(app, browser, user, token_for, introspect):
    tokens = sign_in_app(browser, app)
    sid = id_token_claims(tokens["id_token"], app.client_id)["sid"]

    response = client_with(token_for(user)).delete(f"/api/sessions/{sid}")

    assert response.status_code == 200, response.content
    token_error(refresh(app, tokens["refresh_token"]), 400, "invalid_grant")
    assert userinfo(tokens["access_token"]).status_code == 401
    assert introspect(tokens["access_token"]) == {"active": False}
    assert introspect(tokens["refresh_token"]) == {"active": False}


def test_a_code_is_refused_once_its_session_ended(app, browser, user, token_for):
    verifier, challenge = pkce()
    code = code_of(authorize(browser, app, challenge))
    sid = Grant.objects.get(code=code).session.public_id
    client_with(token_for(user)).delete(f"/api/sessions/{sid}")

    token_error(exchange(app, code, verifier), 400, "invalid_grant")


def test_a_refresh_token_of_another_client_is_invalid_grant(app, browser, introspect):
    tokens = sign_in_app(browser, app)
    other = register("Other app")

    token_error(refresh(other, tokens["refresh_token"]), 400, "invalid_grant")
    # ... and the owner's token still works (no revocation by a stranger).
    assert refresh(app, tokens["refresh_token"]).status_code == 200


# --- RFC 8707 resource ---------------------------------------------------------------------------


def test_an_allowed_resource_is_the_access_tokens_audience(app, browser):
    Client.objects.filter(pk=app.pk).update(resources="https://api.example.com https://files.example.com")
    verifier, challenge = pkce()
    code = code_of(authorize(browser, app, challenge))

    response = exchange(app, code, verifier, resource="https://api.example.com")

    assert response.status_code == 200, response.content
    access = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert access["aud"] == "https://api.example.com"


def test_without_a_resource_the_audience_is_the_default(app, browser, settings):
    tokens = sign_in_app(browser, app)

    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert access["aud"] == settings.TOKEN_AUDIENCE[0]


def test_a_resource_not_allowed_is_invalid_target(app, browser):
    Client.objects.filter(pk=app.pk).update(resources="https://api.example.com")
    verifier, challenge = pkce()
    code = code_of(authorize(browser, app, challenge))

    response = exchange(app, code, verifier, resource="https://evil.example.net")

    token_error(response, 400, "invalid_target")
    assert not AccessToken.objects.exists()


def test_a_resource_not_allowed_at_refresh_is_invalid_target(app, browser):
    Client.objects.filter(pk=app.pk).update(resources="https://api.example.com")
    tokens = sign_in_app(browser, app)

    token_error(refresh(app, tokens["refresh_token"], resource="https://evil.example.net"), 400, "invalid_target")
