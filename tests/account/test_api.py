"""/api/user: profile (GET), registration (POST), profile update (PUT), email change (PATCH) and
deactivation (DELETE), row by row as the contract lists them.

Covers the checks of each row in the contract's order, the exact envelopes and messages, the
database state and mail.outbox after each call, the three request body encodings, trimming,
length limits, and malformed input (wrong JSON types, NUL bytes) that must answer 400, never 500.
"""

import json
import re
from urllib.parse import quote, urlencode

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.users.links import Purpose, validation_token_make
from accounts.users.models import User
from tests.conftest import PASSWORD, claims
from tests.support.api import WRONG_JSON_TYPES as NOT_A_STRING, client_with, login
from tests.support.contract import (
    ACCOUNT_NOT_ACTIVE,
    CONFIRMATION_PATH,
    COULD_NOT_SEND_EMAIL,
    INVALID_CREDENTIALS,
    INVALID_PASSWORD,
    INVALID_TOKEN,
    LOGIN_REQUIRED,
    NO_UPDATES_TO_MAKE,
    PASSWORD_CONFIRMATION_INVALID,
    TOKEN_INVALID,
    USER_ALREADY_EXIST,
    USER_PATH,
    assert_error,
)

TOO_SHORT = "This password is too short. It must contain at least 8 characters."
TOO_COMMON = "This password is too common."
ALL_NUMERIC = "This password is entirely numeric."
SIMILAR_TO_EMAIL = "The password is too similar to the email address."
SIMILAR_TO_NAME = "The password is too similar to the name."

# Malformed values for a string field, as a JSON body can carry them; here a boolean too.
WRONG_JSON_TYPES = [*NOT_A_STRING, pytest.param(True, id="bool")]


def send(client, method: str, url: str, data: dict, body_format: str):
    """Send `data` as a JSON, form (urlencoded) or multipart body with the given verb."""
    call = getattr(client, method)
    if body_format == "form":
        return call(url, urlencode(data), content_type="application/x-www-form-urlencoded")
    return call(url, data, format=body_format)


def assert_field_error(response, *fields: str) -> dict[str, list[str]]:
    """Assert a 400 field validation envelope naming exactly `fields`; return its `errors`."""
    assert response["Content-Type"] == "application/json"
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"status", "message", "errors"}
    assert body["status"] == 400
    assert set(body["errors"]) == set(fields)
    for field, messages in body["errors"].items():
        assert messages and all(isinstance(text, str) and text for text in messages)
        # A readable sentence that says which field is wrong.
        assert field in body["message"]
    return body["errors"]


def registration(**overrides) -> dict:
    data = {
        "email": "bob@example.com",
        "name": "Bob Builder",
        "password": PASSWORD,
        "confirm": PASSWORD,
    }
    data.update(overrides)
    return data


# --- every token-protected row --------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_protected_rows_without_a_token_answer_login_required(api_client, user, method):
    response = getattr(api_client, method)(USER_PATH, {}, format="json")

    assert_error(response, LOGIN_REQUIRED)


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_protected_rows_with_a_garbage_token_answer_token_invalid(api_client, user, method):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    response = getattr(api_client, method)(USER_PATH, {"name": "X"}, format="json")

    assert_error(response, TOKEN_INVALID)
    user.refresh_from_db()
    assert user.name == "Ann Example"
    assert user.deactivated_at is None


# --- GET: profile ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [USER_PATH, USER_PATH + "/"])
def test_profile_returns_email_and_name(auth_client, path):
    response = auth_client.get(path)

    assert response.status_code == 200
    assert response.json() == {"email": "ann@example.com", "profile": {"name": "Ann Example"}}


def test_profile_accepts_a_bearer_token(api_client, user, token_for):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")

    response = api_client.get(USER_PATH)

    assert response.status_code == 200
    assert response.json() == {"email": "ann@example.com", "profile": {"name": "Ann Example"}}


# --- POST: register --------------------------------------------------------------------------


