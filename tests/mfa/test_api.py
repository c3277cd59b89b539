"""Two-factor sign-in: /api/mfa, /api/mfa/totp, /api/mfa/recovery-codes, the login's `otp`, the admin.

Codes are computed from the secret the API returns, with pyotp standing in for the user's app, at
a fixed clock: `clock` (conftest's `totp_clock`) pins the one clock of accounts.mfa.totp, so no test
depends on the wall clock crossing a 30-second boundary. Each endpoint's checks are tested in the order of the table, with
the exact envelopes; then replay, clock skew, recovery codes, rate limits (also across gunicorn
workers), emails, the audit trail, storage at rest, and the admin (list, reset, login).
"""

import json
import re
from importlib import import_module
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from urllib.parse import urlencode

import pyotp
import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.mfa import totp
from core import vault
from accounts.staff.site import SESSION_ID_KEY
from accounts.audit.models import AuthEvent
from accounts.notices.models import QueuedEmail
from accounts.mfa.models import RecoveryCode, TOTPDevice
from accounts.sessions.models import Session
from accounts.users.models import User
from accounts.mfa import services as mfa
from accounts.account.profile import user_deactivate
from accounts.users.links import Purpose, validation_token_make
from tests.conftest import (
    PASSWORD,
    TOTP_START,
    TOTPClock,
    admin_login,
    claims,
    session_of,
    totp_code,
)
from tests.support.contract import (
    ACCOUNT_DISABLED,
    ACCOUNT_NOT_ACTIVE,
    AUTHENTICATE_PATH,
    INVALID_CREDENTIALS,
    LOGIN_REQUIRED,
    THROTTLED,
    TOKEN_INVALID,
    USER_CONFIRMATION_REQUIRED,
    assert_error,
)
from tests.core.test_ratelimit_gunicorn import BASE_DIR, logged_pids, serve
from tests.support.api import client_with, login, send

# The new messages, written out (not imported from core.errors).
TWO_FACTOR_REQUIRED = {"status": 401, "message": "Two-factor code required"}
INVALID_TWO_FACTOR_CODE = {"status": 401, "message": "Invalid two-factor code"}
TWO_FACTOR_ALREADY_ENABLED = {"status": 409, "message": "Two-factor authentication is already enabled"}
TWO_FACTOR_NOT_ENABLED = {"status": 409, "message": "Two-factor authentication is not enabled"}
NO_TWO_FACTOR_ENROLLMENT = {"status": 409, "message": "No two-factor enrollment in progress"}

MFA_PATH = "/api/mfa"
TOTP_PATH = "/api/mfa/totp"
RECOVERY_CODES_PATH = "/api/mfa/recovery-codes"
BODIES = ["json", "form", "multipart"]

START = TOTP_START
STEP = totp.INTERVAL
code = totp_code


@pytest.fixture
def clock(totp_clock) -> TOTPClock:
    return totp_clock


def wrong_code(secret: str, when: datetime) -> str:
    """Return six digits that are no code of the secret within two steps of `when`."""
    near = {code(secret, when, steps) for steps in range(-2, 3)}
    return next(candidate for candidate in ("000000", "111111", "222222", "333333", "444444", "555555") if candidate not in near)


class TwoFactorUser:
    """A user with TOTP on, their API client, the secret of their app and their recovery codes."""

    def __init__(self, user: User, client: APIClient, secret: str, recovery_codes: list[str]):
        self.user, self.client, self.secret, self.recovery_codes = user, client, secret, recovery_codes


