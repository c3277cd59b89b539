"""/api/validate/confirmation (POST confirm, PUT resend) and /api/validate/recovery (POST reset).

Covers every check of the contract's rows in order: bad, expired, wrong-purpose, spent and
outdated validation tokens and tokens of deleted users (InvalidToken, exact envelope); the resend
and reset rules; the password policy under `errors.new_password`; the emails sent (same subject
and link form for a resend); revocation of auth tokens by a reset; trailing slashes; and 405 in
the envelope for verbs the paths do not map.
"""

import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.core import mail
from django.core.signing import Signer
from django.utils import timezone

from accounts.users import links as tokens
from accounts.users.models import User
from accounts.users.links import Purpose, validation_token_make
from tests.conftest import PASSWORD
from tests.support.contract import (
    AUTHENTICATE_PATH,
    CONFIRMATION_PATH,
    COULD_NOT_SEND_EMAIL,
    INVALID_CREDENTIALS,
    INVALID_TOKEN,
    PASSWORD_CONFIRMATION_INVALID,
    RECOVERY_PATH,
    TOKEN_INVALID,
    USER_ALREADY_CONFIRMED,
    USER_PATH,
    assert_error,
)
from tests.support.api import NEW_PASSWORD, WRONG_JSON_TYPES, assert_password_reset, login


def assert_field_error(response, *fields: str) -> dict[str, list[str]]:
    """Assert a 400 field validation envelope naming exactly `fields`; return its `errors`."""
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"status", "message", "errors"}
    assert body["status"] == 400
    assert set(body["errors"]) == set(fields)
    assert all(field in body["message"] for field in fields)
    return body["errors"]


def token_made_ago(monkeypatch, seconds: int, *, user: User, purpose: Purpose) -> str:
    """Return a validation token made `seconds` ago (by moving the tokens module's clock)."""
    made_at = timezone.now() - timedelta(seconds=seconds)
    with monkeypatch.context() as patch:
        patch.setattr(tokens, "_now", lambda: made_at)
        return validation_token_make(user=user, purpose=purpose)


def tampered(token: str) -> str:
    """Return the token with the last character of its signature changed."""
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def reset(client, token: str, new_password: str = NEW_PASSWORD, confirm: str | None = None):
    data = {"token": token, "new_password": new_password, "confirm": new_password if confirm is None else confirm}
    return client.post(RECOVERY_PATH, data, format="json")


@pytest.fixture
def unconfirmed(user_factory) -> User:
    return user_factory(email="una@example.com", name="Una Confirmed", confirmed=False)


def link_token(body: str, settings, path: str) -> str:
    match = re.search(re.escape(f"{settings.CLIENT_ORIGIN}{path}/") + r"(\S+)", body)
    assert match, body
    return match.group(1)


# --- /confirmation POST: confirm -------------------------------------------------------------


@pytest.mark.parametrize("path", [CONFIRMATION_PATH, CONFIRMATION_PATH + "/"])
def test_confirm_confirms_the_account(api_client, unconfirmed, path):
    token = validation_token_make(user=unconfirmed, purpose=Purpose.CONFIRMATION)

    response = api_client.post(path, {"token": token}, format="json")

    assert response.status_code == 200
    assert response.json() == {"message": "Account confirmed"}
    unconfirmed.refresh_from_db()
    assert unconfirmed.confirmed_at is not None
    assert login(api_client, "una@example.com", PASSWORD).status_code == 200


@pytest.mark.parametrize("body_format", ["form", "multipart"])
def test_confirm_reads_form_and_multipart_bodies(api_client, unconfirmed, body_format):
    token = validation_token_make(user=unconfirmed, purpose=Purpose.CONFIRMATION)
    if body_format == "form":
        response = api_client.post(
            CONFIRMATION_PATH, f"token={token}", content_type="application/x-www-form-urlencoded"
        )
    else:
        response = api_client.post(CONFIRMATION_PATH, {"token": token}, format="multipart")

    assert response.status_code == 200
    unconfirmed.refresh_from_db()
    assert unconfirmed.confirmed_at is not None


def test_confirm_again_is_200_and_keeps_the_first_confirmation(api_client, unconfirmed):
    token = validation_token_make(user=unconfirmed, purpose=Purpose.CONFIRMATION)
    assert api_client.post(CONFIRMATION_PATH, {"token": token}, format="json").status_code == 200
    unconfirmed.refresh_from_db()
    first = unconfirmed.confirmed_at

    response = api_client.post(CONFIRMATION_PATH, {"token": token}, format="json")

    assert response.status_code == 200
    assert response.json() == {"message": "Account confirmed"}
    unconfirmed.refresh_from_db()
    assert unconfirmed.confirmed_at == first