@pytest.mark.parametrize("body_format", ["json", "form", "multipart"])
def test_register_creates_an_unconfirmed_account_and_emails_the_confirmation_link(
    api_client, db, settings, body_format
):
    settings.CLIENT_ORIGIN = "https://app.example.org"
    settings.CONFIRMATION_URL = "/account/confirm"
    settings.MAIL_SENDER = "Accounts <accounts@example.org>"

    response = send(api_client, "post", USER_PATH, registration(), body_format)

    assert response.status_code == 200
    assert response.json()["user"] == "bob@example.com"
    user = User.objects.get()
    assert user.email == "bob@example.com"
    assert user.name == "Bob Builder"
    assert user.check_password(PASSWORD)
    assert user.confirmed_at is None
    assert user.state == "unconfirmed"

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["bob@example.com"]
    assert message.from_email == "Accounts <accounts@example.org>"
    assert message.subject == "Welcome, Bob Builder"
    match = re.search(r"https://app\.example\.org/account/confirm/(\S+)", message.body)
    assert match, message.body
    token = match.group(1)
    assert quote(token, safe="") == token  # USER_PATH-safe as it stands

    confirmed = api_client.post(CONFIRMATION_PATH, {"token": token}, format="json")

    assert confirmed.status_code == 200
    assert confirmed.json() == {"message": "Account confirmed"}
    user.refresh_from_db()
    assert user.confirmed_at is not None
    assert login(api_client, "bob@example.com").status_code == 200


def test_register_through_the_trailing_slash_path(api_client, db):
    response = api_client.post(USER_PATH + "/", registration(), format="json")

    assert response.status_code == 200
    assert response.json()["user"] == "bob@example.com"
    assert User.objects.filter(email="bob@example.com").exists()


@pytest.mark.parametrize("body_format", ["json", "form", "multipart"])
def test_register_trims_email_and_name(api_client, db, body_format):
    data = registration(email="  bob@example.com \t", name="  Bob Builder  ")

    response = send(api_client, "post", USER_PATH, data, body_format)

    assert response.status_code == 200
    assert response.json()["user"] == "bob@example.com"
    user = User.objects.get()
    assert (user.email, user.name) == ("bob@example.com", "Bob Builder")
    assert mail.outbox[0].to == ["bob@example.com"]
    assert mail.outbox[0].subject == "Welcome, Bob Builder"


@pytest.mark.parametrize("missing", ["email", "name", "password", "confirm"])
@pytest.mark.parametrize("body_format", ["json", "form", "multipart"])
def test_register_with_a_missing_field_is_a_400(api_client, db, missing, body_format):
    """The error names the missing field, and it alone."""
    data = registration()
    del data[missing]

    response = send(api_client, "post", USER_PATH, data, body_format)

    errors = assert_field_error(response, missing)
    assert errors[missing] == ["This field is required."]
    assert not User.objects.exists()
    assert mail.outbox == []


def test_register_with_an_empty_body_names_every_field(api_client, db):
    response = api_client.post(USER_PATH, {}, format="json")

    assert_field_error(response, "email", "name", "password", "confirm")
    assert not User.objects.exists()


@pytest.mark.parametrize("email", ["not-an-email", "bob@", "@example.com", "bob@exa mple.com", "bob"])
def test_register_with_an_invalid_email_is_a_400(api_client, db, email):
    response = api_client.post(USER_PATH, registration(email=email), format="json")

    errors = assert_field_error(response, "email")
    assert errors["email"] == ["Enter a valid email address."]
    assert not User.objects.exists()
    assert mail.outbox == []


@pytest.mark.parametrize("email", ["ann@example.com", "ANN@EXAMPLE.COM", "Ann@Example.com", " ann@example.com "])
def test_register_with_a_taken_email_in_any_case_is_user_already_exist(api_client, user, email):
    response = api_client.post(USER_PATH, registration(email=email), format="json")

    assert_error(response, USER_ALREADY_EXIST)
    assert User.objects.count() == 1
    assert mail.outbox == []


def test_register_taken_email_is_checked_before_the_password_confirmation(api_client, user):
    data = registration(email="ANN@example.com", confirm="something else entirely")

    response = api_client.post(USER_PATH, data, format="json")

    assert_error(response, USER_ALREADY_EXIST)


def test_register_with_a_mismatched_confirm_is_password_confirmation_invalid(api_client, db):
    response = api_client.post(USER_PATH, registration(confirm=PASSWORD + "!"), format="json")

    assert_error(response, PASSWORD_CONFIRMATION_INVALID)
    assert not User.objects.exists()
    assert mail.outbox == []