def enroll(client: APIClient, password: str = PASSWORD) -> str:
    response = client.post(TOTP_PATH, {"password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["secret"]


def turn_on(client: APIClient, clock: TOTPClock, password: str = PASSWORD) -> tuple[str, list[str]]:
    """Enroll and confirm through the API at the clock's time; return the secret and the codes.

    The clock then moves one step on, so that the confirming code is spent and a fresh one shows.
    """
    secret = enroll(client, password)
    response = client.put(TOTP_PATH, {"code": code(secret, clock.now)}, format="json")
    assert response.status_code == 200, response.content
    clock.tick()
    return secret, response.json()["recovery_codes"]


@pytest.fixture
def on(user, token_for, clock) -> TwoFactorUser:
    """`user` (ann@example.com) with TOTP on, enrolled through the API."""
    client = client_with(token_for(user))
    secret, codes = turn_on(client, clock)
    mail.outbox = []
    return TwoFactorUser(user, client, secret, codes)


def events(type_: str) -> list[AuthEvent]:
    return list(AuthEvent.objects.filter(type=type_).order_by("created_at", "pk"))


# --- The whole flow, through the API ---------------------------------------------------------------


def test_the_whole_flow(user, token_for, clock):
    client = client_with(token_for(user))
    assert client.get(MFA_PATH).json() == {"totp": False, "recovery_codes_left": 0}

    # Enroll: the app reads the secret (or the QR code of the URI); two-factor is not on yet.
    # Enrolling takes the password, as turning two-factor off does: a token alone is not enough.
    enrollment = client.post(TOTP_PATH, {"password": PASSWORD}, format="json")
    assert enrollment.status_code == 200
    assert enrollment["Cache-Control"] == "no-store"
    body = enrollment.json()
    assert set(body) == {"secret", "otpauth_uri", "qr_svg"}
    secret = body["secret"]
    assert pyotp.parse_uri(body["otpauth_uri"]).secret == secret
    assert body["qr_svg"].startswith("<svg")
    assert client.get(MFA_PATH).json() == {"totp": False, "recovery_codes_left": 0}
    assert login(APIClient(), user.email).status_code == 200

    # Confirm with the app's code: on, with ten recovery codes shown once.
    confirmed = client.put(TOTP_PATH, {"code": code(secret, clock.now)}, format="json")
    assert confirmed.status_code == 200
    assert confirmed["Cache-Control"] == "no-store"
    assert confirmed.json()["message"] == "Two-factor authentication enabled"
    recovery_codes = confirmed.json()["recovery_codes"]
    assert len(recovery_codes) == len(set(recovery_codes)) == 10
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", value) for value in recovery_codes)
    assert client.get(MFA_PATH).json() == {"totp": True, "recovery_codes_left": 10}

    # Login: the password alone is not enough any more; with the app's next code it is.
    assert_error(login(APIClient(), user.email), TWO_FACTOR_REQUIRED)
    clock.tick()
    token = login(APIClient(), user.email, otp=code(secret, clock.now)).json()["token"]
    assert claims(token)["amr"] == ["pwd", "otp"]
    assert session_of(token).amr == ["pwd", "otp"]

    # A recovery code in place of the app's, once.
    token = login(APIClient(), user.email, otp=recovery_codes[0]).json()["token"]
    assert claims(token)["amr"] == ["pwd", "otp"]
    assert_error(login(APIClient(), user.email, otp=recovery_codes[0]), INVALID_TWO_FACTOR_CODE)
    assert client.get(MFA_PATH).json() == {"totp": True, "recovery_codes_left": 9}

    # New recovery codes: the old ones stop working.
    clock.tick()
    regenerated = client.post(RECOVERY_CODES_PATH, {"code": code(secret, clock.now)}, format="json")
    assert regenerated.status_code == 200
    fresh = regenerated.json()["recovery_codes"]
    assert len(set(fresh)) == 10 and not set(fresh) & set(recovery_codes)
    assert_error(login(APIClient(), user.email, otp=recovery_codes[1]), INVALID_TWO_FACTOR_CODE)
    assert login(APIClient(), user.email, otp=fresh[1]).status_code == 200

    # Off, with the password and a code: the password alone signs in again.
    clock.tick()
    disabled = client.delete(TOTP_PATH, {"password": PASSWORD, "code": code(secret, clock.now)}, format="json")
    assert disabled.status_code == 200
    assert disabled.json() == {"message": "Two-factor authentication disabled"}
    assert client.get(MFA_PATH).json() == {"totp": False, "recovery_codes_left": 0}
    token = login(APIClient(), user.email).json()["token"]
    assert claims(token)["amr"] == ["pwd"]
    assert not TOTPDevice.objects.exists() and not RecoveryCode.objects.exists()


# --- Token checks, on every two-factor endpoint ----------------------------------------------------

ENDPOINTS = [
    ("get", MFA_PATH, None),
    ("post", TOTP_PATH, {"password": PASSWORD}),
    ("put", TOTP_PATH, {"code": "123456"}),
    ("delete", TOTP_PATH, {"password": PASSWORD, "code": "123456"}),
    ("post", RECOVERY_CODES_PATH, {"code": "123456"}),
]


# What each endpoint answers a signed-in user whose two-factor is off.
PAST_THE_TOKEN = {
    ("get", MFA_PATH): 200,
    ("post", TOTP_PATH): 200,
    ("put", TOTP_PATH): 409,
    ("delete", TOTP_PATH): 409,
    ("post", RECOVERY_CODES_PATH): 409,
}


@pytest.mark.parametrize(("method", "path", "data"), ENDPOINTS)
def test_no_token_is_login_required(db, method, path, data):
    assert_error(send(APIClient(), method, path, data), LOGIN_REQUIRED)


@pytest.mark.parametrize(("method", "path", "data"), ENDPOINTS)
@pytest.mark.parametrize("header", ["garbage", "Bearer", "Bearer x.y.z"])
def test_a_bad_token_is_token_invalid(db, method, path, data, header):
    assert_error(send(client_with(header), method, path, data), TOKEN_INVALID)


@pytest.mark.parametrize(("method", "path", "data"), ENDPOINTS)
@pytest.mark.parametrize(
    ("change", "error"),
    [({"is_active": False}, ACCOUNT_DISABLED), ({"deactivated_at": START}, ACCOUNT_NOT_ACTIVE)],
    ids=["disabled", "deactivated"],
)
def test_a_disabled_or_deactivated_account_is_refused(user_factory, token_for, method, path, data, change, error):
    member = user_factory()
    token = token_for(member)
    User.objects.filter(pk=member.pk).update(**change)

    assert_error(send(client_with(token), method, path, data), error)


@pytest.mark.parametrize(("method", "path", "data"), ENDPOINTS)
@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize("scheme", ["", "Bearer "], ids=["raw", "bearer"])
def test_every_path_answers_with_and_without_a_slash_and_either_token_form(user, token_for, method, path, data, slash, scheme):
    response = send(client_with(scheme + token_for(user)), method, path + slash, data)

    # Past the token checks: what the service says to a user without two-factor (409: nothing to
    # confirm, turn off or regenerate).
    assert response.status_code == PAST_THE_TOKEN[method, path], response.content
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", [MFA_PATH, TOTP_PATH, RECOVERY_CODES_PATH])
def test_a_verb_without_an_action_is_405_in_the_envelope(auth_client, path):
    response = auth_client.patch(path, {}, format="json")

    assert response.status_code == 405
    assert set(response.json()) == {"status", "message"}


# --- POST /api/mfa/totp: enroll ---------------------------------------------------------------------


def test_enrolling_without_the_password_is_400_and_starts_nothing(auth_client):
    """A stolen token alone must not turn two-factor on (the thief's app, the thief's recovery codes)."""
    response = auth_client.post(TOTP_PATH, {}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"password": ["This field is required."]}
    assert not TOTPDevice.objects.exists()


def test_enrolling_with_a_wrong_password_is_invalid_credentials_counted_and_starts_nothing(auth_client, settings):
    settings.LOGIN_ACCOUNT_RATE = "2/hour"

    assert_error(auth_client.post(TOTP_PATH, {"password": "wrong"}, format="json"), INVALID_CREDENTIALS)

    assert not TOTPDevice.objects.exists()
    assert_error(auth_client.put(TOTP_PATH, {"code": "123456"}, format="json"), NO_TWO_FACTOR_ENROLLMENT)
    assert [event.detail for event in events(AuthEvent.Type.PASSWORD_CHECK_FAILED)] == ["two-factor enrollment"]
    # Counted in LOGIN_ACCOUNT_RATE, with the login's failures: at the limit, the right password too.
    assert_error(login(APIClient(), auth_client.user.email, "wrong"), INVALID_CREDENTIALS)
    assert_error(auth_client.post(TOTP_PATH, {"password": PASSWORD}, format="json"), THROTTLED)
    assert not TOTPDevice.objects.exists()


def test_a_pending_enrollment_cannot_be_replaced_without_the_password(auth_client, clock):
    secret = enroll(auth_client)

    assert auth_client.post(TOTP_PATH, {}, format="json").status_code == 400
    assert_error(auth_client.post(TOTP_PATH, {"password": "wrong"}, format="json"), INVALID_CREDENTIALS)

    assert TOTPDevice.objects.get().secret() == secret
    assert auth_client.put(TOTP_PATH, {"code": code(secret, clock.now)}, format="json").status_code == 200


def test_enrolling_when_on_is_already_enabled_before_the_password(on):
    # As turning off when off: the state is checked first, a password is not even looked at.
    assert_error(on.client.post(TOTP_PATH, {"password": "wrong"}, format="json"), TWO_FACTOR_ALREADY_ENABLED)
    assert not events(AuthEvent.Type.PASSWORD_CHECK_FAILED)


@pytest.mark.parametrize("body", BODIES)
def test_enrolling_reads_every_body(auth_client, body):
    response = send(auth_client, "post", TOTP_PATH, {"password": PASSWORD}, body=body)

    assert response.status_code == 200, response.content


def test_the_migration_drops_the_enrollments_started_without_the_password(on, user_factory):
    """Enrollments in progress at the upgrade were started without the password: none may be confirmed."""
    pending = user_factory(email="bob@example.com")
    TOTPDevice.objects.create(user=pending, secret_encrypted=TOTPDevice.secret_encrypt(totp.secret_new()), created_at=START)

    import_module("accounts.migrations.0009_pending_enrollments_drop").pending_enrollments_drop(apps, None)

    assert list(TOTPDevice.objects.values_list("user__email", flat=True)) == [on.user.email]


def test_enrolling_again_replaces_the_pending_secret(auth_client, clock):
    first = enroll(auth_client)
    second = enroll(auth_client)

    assert first != second
    assert TOTPDevice.objects.count() == 1
    assert_error(auth_client.put(TOTP_PATH, {"code": code(first, clock.now)}, format="json"), INVALID_TWO_FACTOR_CODE)
    assert auth_client.put(TOTP_PATH, {"code": code(second, clock.now)}, format="json").status_code == 200


def test_enrolling_when_on_is_already_enabled(on):
    assert_error(on.client.post(TOTP_PATH, {"password": PASSWORD}, format="json"), TWO_FACTOR_ALREADY_ENABLED)
    # The device in use is untouched.
    assert TOTPDevice.objects.get().secret() == on.secret


def test_the_uri_names_the_users_email(user, token_for):
    response = client_with(token_for(user)).post(TOTP_PATH, {"password": PASSWORD}, format="json")

    assert pyotp.parse_uri(response.json()["otpauth_uri"]).name == "ann@example.com"


# --- PUT /api/mfa/totp: confirm ---------------------------------------------------------------------


def test_confirming_without_an_enrollment_is_no_enrollment(auth_client):
    assert_error(auth_client.put(TOTP_PATH, {"code": "123456"}, format="json"), NO_TWO_FACTOR_ENROLLMENT)


def test_confirming_when_on_is_no_enrollment(on, clock):
    assert_error(on.client.put(TOTP_PATH, {"code": code(on.secret, clock.now)}, format="json"), NO_TWO_FACTOR_ENROLLMENT)


def test_confirming_with_a_wrong_code_is_invalid_and_leaves_it_off(auth_client, clock):
    secret = enroll(auth_client)

    assert_error(auth_client.put(TOTP_PATH, {"code": wrong_code(secret, clock.now)}, format="json"), INVALID_TWO_FACTOR_CODE)

    assert auth_client.get(MFA_PATH).json() == {"totp": False, "recovery_codes_left": 0}
    assert [event.detail for event in events(AuthEvent.Type.MFA_FAILED)] == ["two-factor confirmation"]


def test_confirming_with_a_recovery_code_shape_is_invalid(auth_client, clock):
    enroll(auth_client)

    assert_error(auth_client.put(TOTP_PATH, {"code": "ABCDE-FGHJK"}, format="json"), INVALID_TWO_FACTOR_CODE)


@pytest.mark.parametrize("body", BODIES)
def test_confirming_reads_every_body_and_spaces_inside_the_code(auth_client, clock, body):
    secret = enroll(auth_client)
    digits = code(secret, clock.now)

    response = send(auth_client, "put", TOTP_PATH, {"code": f" {digits[:3]} {digits[3:]} "}, body=body)

    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({}, {"code": ["This field is required."]}),
        ({"code": ""}, {"code": ["This field may not be blank."]}),
        ({"code": 123456}, {"code": ["Not a valid string."]}),
        ({"code": "1" * 65}, {"code": ["Ensure this field has no more than 64 characters."]}),
    ],
    ids=["missing", "blank", "number", "too-long"],
)
def test_confirming_with_a_malformed_code_is_400(auth_client, data, errors):
    enroll(auth_client)

    response = auth_client.put(TOTP_PATH, data, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == errors


# --- DELETE /api/mfa/totp: turn off -----------------------------------------------------------------


def test_turning_off_when_off_is_not_enabled_before_the_password(auth_client):
    # Not on is checked first: a wrong password is not even looked at.
    response = auth_client.delete(TOTP_PATH, {"password": "wrong", "code": "123456"}, format="json")

    assert_error(response, TWO_FACTOR_NOT_ENABLED)
    assert not events(AuthEvent.Type.PASSWORD_CHECK_FAILED)


def test_turning_off_during_an_enrollment_is_not_enabled(auth_client):
    enroll(auth_client)

    assert_error(auth_client.delete(TOTP_PATH, {"password": PASSWORD, "code": "123456"}, format="json"), TWO_FACTOR_NOT_ENABLED)


def test_turning_off_with_a_wrong_password_is_invalid_credentials_before_the_code(on, clock):
    response = on.client.delete(TOTP_PATH, {"password": "wrong", "code": wrong_code(on.secret, clock.now)}, format="json")

    assert_error(response, INVALID_CREDENTIALS)
    assert on.client.get(MFA_PATH).json()["totp"] is True
    assert not events(AuthEvent.Type.MFA_FAILED)


def test_turning_off_with_a_wrong_code_is_invalid(on, clock):
    response = on.client.delete(TOTP_PATH, {"password": PASSWORD, "code": wrong_code(on.secret, clock.now)}, format="json")

    assert_error(response, INVALID_TWO_FACTOR_CODE)
    assert on.client.get(MFA_PATH).json()["totp"] is True


@pytest.mark.parametrize("body", BODIES)
def test_turning_off_reads_every_body(on, clock, body):
    response = send(on.client, "delete", TOTP_PATH, {"password": PASSWORD, "code": code(on.secret, clock.now)}, body=body)

    assert response.status_code == 200, response.content


def test_turning_off_with_a_recovery_code_works(on):
    """The way back for a user who lost the app: log in with a recovery code, turn it off."""
    response = on.client.delete(TOTP_PATH, {"password": PASSWORD, "code": on.recovery_codes[3]}, format="json")

    assert response.status_code == 200
    assert login(APIClient(), on.user.email).status_code == 200


@pytest.mark.parametrize("data", [{"code": "123456"}, {"password": PASSWORD}], ids=["no-password", "no-code"])
def test_turning_off_without_a_field_is_400(on, data):
    response = on.client.delete(TOTP_PATH, data, format="json")

    assert response.status_code == 400
    assert on.client.get(MFA_PATH).json()["totp"] is True


# --- POST /api/mfa/recovery-codes -------------------------------------------------------------------


def test_new_recovery_codes_when_off_is_not_enabled(auth_client):
    assert_error(auth_client.post(RECOVERY_CODES_PATH, {"code": "123456"}, format="json"), TWO_FACTOR_NOT_ENABLED)


def test_new_recovery_codes_with_a_wrong_code_is_invalid_and_keeps_the_old_ones(on, clock):
    response = on.client.post(RECOVERY_CODES_PATH, {"code": wrong_code(on.secret, clock.now)}, format="json")

    assert_error(response, INVALID_TWO_FACTOR_CODE)
    assert login(APIClient(), on.user.email, otp=on.recovery_codes[0]).status_code == 200


def test_new_recovery_codes_take_a_code_of_the_app_not_a_recovery_code(on):
    response = on.client.post(RECOVERY_CODES_PATH, {"code": on.recovery_codes[0]}, format="json")

    assert_error(response, INVALID_TWO_FACTOR_CODE)
    # Not spent by the refusal.
    assert on.client.get(MFA_PATH).json()["recovery_codes_left"] == 10


@pytest.mark.parametrize("body", BODIES)
def test_new_recovery_codes_read_every_body(on, clock, body):
    response = send(on.client, "post", RECOVERY_CODES_PATH, {"code": code(on.secret, clock.now)}, body=body)

    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    assert len(response.json()["recovery_codes"]) == 10
    assert on.client.get(MFA_PATH).json()["recovery_codes_left"] == 10
    assert RecoveryCode.objects.count() == 10


# --- Login: the checks in order ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [{}, {"confirmed_at": None}, {"is_active": False}, {"deactivated_at": START}],
    ids=["active", "unconfirmed", "disabled", "deactivated"],
)
def test_a_wrong_password_is_invalid_credentials_before_any_code(on, clock, state):
    User.objects.filter(pk=on.user.pk).update(**state)

    assert_error(login(APIClient(), on.user.email, "wrong", otp=code(on.secret, clock.now)), INVALID_CREDENTIALS)
    assert_error(login(APIClient(), on.user.email, "wrong"), INVALID_CREDENTIALS)


