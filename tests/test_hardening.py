"""Attack tests: each way into an account that a security review found, shown closed.

Numbered as the review numbered them. Start-up refusals, CSRF, proxies, admin privileges and
literal settings have their own tests (test_settings, test_errors, test_addresses, test_admin,
test_env); the refresh race is in test_sessions, the cross-process limits in test_gunicorn_sessions.
"""

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher, PBKDF2PasswordHasher, make_password
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.audit.models import AuthEvent
from accounts.notices.models import QueuedEmail
from accounts.users.models import User
from accounts.passwords import credentials
from accounts.users.links import Purpose, validation_token_make
from tests.conftest import PASSWORD, admin_login, claims
from tests.support.contract import INVALID_CREDENTIALS, INVALID_PASSWORD, INVALID_TOKEN, THROTTLED, assert_error

NEW_PASSWORD = "a fresh staple battery"


def client_with(token: str, **extra) -> APIClient:
    client = APIClient(**extra)
    client.credentials(HTTP_AUTHORIZATION=token)
    return client


def login(email="ann@example.com", password=PASSWORD, address="127.0.0.1"):
    return APIClient(REMOTE_ADDR=address).post("/api/authenticate", {"email": email, "password": password}, format="json")


# --- 1. Tokens are never signed with SECRET_KEY ------------------------------------------------


def test_a_token_signed_with_secret_key_is_refused(user, token_for, settings):
    genuine = claims(token_for(user))
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(genuine).encode()).rstrip(b"=")
    signature = base64.urlsafe_b64encode(hmac.new(settings.SECRET_KEY.encode(), header + b"." + body, hashlib.sha256).digest())
    forged = b".".join([header, body, signature.rstrip(b"=")]).decode()

    assert client_with(forged).get("/api/user").status_code == 401


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
    assert_error(login(), THROTTLED)
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
    login(password="c", address="198.51.100.1")

    assert_error(stolen.delete("/api/authenticate", {"password": PASSWORD}, format="json"), THROTTLED)
    assert User.objects.filter(pk=user.pk).exists()


def test_a_password_reset_by_email_clears_the_account_limit(api_client, user, settings):
    settings.LOGIN_ACCOUNT_RATE = "2/hour"
    for n in range(2):
        login(password=f"guess {n}", address=f"198.51.100.{n}")
    assert_error(login(), THROTTLED)
    user.refresh_from_db()

    reset = validation_token_make(user=user, purpose=Purpose.RECOVERY)
    body = {"token": reset, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert api_client.post("/api/validate/recovery", body, format="json").status_code == 200

    assert login(password=NEW_PASSWORD).status_code == 200


def test_a_successful_check_counts_against_no_limit(user, settings):
    settings.LOGIN_ACCOUNT_RATE = "2/hour"
    settings.LOGIN_ADDRESS_RATE = "2/hour"

    for _ in range(5):
        assert login().status_code == 200


# --- 5. Distributed guessing; the admin login -------------------------------------------------


def test_an_ipv6_client_counts_per_64_for_the_address_limit(db, settings):
    settings.LOGIN_ADDRESS_RATE = "3/hour"
    for n in range(3):
        assert login(f"user{n}@example.com", "guess", address=f"2001:db8:1:2::{n + 1}").status_code == 401

    # Another address of the same /64 is the same client; another /64 is not.
    assert_error(login("user9@example.com", "guess", address="2001:db8:1:2:ffff::9"), THROTTLED)
    assert login("user9@example.com", "guess", address="2001:db8:1:3::1").status_code == 401


def admin_post_login(client, email, password):
    return client.post("/admin/login/?next=/admin/", {"username": email, "password": password})


def test_the_admin_login_is_limited_and_audited(user_factory, settings):
    settings.LOGIN_ACCOUNT_RATE = "3/hour"
    user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    browser = Client(REMOTE_ADDR="203.0.113.5")

    for n in range(3):
        page = admin_post_login(browser, "root@example.com", f"guess {n}")
        assert page.status_code == 200 and "Please enter the correct email" in page.content.decode()
    page = admin_post_login(browser, "root@example.com", PASSWORD)

    assert page.status_code == 200
    assert "Too many requests" in page.content.decode()
    failures = AuthEvent.objects.filter(type=AuthEvent.Type.LOGIN_FAILED, email="root@example.com")
    assert failures.count() == 3
    assert all("admin site" in event.detail and event.client_address == "203.0.113.5" for event in failures)
    # The API's login for that account is refused as well: one account, one limit.
    assert_error(login("root@example.com"), THROTTLED)


def test_a_good_admin_login_opens_a_session_and_is_audited(user_factory):
    staff = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    browser = Client(HTTP_USER_AGENT="StaffBrowser/3")

    response = admin_post_login(browser, "root@example.com", PASSWORD)

    assert response.status_code == 302
    assert browser.get("/admin/").status_code == 200
    session = staff.auth_sessions.get()
    assert (session.user_agent, session.amr) == ("StaffBrowser/3", ["pwd"])
    assert AuthEvent.objects.filter(type=AuthEvent.Type.LOGIN, user=staff, detail="admin site").exists()
    # Logging out ends it.
    browser.post("/admin/logout/")
    session.refresh_from_db()
    assert session.end_reason == "signed_out"


# --- 6. Email quota lockout -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("patch", "/api/authenticate"), ("put", "/api/validate/confirmation")],
    ids=["recovery", "resend"],
)
def test_unauthenticated_email_requests_are_limited_per_address(user_factory, settings, method, path):
    settings.EMAIL_REQUEST_RATE = "3/hour"
    user_factory(email="una@example.com", confirmed=False)
    attacker = APIClient(REMOTE_ADDR="192.0.2.66")

    answers = [getattr(attacker, method)(path, {"email": email}, format="json") for email in ("a@example.com", "b@example.com", "una@example.com")]
    assert all(answer.status_code != 429 for answer in answers)

    # Answered or refused, every request counted: the fourth is throttled, for any email.
    assert_error(getattr(attacker, method)(path, {"email": "una@example.com"}, format="json"), THROTTLED)
    # Another client is not.
    assert getattr(APIClient(REMOTE_ADDR="192.0.2.67"), method)(path, {"email": "nobody@example.com"}, format="json").status_code == 401