def test_register_password_confirmation_is_checked_before_the_policy(api_client, db):
    response = api_client.post(USER_PATH, registration(password="123", confirm="1234"), format="json")

    assert_error(response, PASSWORD_CONFIRMATION_INVALID)


@pytest.mark.parametrize(
    "password, message",
    [
        pytest.param("Zq8#x", TOO_SHORT, id="too-short"),
        pytest.param("qwertyuiop", TOO_COMMON, id="common"),
        pytest.param("4829105736", ALL_NUMERIC, id="all-numeric"),
        pytest.param("zed@example.com", SIMILAR_TO_EMAIL, id="similar-to-email"),
        pytest.param("BartholomewSinclair", SIMILAR_TO_NAME, id="similar-to-name"),
    ],
)
def test_register_password_policy_is_a_400_under_password(api_client, db, password, message):
    data = registration(
        email="zed@example.com", name="Bartholomew Sinclair", password=password, confirm=password
    )

    response = api_client.post(USER_PATH, data, format="json")

    errors = assert_field_error(response, "password")
    assert errors["password"] == [message]
    assert not User.objects.exists()
    assert mail.outbox == []


def test_register_password_policy_lists_every_broken_rule(api_client, db):
    response = api_client.post(USER_PATH, registration(password="1234", confirm="1234"), format="json")

    errors = assert_field_error(response, "password")
    assert set(errors["password"]) == {TOO_SHORT, TOO_COMMON, ALL_NUMERIC}


def _email_of_length(length: int) -> str:
    """Return a well-formed address of exactly `length` characters."""
    local = "a" * 64
    labels = []
    remaining = length - len(local) - 1 - len(".com")
    while remaining > 0:
        size = min(63, remaining - 1 if remaining > 63 else remaining)
        labels.append("b" * size)
        remaining -= size + 1
    domain = ".".join(labels) + ".com"
    email = f"{local}@{domain}"
    assert len(email) == length, len(email)
    return email


def test_register_with_an_email_over_254_characters_is_a_400(api_client, db):
    response = api_client.post(USER_PATH, registration(email=_email_of_length(255)), format="json")

    errors = assert_field_error(response, "email")
    assert any("254" in text for text in errors["email"])
    assert not User.objects.exists()


def test_register_with_an_email_of_exactly_254_characters_is_accepted(api_client, db):
    email = _email_of_length(254)

    response = api_client.post(USER_PATH, registration(email=email), format="json")

    assert response.status_code == 200
    assert User.objects.get().email == email


def test_register_with_a_name_over_150_characters_is_a_400(api_client, db):
    response = api_client.post(USER_PATH, registration(name="n" * 151), format="json")

    errors = assert_field_error(response, "name")
    assert any("150" in text for text in errors["name"])
    assert not User.objects.exists()


def test_register_with_a_name_of_exactly_150_characters_is_accepted(api_client, db):
    response = api_client.post(USER_PATH, registration(name="n" * 150), format="json")

    assert response.status_code == 200
    assert User.objects.get().name == "n" * 150