def test_unconfirmed_is_confirmation_required_before_the_code(on):
    User.objects.filter(pk=on.user.pk).update(confirmed_at=None)

    assert_error(login(APIClient(), on.user.email), USER_CONFIRMATION_REQUIRED)


def test_disabled_is_account_disabled_before_the_code(on):
    User.objects.filter(pk=on.user.pk).update(is_active=False)

    assert_error(login(APIClient(), on.user.email), ACCOUNT_DISABLED)


def test_deactivated_needs_the_code_to_reactivate(on, clock):
    user_deactivate(user=on.user)

    assert_error(login(APIClient(), on.user.email), TWO_FACTOR_REQUIRED)
    on.user.refresh_from_db()
    assert on.user.is_deactivated

    assert login(APIClient(), on.user.email, otp=code(on.secret, clock.now)).status_code == 200
    on.user.refresh_from_db()
    assert not on.user.is_deactivated


@pytest.mark.parametrize("otp", [None, "", "   "], ids=["absent", "empty", "spaces"])
def test_no_otp_is_two_factor_required(on, otp):
    extra = {} if otp is None else {"otp": otp}

    assert_error(login(APIClient(), on.user.email, **extra), TWO_FACTOR_REQUIRED)
    # Not a failed check: nothing counted, nothing recorded as a failure.
    assert not events(AuthEvent.Type.MFA_FAILED)
    assert not events(AuthEvent.Type.LOGIN)