@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(lambda good: "garbage", id="garbage"),
        pytest.param(lambda good: tampered(good), id="bad-signature"),
        pytest.param(lambda good: good.split(".")[0], id="no-signature"),
        pytest.param(lambda good: "." + good, id="prefixed"),
        pytest.param(
            lambda good: Signer(key="another-key", salt="accounts.tokens.confirmation", sep=".", algorithm="sha256")
            .sign_object({"u": 1, "t": 0, "s": ""}),
            id="other-key",
        ),
    ],
)
def test_confirm_with_a_bad_token_is_invalid_token(api_client, unconfirmed, make_bad):
    good = validation_token_make(user=unconfirmed, purpose=Purpose.CONFIRMATION)

    response = api_client.post(CONFIRMATION_PATH, {"token": make_bad(good)}, format="json")

    assert_error(response, INVALID_TOKEN)
    unconfirmed.refresh_from_db()
    assert unconfirmed.confirmed_at is None


def test_confirm_with_an_expired_token_is_invalid_token(api_client, unconfirmed, monkeypatch, settings):
    token = token_made_ago(
        monkeypatch, settings.CONFIRMATION_MAX_AGE + 60, user=unconfirmed, purpose=Purpose.CONFIRMATION
    )

    response = api_client.post(CONFIRMATION_PATH, {"token": token}, format="json")

    assert_error(response, INVALID_TOKEN)
    unconfirmed.refresh_from_db()
    assert unconfirmed.confirmed_at is None


def test_confirm_with_a_token_inside_its_lifetime_works(api_client, unconfirmed, monkeypatch, settings):
    token = token_made_ago(
        monkeypatch, settings.CONFIRMATION_MAX_AGE - 60, user=unconfirmed, purpose=Purpose.CONFIRMATION
    )

    response = api_client.post(CONFIRMATION_PATH, {"token": token}, format="json")

    assert response.status_code == 200
    unconfirmed.refresh_from_db()
    assert unconfirmed.confirmed_at is not None


def test_confirm_lifetime_follows_the_setting(api_client, unconfirmed, monkeypatch, settings):
    settings.CONFIRMATION_MAX_AGE = 60
    token = token_made_ago(monkeypatch, 120, user=unconfirmed, purpose=Purpose.CONFIRMATION)

    response = api_client.post(CONFIRMATION_PATH, {"token": token}, format="json")

    assert_error(response, INVALID_TOKEN)


def test_confirm_with_a_token_made_in_the_future_is_invalid_token(api_client, unconfirmed, monkeypatch):
    token = token_made_ago(monkeypatch, -3600, user=unconfirmed, purpose=Purpose.CONFIRMATION)

    response = api_client.post(CONFIRMATION_PATH, {"token": token}, format="json")

    assert_error(response, INVALID_TOKEN)


def test_confirm_with_a_recovery_token_is_invalid_token(api_client, unconfirmed):
    token = validation_token_make(user=unconfirmed, purpose=Purpose.RECOVERY)

    response = api_client.post(CONFIRMATION_PATH, {"token": token}, format="json")

    assert_error(response, INVALID_TOKEN)
    unconfirmed.refresh_from_db()
    assert unconfirmed.confirmed_at is None


def test_confirm_with_a_token_of_a_deleted_user_is_invalid_token(api_client, unconfirmed):
    token = validation_token_make(user=unconfirmed, purpose=Purpose.CONFIRMATION)
    unconfirmed.delete()

    response = api_client.post(CONFIRMATION_PATH, {"token": token}, format="json")

    assert_error(response, INVALID_TOKEN)
    assert not User.objects.exists()


@pytest.mark.parametrize(("method", "field"), [("post", "token"), ("put", "email")], ids=["confirm", "resend"])
def test_confirm_or_resend_without_its_field_is_a_400(api_client, db, method, field):
    response = getattr(api_client, method)(CONFIRMATION_PATH, {}, format="json")

    errors = assert_field_error(response, field)
    assert errors[field] == ["This field is required."]