def test_register_with_a_password_over_4096_characters_is_a_400_before_any_hashing(api_client, db, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a password over the limit reached the hasher")

    monkeypatch.setattr("django.contrib.auth.base_user.make_password", refuse)
    monkeypatch.setattr("django.contrib.auth.hashers.make_password", refuse)
    long_password = "p" * 4097

    response = api_client.post(USER_PATH, registration(password=long_password, confirm=long_password), format="json")

    errors = assert_field_error(response, "password", "confirm")
    assert any("4096" in text for text in errors["password"])
    assert any("4096" in text for text in errors["confirm"])
    assert not User.objects.exists()


def test_register_when_mail_fails_is_could_not_send_email_and_creates_nothing(api_client, db, failing_mail):
    response = api_client.post(USER_PATH, registration(), format="json")

    assert_error(response, COULD_NOT_SEND_EMAIL)
    assert not User.objects.exists()
    assert mail.outbox == []
    assert_error(login(api_client, "bob@example.com"), INVALID_CREDENTIALS)


def test_register_again_after_a_mail_failure_succeeds(api_client, db, settings, failing_mail):
    assert api_client.post(USER_PATH, registration(), format="json").status_code == 500
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    response = api_client.post(USER_PATH, registration(), format="json")

    assert response.status_code == 200
    assert User.objects.count() == 1
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("field", ["email", "name", "password", "confirm"])
@pytest.mark.parametrize("value", WRONG_JSON_TYPES)
def test_register_with_a_wrong_json_type_is_a_400(api_client, db, field, value):
    response = api_client.post(USER_PATH, registration(**{field: value}), format="json")

    assert_field_error(response, field)
    assert not User.objects.exists()
    assert mail.outbox == []


NUL_VALUES = {
    "email": "bob\x00@example.com",
    "name": "Bob\x00",
    "password": PASSWORD + "\x00",
    "confirm": PASSWORD + "\x00",
}


@pytest.mark.parametrize("field", ["email", "name", "password", "confirm"])
@pytest.mark.parametrize("body_format", ["json", "form", "multipart"])
def test_register_with_a_nul_byte_is_a_400(api_client, db, field, body_format):
    response = send(api_client, "post", USER_PATH, registration(**{field: NUL_VALUES[field]}), body_format)

    errors = assert_field_error(response, field)
    assert "Null characters are not allowed." in errors[field]
    assert not User.objects.exists()


@pytest.mark.parametrize("field, value", [("email", "bob\ud800@example.com"), ("name", "Bob \ud800")])
def test_register_with_a_lone_surrogate_is_a_400(api_client, db, field, value):
    """Refuse a UTF-16 half (a legal JSON escape) that no database can store; never crash."""
    body = json.dumps(registration(**{field: value}))  # ascii: the half travels as \\ud800
    assert "\\ud800" in body

    response = api_client.post(USER_PATH, body, content_type="application/json")

    errors = assert_field_error(response, field)
    if field == "name":  # the email's own check refuses it first
        assert errors[field] == ["Surrogate characters are not allowed: U+D800."]
    assert not User.objects.exists()


def test_register_with_a_malformed_json_body_is_a_400_envelope(api_client, db):
    response = api_client.post(USER_PATH, '{"email": ', content_type="application/json")

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"status", "message"}
    assert body["status"] == 400
    assert body["message"]


# --- PUT: update profile ---------------------------------------------------------------------


@pytest.mark.parametrize("body_format", ["json", "form", "multipart"])
def test_update_profile_sets_the_trimmed_name(auth_client, body_format):
    response = send(auth_client, "put", USER_PATH, {"name": "  Ann Other \n"}, body_format)

    assert response.status_code == 200
    assert response.json()["profile"] == {"name": "Ann Other"}
    auth_client.user.refresh_from_db()
    assert auth_client.user.name == "Ann Other"
    assert auth_client.get(USER_PATH).json() == {"email": "ann@example.com", "profile": {"name": "Ann Other"}}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="no-name"),
        pytest.param({"name": ""}, id="empty"),
        pytest.param({"name": "   "}, id="blank"),
        pytest.param({"email": "other@example.com"}, id="other-field-only"),
    ],
)
def test_update_profile_without_a_name_is_no_updates_to_make(auth_client, data):
    response = auth_client.put(USER_PATH, data, format="json")

    assert_error(response, NO_UPDATES_TO_MAKE)
    auth_client.user.refresh_from_db()
    assert auth_client.user.name == "Ann Example"
    assert auth_client.user.email == "ann@example.com"


def test_update_profile_with_a_name_over_150_characters_is_a_400(auth_client):
    response = auth_client.put(USER_PATH, {"name": "n" * 151}, format="json")

    assert_field_error(response, "name")
    auth_client.user.refresh_from_db()
    assert auth_client.user.name == "Ann Example"


@pytest.mark.parametrize("value", WRONG_JSON_TYPES)
def test_update_profile_with_a_wrong_json_type_is_a_400(auth_client, value):
    response = auth_client.put(USER_PATH, {"name": value}, format="json")

    assert_field_error(response, "name")
    auth_client.user.refresh_from_db()
    assert auth_client.user.name == "Ann Example"


def test_update_profile_with_a_nul_byte_is_a_400(auth_client):
    response = auth_client.put(USER_PATH, {"name": "Ann\x00"}, format="json")

    errors = assert_field_error(response, "name")
    assert "Null characters are not allowed." in errors["name"]
    auth_client.user.refresh_from_db()
    assert auth_client.user.name == "Ann Example"


# --- PATCH: change email ---------------------------------------------------------------------