def test_a_wrong_code_is_invalid(on, clock):
    assert_error(login(APIClient(), on.user.email, otp=wrong_code(on.secret, clock.now)), INVALID_TWO_FACTOR_CODE)
    assert [event.detail for event in events(AuthEvent.Type.MFA_FAILED)] == ["login"]
    assert not Session.objects.filter(user=on.user, amr=["pwd", "otp"]).exists()


@pytest.mark.parametrize("otp", ["abc", "ZZZZZ-ZZZZZ", "12345", "1234567", "x" * 64])
def test_anything_else_is_invalid(on, otp):
    assert_error(login(APIClient(), on.user.email, otp=otp), INVALID_TWO_FACTOR_CODE)


@pytest.mark.parametrize("body", BODIES)
def test_login_reads_otp_from_every_body(on, clock, body):
    response = login(APIClient(), on.user.email, otp=code(on.secret, clock.now), body=body)

    assert response.status_code == 200, response.content
    assert claims(response.json()["token"])["amr"] == ["pwd", "otp"]


@pytest.mark.parametrize("path", ["/api/authenticate", "/api/authenticate/", "/api/auth", "/api/auth/"])
def test_login_with_otp_on_the_alias_and_trailing_slash(on, clock, path):
    response = APIClient().post(path, {"email": on.user.email, "password": PASSWORD, "otp": code(on.secret, clock.now)}, format="json")

    assert response.status_code == 200


def test_the_otp_must_be_a_string(on, clock):
    response = login(APIClient(), on.user.email, otp=int(code(on.secret, clock.now)))

    assert response.status_code == 400
    assert response.json()["errors"] == {"otp": ["Not a valid string."]}


def test_tokens_of_a_two_factor_login_keep_amr_through_refresh(on, clock):
    token = login(APIClient(), on.user.email, otp=code(on.secret, clock.now)).json()["token"]

    refreshed = client_with(token).get(AUTHENTICATE_PATH).json()["token"]

    assert claims(refreshed)["amr"] == ["pwd", "otp"]


def test_remember_works_with_otp(on, clock, settings):
    token = login(APIClient(), on.user.email, otp=code(on.secret, clock.now), remember=True).json()["token"]

    session = session_of(token)
    assert session.remember is True
    assert session.expires_at == session.created_at + timedelta(seconds=settings.TOKEN_REMEMBER_LIFETIME)


# --- A code works once; one step of skew ------------------------------------------------------------


def test_the_confirming_code_cannot_log_in(user, token_for, clock):
    client = client_with(token_for(user))
    secret = enroll(client)
    confirming = code(secret, clock.now)
    assert client.put(TOTP_PATH, {"code": confirming}, format="json").status_code == 200

    assert_error(login(APIClient(), user.email, otp=confirming), INVALID_TWO_FACTOR_CODE)


def test_a_code_is_refused_the_second_time(on, clock):
    current = code(on.secret, clock.now)
    assert login(APIClient(), on.user.email, otp=current).status_code == 200

    assert_error(login(APIClient(), on.user.email, otp=current), INVALID_TWO_FACTOR_CODE)
    # Still within its window, on another endpoint.
    assert_error(on.client.post(RECOVERY_CODES_PATH, {"code": current}, format="json"), INVALID_TWO_FACTOR_CODE)


def test_an_older_code_is_refused_after_a_newer_one(on, clock):
    assert login(APIClient(), on.user.email, otp=code(on.secret, clock.now, 1)).status_code == 200

    # The current and the previous step's codes are within the tolerance, but older than the last used.
    assert_error(login(APIClient(), on.user.email, otp=code(on.secret, clock.now)), INVALID_TWO_FACTOR_CODE)
    assert_error(login(APIClient(), on.user.email, otp=code(on.secret, clock.now, -1)), INVALID_TWO_FACTOR_CODE)


def test_the_next_step_brings_a_code_that_works(on, clock):
    assert login(APIClient(), on.user.email, otp=code(on.secret, clock.now)).status_code == 200
    clock.tick()

    assert login(APIClient(), on.user.email, otp=code(on.secret, clock.now)).status_code == 200


@pytest.mark.parametrize(("steps", "status"), [(-2, 401), (-1, 200), (1, 200), (2, 401)])
def test_login_accepts_one_step_of_skew_either_side(on, clock, steps, status):
    # The clock three steps after enrollment: every step tried is later than the confirming one.
    clock.tick(3)

    response = login(APIClient(), on.user.email, otp=code(on.secret, clock.now, steps))

    assert response.status_code == status
    if status == 401:
        assert_error(response, INVALID_TWO_FACTOR_CODE)


