"""accounts/passwords/credentials.py: a password checked for a signed-in user counts against the
account's limit, on every endpoint that asks for it; a failed login costs the same hashing
whatever hash the account holds, and a legacy hash is upgraded at the first good login."""

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher, PBKDF2PasswordHasher, make_password
from rest_framework.test import APIClient

from accounts.audit.models import AuthEvent
from accounts.passwords import credentials
from accounts.users.links import Purpose, validation_token_make
from accounts.users.models import User
from tests.conftest import PASSWORD
from tests.support.api import client_with, login
from tests.support.contract import INVALID_CREDENTIALS, INVALID_PASSWORD, THROTTLED, assert_error


NEW_PASSWORD = "a fresh staple battery"


# --- 3. Password guessing with a stolen token ----------------------------------------------------

GUESSES = {
    "change-password": ("put", "/api/authenticate", lambda pw: {"password": pw, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, INVALID_CREDENTIALS),
    "delete-account": ("delete", "/api/authenticate", lambda pw: {"password": pw}, INVALID_CREDENTIALS),
    "change-email": ("patch", "/api/user", lambda pw: {"new_email": "thief@example.com", "password": pw}, INVALID_PASSWORD),
}


@pytest.mark.parametrize("endpoint", GUESSES)
def test_password_guesses_with_a_stolen_token_are_limited_per_account(user, token_for, settings, endpoint):
    settings.LOGIN_ACCOUNT_RATE = "5/hour"
    method, path, body, wrong = GUESSES[endpoint]
    stolen = client_with(token_for(user))

    answers = [getattr(stolen, method)(path, body(f"guess {n}"), format="json") for n in range(5)]
    for answer in answers:
        assert_error(answer, wrong)

    # At the limit the right password is refused too, on this endpoint and on every other one.
    assert_error(getattr(stolen, method)(path, body(PASSWORD), format="json"), THROTTLED)
    assert_error(login(APIClient()), THROTTLED)
    user.refresh_from_db()
    assert (user.email, user.check_password(PASSWORD)) == ("ann@example.com", True)
    # Every failure is in the audit trail.
    failed = AuthEvent.objects.filter(type=AuthEvent.Type.PASSWORD_CHECK_FAILED, user=user)
    assert failed.count() == 5


def test_failures_on_different_endpoints_add_up(user, token_for, settings):
    settings.LOGIN_ACCOUNT_RATE = "3/hour"
    stolen = client_with(token_for(user))

    stolen.delete("/api/authenticate", {"password": "a"}, format="json")
    stolen.patch("/api/user", {"new_email": "x@example.com", "password": "b"}, format="json")
    login(APIClient(REMOTE_ADDR="198.51.100.1"), password="c")

    assert_error(stolen.delete("/api/authenticate", {"password": PASSWORD}, format="json"), THROTTLED)
    assert User.objects.filter(pk=user.pk).exists()


def test_a_password_reset_by_email_clears_the_account_limit(api_client, user, settings):
    settings.LOGIN_ACCOUNT_RATE = "2/hour"
    for n in range(2):
        login(APIClient(REMOTE_ADDR=f"198.51.100.{n}"), password=f"guess {n}")
    assert_error(login(APIClient()), THROTTLED)
    user.refresh_from_db()

    reset = validation_token_make(user=user, purpose=Purpose.RECOVERY)
    body = {"token": reset, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert api_client.post("/api/validate/recovery", body, format="json").status_code == 200

    assert login(APIClient(), password=NEW_PASSWORD).status_code == 200


def test_a_successful_check_counts_against_no_limit(user, settings):
    settings.LOGIN_ACCOUNT_RATE = "2/hour"
    settings.LOGIN_ADDRESS_RATE = "2/hour"

    for _ in range(5):
        assert login(APIClient()).status_code == 200


# --- 10. Equal timing whatever hasher holds the hash ---------------------------------------------


class CountingMD5(MD5PasswordHasher):
    """A fast stand-in for Argon2id (the preferred hasher), counting its hashing."""

    algorithm = "counting_md5"
    calls: list[str] = []

    def encode(self, password, salt):
        CountingMD5.calls.append(self.algorithm)
        return super().encode(password, salt)


class CountingPBKDF2(PBKDF2PasswordHasher):
    """A legacy hasher, as cheap as tests need, counting its hashing."""

    iterations = 10

    def encode(self, password, salt, iterations=None):
        CountingMD5.calls.append(self.algorithm)
        return super().encode(password, salt, iterations)


@pytest.fixture
def accounts_with_every_kind_of_hash(user_factory, settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingMD5", f"{__name__}.CountingPBKDF2"]
    user_factory(email="modern@example.com")
    legacy = user_factory(email="legacy@example.com")
    User.objects.filter(pk=legacy.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))
    nopass = user_factory(email="nopass@example.com")
    nopass.set_unusable_password()
    nopass.save()
    credentials.timing_hashes_forget()
    login(APIClient(), "warm-up@example.com", "x")  # the per-process timing hashes are made once, not counted


@pytest.mark.parametrize("email", ["ghost@example.com", "modern@example.com", "legacy@example.com", "nopass@example.com"])
def test_a_failed_login_runs_the_same_hashers_whatever_the_stored_hash(accounts_with_every_kind_of_hash, email):
    CountingMD5.calls = []

    assert_error(login(APIClient(), email, "wrong password"), INVALID_CREDENTIALS)

    assert sorted(CountingMD5.calls) == ["counting_md5", "pbkdf2_sha256"]


def test_without_legacy_hashes_a_failure_runs_the_preferred_hasher_only(user_factory, settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingMD5", f"{__name__}.CountingPBKDF2"]
    user_factory(email="modern@example.com")
    credentials.timing_hashes_forget()
    login(APIClient(), "warm-up@example.com", "x")
    CountingMD5.calls = []

    login(APIClient(), "modern@example.com", "wrong")
    login(APIClient(), "ghost@example.com", "wrong")

    assert CountingMD5.calls == ["counting_md5", "counting_md5"]


def test_a_legacy_hash_is_upgraded_at_the_first_good_login(accounts_with_every_kind_of_hash):
    assert login(APIClient(), "legacy@example.com").status_code == 200

    assert User.objects.get(email="legacy@example.com").password.startswith("counting_md5$")


# --- A hasher's error is a failed check, counted --------------------------------------------------


class BrokenHasher(MD5PasswordHasher):
    """A legacy hasher whose check raises, as bcrypt does for a salt with bad padding."""

    algorithm = "broken"

    def verify(self, password, encoded):
        raise ValueError("Invalid salt")


@pytest.fixture
def broken_account(user_factory, settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingMD5", f"{__name__}.BrokenHasher"]
    settings.LOGIN_ACCOUNT_RATE = "3/hour"
    broken = user_factory(email="broken@example.com")
    User.objects.filter(pk=broken.pk).update(password="broken$salt$0123456789abcdef")
    credentials.timing_hashes_forget()
    return broken


def test_a_hasher_error_is_a_failed_login_counted_against_the_limit(broken_account, user_factory):
    user_factory(email="modern@example.com")
    for guess in range(3):
        response = login(APIClient(REMOTE_ADDR=f"198.51.100.{guess}"), "broken@example.com", PASSWORD)
        assert_error(response, INVALID_CREDENTIALS)
    assert_error(login(APIClient(REMOTE_ADDR="198.51.100.9"), "broken@example.com", PASSWORD), THROTTLED)
    # Other accounts' failures neither fail nor run the broken hasher (their timing hash is the server's).
    assert_error(login(APIClient(), "modern@example.com", "wrong"), INVALID_CREDENTIALS)
    assert_error(login(APIClient(), "ghost@example.com", "wrong"), INVALID_CREDENTIALS)


def test_a_hasher_error_is_a_failed_password_check_counted(broken_account, token_for):
    stolen = client_with(token_for(broken_account))
    for guess in range(3):
        assert_error(stolen.delete("/api/authenticate", {"password": f"guess {guess}"}, format="json"), INVALID_CREDENTIALS)
    assert_error(stolen.delete("/api/authenticate", {"password": PASSWORD}, format="json"), THROTTLED)
    assert AuthEvent.objects.filter(type=AuthEvent.Type.PASSWORD_CHECK_FAILED, user=broken_account).count() == 3


def test_a_failure_is_counted_before_the_equal_timing(user, settings, monkeypatch):
    """The timing hashes (and anything after the count) failing cannot skip the count."""
    settings.LOGIN_ACCOUNT_RATE = "2/hour"

    def broken():
        raise RuntimeError("the password column cannot be read")

    monkeypatch.setattr(credentials, "_timing_hashes", broken)
    for guess in range(2):
        assert_error(login(APIClient(REMOTE_ADDR=f"198.51.100.{guess}"), password=f"guess {guess}"), INVALID_CREDENTIALS)

    assert_error(login(APIClient(REMOTE_ADDR="198.51.100.9")), THROTTLED)