@pytest.mark.parametrize("body_format", ["json", "form", "multipart"])
def test_change_email_takes_effect_at_once_and_notifies_the_old_address(api_client, auth_client, body_format):
    data = {"new_email": "  ann.new@example.com ", "password": PASSWORD}

    response = send(auth_client, "patch", USER_PATH, data, body_format)

    assert response.status_code == 200
    assert response.json()["email"] == "ann.new@example.com"
    auth_client.user.refresh_from_db()
    assert auth_client.user.email == "ann.new@example.com"

    # A notice to the old address, and to the new one the link that shows it is the user's.
    notice, verification = mail.outbox
    assert notice.to == ["ann@example.com"]
    assert "ann.new@example.com" in notice.body
    assert (verification.to, verification.subject) == (["ann.new@example.com"], "Confirm your new email address")

    assert login(api_client, "ann.new@example.com").status_code == 200
    assert login(api_client, "ANN.NEW@example.com").status_code == 200
    assert_error(login(api_client, "ann@example.com"), INVALID_CREDENTIALS)
    assert auth_client.get(USER_PATH).json()["email"] == "ann.new@example.com"


@pytest.mark.parametrize(
    "data, fields",
    [
        pytest.param({}, {"new_email", "password"}, id="empty"),
        pytest.param({"password": PASSWORD}, {"new_email"}, id="no-new-email"),
        pytest.param({"new_email": "ann.new@example.com"}, {"password"}, id="no-password"),
        pytest.param({"new_email": "not-an-email", "password": PASSWORD}, {"new_email"}, id="invalid"),
        pytest.param({"new_email": "", "password": PASSWORD}, {"new_email"}, id="blank"),
        pytest.param({"new_email": "a" * 250 + "@x.com", "password": PASSWORD}, {"new_email"}, id="too-long"),
    ],
)
def test_change_email_with_a_missing_or_invalid_field_is_a_400(auth_client, data, fields):
    response = auth_client.patch(USER_PATH, data, format="json")

    assert_field_error(response, *fields)
    auth_client.user.refresh_from_db()
    assert auth_client.user.email == "ann@example.com"
    assert mail.outbox == []


def test_change_email_with_a_wrong_password_is_invalid_password(auth_client):
    data = {"new_email": "ann.new@example.com", "password": "wrong one"}

    response = auth_client.patch(USER_PATH, data, format="json")

    assert_error(response, INVALID_PASSWORD)
    auth_client.user.refresh_from_db()
    assert auth_client.user.email == "ann@example.com"
    assert mail.outbox == []


@pytest.mark.parametrize("taken", ["bob@example.com", "BOB@EXAMPLE.COM", "Bob@example.com"])
def test_change_email_to_a_taken_email_in_any_case_is_user_already_exist(auth_client, user_factory, taken):
    user_factory(email="bob@example.com")

    response = auth_client.patch(USER_PATH, {"new_email": taken, "password": PASSWORD}, format="json")

    assert_error(response, USER_ALREADY_EXIST)
    auth_client.user.refresh_from_db()
    assert auth_client.user.email == "ann@example.com"
    assert mail.outbox == []


def test_change_email_checks_the_password_before_the_taken_email(auth_client, user_factory):
    user_factory(email="bob@example.com")

    response = auth_client.patch(USER_PATH, {"new_email": "bob@example.com", "password": "wrong one"}, format="json")

    assert_error(response, INVALID_PASSWORD)


@pytest.mark.parametrize("field", ["new_email", "password"])
@pytest.mark.parametrize("value", WRONG_JSON_TYPES)
def test_change_email_with_a_wrong_json_type_is_a_400(auth_client, field, value):
    data = {"new_email": "ann.new@example.com", "password": PASSWORD, field: value}

    response = auth_client.patch(USER_PATH, data, format="json")

    assert_field_error(response, field)
    auth_client.user.refresh_from_db()
    assert auth_client.user.email == "ann@example.com"


@pytest.mark.parametrize("field", ["new_email", "password"])
def test_change_email_with_a_nul_byte_is_a_400(auth_client, field):
    data = {"new_email": "ann.new@example.com", "password": PASSWORD}
    data[field] = data[field].replace("@", "\x00@") if field == "new_email" else PASSWORD + "\x00"

    response = auth_client.patch(USER_PATH, data, format="json")

    errors = assert_field_error(response, field)
    assert "Null characters are not allowed." in errors[field]
    auth_client.user.refresh_from_db()
    assert auth_client.user.email == "ann@example.com"