def test_two_checks_of_one_code_at_once_pass_once(on, clock):
    """The accepted step is a compare-and-set: the second of two checks that read the device
    before either wrote finds the step taken."""
    device = TOTPDevice.objects.get()
    stale = TOTPDevice.objects.get()
    current = code(on.secret, clock.now)

    assert mfa._totp_accept(device=device, typed=current) is True
    assert mfa._totp_accept(device=stale, typed=current) is False


# --- Recovery codes -----------------------------------------------------------------------------------


def test_a_recovery_code_works_once(on):
    assert login(APIClient(), on.user.email, otp=on.recovery_codes[0]).status_code == 200

    assert_error(login(APIClient(), on.user.email, otp=on.recovery_codes[0]), INVALID_TWO_FACTOR_CODE)
    assert login(APIClient(), on.user.email, otp=on.recovery_codes[1]).status_code == 200
    assert on.client.get(MFA_PATH).json()["recovery_codes_left"] == 8


@pytest.mark.parametrize(
    "typed",
    [
        lambda value: value.lower(),
        lambda value: value.replace("-", ""),
        lambda value: " ".join(value.replace("-", "")),
        lambda value: f"  {value}  ",
        lambda value: value.replace("0", "O").replace("1", "I"),
    ],
    ids=["lower-case", "no-hyphen", "spaced", "padded", "letters-for-digits"],
)
def test_a_recovery_code_is_read_as_typed(on, typed):
    assert login(APIClient(), on.user.email, otp=typed(on.recovery_codes[2])).status_code == 200


def test_using_a_recovery_code_is_told_and_recorded(on):
    login(APIClient(), on.user.email, otp=on.recovery_codes[0])

    assert len(mail.outbox) == 1
    notice = mail.outbox[0]
    assert notice.to == ["ann@example.com"]
    assert notice.subject == "A recovery code was used"
    assert "9 of your recovery codes are left" in notice.body
    assert on.recovery_codes[0] not in notice.body
    (event,) = events(AuthEvent.Type.MFA_RECOVERY_CODE_USED)
    assert event.detail == "login, 9 left"


def test_the_last_recovery_code_then_none(on):
    for value in on.recovery_codes:
        assert login(APIClient(), on.user.email, otp=value).status_code == 200

    assert on.client.get(MFA_PATH).json() == {"totp": True, "recovery_codes_left": 0}
    assert "0 of your recovery codes are left" in mail.outbox[-1].body


def test_recovery_codes_of_another_user_do_not_work(on, user_factory, clock):
    other = user_factory(email="bob@example.com")
    client = client_with(APIClient().post(AUTHENTICATE_PATH, {"email": other.email, "password": PASSWORD}).json()["token"])
    turn_on(client, clock)

    assert_error(login(APIClient(), other.email, otp=on.recovery_codes[0]), INVALID_TWO_FACTOR_CODE)


def test_recovery_codes_made_before_a_secret_key_rotation_still_work(on, settings):
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-" + "n" * 50
    settings.SECRET_KEY_FALLBACKS = [old]

    assert login(APIClient(), on.user.email, otp=on.recovery_codes[0]).status_code == 200


# --- At rest ------------------------------------------------------------------------------------------


def test_the_secret_is_not_stored_in_plain_text(on):
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_encrypted FROM accounts_totpdevice")
        ((stored,),) = cursor.fetchall()

    assert on.secret not in stored
    assert on.secret.lower() not in stored.lower()
    assert vault.decrypt(stored).decode() == on.secret


def test_recovery_codes_are_stored_as_keyed_digests(on):
    with connection.cursor() as cursor:
        cursor.execute("SELECT digest FROM accounts_recoverycode")
        stored = [row[0] for row in cursor.fetchall()]

    assert len(stored) == 10
    for value in on.recovery_codes:
        plain = value.replace("-", "")
        assert not any(plain in digest or value in digest for digest in stored)
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in stored)


def test_the_pending_secret_is_encrypted_too(auth_client):
    secret = enroll(auth_client)

    stored = TOTPDevice.objects.values_list("secret_encrypted", flat=True).get()
    assert secret not in stored


# --- Rate limits ----------------------------------------------------------------------------------------


def test_wrong_codes_on_every_endpoint_count_against_the_account(on, clock, settings):
    settings.LOGIN_ACCOUNT_RATE = "3/hour"
    wrong = wrong_code(on.secret, clock.now)

    assert_error(login(APIClient(), on.user.email, otp=wrong), INVALID_TWO_FACTOR_CODE)
    assert_error(on.client.post(RECOVERY_CODES_PATH, {"code": wrong}, format="json"), INVALID_TWO_FACTOR_CODE)
    assert_error(on.client.delete(TOTP_PATH, {"password": PASSWORD, "code": wrong}, format="json"), INVALID_TWO_FACTOR_CODE)

    # At the limit: every check of the account, right code and right password included.
    throttled = login(APIClient(), on.user.email, otp=code(on.secret, clock.now))
    assert_error(throttled, THROTTLED)
    assert 1 <= int(throttled["Retry-After"]) <= 3600
    assert_error(login(APIClient(), on.user.email, otp=on.recovery_codes[0]), THROTTLED)
    assert_error(on.client.post(RECOVERY_CODES_PATH, {"code": code(on.secret, clock.now)}, format="json"), THROTTLED)
    assert_error(on.client.delete(TOTP_PATH, {"password": PASSWORD, "code": code(on.secret, clock.now)}, format="json"), THROTTLED)
    assert_error(login(APIClient(), on.user.email, "wrong"), THROTTLED)
    assert [event.detail for event in events(AuthEvent.Type.MFA_FAILED)] == [
        "login", "new recovery codes", "two-factor disable",
    ]
    # Nothing was spent by the refused checks.
    assert on.client.get(MFA_PATH).json() == {"totp": True, "recovery_codes_left": 10}


def test_a_wrong_confirmation_code_counts_too(auth_client, clock, settings):
    settings.LOGIN_ACCOUNT_RATE = "2/hour"
    secret = enroll(auth_client)
    for _ in range(2):
        assert_error(auth_client.put(TOTP_PATH, {"code": wrong_code(secret, clock.now)}, format="json"), INVALID_TWO_FACTOR_CODE)

    assert_error(auth_client.put(TOTP_PATH, {"code": code(secret, clock.now)}, format="json"), THROTTLED)


def test_wrong_passwords_and_wrong_codes_share_the_account_limit(on, clock, settings):
    settings.LOGIN_ACCOUNT_RATE = "2/hour"
    assert_error(login(APIClient(), on.user.email, "wrong"), INVALID_CREDENTIALS)
    assert_error(login(APIClient(), on.user.email, otp=wrong_code(on.secret, clock.now)), INVALID_TWO_FACTOR_CODE)

    assert_error(login(APIClient(), on.user.email, otp=code(on.secret, clock.now, 1)), THROTTLED)


def test_wrong_codes_at_login_count_as_failed_logins(on, clock, settings):
    settings.LOGIN_ACCOUNT_RATE = "none"
    settings.LOGIN_RATE = "2/min"
    for _ in range(2):
        assert_error(login(APIClient(), on.user.email, otp=wrong_code(on.secret, clock.now)), INVALID_TWO_FACTOR_CODE)

    assert_error(login(APIClient(), on.user.email, otp=code(on.secret, clock.now)), THROTTLED)