@pytest.mark.parametrize("value", [*WRONG_JSON_TYPES, pytest.param("abc\x00def", id="nul")])
def test_confirm_with_a_malformed_token_is_a_400(api_client, db, value):
    response = api_client.post(CONFIRMATION_PATH, {"token": value}, format="json")

    assert_field_error(response, "token")


# --- /confirmation PUT: resend ---------------------------------------------------------------


def test_resend_sends_the_same_subject_and_link_form_as_the_first_email(api_client, db, settings):
    settings.CLIENT_ORIGIN = "https://app.example.org"
    settings.CONFIRMATION_URL = "/account/confirm"
    registered = api_client.post(
        USER_PATH,
        {"email": "bob@example.com", "name": "Bob Builder", "password": PASSWORD, "confirm": PASSWORD},
        format="json",
    )
    assert registered.status_code == 200
    assert len(mail.outbox) == 1

    response = api_client.put(CONFIRMATION_PATH, {"email": "BOB@example.com"}, format="json")

    assert response.status_code == 200
    assert response.json() == {"message": "New confirmation link sent"}
    assert len(mail.outbox) == 2
    first, resent = mail.outbox
    assert resent.to == ["bob@example.com"]
    assert resent.subject == first.subject == "Welcome, Bob Builder"
    assert resent.from_email == first.from_email == settings.MAIL_SENDER
    first_token = link_token(first.body, settings, "/account/confirm")
    resent_token = link_token(resent.body, settings, "/account/confirm")
    assert resent.body.replace(resent_token, "<token>") == first.body.replace(first_token, "<token>")

    assert api_client.post(CONFIRMATION_PATH, {"token": resent_token}, format="json").status_code == 200
    assert User.objects.get().confirmed_at is not None


@pytest.mark.parametrize("path", [CONFIRMATION_PATH, CONFIRMATION_PATH + "/"])
@pytest.mark.parametrize("body_format", ["json", "form", "multipart"])
def test_resend_to_an_unconfirmed_account(api_client, unconfirmed, settings, path, body_format):
    if body_format == "form":
        response = api_client.put(
            path, "email=+una%40example.com+", content_type="application/x-www-form-urlencoded"
        )
    else:
        response = api_client.put(path, {"email": " una@example.com "}, format=body_format)

    assert response.status_code == 200
    assert response.json() == {"message": "New confirmation link sent"}
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["una@example.com"]
    assert mail.outbox[0].subject == "Welcome, Una Confirmed"
    token = link_token(mail.outbox[0].body, settings, settings.CONFIRMATION_URL)
    assert api_client.post(CONFIRMATION_PATH, {"token": token}, format="json").status_code == 200
    unconfirmed.refresh_from_db()
    assert unconfirmed.confirmed_at is not None


@pytest.mark.parametrize("email", ["nobody@example.com", "not-an-email"])
def test_resend_to_an_unknown_email_is_invalid_credentials(api_client, unconfirmed, email):
    response = api_client.put(CONFIRMATION_PATH, {"email": email}, format="json")

    assert_error(response, INVALID_CREDENTIALS)
    assert mail.outbox == []


def test_resend_to_a_confirmed_account_is_user_already_confirmed(api_client, user):
    response = api_client.put(CONFIRMATION_PATH, {"email": "ANN@example.com"}, format="json")

    assert_error(response, USER_ALREADY_CONFIRMED)
    assert mail.outbox == []


def test_resend_when_mail_fails_is_could_not_send_email(api_client, unconfirmed, failing_mail):
    response = api_client.put(CONFIRMATION_PATH, {"email": "una@example.com"}, format="json")

    assert_error(response, COULD_NOT_SEND_EMAIL)
    unconfirmed.refresh_from_db()
    assert unconfirmed.confirmed_at is None


@pytest.mark.parametrize("value", [*WRONG_JSON_TYPES, pytest.param("una\x00@example.com", id="nul")])
def test_resend_with_a_malformed_email_is_a_400(api_client, unconfirmed, value):
    response = api_client.put(CONFIRMATION_PATH, {"email": value}, format="json")

    assert_field_error(response, "email")
    assert mail.outbox == []


# --- /recovery POST: reset password ----------------------------------------------------------


@pytest.fixture
def recovery_token(user) -> str:
    return validation_token_make(user=user, purpose=Purpose.RECOVERY)


@pytest.mark.parametrize("path", [RECOVERY_PATH, RECOVERY_PATH + "/"])
def test_reset_sets_the_password(api_client, user, recovery_token, path):
    assert_password_reset(api_client, user, recovery_token, path)
    assert_error(login(api_client, "ann@example.com", PASSWORD), INVALID_CREDENTIALS)


