"""Tests of /api/authenticate (alias /api/auth), one class per row of the contract's table.

POST logs in, GET refreshes the token, PUT changes the password, PATCH sends a recovery email,
DELETE removes the account. Each row's checks are tested in the contract's order, with the exact
error envelopes, the database state and the mail outbox; then the alias and trailing-slash paths,
the body encodings, and a public action that must ignore a stale Authorization header.
"""

import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.users.models import User
from accounts.account.profile import user_deactivate
from accounts.sessions.services import sessions_end
from accounts.users.links import Purpose, validation_token_user
from tests.conftest import PASSWORD, claims, mint_at, session_of
from tests.support.contract import (
    ACCOUNT_DISABLED,
    ACCOUNT_NOT_ACTIVE,
    AUTHENTICATE_PATH,
    COULD_NOT_SEND_EMAIL,
    INVALID_CREDENTIALS,
    LOGIN_REQUIRED,
    PASSWORD_CONFIRMATION_INVALID,
    TOKEN_INVALID,
    USER_CONFIRMATION_REQUIRED,
)
from tests.support.api import client_with, login

NEW_PASSWORD = "a fresh staple battery"
BODIES = ["json", "form", "multipart"]


def send(
    client: APIClient, method: str, data: dict | None = None, *, body: str = "json", path: str = AUTHENTICATE_PATH
):
    """Send `data` to `path` as a JSON, form (urlencoded) or multipart body."""
    if data is None:
        return getattr(client, method)(path)
    if body == "form":
        form = "application/x-www-form-urlencoded"
        return getattr(client, method)(path, urlencode(data), content_type=form)
    return getattr(client, method)(path, data, format=body)


def profile(token: str):
    """Return the response of GET /api/user with this token: 200 when the token works."""
    return client_with(token).get("/api/user")


def assert_field_errors(response, fields: dict[str, list[str]]) -> None:
    """Assert a field validation 400: the envelope plus `errors`, and a sentence in `message`."""
    body = response.json()
    assert response.status_code == 400
    assert set(body) == {"status", "message", "errors"}
    assert body["status"] == 400
    assert isinstance(body["message"], str) and body["message"]
    assert body["errors"] == fields


def assert_error(response, expected: dict) -> None:
    assert response.status_code == expected["status"]
    assert response.json() == expected


@pytest.fixture
def long_standing_user(user_factory):
    return user_factory(email="ann@example.com")


