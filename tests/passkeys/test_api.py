"""Passkeys over the API: /api/passkeys(/options, /<id>) and /api/authenticate/passkey(/options).

A software authenticator (tests/support/authenticator.py) stands in for the browser and the
passkey, so every refusal of the issue's list can be made on purpose: another origin or RP ID,
no user verification, a challenge expired, reused or of the other ceremony, a replayed assertion,
a counter that went backwards, an unknown or removed credential. Each answers 401 `Invalid
passkey`, is recorded and counts in the sign-in limits. Chromium's own authenticator is driven in
tests/passkeys/test_browser.py.
"""

import base64
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.audit.models import AuthEvent
from accounts.mfa.models import TOTPDevice
from accounts.passkeys import services as passkeys
from accounts.passkeys.models import Passkey
from accounts.sessions.models import Session
from tests.conftest import PASSWORD, claims
from tests.support.authenticator import SoftPasskey, b64url

INVALID_PASSKEY = {"status": 401, "message": "Invalid passkey"}
INVALID_CREDENTIALS = {"status": 401, "message": "Invalid email or password"}
NOT_FOUND = {"status": 404, "message": "Not found"}


@pytest.fixture
def client(auth_client) -> APIClient:
    return auth_client


def registered(client, authenticator: SoftPasskey | None = None, *, name: str = "", **answer) -> tuple[SoftPasskey, dict]:
    """Add a passkey through the API; return the authenticator and the answer's passkey."""
    authenticator = authenticator or SoftPasskey()
    options = client.post("/api/passkeys/options", {"password": PASSWORD}, format="json")
    assert options.status_code == 200, options.json()
    credential = authenticator.create(options.json()["options"], **answer)
    answered = client.post("/api/passkeys", {"credential": credential, "name": name}, format="json")
    assert answered.status_code == 200, answered.json()
    return authenticator, answered.json()["passkey"]


def sign_in_options(email: str = "") -> dict:
    answer = APIClient().post("/api/authenticate/passkey/options", {"email": email} if email else {}, format="json")
    assert answer.status_code == 200, answer.json()
    return answer.json()


def passkey_login(authenticator: SoftPasskey, started: dict | None = None, **answer):
    started = started or sign_in_options()
    credential = authenticator.get(started["options"], **answer)
    return APIClient().post(
        "/api/authenticate/passkey", {"ceremony": started["ceremony"], "credential": credential}, format="json"
    )


# --- adding one ----------------------------------------------------------------------------------