@pytest.mark.parametrize("body_format", ["form", "multipart"])
def test_reset_reads_form_and_multipart_bodies(api_client, user, recovery_token, body_format):
    data = {"token": recovery_token, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    if body_format == "form":
        response = api_client.post(
            RECOVERY_PATH, urlencode(data), content_type="application/x-www-form-urlencoded"
        )
    else:
        response = api_client.post(RECOVERY_PATH, data, format="multipart")

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_reset_revokes_every_auth_token_issued_before(api_client, user, recovery_token, token_for):
    issued = [token_for(user), token_for(user, remember=True)]
    for token in issued:
        api_client.credentials(HTTP_AUTHORIZATION=token)
        assert api_client.get(USER_PATH).status_code == 200
    api_client.credentials()

    assert reset(api_client, recovery_token).status_code == 200

    for token in issued:
        api_client.credentials(HTTP_AUTHORIZATION=token)
        assert_error(api_client.get(USER_PATH), TOKEN_INVALID)
    api_client.credentials()
    fresh = login(api_client, "ann@example.com", NEW_PASSWORD).json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=fresh)
    assert api_client.get(USER_PATH).status_code == 200


def test_reset_spends_the_token(api_client, user, recovery_token):
    assert reset(api_client, recovery_token).status_code == 200

    response = reset(api_client, recovery_token, "another phrase 77")

    assert_error(response, INVALID_TOKEN)
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert not user.check_password("another phrase 77")


def test_reset_to_the_current_password_still_spends_the_token(api_client, user, recovery_token):
    """The token dies with the reset itself, whatever the new password is."""
    assert reset(api_client, recovery_token, PASSWORD).status_code == 200

    assert_error(reset(api_client, recovery_token, PASSWORD), INVALID_TOKEN)
    assert_error(reset(api_client, recovery_token), INVALID_TOKEN)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_reset_with_a_token_made_before_a_password_change_is_invalid_token(api_client, user, recovery_token, token_for):
    api_client.credentials(HTTP_AUTHORIZATION=token_for(user))
    changed = api_client.put(
        AUTHENTICATE_PATH,
        {"password": PASSWORD, "new_password": "changed phrase 99", "confirm": "changed phrase 99"},
        format="json",
    )
    assert changed.status_code == 200
    api_client.credentials()

    response = reset(api_client, recovery_token)

    assert_error(response, INVALID_TOKEN)
    user.refresh_from_db()
    assert user.check_password("changed phrase 99")


def test_reset_with_one_of_two_tokens_spends_the_other(api_client, user, monkeypatch):
    first = token_made_ago(monkeypatch, 600, user=user, purpose=Purpose.RECOVERY)
    second = validation_token_make(user=user, purpose=Purpose.RECOVERY)
    assert first != second
    assert reset(api_client, first).status_code == 200

    assert_error(reset(api_client, second, "another phrase 77"), INVALID_TOKEN)
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(lambda good: "garbage", id="garbage"),
        pytest.param(lambda good: tampered(good), id="bad-signature"),
        pytest.param(lambda good: good.split(".")[0], id="no-signature"),
    ],
)
def test_reset_with_a_bad_token_is_invalid_token(api_client, user, recovery_token, make_bad):
    response = reset(api_client, make_bad(recovery_token))

    assert_error(response, INVALID_TOKEN)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_reset_with_an_expired_token_is_invalid_token(api_client, user, monkeypatch, settings):
    token = token_made_ago(monkeypatch, settings.RECOVERY_MAX_AGE + 60, user=user, purpose=Purpose.RECOVERY)

    response = reset(api_client, token)

    assert_error(response, INVALID_TOKEN)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_reset_with_a_token_inside_its_lifetime_works(api_client, user, monkeypatch, settings):
    token = token_made_ago(monkeypatch, settings.RECOVERY_MAX_AGE - 60, user=user, purpose=Purpose.RECOVERY)

    assert reset(api_client, token).status_code == 200


def test_reset_lifetime_follows_the_setting(api_client, user, monkeypatch, settings):
    settings.RECOVERY_MAX_AGE = 60
    token = token_made_ago(monkeypatch, 120, user=user, purpose=Purpose.RECOVERY)

    assert_error(reset(api_client, token), INVALID_TOKEN)