class TestLogin:
    @pytest.mark.parametrize("body", BODIES)
    def test_returns_a_working_token(self, user, body):
        response = send(APIClient(), "post", {"email": user.email, "password": PASSWORD}, body=body)

        assert response.status_code == 200
        token = response.json()["token"]
        assert claims(token)["sub"] == str(user.public_id)
        assert profile(token).json()["email"] == user.email
        session = session_of(token)
        assert (session.user, session.amr, session.remember, session.ended_at) == (user, ["pwd"], False, None)
        user.refresh_from_db()
        assert user.last_login is not None

    @pytest.mark.parametrize(
        ("data", "missing"),
        [
            pytest.param({"password": PASSWORD}, ["email"], id="no-email"),
            pytest.param({"email": "ann@example.com"}, ["password"], id="no-password"),
            pytest.param({}, ["email", "password"], id="empty"),
        ],
    )
    @pytest.mark.parametrize("body", BODIES)
    def test_missing_field_is_400(self, user, data, missing, body):
        response = send(APIClient(), "post", data, body=body)

        assert_field_errors(response, {field: ["This field is required."] for field in missing})

    def test_overlong_password_is_400(self, user):
        response = login(APIClient(), user.email, "x" * 4097)

        assert_field_errors(response, {"password": ["Ensure this field has no more than 4096 characters."]})

    def test_unknown_email_is_invalid_credentials(self, user):
        assert_error(login(APIClient(), "nobody@example.com", PASSWORD), INVALID_CREDENTIALS)

    @pytest.mark.parametrize(
        "state",
        [
            {},
            {"confirmed": False},
            {"disabled": True},
            {"deactivated": True},
            {"confirmed": False, "disabled": True},
        ],
        ids=["active", "unconfirmed", "disabled", "deactivated", "unconfirmed-disabled"],
    )
    def test_wrong_password_is_invalid_credentials_in_every_state(self, user_factory, state):
        # The credentials are checked first: a wrong password tells nothing of the account state.
        member = user_factory(email="ann@example.com", **state)

        assert_error(login(APIClient(), "ann@example.com", "wrong " + PASSWORD), INVALID_CREDENTIALS)

        member.refresh_from_db()
        assert member.is_deactivated is state.get("deactivated", False)
        assert member.last_login is None

    @pytest.mark.parametrize("disabled", [False, True], ids=["enabled", "disabled"])
    def test_unconfirmed_is_confirmation_required(self, user_factory, disabled):
        user_factory(email="ann@example.com", confirmed=False, disabled=disabled)

        assert_error(login(APIClient(), "ann@example.com", PASSWORD), USER_CONFIRMATION_REQUIRED)

    @pytest.mark.parametrize("deactivated", [False, True], ids=["active", "deactivated"])
    def test_disabled_is_account_disabled_and_not_reactivated(self, user_factory, deactivated):
        member = user_factory(email="ann@example.com", disabled=True, deactivated=deactivated)

        assert_error(login(APIClient(), "ann@example.com", PASSWORD), ACCOUNT_DISABLED)

        member.refresh_from_db()
        assert member.is_deactivated is deactivated
        assert member.last_login is None

    def test_deactivated_is_reactivated_and_old_tokens_stay_dead(self, user, token_for):
        before = token_for(user)
        remembered = token_for(user, remember=True)
        user_deactivate(user=user)
        assert_error(profile(before), ACCOUNT_NOT_ACTIVE)

        response = login(APIClient(), user.email, PASSWORD)

        assert response.status_code == 200
        user.refresh_from_db()
        assert user.deactivated_at is None
        assert profile(response.json()["token"]).status_code == 200
        assert_error(profile(before), TOKEN_INVALID)
        assert_error(profile(remembered), TOKEN_INVALID)

    def test_reactivation_opens_a_new_session_and_the_old_ones_stay_ended(self, user, token_for):
        before = token_for(user)
        user_deactivate(user=user)

        token = login(APIClient(), user.email, PASSWORD).json()["token"]

        assert session_of(token) != session_of(before)
        assert session_of(before).end_reason == "deactivation"
        assert_error(profile(before), TOKEN_INVALID)

    @pytest.mark.parametrize(
        ("stored", "typed"),
        [
            ("ann@example.com", "ANN@EXAMPLE.COM"),
            ("ann@example.com", "Ann@Example.Com"),
            ("Ann.Lee@Example.com", "ann.lee@example.com"),
            ("ann@example.com", "  ann@example.com\t"),
        ],
        ids=["upper", "mixed", "stored-mixed", "padded"],
    )
    def test_email_is_case_insensitive_and_trimmed(self, user_factory, stored, typed):
        member = user_factory(email=stored)

        response = login(APIClient(), typed, PASSWORD)

        assert response.status_code == 200
        assert claims(response.json()["token"])["sub"] == str(member.public_id)

    @pytest.mark.parametrize(
        ("body", "remember", "window"),
        [
            ("json", None, "TOKEN_REFRESH_LIFETIME"),
            ("json", False, "TOKEN_REFRESH_LIFETIME"),
            ("json", True, "TOKEN_REMEMBER_LIFETIME"),
            ("form", "false", "TOKEN_REFRESH_LIFETIME"),
            ("form", "true", "TOKEN_REMEMBER_LIFETIME"),
            ("multipart", "true", "TOKEN_REMEMBER_LIFETIME"),
        ],
    )
    def test_remember_sets_the_refresh_window(self, user, settings, body, remember, window):
        settings.TOKEN_LIFETIME = 600
        settings.TOKEN_REFRESH_LIFETIME = 4_000
        settings.TOKEN_REMEMBER_LIFETIME = 9_000
        data = {"email": user.email, "password": PASSWORD}
        if remember is not None:
            data["remember"] = remember

        response = send(APIClient(), "post", data, body=body)

        assert response.status_code == 200
        token = response.json()["token"]
        payload, session = claims(token), session_of(token)
        assert session.expires_at == session.created_at + timedelta(seconds=getattr(settings, window))
        assert payload["exp"] == int(payload["iat"]) + 600
        assert session.remember is (window == "TOKEN_REMEMBER_LIFETIME")