def test_the_creation_options_ask_for_a_resident_key_with_user_verification_and_no_attestation(client, user):
    answer = client.post("/api/passkeys/options", {"password": PASSWORD}, format="json")

    assert answer.status_code == 200
    options = answer.json()["options"]
    assert options["rp"] == {"id": "localhost", "name": "Auth server"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none"
    assert options["excludeCredentials"] == []
    assert options["user"]["name"] == user.email
    handle = base64.urlsafe_b64decode(options["user"]["id"] + "==")
    # Random: 32 bytes that are neither the database id nor the email.
    # (Not `b"@" not in handle`: 32 random bytes hold an "@" one time in eight.)
    assert len(handle) == 32 and handle not in (str(user.pk).encode(), user.pk.to_bytes(8, "big")) and user.email.encode() not in handle
    assert len(base64.urlsafe_b64decode(options["challenge"] + "==")) == 32
    assert answer["Cache-Control"] == "no-store"


def test_a_passkey_is_added_listed_renamed_and_the_user_is_emailed(client, user):
    authenticator, passkey = registered(client, name="  My   phone ")

    assert passkey["name"] == "My phone"
    assert set(passkey) == {"id", "name", "created_at", "last_used_at", "backed_up", "transports"}
    assert passkey["last_used_at"] is None and passkey["backed_up"] is False
    assert passkey["transports"] == ["hybrid", "internal"]
    stored = Passkey.objects.get()
    assert stored.user == user and stored.credential_id == authenticator.id
    assert AuthEvent.objects.filter(type=AuthEvent.Type.PASSKEY_ADDED, user=user, detail="My phone").count() == 1
    assert [message.subject for message in mail.outbox] == ["A passkey was added to your account"]
    assert '"My phone"' in mail.outbox[0].body

    _, second = registered(client, backed_up=True)
    listed = client.get("/api/passkeys").json()["passkeys"]
    assert [entry["id"] for entry in listed] == [second["id"], passkey["id"]]
    assert second["name"] == "Passkey 2" and second["backed_up"] is True

    renamed = client.patch(f"/api/passkeys/{passkey['id']}", {"name": "Laptop"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["passkey"]["name"] == "Laptop"


def test_the_second_passkey_shares_the_users_handle_and_excludes_the_first(client, user):
    first, _ = registered(client)
    options = client.post("/api/passkeys/options", {"password": PASSWORD}, format="json").json()["options"]

    assert options["user"]["id"] == b64url(first.user_handle)
    assert [entry["id"] for entry in options["excludeCredentials"]] == [first.id]


def test_adding_a_passkey_takes_the_password_and_a_wrong_one_counts(client, user, settings):
    settings.LOGIN_ACCOUNT_RATE = "2/hour"
    for _ in range(2):
        refused = client.post("/api/passkeys/options", {"password": "wrong password"}, format="json")
        assert (refused.status_code, refused.json()) == (401, INVALID_CREDENTIALS)
    throttled = client.post("/api/passkeys/options", {"password": PASSWORD}, format="json")
    assert throttled.status_code == 429
    assert AuthEvent.objects.filter(type=AuthEvent.Type.PASSWORD_CHECK_FAILED, detail="passkey registration").count() == 2


def test_a_registration_without_pending_options_or_answered_twice_is_refused(client, user):
    authenticator = SoftPasskey()
    options = client.post("/api/passkeys/options", {"password": PASSWORD}, format="json").json()["options"]
    credential = authenticator.create(options)
    assert client.post("/api/passkeys", {"credential": credential}, format="json").status_code == 200

    again = client.post("/api/passkeys", {"credential": SoftPasskey().create(options)}, format="json")
    assert (again.status_code, again.json()) == (401, INVALID_PASSKEY)
    assert Passkey.objects.count() == 1


@pytest.mark.parametrize(
    "answer",
    [
        {"origin": "https://evil.example"},
        {"rp_id": "evil.example"},
        {"verified": False},
        {"type_": "webauthn.get"},
        {"challenge": b64url(b"x" * 32)},
    ],
    ids=["origin", "rp-id", "no-user-verification", "other-ceremony", "other-challenge"],
)
def test_a_registration_that_fails_verification_is_refused_and_recorded(client, user, answer):
    options = client.post("/api/passkeys/options", {"password": PASSWORD}, format="json").json()["options"]
    credential = SoftPasskey().create(options, **answer)

    refused = client.post("/api/passkeys", {"credential": credential}, format="json")

    assert (refused.status_code, refused.json()) == (401, INVALID_PASSKEY)
    assert Passkey.objects.count() == 0
    assert AuthEvent.objects.filter(type=AuthEvent.Type.PASSKEY_FAILED, user=user).count() == 1


@pytest.mark.parametrize("credential", ["not json", "[]", 12, {"id": 3}, {"response": "x"}])
def test_a_malformed_credential_is_refused_without_a_500(client, user, credential):
    client.post("/api/passkeys/options", {"password": PASSWORD}, format="json")
    refused = client.post("/api/passkeys", {"credential": credential}, format="json")
    assert refused.status_code in (400, 401), refused.json()
    assert refused.json()["status"] == refused.status_code


def test_registration_options_expire_after_five_minutes(client, user, monkeypatch):
    options = client.post("/api/passkeys/options", {"password": PASSWORD}, format="json").json()["options"]
    cache.delete(f"passkeys:registration:{user.pk}")  # what the cache's 5-minute timeout does

    refused = client.post("/api/passkeys", {"credential": SoftPasskey().create(options)}, format="json")
    assert (refused.status_code, refused.json()) == (401, INVALID_PASSKEY)


def test_removal_takes_the_password_emails_the_user_and_the_removed_passkey_no_longer_signs_in(client, user):
    authenticator, passkey = registered(client)
    mail.outbox.clear()

    wrong = client.delete(f"/api/passkeys/{passkey['id']}", {"password": "nope"}, format="json")
    assert (wrong.status_code, wrong.json()) == (401, INVALID_CREDENTIALS)
    removed = client.delete(f"/api/passkeys/{passkey['id']}", {"password": PASSWORD}, format="json")

    assert (removed.status_code, removed.json()) == (200, {"message": "Passkey removed"})
    assert not Passkey.objects.exists()
    assert [message.subject for message in mail.outbox] == ["A passkey was removed from your account"]
    assert AuthEvent.objects.filter(type=AuthEvent.Type.PASSKEY_REMOVED, user=user).count() == 1
    refused = passkey_login(authenticator)
    assert (refused.status_code, refused.json()) == (401, INVALID_PASSKEY)


def test_another_users_passkey_is_not_found(client, user, user_factory, token_for):
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=token_for(user_factory()))
    _, theirs = registered(other)

    for answer in (
        client.patch(f"/api/passkeys/{theirs['id']}", {"name": "mine"}, format="json"),
        client.delete(f"/api/passkeys/{theirs['id']}", {"password": PASSWORD}, format="json"),
        client.delete("/api/passkeys/999999", {"password": PASSWORD}, format="json"),
    ):
        assert (answer.status_code, answer.json()) == (404, NOT_FOUND)
    assert Passkey.objects.get().name == theirs["name"]


def test_the_passkey_endpoints_need_a_token():
    for method, path in (("post", "/api/passkeys/options"), ("get", "/api/passkeys"), ("post", "/api/passkeys"), ("patch", "/api/passkeys/1"), ("delete", "/api/passkeys/1")):
        answer = getattr(APIClient(), method)(path, {}, format="json")
        assert answer.status_code == 401, (method, path)


# --- signing in ----------------------------------------------------------------------------------


def test_a_passkey_signs_in_as_a_password_login_does(client, user):
    authenticator, passkey = registered(client)
    started = sign_in_options()
    assert started["options"]["allowCredentials"] == []
    assert started["options"]["userVerification"] == "required"
    assert started["options"]["rpId"] == "localhost"

    answer = passkey_login(authenticator, started)

    assert answer.status_code == 200, answer.json()
    token = answer.json()["token"]
    assert set(answer.json()) == {"token"}
    assert claims(token)["amr"] == ["hwk", "user", "mfa"]
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert me.get("/api/user").json()["email"] == user.email
    stored = Passkey.objects.get()
    assert stored.sign_count == 1 and stored.last_used_at is not None
    assert client.get("/api/passkeys").json()["passkeys"][0]["last_used_at"] is not None
    assert AuthEvent.objects.filter(type=AuthEvent.Type.LOGIN, user=user, detail="passkey").count() == 1


def test_options_for_an_email_name_its_passkeys_and_an_unknown_email_gets_the_same_shape(client, user):
    authenticator, _ = registered(client)

    known = sign_in_options(user.email)["options"]
    unknown = sign_in_options("nobody@example.com")["options"]

    assert [entry["id"] for entry in known["allowCredentials"]] == [authenticator.id]
    # A made-up credential, the same at each ask: the answer does not tell that nobody is there.
    assert len(unknown["allowCredentials"]) == 1 and set(unknown) == set(known)
    assert unknown["allowCredentials"] == sign_in_options("Nobody@Example.com")["options"]["allowCredentials"]
    assert unknown["allowCredentials"][0]["transports"] == ["hybrid", "internal"]
    assert passkey_login(authenticator, sign_in_options(user.email)).status_code == 200


def test_remember_opens_a_long_session(client, user, settings):
    authenticator, _ = registered(client)
    started = sign_in_options()
    credential = authenticator.get(started["options"])
    answer = APIClient().post(
        "/api/authenticate/passkey", {"ceremony": started["ceremony"], "credential": credential, "remember": True}, format="json"
    )
    session = Session.objects.filter(user=user).latest("created_at")
    assert answer.status_code == 200 and session.remember is True


def test_a_user_with_two_factor_on_signs_in_with_a_passkey_and_no_code(client, user):
    TOTPDevice.objects.create(user=user, secret_encrypted=TOTPDevice.secret_encrypt("JBSWY3DPEHPK3PXP" * 2), confirmed_at=user.date_joined)
    authenticator, _ = registered(client)

    answer = passkey_login(authenticator)

    assert answer.status_code == 200, answer.json()
    assert claims(answer.json()["token"])["amr"] == ["hwk", "user", "mfa"]


@pytest.mark.parametrize(
    "answer",
    [
        {"origin": "https://evil.example"},
        {"rp_id": "evil.example"},
        {"verified": False},
        {"type_": "webauthn.create"},
        {"challenge": b64url(b"y" * 32)},
        {"user_handle": b"someone else"},
    ],
    ids=["origin", "rp-id", "no-user-verification", "other-ceremony-type", "other-challenge", "other-user-handle"],
)
def test_a_sign_in_that_fails_verification_is_refused_recorded_and_counted(client, user, answer, settings):
    authenticator, _ = registered(client)

    refused = passkey_login(authenticator, **answer)

    assert (refused.status_code, refused.json()) == (401, INVALID_PASSKEY)
    assert refused["WWW-Authenticate"] == 'Bearer realm="api"'
    event = AuthEvent.objects.get(type=AuthEvent.Type.PASSKEY_FAILED)
    assert event.user == user and event.detail
    assert not Session.objects.filter(user=user).exclude(amr=["pwd"]).exists()


def test_an_unknown_credential_is_refused(client, user):
    refused = passkey_login(SoftPasskey(user_handle=b"h" * 32))
    assert (refused.status_code, refused.json()) == (401, INVALID_PASSKEY)
    assert AuthEvent.objects.get(type=AuthEvent.Type.PASSKEY_FAILED).detail == "unknown credential"


def test_a_replayed_assertion_and_a_reused_ceremony_are_refused(client, user):
    authenticator, _ = registered(client)
    started = sign_in_options()
    credential = authenticator.get(started["options"])
    body = {"ceremony": started["ceremony"], "credential": credential}
    assert APIClient().post("/api/authenticate/passkey", body, format="json").status_code == 200

    replayed = APIClient().post("/api/authenticate/passkey", body, format="json")
    fresh = authenticator.get(started["options"])
    reused = APIClient().post("/api/authenticate/passkey", {**body, "credential": fresh}, format="json")

    for answer in (replayed, reused):
        assert (answer.status_code, answer.json()) == (401, INVALID_PASSKEY)
    assert list(AuthEvent.objects.filter(type=AuthEvent.Type.PASSKEY_FAILED).values_list("detail", flat=True)) == [
        "the ceremony was used already"
    ] * 2


@pytest.mark.parametrize("ceremony", ["", "garbage", "gAAAAAB" + "A" * 100])
def test_a_ceremony_that_is_not_ours_is_refused(client, user, ceremony):
    authenticator, _ = registered(client)
    started = sign_in_options()
    credential = authenticator.get(started["options"])
    answer = APIClient().post("/api/authenticate/passkey", {"ceremony": ceremony, "credential": credential}, format="json")
    assert answer.status_code in (400, 401)
    if answer.status_code == 401:
        assert answer.json() == INVALID_PASSKEY


def test_an_expired_ceremony_is_refused(client, user, monkeypatch):
    authenticator, _ = registered(client)
    started = sign_in_options()
    credential = authenticator.get(started["options"])
    import time as real_time

    later = real_time.time() + 301
    monkeypatch.setattr("accounts.passkeys.services.time.time", lambda: later)

    answer = APIClient().post("/api/authenticate/passkey", {"ceremony": started["ceremony"], "credential": credential}, format="json")
    assert (answer.status_code, answer.json()) == (401, INVALID_PASSKEY)
    assert AuthEvent.objects.get(type=AuthEvent.Type.PASSKEY_FAILED).detail == "the ceremony has expired"


def test_a_counter_that_goes_backwards_is_refused_and_flags_the_passkey(client, user):
    authenticator, _ = registered(client)
    assert passkey_login(authenticator, counter=5).status_code == 200

    cloned = passkey_login(authenticator, counter=3)
    # Flagged, the passkey signs in no more, whatever counter comes next: which copy is the
    # user's cannot be told. The user removes it (or staff do) and adds the device again.
    later = passkey_login(authenticator, counter=9)

    for answer in (cloned, later):
        assert (answer.status_code, answer.json()) == (401, INVALID_PASSKEY)
    stored = Passkey.objects.get()
    assert stored.cloned_at is not None and stored.sign_count == 5
    assert AuthEvent.objects.filter(type=AuthEvent.Type.PASSKEY_CLONED, user=user).count() == 1
    assert AuthEvent.objects.filter(type=AuthEvent.Type.PASSKEY_FAILED).latest("created_at").detail.startswith(
        "the passkey is flagged"
    )


def test_a_counter_that_does_not_move_is_a_clone_too(client, user):
    authenticator, _ = registered(client)
    assert passkey_login(authenticator, counter=5).status_code == 200
    assert passkey_login(authenticator, counter=5).status_code == 401
    assert Passkey.objects.get().cloned_at is not None


def test_a_discoverable_sign_in_needs_the_user_handle(client, user):
    authenticator, _ = registered(client)
    started = sign_in_options()
    credential = authenticator.get(started["options"])
    credential["response"]["userHandle"] = None
    refused = APIClient().post("/api/authenticate/passkey", {"ceremony": started["ceremony"], "credential": credential}, format="json")
    assert (refused.status_code, refused.json()) == (401, INVALID_PASSKEY)
    # With an email, the options named the credentials: a security key may send no handle.
    started = sign_in_options(user.email)
    credential = authenticator.get(started["options"])
    credential["response"]["userHandle"] = None
    answer = APIClient().post("/api/authenticate/passkey", {"ceremony": started["ceremony"], "credential": credential}, format="json")
    assert answer.status_code == 200, answer.json()


def test_a_counter_that_stays_at_zero_is_fine(client, user):
    authenticator, _ = registered(client)
    for _ in range(3):
        assert passkey_login(authenticator, counter=0).status_code == 200
    assert Passkey.objects.get().cloned_at is None


def test_the_account_checks_run_in_the_password_logins_order(client, user):
    authenticator, _ = registered(client)

    user.confirmed_at = None
    user.save(update_fields=["confirmed_at"])
    unconfirmed = passkey_login(authenticator)
    user.confirmed_at = user.date_joined
    user.is_active = False
    user.save(update_fields=["confirmed_at", "is_active"])
    disabled = passkey_login(authenticator)

    assert (unconfirmed.status_code, unconfirmed.json()["message"]) == (400, "Please confirm your account")
    assert (disabled.status_code, disabled.json()["message"]) == (403, "Account disabled")


def test_a_deactivated_account_is_reactivated_by_a_passkey_sign_in(client, user):
    authenticator, _ = registered(client)
    user.deactivated_at = user.date_joined
    user.save(update_fields=["deactivated_at"])

    assert passkey_login(authenticator).status_code == 200
    user.refresh_from_db()
    assert user.deactivated_at is None
    assert AuthEvent.objects.filter(type=AuthEvent.Type.REACTIVATE, user=user).count() == 1


def test_failures_count_in_the_address_and_account_limits(client, user, settings):
    authenticator, _ = registered(client)
    settings.LOGIN_ACCOUNT_RATE = "3/hour"
    for _ in range(3):
        assert passkey_login(authenticator, verified=False).status_code == 401

    throttled = passkey_login(authenticator)
    assert throttled.status_code == 429
    # The password login of the account is at its limit too: one count for the account.
    password = APIClient().post("/api/authenticate", {"email": user.email, "password": PASSWORD}, format="json")
    assert password.status_code == 429


def test_failures_count_in_the_address_limit_for_unknown_credentials(db, settings):
    settings.LOGIN_ADDRESS_RATE = "2/hour"
    for _ in range(2):
        assert passkey_login(SoftPasskey(user_handle=b"h")).status_code == 401
    assert passkey_login(SoftPasskey(user_handle=b"h")).status_code == 429


def test_sign_in_options_write_nothing(db):
    with CaptureQueriesContext(connection) as queries:
        sign_in_options()
        sign_in_options("ann@example.com")
    assert not [query for query in queries if not query["sql"].lstrip().upper().startswith("SELECT")]


@pytest.mark.parametrize("body", [{"credential": {}}, {"ceremony": "x"}, {"ceremony": 3, "credential": {}}, {"ceremony": "x", "credential": "{"}])
def test_a_sign_in_without_the_fields_is_a_400(db, body):
    answer = APIClient().post("/api/authenticate/passkey", body, format="json")
    assert answer.status_code == 400 and answer.json()["message"].startswith("Invalid input.")


def test_a_form_body_carries_the_credential_as_json_text(client, user):
    authenticator, _ = registered(client)
    started = sign_in_options()
    credential = authenticator.get(started["options"])
    answer = APIClient().post("/api/authenticate/passkey", {"ceremony": started["ceremony"], "credential": json.dumps(credential)})
    assert answer.status_code == 200, answer.json()