# --- DELETE: deactivate ----------------------------------------------------------------------


def test_deactivate_answers_and_marks_the_account(auth_client):
    response = auth_client.delete(USER_PATH)

    assert response.status_code == 200
    assert response.json() == {"message": "Account deactivated"}
    auth_client.user.refresh_from_db()
    assert auth_client.user.deactivated_at is not None
    assert auth_client.user.state == "deactivated"
    assert User.objects.filter(pk=auth_client.user.pk).exists()


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_after_deactivation_the_token_answers_account_not_active(auth_client, method):
    assert auth_client.delete(USER_PATH).status_code == 200

    response = getattr(auth_client, method)(USER_PATH, {"name": "X"}, format="json")

    assert_error(response, ACCOUNT_NOT_ACTIVE)
    auth_client.user.refresh_from_db()
    assert auth_client.user.name == "Ann Example"


def test_login_reactivates_a_deactivated_account(api_client, user, token_for):
    old_token = token_for(user)
    api_client.credentials(HTTP_AUTHORIZATION=old_token)
    assert api_client.delete(USER_PATH).status_code == 200
    api_client.credentials()

    response = login(api_client, "ann@example.com")

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.deactivated_at is None
    assert user.state == "active"
    api_client.credentials(HTTP_AUTHORIZATION=response.json()["token"])
    assert api_client.get(USER_PATH).json() == {"email": "ann@example.com", "profile": {"name": "Ann Example"}}
    # A token issued before the deactivation never works again.
    api_client.credentials(HTTP_AUTHORIZATION=old_token)
    assert_error(api_client.get(USER_PATH), TOKEN_INVALID)


# --- Review: an email changed is not an email proved ------------------------------------------


def test_a_changed_email_is_unverified_in_tokens_until_its_link_is_followed(api_client, user, token_for):
    client = client_with(token_for(user))
    assert claims(client.get("/api/authenticate").json()["token"])["email_verified"] is True
    assert client.patch("/api/user", {"new_email": "ann.new@example.com", "password": PASSWORD}, format="json").status_code == 200

    refreshed = client.get("/api/authenticate").json()["token"]
    assert (claims(refreshed)["email"], claims(refreshed)["email_verified"]) == ("ann.new@example.com", False)

    link = mail.outbox[-1].body.split("/confirm/", 1)[1].split()[0]
    assert api_client.post("/api/validate/confirmation", {"token": link}, format="json").json() == {"message": "Account confirmed"}
    assert claims(client.get("/api/authenticate").json()["token"])["email_verified"] is True


def test_the_old_addresss_link_does_not_verify_the_new_one(api_client, user, token_for):
    old_link = validation_token_make(user=user, purpose=Purpose.CONFIRMATION)
    client = client_with(token_for(user))
    client.patch("/api/user", {"new_email": "ann.new@example.com", "password": PASSWORD}, format="json")

    assert_error(api_client.post("/api/validate/confirmation", {"token": old_link}, format="json"), INVALID_TOKEN)
    assert User.objects.get(pk=user.pk).email_verified_at is None


ANN = "ann@example.com"


GOOD_SIGNUP = {"name": "Eve", "password": "a long enough pw 1", "confirm": "a long enough pw 1"}


# --- 4. The token's `email` claim is whatever address the holder typed -------------------------


def test_a_changed_email_is_asserted_in_tokens_without_proof_of_ownership(user, token_for):
    """Attacker with an account of their own gains tokens, signed by this server, that say
    `email: ceo@victim.example`. PATCH /api/user changes the email at once and never asks the new
    address to confirm. Tokens carry it with no `email_verified` flag, so every resource server
    that maps or authorizes users by email (allow-lists, domain-based roles, account linking)
    takes the attacker for the victim.
    """
    client = client_with(token_for(user))
    assert client.patch("/api/user", {"new_email": "ceo@victim.example", "password": PASSWORD}, format="json").status_code == 200

    refreshed = claims(client.get("/api/authenticate").json()["token"])

    assert refreshed["email"] != "ceo@victim.example" or refreshed.get("email_verified") is False