def test_a_password_reset_clears_the_password_failures_but_not_the_code_failures(on, clock, settings):
    """Whoever holds the mailbox and the password gets no more code guesses by a recovery email:
    the reset clears the password failures; the code failures stay counted, at LOGIN_ACCOUNT_RATE."""
    settings.LOGIN_ACCOUNT_RATE = "2/hour"
    for _ in range(2):
        assert_error(login(APIClient(), on.user.email, otp=wrong_code(on.secret, clock.now)), INVALID_TWO_FACTOR_CODE)
    assert_error(login(APIClient(), on.user.email, otp=code(on.secret, clock.now)), THROTTLED)
    token = validation_token_make(user=on.user, purpose=Purpose.RECOVERY)
    reset = APIClient().post("/api/validate/recovery", {"token": token, "new_password": "a brand new phrase", "confirm": "a brand new phrase"})
    assert reset.status_code == 200

    # The password is checked again (a wrong one is wrong, not refused) ...
    assert_error(login(APIClient(), on.user.email, "a wrong phrase"), INVALID_CREDENTIALS)
    # ... but every code check is still refused, a guess and the right code alike.
    assert_error(login(APIClient(), on.user.email, "a brand new phrase", otp=wrong_code(on.secret, clock.now)), THROTTLED)
    assert_error(login(APIClient(), on.user.email, "a brand new phrase", otp=code(on.secret, clock.now)), THROTTLED)
    assert_error(login(APIClient(), on.user.email, "a brand new phrase", otp=on.recovery_codes[0]), THROTTLED)
    assert [event.detail for event in events(AuthEvent.Type.MFA_FAILED)] == ["login", "login"]


def test_after_a_reset_the_code_guesses_left_are_those_left_before(on, clock, settings):
    settings.LOGIN_ACCOUNT_RATE = "2/hour"
    assert_error(login(APIClient(), on.user.email, "wrong"), INVALID_CREDENTIALS)
    assert_error(login(APIClient(), on.user.email, otp=wrong_code(on.secret, clock.now)), INVALID_TWO_FACTOR_CODE)
    assert_error(login(APIClient(), on.user.email, otp=code(on.secret, clock.now)), THROTTLED)  # shared: 2 failures
    token = validation_token_make(user=on.user, purpose=Purpose.RECOVERY)
    reset = APIClient().post("/api/validate/recovery", {"token": token, "new_password": "a brand new phrase", "confirm": "a brand new phrase"})
    assert reset.status_code == 200

    # One code failure was counted before the reset: one guess is left, then the limit.
    assert_error(login(APIClient(), on.user.email, "a brand new phrase", otp=wrong_code(on.secret, clock.now)), INVALID_TWO_FACTOR_CODE)
    assert_error(login(APIClient(), on.user.email, "a brand new phrase", otp=code(on.secret, clock.now)), THROTTLED)


def test_with_a_code_guess_left_the_right_code_signs_in_after_a_reset(on, clock, settings):
    settings.LOGIN_ACCOUNT_RATE = "2/hour"
    assert_error(login(APIClient(), on.user.email, otp=wrong_code(on.secret, clock.now)), INVALID_TWO_FACTOR_CODE)
    assert_error(login(APIClient(), on.user.email, "wrong"), INVALID_CREDENTIALS)
    assert_error(login(APIClient(), on.user.email, otp=code(on.secret, clock.now)), THROTTLED)
    token = validation_token_make(user=on.user, purpose=Purpose.RECOVERY)
    reset = APIClient().post("/api/validate/recovery", {"token": token, "new_password": "a brand new phrase", "confirm": "a brand new phrase"})
    assert reset.status_code == 200

    assert login(APIClient(), on.user.email, "a brand new phrase", otp=code(on.secret, clock.now)).status_code == 200


# --- A password reset leaves two-factor on ------------------------------------------------------------


def test_a_password_reset_by_email_leaves_two_factor_on(on, clock):
    token = validation_token_make(user=on.user, purpose=Purpose.RECOVERY)
    new = "a brand new phrase"

    response = APIClient().post("/api/validate/recovery", {"token": token, "new_password": new, "confirm": new})

    assert response.status_code == 200
    assert_error(login(APIClient(), on.user.email, new), TWO_FACTOR_REQUIRED)
    assert login(APIClient(), on.user.email, new, otp=on.recovery_codes[0]).status_code == 200
    assert TOTPDevice.objects.get().is_confirmed


def test_a_password_change_keeps_the_two_factor_amr(on, clock):
    token = login(APIClient(), on.user.email, otp=code(on.secret, clock.now)).json()["token"]
    new = "a brand new phrase"

    response = client_with(token).put(AUTHENTICATE_PATH, {"password": PASSWORD, "new_password": new, "confirm": new})

    assert claims(response.json()["token"])["amr"] == ["pwd", "otp"]


# --- Users without two-factor -----------------------------------------------------------------------


def test_a_user_without_two_factor_logs_in_as_before(user, clock):
    response = login(APIClient(), user.email)

    assert response.status_code == 200
    assert set(response.json()) == {"token"}
    assert claims(response.json()["token"])["amr"] == ["pwd"]


@pytest.mark.parametrize("otp", ["", "123456", "garbage"])
def test_a_user_without_two_factor_may_send_any_otp(user, otp):
    response = login(APIClient(), user.email, otp=otp)

    assert response.status_code == 200
    assert claims(response.json()["token"])["amr"] == ["pwd"]
    assert not events(AuthEvent.Type.MFA_FAILED)


def test_a_pending_enrollment_changes_nothing_at_login(auth_client):
    enroll(auth_client)

    response = login(APIClient(), auth_client.user.email)

    assert response.status_code == 200
    assert claims(response.json()["token"])["amr"] == ["pwd"]


# --- Emails and the audit trail -------------------------------------------------------------------------


def test_turning_on_is_told_and_recorded(user, token_for, clock):
    client = client_with(token_for(user))
    turn_on(client, clock)

    (notice,) = mail.outbox
    assert notice.to == ["ann@example.com"]
    assert notice.subject == "Two-factor sign-in was turned on"
    assert "recovery codes" in notice.body
    assert len(events(AuthEvent.Type.MFA_ENABLED)) == 1


def test_turning_off_is_told_and_recorded(on, clock):
    on.client.delete(TOTP_PATH, {"password": PASSWORD, "code": code(on.secret, clock.now)}, format="json")

    (notice,) = mail.outbox
    assert notice.subject == "Two-factor sign-in was turned off"
    assert "with your password and a code" in notice.body
    assert len(events(AuthEvent.Type.MFA_DISABLED)) == 1


def test_new_recovery_codes_are_recorded(on, clock):
    on.client.post(RECOVERY_CODES_PATH, {"code": code(on.secret, clock.now)}, format="json")

    assert len(events(AuthEvent.Type.MFA_RECOVERY_CODES_REGENERATED)) == 1
    assert mail.outbox == []


