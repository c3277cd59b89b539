"""A client's token never manages the account: every endpoint of the server's own API refuses an
OAuth token (access, refresh or ID token, whatever its scope), exactly as it refuses a token it
does not know, and changes nothing; and the server's own auth token is no access token at
/oauth/userinfo."""

import pytest
from rest_framework.test import APIClient

from accounts.oidc.models import Consent
from accounts.sessions.models import Session
from tests.support.api import NEW_PASSWORD, PASSWORD, client_with
from tests.support.contract import TOKEN_INVALID, assert_error
from tests.support.oidc_flow import register, sign_in_app, userinfo

SESSION_ID = "A" * 43
CONSENT_ID = "00000000-0000-4000-8000-000000000000"

# Every call of the account API that needs the user's token, with a body that would succeed.
ACCOUNT_CALLS = [
    pytest.param("get", "/api/user", None, id="profile-read"),
    pytest.param("put", "/api/user", {"name": "Mallory"}, id="profile-update"),
    pytest.param("patch", "/api/user", {"new_email": "mallory@example.net", "password": PASSWORD}, id="email-change"),
    pytest.param("delete", "/api/user", None, id="deactivate"),
    pytest.param("get", "/api/authenticate", None, id="token-refresh"),
    pytest.param("put", "/api/authenticate", {"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, id="password-change"),
    pytest.param("delete", "/api/authenticate", {"password": PASSWORD}, id="account-deletion"),
    pytest.param("get", "/api/sessions", None, id="sessions-list"),
    pytest.param("delete", "/api/sessions", None, id="sessions-revoke-others"),
    pytest.param("delete", f"/api/sessions/{SESSION_ID}", None, id="session-revoke"),
    pytest.param("get", "/api/mfa", None, id="two-factor-status"),
    pytest.param("post", "/api/mfa/totp", {"password": PASSWORD}, id="two-factor-enroll"),
    pytest.param("put", "/api/mfa/totp", {"otp": "123456"}, id="two-factor-confirm"),
    pytest.param("delete", "/api/mfa/totp", {"password": PASSWORD, "otp": "123456"}, id="two-factor-disable"),
    pytest.param("post", "/api/mfa/recovery-codes", {"otp": "123456"}, id="recovery-codes"),
    pytest.param("get", "/api/authorizations", None, id="authorizations-list"),
    pytest.param("delete", f"/api/authorizations/{CONSENT_ID}", None, id="authorization-withdraw"),
]

SCOPES = ["openid", "openid profile email offline_access", "profile", "email offline_access"]


@pytest.fixture
def oauth_tokens(user, browser, db):
    """The tokens of one sign-in per scope set, each from an app allowed every scope."""
    client = register("Everything", scopes="openid profile email groups offline_access")
    answers = {scope: sign_in_app(browser, client, scope=scope) for scope in SCOPES}
    for scope, tokens in answers.items():
        # An ID token with openid, a refresh token with offline_access.
        assert ("id_token" in tokens, "refresh_token" in tokens) == ("openid" in scope, "offline_access" in scope), scope
    return answers


def call(token: str | None, method: str, path: str, body: dict | None):
    client = client_with(token) if token is not None else APIClient()
    return getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)


def account_state(user) -> tuple:
    user.refresh_from_db()
    return (
        user.email, user.name, user.password, user.is_active, user.deactivated_at, user.has_usable_password(),
        Session.objects.filter(user=user, ended_at__isnull=True).count(), Consent.objects.filter(user=user).count(),
    )


@pytest.mark.parametrize("method, path, body", ACCOUNT_CALLS)
def test_an_oauth_token_is_refused_by_every_account_endpoint_as_an_unknown_token_is(
    user, oauth_tokens, method, path, body
):
    unknown = call("not-a-token-of-this-server", method, path, body)
    assert_error(unknown, TOKEN_INVALID)
    before = account_state(user)

    for scope, tokens in oauth_tokens.items():
        kinds = [kind for kind in ("access_token", "id_token", "refresh_token") if kind in tokens]
        for token in [prefix + tokens[kind] for kind in kinds for prefix in ("", "Bearer ")]:
            response = call(token, method, path, body)
            assert (response.status_code, response.json()) == (unknown.status_code, unknown.json()), (scope, token[:20])
            assert response["Content-Type"] == unknown["Content-Type"]

    assert account_state(user) == before
    assert userinfo(oauth_tokens["openid"]["access_token"]).status_code == 200


def test_the_same_calls_work_with_the_servers_own_token(user, token_for):
    """The refusal above is the token's: the API answers these calls with an auth token."""
    token = token_for(user)

    assert call(token, "get", "/api/user", None).status_code == 200
    assert call(token, "get", "/api/sessions", None).status_code == 200
    assert call(token, "get", "/api/authorizations", None).status_code == 200
    assert call(token, "get", "/api/mfa", None).status_code == 200


@pytest.mark.parametrize("scheme", ["Bearer ", ""])
@pytest.mark.parametrize("method", ["get", "post"])
def test_the_servers_auth_token_is_refused_by_userinfo(user, token_for, scheme, method):
    token = token_for(user)
    client = APIClient()

    response = getattr(client, method)("/oauth/userinfo", HTTP_AUTHORIZATION=f"{scheme}{token}")

    assert response.status_code == 401
    if scheme:
        assert response.json()["error"] == "invalid_token"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_the_servers_auth_token_is_refused_by_userinfo_in_a_form_body(user, token_for):
    response = APIClient().post("/oauth/userinfo", {"access_token": token_for(user)}, format="multipart")
    form = APIClient().generic(
        "POST", "/oauth/userinfo", f"access_token={token_for(user)}", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 401
    assert form.status_code == 401 and form.json()["error"] == "invalid_token"


def test_an_id_token_and_a_refresh_token_are_refused_by_userinfo(oauth_tokens):
    tokens = oauth_tokens["openid profile email offline_access"]

    assert userinfo(tokens["id_token"]).status_code == 401
    assert userinfo(tokens["refresh_token"]).status_code == 401
    assert userinfo(tokens["access_token"]).status_code == 200