# --- 5. Email-change notices: an unlimited mail cannon to any address --------------------------


def test_email_change_notices_let_anyone_mail_any_address_without_limit(user, token_for, settings):
    """Attacker with an account of their own gains an unlimited cannon that sends mail from this
    server to any address, with attacker-written text (the account name, 150 characters, is in
    the body). Changing the email to the target and back sends the target an "email changed"
    notice each time. Notices skip EMAIL_RATE by design (the owner must always hear of a change),
    and nothing limits email changes. The target never owned the account, yet gets
    the notices. That costs the sending domain's reputation and lets spam or phishing through.
    """
    settings.EMAIL_RATE = "5/hour"
    user.name = "URGENT call +1-555-0100 to keep your bank account"
    user.save(update_fields=["name"])
    client = client_with(token_for(user))
    for _ in range(8):
        client.patch("/api/user", {"new_email": "target@victim.example", "password": PASSWORD}, format="json")
        client.patch("/api/user", {"new_email": ANN, "password": PASSWORD}, format="json")

    to_target = [message for message in mail.outbox if "target@victim.example" in message.to]
    assert len(to_target) <= 5


# --- 10. Valid-looking email addresses that break the server -----------------------------------


def test_an_email_whose_normalized_form_outgrows_its_column_is_refused(db):
    """Attacker (no account) gains a 500 on PostgreSQL at registration, and at PATCH /api/user
    for their own account. NFKC expands characters (U+FB03 'ﬃ' → 'ffi'), so a 250-character
    address passes the 254-character checks, yet its email_normalized is ~700 characters, more than
    its varchar(254). PostgreSQL raises DataError (not IntegrityError, so not caught). SQLite stores
    it and breaks the column's rule.
    """
    label = "\ufb03" * 21
    email = ("a@" + ".".join([label] * 11) + ".com")[:250]
    response = APIClient().post("/api/user", {"email": email, **GOOD_SIGNUP}, format="json")

    stored = User.objects.filter(email=email).first()
    assert response.status_code == 400 or (stored is not None and len(stored.email_normalized) <= 254)


def test_an_email_with_an_unencodable_domain_is_a_400_not_a_500(db):
    """Attacker (no account) gains a 500 (and a traceback in the log) per registration.
    EmailValidator accepts a domain label of 60 'ü', but its IDNA form is longer than 63
    characters. send_mail then raises UnicodeError, which emails._deliver does not catch.
    """
    response = APIClient().post("/api/user", {"email": "ann@" + "\u00fc" * 60 + ".de", **GOOD_SIGNUP}, format="json")

    assert response.status_code == 400


# --- One canonical address: what identifies the account is what mail goes to ------------------

# Each is refused at registration and email change as an invalid email, what it would do otherwise:
REFUSED_ADDRESSES = {
    # Identity NFKC folds U+1D43 to "a" (the account of x@example.com); IDNA 2003 sent the mail to
    # x@xn--exmple-xc6b.com.
    "nfkc-folds-domain": "x@ex\u1d43mple.com",
    # NFKC leaves it, case folding makes it "strasse.de"; IDNA 2008 mails xn--strae-oqa.de.
    "casefold-differs-from-idna2008": "x@stra\u00dfe.de",
    # Invisible characters: accounts of their own, one mailbox (UTS 46 drops or refuses them).
    "soft-hyphen": "x@exam\u00adple.com",
    "zero-width-space": "x@exam\u200bple.com",
    "zero-width-joiner": "x@exam\u200dple.com",
    "zero-width-non-joiner": "x@exam\u200cple.com",
    "ignorable-in-non-ascii-domain": "x@m\u00fcn\u200bchen.de",
    "variation-selector": "x@m\u00fcnchen\ufe0f.de",
    # Quoted local parts: "x"@example.com is x@example.com's mailbox.
    "quoted-local-part": '"x"@example.com',
    "quoted-local-part-with-space": '"x y"@example.com',
    # Domain literals.
    "ipv4-literal": "x@[10.0.0.5]",
    "ipv6-literal": "x@[IPv6:::1]",
    # A trailing dot: the same mailbox as without it.
    "trailing-dot": "x@example.com.",
    # Beyond ASCII in the local part: U+212A (Kelvin) folds to "k", so this was kim@'s account,
    # and mail went to an RFC 2047 jumble (review finding); U+017F folds to "s", U+0131 stays.
    "kelvin-sign-local-part": "\u212aim@example.com",
    "long-s-local-part": "\u017fam@example.com",
    "dotless-i-local-part": "\u0131van@example.com",
    # The ASCII spelling of a Unicode domain: bob@münchen.de's mailbox, as a second account.
    "a-label-domain": "bob@xn--mnchen-3ya.de",
    "a-label-domain-upper": "bob@XN--MNCHEN-3YA.DE",
}