def test_reset_with_a_confirmation_token_is_invalid_token(api_client, user):
    token = validation_token_make(user=user, purpose=Purpose.CONFIRMATION)

    response = reset(api_client, token)

    assert_error(response, INVALID_TOKEN)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_reset_with_a_token_of_a_deleted_user_is_invalid_token(api_client, user, recovery_token):
    user.delete()

    assert_error(reset(api_client, recovery_token), INVALID_TOKEN)


def test_reset_with_a_mismatched_confirm_is_password_confirmation_invalid(api_client, user, recovery_token):
    response = reset(api_client, recovery_token, NEW_PASSWORD, NEW_PASSWORD + "!")

    assert_error(response, PASSWORD_CONFIRMATION_INVALID)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    # The token was not spent by the failed attempt.
    assert reset(api_client, recovery_token).status_code == 200


def test_reset_checks_the_token_before_the_confirmation(api_client, user):
    response = reset(api_client, "garbage", NEW_PASSWORD, "something else")

    assert_error(response, INVALID_TOKEN)


def test_reset_checks_the_confirmation_before_the_policy(api_client, user, recovery_token):
    response = reset(api_client, recovery_token, "123", "1234")

    assert_error(response, PASSWORD_CONFIRMATION_INVALID)


@pytest.mark.parametrize(
    "password, message",
    [
        pytest.param("Zq8#x", "This password is too short. It must contain at least 8 characters.", id="too-short"),
        pytest.param("qwertyuiop", "This password is too common.", id="common"),
        pytest.param("4829105736", "This password is entirely numeric.", id="all-numeric"),
        pytest.param("zed@example.com", "The password is too similar to the email address.", id="similar-to-email"),
        pytest.param("BartholomewSinclair", "The password is too similar to the name.", id="similar-to-name"),
    ],
)
def test_reset_password_policy_is_a_400_under_new_password(api_client, user_factory, password, message):
    user = user_factory(email="zed@example.com", name="Bartholomew Sinclair")
    token = validation_token_make(user=user, purpose=Purpose.RECOVERY)

    response = reset(api_client, token, password)

    errors = assert_field_error(response, "new_password")
    assert errors["new_password"] == [message]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    # A refused password does not spend the token.
    assert reset(api_client, token).status_code == 200


@pytest.mark.parametrize("field", ["token", "new_password", "confirm"])
def test_reset_with_a_missing_field_is_a_400(api_client, user, recovery_token, field):
    data = {"token": recovery_token, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    del data[field]

    response = api_client.post(RECOVERY_PATH, data, format="json")

    errors = assert_field_error(response, field)
    assert errors[field] == ["This field is required."]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize("field", ["token", "new_password", "confirm"])
@pytest.mark.parametrize("value", [*WRONG_JSON_TYPES, pytest.param("x\x00y", id="nul")])
def test_reset_with_a_malformed_field_is_a_400(api_client, user, recovery_token, field, value):
    data = {"token": recovery_token, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD, field: value}

    response = api_client.post(RECOVERY_PATH, data, format="json")

    assert_field_error(response, field)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_reset_with_a_password_over_4096_characters_is_a_400(api_client, user, recovery_token):
    long_password = "p" * 4097

    response = reset(api_client, recovery_token, long_password)

    errors = assert_field_error(response, "new_password", "confirm")
    assert any("4096" in text for text in errors["new_password"])


# --- verbs and paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", RECOVERY_PATH),
        ("put", RECOVERY_PATH),
        ("patch", RECOVERY_PATH),
        ("delete", RECOVERY_PATH),
        ("get", CONFIRMATION_PATH),
        ("patch", CONFIRMATION_PATH),
        ("delete", CONFIRMATION_PATH),
        ("get", RECOVERY_PATH + "/"),
        ("delete", CONFIRMATION_PATH + "/"),
    ],
)
def test_unmapped_verbs_answer_405_in_the_envelope(api_client, user, method, path):
    response = getattr(api_client, method)(path, {"token": "x"}, format="json")

    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"status", "message"}
    assert body["status"] == 405
    assert method.upper() in body["message"]


@pytest.mark.parametrize("path", [CONFIRMATION_PATH + "/", RECOVERY_PATH + "/"])
def test_trailing_slash_paths_do_not_redirect(api_client, db, path):
    data = {"token": "garbage", "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}

    response = api_client.post(path, data, format="json")

    assert_error(response, INVALID_TOKEN)