def test_a_strangers_recovery_requests_do_not_silence_the_email_change_notice(user, token_for, settings):
    settings.EMAIL_RATE = "5/hour"
    for n in range(5):
        APIClient(REMOTE_ADDR=f"192.0.2.{n}").patch("/api/authenticate", {"email": "ann@example.com"}, format="json")
    assert len(mail.outbox) == 5
    assert_error(APIClient().patch("/api/authenticate", {"email": "ann@example.com"}, format="json"), THROTTLED)

    response = client_with(token_for(user)).patch("/api/user", {"new_email": "ann.new@example.com", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    notices = [m for m in mail.outbox if m.subject == "Your email address was changed"]
    assert [m.to for m in notices] == [["ann@example.com"]]
    # The recovery links the stranger had sent still work for the owner, who holds the mailbox;
    # the email change killed them (item 7), so the owner would ask again from their new address.


def test_a_lost_notice_is_queued_and_sent_again(user, token_for, settings):
    settings.EMAIL_BACKEND = "tests.conftest.FailingEmailBackend"
    token = token_for(user)
    body = {"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}

    assert client_with(token).put("/api/authenticate", body, format="json").status_code == 200

    (queued,) = QueuedEmail.objects.all()
    assert (queued.kind, queued.to, queued.attempts) == ("password_changed", "ann@example.com", 1)
    assert "recover" not in queued.body.lower() or "/recover/" not in queued.body  # no link, no token

    # Still failing: retried later, with a longer wait.
    later = timezone.now() + timedelta(minutes=2)
    QueuedEmail.objects.update(next_attempt_at=timezone.now())
    call_command("send_queued_emails", stdout=_Out())
    queued.refresh_from_db()
    assert queued.attempts == 2 and queued.next_attempt_at > timezone.now()

    # The mail server is back: sent, and the queue is empty.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    QueuedEmail.objects.update(next_attempt_at=later - timedelta(minutes=5))
    out = _Out()
    call_command("send_queued_emails", stdout=out)
    assert out.text == "sent 1, failed 0 (will retry), given up 0\n"
    assert QueuedEmail.objects.count() == 0
    assert [m.subject for m in mail.outbox] == ["Your password was changed"]


def test_a_notice_that_cannot_be_sent_for_a_day_is_given_up(user, settings):
    settings.EMAIL_BACKEND = "tests.conftest.FailingEmailBackend"
    QueuedEmail.objects.create(kind="email_changed", to="old@example.com", subject="s", body="b", created_at=timezone.now() - timedelta(days=2))
    out = _Out()

    call_command("send_queued_emails", stdout=out)

    assert out.text == "sent 0, failed 0 (will retry), given up 1\n"
    assert QueuedEmail.objects.count() == 0


class _Out:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


# --- 7. A recovery token dies when the email changes or the user logs in ------------------------


def test_the_old_mailboxs_recovery_link_dies_when_the_email_changes(api_client, user, token_for):
    link = validation_token_make(user=user, purpose=Purpose.RECOVERY)
    assert client_with(token_for(user)).patch("/api/user", {"new_email": "ann.new@example.com", "password": PASSWORD}, format="json").status_code == 200

    response = api_client.post("/api/validate/recovery", {"token": link, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, format="json")

    assert_error(response, INVALID_TOKEN)
    assert User.objects.get(pk=user.pk).check_password(PASSWORD)


def test_a_recovery_link_dies_when_the_user_logs_in(api_client, user):
    link = validation_token_make(user=user, purpose=Purpose.RECOVERY)
    assert login().status_code == 200

    response = api_client.post("/api/validate/recovery", {"token": link, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, format="json")

    assert_error(response, INVALID_TOKEN)


# --- 9. Admin sessions end with every revocation ------------------------------------------------


@pytest.mark.parametrize("revocation", ["deactivation", "disabled", "password change", "recovery"])
def test_an_admin_browser_session_ends_with_every_revocation(user_factory, token_for, revocation):
    staff = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    browser = Client()
    admin_login(browser, staff)
    assert browser.get("/admin/").status_code == 200
    api = client_with(token_for(staff))

    if revocation == "deactivation":
        assert api.delete("/api/user").status_code == 200
    elif revocation == "disabled":
        User.objects.filter(pk=staff.pk).update(is_active=False)
    elif revocation == "password change":
        assert api.put("/api/authenticate", {"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, format="json").status_code == 200
    else:
        reset = validation_token_make(user=staff, purpose=Purpose.RECOVERY)
        assert APIClient().post("/api/validate/recovery", {"token": reset, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, format="json").status_code == 200

    response = browser.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


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
    login("warm-up@example.com", "x")  # the per-process timing hashes are made once, not counted


@pytest.mark.parametrize("email", ["ghost@example.com", "modern@example.com", "legacy@example.com", "nopass@example.com"])
def test_a_failed_login_runs_the_same_hashers_whatever_the_stored_hash(accounts_with_every_kind_of_hash, email):
    CountingMD5.calls = []

    assert_error(login(email, "wrong password"), INVALID_CREDENTIALS)

    assert sorted(CountingMD5.calls) == ["counting_md5", "pbkdf2_sha256"]


def test_without_legacy_hashes_a_failure_runs_the_preferred_hasher_only(user_factory, settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingMD5", f"{__name__}.CountingPBKDF2"]
    user_factory(email="modern@example.com")
    credentials.timing_hashes_forget()
    login("warm-up@example.com", "x")
    CountingMD5.calls = []

    login("modern@example.com", "wrong")
    login("ghost@example.com", "wrong")

    assert CountingMD5.calls == ["counting_md5", "counting_md5"]


def test_a_legacy_hash_is_upgraded_at_the_first_good_login(accounts_with_every_kind_of_hash):
    assert login("legacy@example.com").status_code == 200

    assert User.objects.get(email="legacy@example.com").password.startswith("counting_md5$")


# --- 13. Smaller ones ------------------------------------------------------------------------


def test_a_password_typed_into_the_email_field_stays_out_of_the_audit_trail(user):
    login("correct horse battery staple", "whatever")

    event = AuthEvent.objects.get(type=AuthEvent.Type.LOGIN_FAILED)
    assert event.email == ""
    assert "horse" not in json.dumps([event.email, event.detail, event.user_agent])


@pytest.mark.parametrize(
    ("stored", "typed"),
    [("A@Ébc.com", "a@ébc.com"), ("a@e\u0301bc.com", "A@ÉBC.COM"), ("ann@ÅBO.fi", "ANN@åbo.FI")],
    ids=["accented-capital", "decomposed", "nordic-domain"],
)
def test_one_address_in_any_case_or_encoding_is_one_account(api_client, user_factory, stored, typed):
    user_factory(email=stored)

    register = api_client.post("/api/user", {"email": typed, "name": "Imposter", "password": PASSWORD, "confirm": PASSWORD}, format="json")

    assert register.status_code == 401
    assert register.json() == {"status": 401, "message": "A user with that email already exists"}
    assert login(typed).status_code == 200


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


def test_no_answer_of_the_api_may_be_cached(user, token_for):
    # A token, a user's details or an error about them must not stay in a browser's or a
    # proxy's cache (RFC 6749, 5.1: token answers are no-store): every API answer says so.
    token = token_for(user)
    answers = {
        "login": login(),
        "refresh": client_with(token).get("/api/authenticate"),
        "user": client_with(token).get("/api/user"),
        "sessions": client_with(token).get("/api/sessions"),
        "refused token": client_with("not a token").get("/api/user"),
        "bad login": login(password="wrong password"),
        "bad confirmation link": APIClient().post("/api/validate/confirmation", {"token": "nope"}, format="json"),
        # Answered outside the API's views: Django's 404 and the body-size limit.
        "unknown path": client_with(token).get("/api/nope"),
        "body too large": APIClient().post("/api/authenticate", "x" * 70_000, content_type="application/json"),
    }

    for name, response in answers.items():
        assert response.status_code < 500, name
        assert response["Cache-Control"] == "no-store", name
    assert answers["login"].status_code == 200 and "token" in answers["login"].json()
    assert answers["refresh"].status_code == 200 and "token" in answers["refresh"].json()


def test_the_published_keys_keep_their_own_cache_headers(db, settings):
    response = APIClient().get("/.well-known/jwks.json")

    assert response["Cache-Control"] == f"public, max-age={settings.JWKS_MAX_AGE}"