@pytest.mark.parametrize("email", REFUSED_ADDRESSES.values(), ids=REFUSED_ADDRESSES.keys())
def test_register_with_an_address_that_is_not_its_own_canonical_form_is_a_400(api_client, db, email):
    response = api_client.post(USER_PATH, registration(email=email), format="json")

    errors = assert_field_error(response, "email")
    assert errors["email"] == ["Enter a valid email address."]
    assert not User.objects.exists()
    assert mail.outbox == []


@pytest.mark.parametrize("email", REFUSED_ADDRESSES.values(), ids=REFUSED_ADDRESSES.keys())
def test_change_to_an_address_that_is_not_its_own_canonical_form_is_a_400(user, token_for, email):
    response = client_with(token_for(user)).patch(USER_PATH, {"new_email": email, "password": PASSWORD}, format="json")

    errors = assert_field_error(response, "new_email")
    assert errors["new_email"] == ["Enter a valid email address."]
    assert User.objects.get(pk=user.pk).email == "ann@example.com"
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("email", "delivered"),
    [
        ("bob@m\u00fcnchen.de", "bob@xn--mnchen-3ya.de"),
        ("Bob@M\u00fcnchen.DE", "Bob@xn--mnchen-3ya.de"),
        ("bob@\u00c9bc.com", "bob@xn--bc-9ia.com"),
        ("Bob@Example.COM", "Bob@Example.COM"),
    ],
)
def test_an_international_domain_is_registered_and_mailed_in_its_idna_2008_form(api_client, db, email, delivered):
    response = api_client.post(USER_PATH, registration(email=email), format="json")

    assert response.status_code == 200
    assert User.objects.get().email == email
    assert [message.to for message in mail.outbox] == [[delivered]]


def test_the_squatted_spelling_of_an_existing_account_is_refused_and_its_mail_goes_to_the_real_domain(user_factory, api_client):
    """An account stored before the rule under a spelling now refused still logs in, and its mail
    goes where its identity says (UTS 46 maps U+1D43 to "a"), not to the xn-- name."""
    user_factory(email="x@ex\u1d43mple.com", confirmed=False)

    assert api_client.put(CONFIRMATION_PATH, {"email": "x@example.com"}, format="json").status_code == 200
    assert [message.to for message in mail.outbox] == [["x@example.com"]]


@pytest.mark.parametrize(
    "stored", ["x@ex\u1d43mple.com", "x@exam\u00adple.com", '"x y"@example.com', "x@[10.0.0.5]", "x@stra\u00dfe.de"]
)
def test_an_existing_account_whose_address_is_now_refused_still_logs_in(user_factory, stored):
    user_factory(email=stored)

    assert login(APIClient(), stored).status_code == 200


@pytest.mark.parametrize("new_email", ["ANN@example.com", "ann@EXAMPLE.com"])
def test_any_change_of_the_stored_address_must_be_verified_again(user, token_for, new_email):
    client = client_with(token_for(user))
    assert client.patch(USER_PATH, {"new_email": new_email, "password": PASSWORD}, format="json").status_code == 200

    refreshed = claims(client.get("/api/authenticate").json()["token"])
    assert (refreshed["email"], refreshed["email_verified"]) == (new_email, False)
    assert User.objects.get(pk=user.pk).email_verified_at is None
    verification = [message for message in mail.outbox if message.subject == "Confirm your new email address"]
    assert [message.to for message in verification] == [[new_email]]


def test_the_same_address_again_keeps_it_verified(user, token_for):
    client = client_with(token_for(user))
    assert client.patch(USER_PATH, {"new_email": "ann@example.com", "password": PASSWORD}, format="json").status_code == 200

    assert User.objects.get(pk=user.pk).email_verified_at is not None
    assert mail.outbox == []