class TestRefresh:
    @pytest.mark.parametrize("remember", [False, True])
    def test_returns_a_new_working_token_in_the_same_window(self, user, token_for, remember):
        old = token_for(user, remember=remember)

        response = client_with(old).get(AUTHENTICATE_PATH)

        assert response.status_code == 200
        new = response.json()["token"]
        assert new != old
        assert profile(new).status_code == 200
        payload = claims(new)
        assert payload["sid"] == claims(old)["sid"]
        session = session_of(new)
        assert session.remember is remember
        lifetime = django_settings.TOKEN_LIFETIME
        assert payload["exp"] == min(int(payload["iat"]) + lifetime, int(session.expires_at.timestamp()))

    def test_never_past_the_end_of_the_refresh_window(self, long_standing_user, settings):
        settings.TOKEN_LIFETIME = 3_600
        settings.TOKEN_REFRESH_LIFETIME = 4_000
        # Logged in 3000 s ago: the token lives 600 s more, the window ends in 1000 s.
        old = mint_at(long_standing_user, timezone.now() - timedelta(seconds=3_000))

        response = client_with(old).get(AUTHENTICATE_PATH)

        assert response.status_code == 200
        payload = claims(response.json()["token"])
        window_end = int(session_of(old).expires_at.timestamp())
        # Not TOKEN_LIFETIME more: the window's end came first.
        assert payload["exp"] == window_end

    def test_an_expired_token_cannot_be_refreshed(self, long_standing_user, settings):
        settings.TOKEN_LIFETIME = 3_600
        # Expired 100 s ago, inside a refresh window that still has days to run.
        old = mint_at(long_standing_user, timezone.now() - timedelta(seconds=3_700))
        assert session_of(old).is_open()

        assert_error(client_with(old).get(AUTHENTICATE_PATH), TOKEN_INVALID)

    def test_requires_a_token(self, api_client):
        assert_error(api_client.get(AUTHENTICATE_PATH), LOGIN_REQUIRED)