def test_notices_that_cannot_be_sent_are_queued_and_the_request_succeeds(user, token_for, clock, failing_mail):
    client = client_with(token_for(user))
    secret, codes = turn_on(client, clock)
    assert login(APIClient(), user.email, otp=codes[0]).status_code == 200
    response = client.delete(TOTP_PATH, {"password": PASSWORD, "code": code(secret, clock.now)}, format="json")

    assert response.status_code == 200
    assert sorted(QueuedEmail.objects.values_list("kind", flat=True)) == [
        "recovery_code_used", "two_factor_disabled", "two_factor_enabled",
    ]


def test_no_log_line_holds_the_secret_or_a_code(user, token_for, clock, caplog):
    caplog.set_level("DEBUG")
    client = client_with(token_for(user))
    secret, codes = turn_on(client, clock)
    login(APIClient(), user.email, otp=codes[0])
    login(APIClient(), user.email, otp=code(secret, clock.now))

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert secret not in text
    assert not any(value in text for value in codes)


# --- The admin: the list, the reset ---------------------------------------------------------------------

USERS = "/admin/accounts/user/"
ADMIN_PASSWORD = "operator phrase 31"
FORBIDDEN = "only a superuser may act on a superuser, another staff account, or an account with a group or permission you lack"


@pytest.fixture
def staff(user_factory) -> User:
    return user_factory(email="admin@example.com", name="Ada Admin", password=ADMIN_PASSWORD, is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(staff) -> Client:
    client = Client()
    admin_login(client, staff)
    return client


def act(client: Client, action: str, *users: User):
    return client.post(USERS, {"action": action, "_selected_action": [member.pk for member in users], "index": 0}, follow=True)


def reported(response) -> list[tuple[str, str]]:
    return [(message.level_tag, message.message) for message in response.context["messages"]]


def test_the_list_shows_a_2fa_column(admin_client, on, user_factory):
    user_factory(email="bob@example.com")

    response = admin_client.get(USERS)

    html = response.content.decode()
    assert "column-two_factor" in html
    rows = {row.email: row.two_factor for row in response.context["cl"].result_list}
    assert rows == {"admin@example.com": False, "ann@example.com": True, "bob@example.com": False}


def test_the_2fa_column_costs_no_query_per_row(admin_client, on, user_factory):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(USERS).status_code == 200
        return len(captured.captured_queries)

    few = queries()
    for number in range(10):
        user_factory(email=f"user{number}@example.com")

    assert queries() == few


@pytest.mark.parametrize(("value", "expected"), [("on", {"ann@example.com"}), ("off", {"admin@example.com", "bob@example.com"})])
def test_the_list_filters_by_two_factor(admin_client, on, user_factory, value, expected):
    user_factory(email="bob@example.com")
    # Bob's enrollment is pending: not on.
    bob = User.objects.get(email="bob@example.com")
    mfa.totp_enrollment_start(user=bob, password=PASSWORD)

    response = admin_client.get(USERS, {"two_factor": value})

    assert {row.email for row in response.context["cl"].result_list} == expected


def test_reset_turns_two_factor_off_and_signs_out_everywhere(admin_client, on, clock):
    token = login(APIClient(), on.user.email, otp=code(on.secret, clock.now)).json()["token"]
    mail.outbox = []

    response = act(admin_client, "reset_two_factor", on.user)

    assert ("info", "1 account had two-factor reset.") in reported(response)
    assert_error(client_with(token).get("/api/user"), TOKEN_INVALID)
    assert session_of(token).end_reason == Session.EndReason.TWO_FACTOR_RESET
    assert not TOTPDevice.objects.exists() and not RecoveryCode.objects.exists()
    (event,) = events(AuthEvent.Type.MFA_RESET)
    assert event.user == on.user
    assert event.detail.startswith("by admin@example.com (")
    (notice,) = mail.outbox
    assert notice.subject == "Two-factor sign-in was turned off"
    assert "by our staff" in notice.body

    # The user signs in with the password alone, and may enroll again.
    token = login(APIClient(), on.user.email).json()["token"]
    client = client_with(token)
    assert client.get(MFA_PATH).json() == {"totp": False, "recovery_codes_left": 0}
    clock.tick(5)
    secret, _ = turn_on(client, clock)
    assert secret != on.secret
    assert_error(login(APIClient(), on.user.email), TWO_FACTOR_REQUIRED)


def test_reset_skips_accounts_without_two_factor(admin_client, user, token_for):
    token = token_for(user)

    response = act(admin_client, "reset_two_factor", user)

    assert ("warning", "1 account skipped: two-factor was off.") in reported(response)
    assert client_with(token).get("/api/user").status_code == 200
    assert not events(AuthEvent.Type.MFA_RESET)


def test_reset_needs_the_change_permission(user_factory, on):
    viewer = user_factory(email="viewer@example.com", password=ADMIN_PASSWORD, is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_user"))
    client = Client()
    admin_login(client, viewer)

    assert '<option value="reset_two_factor">' not in client.get(USERS).content.decode()
    act(client, "reset_two_factor", on.user)
    assert TOTPDevice.objects.filter(user=on.user).exists()


def test_reset_of_a_superuser_by_other_staff_is_refused(user_factory, clock):
    root = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    turn_on(client_with(APIClient().post(AUTHENTICATE_PATH, {"email": root.email, "password": PASSWORD}).json()["token"]), clock)
    editor = user_factory(email="editor@example.com", password=ADMIN_PASSWORD, is_staff=True)
    editor.user_permissions.set(Permission.objects.filter(codename__in=["view_user", "change_user"]))
    client = Client()
    admin_login(client, editor)

    response = act(client, "reset_two_factor", root)

    assert ("warning", f"1 account skipped: {FORBIDDEN}.") in reported(response)
    assert TOTPDevice.objects.filter(user=root, confirmed_at__isnull=False).exists()


# --- The admin login with a code --------------------------------------------------------------------------


@pytest.fixture
def staff_on(staff, token_for, clock) -> TwoFactorUser:
    """The staff member with TOTP on."""
    client = client_with(token_for(staff))
    secret, codes = turn_on(client, clock, ADMIN_PASSWORD)
    return TwoFactorUser(staff, client, secret, codes)


def admin_post(client: Client, email: str, password: str = ADMIN_PASSWORD, **extra):
    return client.post("/admin/login/", {"username": email, "password": password, "next": "/admin/", **extra})


def admin_session(client: Client) -> Session:
    return Session.objects.get(public_id=client.session[SESSION_ID_KEY])


def test_the_login_page_shows_the_code_field(db):
    html = Client().get("/admin/login/").content.decode()

    assert 'name="otp"' in html
    assert 'autocomplete="one-time-code"' in html
    assert "Two-factor code" in html


def test_staff_without_two_factor_log_in_as_before(staff):
    client = Client()

    response = admin_post(client, staff.email)

    assert response.status_code == 302
    assert client.get(USERS).status_code == 200
    assert admin_session(client).amr == ["pwd"]


def test_staff_with_two_factor_log_in_with_a_code(staff_on, clock):
    client = Client()

    response = admin_post(client, staff_on.user.email, otp=code(staff_on.secret, clock.now))

    assert response.status_code == 302
    assert client.get(USERS).status_code == 200
    assert admin_session(client).amr == ["pwd", "otp"]


def test_staff_with_two_factor_log_in_with_a_recovery_code(staff_on):
    client = Client()

    assert admin_post(client, staff_on.user.email, otp=staff_on.recovery_codes[0]).status_code == 302
    assert [event.detail for event in events(AuthEvent.Type.MFA_RECOVERY_CODE_USED)] == ["login (admin site), 9 left"]


def test_staff_with_two_factor_are_refused_without_a_code(staff_on):
    client = Client()

    response = admin_post(client, staff_on.user.email)

    assert response.status_code == 200
    assert "Enter the code of your authenticator app (or a recovery code)." in response.content.decode()
    assert client.get(USERS).status_code == 302
    assert not Session.objects.filter(user=staff_on.user, user_agent="").exists()


def test_staff_with_two_factor_are_refused_with_a_wrong_code(staff_on, clock):
    client = Client()

    response = admin_post(client, staff_on.user.email, otp=wrong_code(staff_on.secret, clock.now))

    assert response.status_code == 200
    assert "Invalid two-factor code." in response.content.decode()
    assert client.get(USERS).status_code == 302
    assert [event.detail for event in events(AuthEvent.Type.MFA_FAILED)] == ["login (admin site)"]


def test_a_replayed_code_is_refused_at_the_admin_login(staff_on, clock):
    current = code(staff_on.secret, clock.now)
    assert admin_post(Client(), staff_on.user.email, otp=current).status_code == 302

    response = admin_post(Client(), staff_on.user.email, otp=current)

    assert "Invalid two-factor code." in response.content.decode()


def test_a_wrong_password_at_the_admin_login_asks_for_no_code(staff_on, clock):
    response = admin_post(Client(), staff_on.user.email, "wrong password", otp=code(staff_on.secret, clock.now))

    assert "correct email address and password" in response.content.decode()
    # The code was not looked at: still good for a login.
    assert admin_post(Client(), staff_on.user.email, otp=code(staff_on.secret, clock.now)).status_code == 302


def test_non_staff_with_two_factor_are_told_they_are_not_staff(on, clock):
    response = admin_post(Client(), on.user.email, PASSWORD)

    assert "staff account" in response.content.decode()
    assert not events(AuthEvent.Type.MFA_FAILED)


def test_wrong_admin_codes_count_against_the_account(staff_on, clock, settings):
    settings.LOGIN_ACCOUNT_RATE = "2/hour"
    for _ in range(2):
        admin_post(Client(), staff_on.user.email, otp=wrong_code(staff_on.secret, clock.now))

    response = admin_post(Client(), staff_on.user.email, otp=code(staff_on.secret, clock.now))

    assert "Too many requests. Try again in" in response.content.decode()
    # The API's checks of the account are refused too.
    assert_error(login(APIClient(), staff_on.user.email, ADMIN_PASSWORD, otp=code(staff_on.secret, clock.now)), THROTTLED)


def test_staff_setting_their_own_password_keep_the_two_factor_amr(staff_on, clock):
    client = Client()
    admin_post(client, staff_on.user.email, otp=code(staff_on.secret, clock.now))
    new = "fresh staff choice 77"

    response = client.post(
        f"{USERS}{staff_on.user.pk}/password/", {"usable_password": "true", "password1": new, "password2": new}
    )

    assert response.status_code == 302
    assert admin_session(client).amr == ["pwd", "otp"]
    assert client.get(USERS).status_code == 200


# --- Across gunicorn workers: the 429 comes from a fresh process -----------------------------------------

# Make a user with two-factor on in the server's database, through the services, at the real time
# (the server's clock): print the secret and two recovery codes.
SEED = """
import django, pyotp
django.setup()
from django.utils import timezone
from accounts.models import User
from accounts.mfa import services as mfa
user = User.objects.create_user(email="{email}", password="{password}", name="Gus", confirmed_at=timezone.now())
secret = mfa.totp_enrollment_start(user=user, password="{password}").secret
codes = mfa.totp_enrollment_confirm(user=user, code=pyotp.TOTP(secret).now())
print(secret, codes[0], codes[1])
"""


def _call(url: str, method: str = "POST", data: dict | None = None, token: str | None = None) -> tuple[int, dict, dict]:
    body = urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if token:
        request.add_header("Authorization", token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    """The server under gunicorn (tests/core/test_ratelimit_gunicorn.py), at LOGIN_ACCOUNT_RATE 3/hour,
    with a user whose two-factor is on."""
    for base, access_log, env in serve(tmp_path_factory.mktemp("gunicorn-mfa"), LOGIN_ACCOUNT_RATE="3/hour"):
        email = f"gus-{uuid.uuid4().hex}@example.com"
        seeded = subprocess.run(
            [sys.executable, "-c", SEED.format(email=email, password=PASSWORD)],
            cwd=BASE_DIR, env=env, check=True, timeout=120, capture_output=True, text=True,
        )
        secret, first, second = seeded.stdout.split()[-3:]
        yield {"base": base, "access_log": access_log, "email": email, "secret": secret, "recovery_codes": [first, second]}


def test_wrong_codes_are_throttled_across_workers(gunicorn_server):
    server = gunicorn_server
    base, email = server["base"], server["email"]
    wrong = wrong_code(server["secret"], datetime.now(dt_timezone.utc))
    credentials = {"email": email, "password": PASSWORD}

    # A recovery code signs in (a success counts for nothing) ...
    status, body, _ = _call(f"{base}/api/authenticate", data={**credentials, "otp": server["recovery_codes"][0]})
    assert status == 200, body
    token = body["token"]
    # ... then three wrong codes, on three endpoints, each served by a fresh process ...
    answers = [
        _call(f"{base}/api/authenticate", data={**credentials, "otp": wrong}),
        _call(f"{base}/api/mfa/recovery-codes", data={"code": wrong}, token=token),
        _call(f"{base}/api/mfa/totp", "DELETE", data={"password": PASSWORD, "code": wrong}, token=token),
    ]
    assert [(status, body) for status, body, _ in answers] == [(401, INVALID_TWO_FACTOR_CODE)] * 3
    # ... and the account's checks are refused, the right recovery code included.
    status, body, headers = _call(f"{base}/api/authenticate", data={**credentials, "otp": server["recovery_codes"][1]})
    assert (status, body) == (429, THROTTLED)
    assert 1 <= int(headers["Retry-After"]) <= 3600
    status, body, _ = _call(f"{base}/api/mfa/recovery-codes", data={"code": wrong}, token=token)
    assert (status, body) == (429, THROTTLED)

    pids = logged_pids(server["access_log"], " /api/", expected=6)
    assert len(pids) == 6
    assert len(set(pids)) == 6, "each request was served by a fresh worker process"