class TestChangePassword:
    def change(self, client, password=PASSWORD, new_password=NEW_PASSWORD, confirm=NEW_PASSWORD, body="json"):
        data = {"password": password, "new_password": new_password, "confirm": confirm}
        return send(client, "put", data, body=body)

    def assert_unchanged(self, auth_client):
        user = User.objects.get(pk=auth_client.user.pk)
        assert user.check_password(PASSWORD)
        assert auth_client.get("/api/user").status_code == 200

    @pytest.mark.parametrize("body", BODIES)
    def test_success_revokes_every_other_token(self, auth_client, user, user_factory, token_for, body):
        other_login = token_for(user, remember=True)
        other_user_token = token_for(user_factory())

        response = self.change(auth_client, body=body)

        assert response.status_code == 200
        assert response.json()["message"] == "Password updated"
        new = response.json()["token"]
        assert profile(new).json()["email"] == user.email
        assert_error(auth_client.get("/api/user"), TOKEN_INVALID)
        assert_error(profile(other_login), TOKEN_INVALID)
        assert profile(other_user_token).status_code == 200

    def test_new_password_logs_in_and_old_does_not(self, auth_client, user):
        assert self.change(auth_client).status_code == 200

        assert login(APIClient(), user.email, NEW_PASSWORD).status_code == 200
        assert_error(login(APIClient(), user.email, PASSWORD), INVALID_CREDENTIALS)

    def test_requires_a_token(self, api_client, user):
        assert_error(self.change(api_client), LOGIN_REQUIRED)

        user.refresh_from_db()
        assert user.check_password(PASSWORD)

    @pytest.mark.parametrize(
        ("password", "new_password", "confirm", "expected"),
        [
            # new_password != confirm is checked before the current password and the policy.
            pytest.param(
                PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!", PASSWORD_CONFIRMATION_INVALID, id="mismatch"
            ),
            pytest.param(
                "wrong", "short", "other", PASSWORD_CONFIRMATION_INVALID, id="mismatch-before-wrong-password"
            ),
            # The current password is checked before the policy.
            pytest.param("wrong", NEW_PASSWORD, NEW_PASSWORD, INVALID_CREDENTIALS, id="wrong-password"),
            pytest.param("wrong", "short", "short", INVALID_CREDENTIALS, id="wrong-password-before-policy"),
        ],
    )
    def test_checks_run_in_contract_order(self, auth_client, password, new_password, confirm, expected):
        assert_error(self.change(auth_client, password, new_password, confirm), expected)

        self.assert_unchanged(auth_client)

    @pytest.mark.parametrize(
        ("new_password", "messages"),
        [
            ("short1!", ["This password is too short. It must contain at least 8 characters."]),
            ("password", ["This password is too common."]),
            ("8731904562", ["This password is entirely numeric."]),
            ("ann@example.com", ["The password is too similar to the email address."]),
        ],
        ids=["short", "common", "numeric", "similar"],
    )
    def test_password_policy_errors_go_under_new_password(self, auth_client, new_password, messages):
        response = self.change(auth_client, new_password=new_password, confirm=new_password)

        assert_field_errors(response, {"new_password": messages})
        self.assert_unchanged(auth_client)

    @pytest.mark.parametrize("missing", ["password", "new_password", "confirm"])
    def test_missing_field_is_400(self, auth_client, missing):
        data = {"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        del data[missing]

        assert_field_errors(send(auth_client, "put", data), {missing: ["This field is required."]})
        self.assert_unchanged(auth_client)


class TestRecover:
    @pytest.fixture(autouse=True)
    def _links(self, settings):
        settings.CLIENT_ORIGIN = "https://app.example.org"
        settings.RECOVER_URL = "/account/recover"

    @pytest.mark.parametrize("body", BODIES)
    @pytest.mark.parametrize(
        "typed", ["ann@example.com", " ANN@Example.com "], ids=["same", "case-and-spaces"]
    )
    def test_sends_one_recovery_email(self, api_client, user, settings, body, typed):
        response = send(api_client, "patch", {"email": typed}, body=body)

        assert response.status_code == 200
        assert response.json()["message"] == "Recovery link sent"
        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert message.subject == "Recover Your Account"
        assert message.to == [user.email]
        assert message.from_email == settings.MAIL_SENDER
        link = re.search(r"https://app\.example\.org/account/recover/(\S+)", message.body)
        assert link, message.body
        assert validation_token_user(token=link.group(1), purpose=Purpose.RECOVERY) == user

    def test_unknown_email_is_invalid_credentials(self, api_client, user):
        assert_error(send(api_client, "patch", {"email": "nobody@example.com"}), INVALID_CREDENTIALS)
        assert mail.outbox == []

    def test_unconfirmed_is_confirmation_required(self, api_client, user_factory):
        user_factory(email="ann@example.com", confirmed=False)

        assert_error(send(api_client, "patch", {"email": "ann@example.com"}), USER_CONFIRMATION_REQUIRED)
        assert mail.outbox == []

    @pytest.mark.parametrize(
        ("confirmed", "expected"),
        [(True, ACCOUNT_DISABLED), (False, USER_CONFIRMATION_REQUIRED)],
        ids=["disabled", "unconfirmed-before-disabled"],
    )
    def test_disabled_gets_no_link(self, api_client, user_factory, confirmed, expected):
        # The contract is silent; docs/api.md says: AccountDisabled, after the contract's checks.
        user_factory(email="ann@example.com", confirmed=confirmed, disabled=True)

        assert_error(send(api_client, "patch", {"email": "ann@example.com"}), expected)
        assert mail.outbox == []

    def test_mail_failure_is_could_not_send_email(self, api_client, user, failing_mail):
        assert_error(send(api_client, "patch", {"email": user.email}), COULD_NOT_SEND_EMAIL)
        assert mail.outbox == []

    def test_missing_email_is_400(self, api_client, user):
        assert_field_errors(send(api_client, "patch", {}), {"email": ["This field is required."]})
        assert mail.outbox == []


class TestDeleteAccount:
    @pytest.mark.parametrize("body", BODIES)
    def test_removes_the_user(self, auth_client, user, body):
        user.groups.add(Group.objects.create(name="readers"))

        response = send(auth_client, "delete", {"password": PASSWORD}, body=body)

        assert response.status_code == 200
        assert response.json()["message"] == "Account removed"
        assert response.json()["Message"] == "Account removed"
        assert not User.objects.filter(pk=user.pk).exists()
        assert not User.groups.through.objects.filter(user_id=user.pk).exists()
        assert_error(auth_client.get("/api/user"), TOKEN_INVALID)
        assert_error(login(APIClient(), user.email, PASSWORD), INVALID_CREDENTIALS)

    def test_wrong_password_is_invalid_credentials(self, auth_client, user):
        assert_error(send(auth_client, "delete", {"password": "wrong " + PASSWORD}), INVALID_CREDENTIALS)

        assert User.objects.filter(pk=user.pk).exists()

    def test_missing_password_is_400(self, auth_client, user):
        assert_field_errors(send(auth_client, "delete", {}), {"password": ["This field is required."]})

        assert User.objects.filter(pk=user.pk).exists()

    def test_requires_a_token(self, api_client, user):
        assert_error(send(api_client, "delete", {"password": PASSWORD}), LOGIN_REQUIRED)

        assert User.objects.filter(pk=user.pk).exists()


VERBS = {
    "post": ({"email": "ann@example.com", "password": PASSWORD}, "token"),
    "get": (None, "token"),
    "put": ({"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, "token"),
    "patch": ({"email": "ann@example.com"}, "message"),
    "delete": ({"password": PASSWORD}, "message"),
}


@pytest.mark.parametrize("method", VERBS)
@pytest.mark.parametrize("path", ["/api/authenticate", "/api/authenticate/", "/api/auth", "/api/auth/"])
def test_every_verb_answers_on_alias_and_trailing_slash(auth_client, method, path):
    data, key = VERBS[method]

    response = send(auth_client, method, data, path=path)

    # Answered in place: not a redirect (301/302/307/308) to the other spelling.
    assert response.status_code == 200, response.status_code
    assert "Location" not in response.headers
    assert key in response.json()


@pytest.mark.parametrize(
    "authorization",
    ["garbage", "Bearer garbage", "Bearer", "", "expired", "revoked", "deleted"],
)
@pytest.mark.parametrize(
    ("method", "data"), [("post", {"password": PASSWORD}), ("patch", {})], ids=["login", "recover"]
)
def test_public_actions_ignore_a_stale_authorization_header(user, user_factory, token_for, authorization, method, data):
    if authorization == "expired":
        authorization = mint_at(user, timezone.now() - timedelta(seconds=django_settings.TOKEN_LIFETIME + 60))
    elif authorization == "revoked":
        authorization = token_for(user)
        sessions_end(user=user, reason="staff")
    elif authorization == "deleted":
        gone = user_factory()
        authorization = token_for(gone)
        gone.delete()

    response = send(client_with(authorization), method, {"email": user.email, **data})

    assert response.status_code == 200
