"""Attacks on passkeys: what an attacker may send to /api/passkeys, /api/authenticate/passkey,
POST /signin/passkey and /admin/login/passkey/, forged with the software authenticator
(tests/support/authenticator.py). Each test's docstring says the attack; most are refused as they
should be (kept as regression tests), the others were fixed with the test that showed them.
tests/passkeys/test_api.py holds the feature's own behaviour; nothing here repeats it.
"""

import json
import threading

import pytest
from django.contrib.auth import SESSION_KEY
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.audit.models import AuthEvent
from accounts.mfa.models import TOTPDevice
from accounts.passkeys.models import Passkey
from accounts.sessions.models import Session
from core import vault
from tests.conftest import PASSWORD, PROJECT, run
from tests.passkeys.test_api import INVALID_PASSKEY, passkey_login, registered, sign_in_options
from tests.support.authenticator import SoftPasskey

CREDENTIAL_INVALID = {
    "status": 400,
    "message": "Invalid input. credential: Give the credential as a JSON object (credential.toJSON()).",
    "errors": {"credential": ["Give the credential as a JSON object (credential.toJSON())."]},
}
# JSON text nested 5,000 deep: 10 KB, well under every size limit.
DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture
def client(auth_client) -> APIClient:
    return auth_client


def creation_options(client) -> dict:
    answer = client.post("/api/passkeys/options", {"password": PASSWORD}, format="json")
    assert answer.status_code == 200, answer.json()
    return answer.json()["options"]


# --- malformed input -----------------------------------------------------------------------------


def test_a_credential_nested_too_deeply_is_a_400_at_the_api(client, user):
    """Attack: the credential as JSON text (a form body, or a string in a JSON body) nested 5,000
    deep: json.loads raises RecursionError, which is not a ValueError, so it was a 500."""
    creation_options(client)
    for answer in (
        client.post("/api/passkeys", {"credential": DEEP}, format="json"),
        client.post("/api/passkeys", {"credential": DEEP}),
        APIClient().post("/api/authenticate/passkey", {"ceremony": "x", "credential": DEEP}, format="json"),
        APIClient().post("/api/authenticate/passkey", {"ceremony": "x", "credential": DEEP}),
    ):
        assert (answer.status_code, answer.json()) == (400, CREDENTIAL_INVALID)


def test_a_credential_nested_too_deeply_is_refused_by_the_pages(db):
    """Attack: the same deep JSON posted to the sign-in page's and the admin's passkey forms."""
    page = Client().post("/signin/passkey", {"ceremony": "x", "credential": DEEP})
    admin = Client().post("/admin/login/passkey/", {"ceremony": "x", "credential": DEEP})

    assert page.status_code == 400 and "Invalid passkey" in page.content.decode()
    assert admin.status_code == 401 and "That passkey did not sign you in." in admin.content.decode()


@pytest.mark.parametrize("length", [1024, 5000])
def test_a_credential_id_longer_than_1023_bytes_is_refused_and_nothing_is_stored(client, user, length):
    """Attack: a forged attestation whose credential id is longer than WebAuthn allows (1023 bytes,
    Level 3 §7.1 step 24): 5,000 bytes is 6,667 base64url characters, more than the column holds
    (1,366), a DataError (500) on PostgreSQL, and stored as is on SQLite."""
    options = creation_options(client)
    credential = SoftPasskey(credential_id=b"x" * length).create(options)

    refused = client.post("/api/passkeys", {"credential": credential}, format="json")

    assert (refused.status_code, refused.json()) == (401, INVALID_PASSKEY)
    assert not Passkey.objects.exists()
    assert AuthEvent.objects.get(type=AuthEvent.Type.PASSKEY_FAILED).detail == (
        f"registration: the credential id is {length} bytes long, more than 1023"
    )


def test_a_credential_id_of_1023_bytes_is_accepted(client, user):
    """The limit itself: 1023 bytes (1,364 base64url characters) is a credential id."""
    authenticator, _ = registered(client, SoftPasskey(credential_id=b"x" * 1023))
    assert Passkey.objects.get().credential_id == authenticator.id
    assert passkey_login(authenticator).status_code == 200


def test_a_nul_in_what_the_client_sent_does_not_keep_the_failure_out_of_the_audit_trail(client, user):
    """Attack: an origin with a NUL character in clientDataJSON. The library's reason quotes it, and
    PostgreSQL refuses NUL in text, so the PASSKEY_FAILED event was not written there (audit.record
    logs and drops it): failures that leave no trace. The reason is recorded with it escaped."""
    authenticator, _ = registered(client)
    signing_in = passkey_login(authenticator, origin="https://evil.example\x00")
    adding = client.post(
        "/api/passkeys", {"credential": SoftPasskey().create(creation_options(client), origin="https://evil.example\x00")}, format="json"
    )

    for answer in (signing_in, adding):
        assert (answer.status_code, answer.json()) == (401, INVALID_PASSKEY)
    details = list(AuthEvent.objects.filter(type=AuthEvent.Type.PASSKEY_FAILED, user=user).values_list("detail", flat=True))
    assert len(details) == 2
    for detail in details:
        assert "\x00" not in detail and '"https://evil.example\\x00"' in detail


# --- configuration -------------------------------------------------------------------------------


def webauthn_settings(**variables: str) -> tuple[str, list[str]]:
    """Load the settings in a fresh process with these variables; return (RP ID, origins)."""
    code = "from django.conf import settings as s; import json; print(json.dumps([s.WEBAUTHN_RP_ID, s.WEBAUTHN_ORIGINS]))"
    done = run(PROJECT, "-c", "import django; django.setup(); " + code, DJANGO_SETTINGS_MODULE="tests.settings", **variables)
    assert done.returncode == 0, done.stderr[-2000:]
    rp_id, origins = json.loads(done.stdout.strip().splitlines()[-1])
    return rp_id, origins


def test_an_issuer_with_a_path_still_names_the_rp_id_and_its_origin():
    """Misconfiguration: TOKEN_ISSUER is "this server's public base URL", which may carry a path
    (a server under a prefix). The RP ID was then "" and no origin was allowed: every passkey
    endpoint answered 500 (the library refuses an empty RP ID)."""
    rp_id, origins = webauthn_settings(
        TOKEN_ISSUER="https://auth.example.com/identity", CLIENT_ORIGIN="https://app.example.com", WEBAUTHN_RP_ID=""
    )
    assert rp_id == "auth.example.com"
    assert origins == ["https://auth.example.com"]


def test_origins_are_written_as_browsers_serialize_them():
    """Misconfiguration: an origin in capitals or with its scheme's default port passed the checks,
    but a browser's clientDataJSON says https://app.example.com, and the library compares the text:
    every ceremony from that page was refused, silently."""
    rp_id, origins = webauthn_settings(
        WEBAUTHN_RP_ID="Example.COM", WEBAUTHN_ORIGINS="https://App.Example.com:443,http://LOCAL.example.com:80,https://example.com:8443"
    )
    assert rp_id == "example.com"
    assert origins == ["https://app.example.com", "http://local.example.com", "https://example.com:8443"]


# --- registration --------------------------------------------------------------------------------


def test_another_users_credential_id_cannot_be_registered(client, user, user_factory, token_for):
    """Attack: user B forges an attestation for the credential id of A's passkey (the ids are no
    secret: sign-in options with A's email list them), with a key of B's, to take the id over. The
    unique column refuses it (IntegrityError), B is told Invalid passkey, A's passkey is untouched."""
    victim, _ = registered(client)
    stored = Passkey.objects.get()
    attacker = APIClient()
    attacker.credentials(HTTP_AUTHORIZATION=token_for(user_factory(email="bob@example.com")))

    forged = SoftPasskey(credential_id=victim.credential_id).create(creation_options(attacker))
    refused = attacker.post("/api/passkeys", {"credential": forged}, format="json")

    assert (refused.status_code, refused.json()) == (401, INVALID_PASSKEY)
    assert list(Passkey.objects.values_list("pk", "user", "public_key")) == [(stored.pk, user.pk, stored.public_key)]
    assert AuthEvent.objects.get(type=AuthEvent.Type.PASSKEY_FAILED).detail == "registration: this credential is registered already"
    assert passkey_login(victim).status_code == 200


def test_a_sign_in_challenge_does_not_finish_a_registration_nor_the_other_way_round(client, user):
    """Attack: the challenge of one ceremony answered in the other (with the right clientData type)."""
    authenticator, _ = registered(client)
    started = sign_in_options()
    options = creation_options(client)

    adding = client.post(
        "/api/passkeys", {"credential": SoftPasskey().create(options, challenge=started["options"]["challenge"])}, format="json"
    )
    signing_in = passkey_login(authenticator, sign_in_options(), challenge=options["challenge"])

    for answer in (adding, signing_in):
        assert (answer.status_code, answer.json()) == (401, INVALID_PASSKEY)
    assert Passkey.objects.count() == 1


def test_another_users_creation_options_do_not_add_a_passkey(client, user, user_factory, token_for):
    """Attack: B answers the creation options A was given (say, phished from A's page) and posts it
    with B's token, or A's answer is posted by B: the pending challenge is each user's own."""
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=token_for(user_factory(email="bob@example.com")))
    theirs = creation_options(client)
    creation_options(other)

    refused = other.post("/api/passkeys", {"credential": SoftPasskey().create(theirs)}, format="json")

    assert (refused.status_code, refused.json()) == (401, INVALID_PASSKEY)
    assert not Passkey.objects.exists()


def test_options_asked_twice_are_finished_by_the_newest_only(client, user):
    """Two tabs: options asked twice; the first tab's answer is refused (new options replace the
    pending challenge), and it takes the pending one with it: a challenge works once."""
    first = creation_options(client)
    second = creation_options(client)

    stale = client.post("/api/passkeys", {"credential": SoftPasskey().create(first)}, format="json")
    after = client.post("/api/passkeys", {"credential": SoftPasskey().create(second)}, format="json")

    for answer in (stale, after):
        assert (answer.status_code, answer.json()) == (401, INVALID_PASSKEY)
    assert not Passkey.objects.exists()


def test_transports_keep_only_the_known_words(client, user):
    """Attack: transports carrying markup, numbers, objects and nulls: only WebAuthn's words are
    kept (they go back to browsers in allowCredentials and excludeCredentials)."""
    credential = SoftPasskey().create(creation_options(client))
    credential["response"]["transports"] = ["usb", "<script>alert(1)</script>", 5, {"a": 1}, None, "internal", "usb"]

    answer = client.post("/api/passkeys", {"credential": credential}, format="json")

    assert answer.status_code == 200, answer.json()
    assert answer.json()["passkey"]["transports"] == ["internal", "usb"]
    assert Passkey.objects.get().transports == ["internal", "usb"]


class RS1Passkey(SoftPasskey):
    """A passkey whose public key claims RS1 (RSASSA-PKCS1-v1_5 with SHA-1, COSE -65535)."""

    def _cose_key(self) -> bytes:
        import cbor2
        from cryptography.hazmat.primitives.asymmetric import rsa

        numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_numbers()
        return cbor2.dumps({1: 3, 3: -65535, -1: numbers.n.to_bytes(256, "big"), -2: numbers.e.to_bytes(3, "big")})


def test_a_key_of_an_algorithm_not_offered_is_refused(client, user):
    """Attack: a credential public key with SHA-1 (RS1), which the options do not offer."""
    refused = client.post("/api/passkeys", {"credential": RS1Passkey().create(creation_options(client))}, format="json")

    assert (refused.status_code, refused.json()) == (401, INVALID_PASSKEY)
    assert "Unsupported credential public key alg" in AuthEvent.objects.get(type=AuthEvent.Type.PASSKEY_FAILED).detail


def packed(credential: dict, authenticator: SoftPasskey, *, signed_by=None) -> dict:
    """Turn a "none" attestation into packed self-attestation (no x5c), signed by the credential's
    own key, or by `signed_by`."""
    import base64
    import hashlib

    import cbor2
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    unpad = lambda text: base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))  # noqa: E731
    attestation = cbor2.loads(unpad(credential["response"]["attestationObject"]))
    client_data = unpad(credential["response"]["clientDataJSON"])
    key = signed_by or authenticator.key
    signature = key.sign(attestation["authData"] + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
    attestation.update(fmt="packed", attStmt={"alg": -7, "sig": signature})
    encoded = base64.urlsafe_b64encode(cbor2.dumps(attestation)).rstrip(b"=").decode()
    return {**credential, "response": {**credential["response"], "attestationObject": encoded}}


def test_packed_self_attestation_is_verified(client, user):
    """An attestation other than "none" (we ask for none; a client may send packed anyway): a
    self-attestation signed by another key is refused; one signed by the credential's key is a passkey."""
    from cryptography.hazmat.primitives.asymmetric import ec

    authenticator = SoftPasskey()
    forged = packed(authenticator.create(creation_options(client)), authenticator, signed_by=ec.generate_private_key(ec.SECP256R1()))
    refused = client.post("/api/passkeys", {"credential": forged}, format="json")
    genuine = packed(authenticator.create(creation_options(client)), authenticator)
    accepted = client.post("/api/passkeys", {"credential": genuine}, format="json")

    assert (refused.status_code, refused.json()) == (401, INVALID_PASSKEY)
    assert accepted.status_code == 200, accepted.json()
    assert passkey_login(authenticator).status_code == 200


@pytest.mark.parametrize("passkey_id", ["99999999999999999999", "-1", "1e3", "0", "999999999999999999"])
def test_ids_out_of_range_are_not_found(client, user, passkey_id):
    """Attack: ids past a 64-bit integer, negative, or not a number at all, in PATCH and DELETE."""
    registered(client)
    for answer in (
        client.patch(f"/api/passkeys/{passkey_id}", {"name": "x"}, format="json"),
        client.delete(f"/api/passkeys/{passkey_id}", {"password": PASSWORD}, format="json"),
    ):
        assert (answer.status_code, answer.json()) == (404, {"status": 404, "message": "Not found"})
    assert Passkey.objects.count() == 1


@pytest.mark.parametrize(
    "name, errors",
    [
        ("a\x00b", ["Control characters are not allowed.", "Null characters are not allowed."]),
        ("a\x07b", ["Control characters are not allowed."]),
        ("x" * 10_000, ["Ensure this field has no more than 150 characters."]),
        ("   ", ["This field may not be blank."]),
        (5, ["Not a valid string."]),
    ],
    ids=["nul", "bell", "10k", "blank", "number"],
)
def test_a_name_that_is_no_name_is_a_400(client, user, name, errors):
    """Attack: names with NUL (PostgreSQL refuses it) or control characters, 10,000 characters,
    blank, or not text, when adding and renaming; nothing changes."""
    _, passkey = registered(client, name="Phone")
    credential = SoftPasskey().create(creation_options(client))
    for answer in (
        client.patch(f"/api/passkeys/{passkey['id']}", {"name": name}, format="json"),
        client.post("/api/passkeys", {"credential": credential, "name": name}, format="json"),
    ):
        if name == "   " and answer.request["REQUEST_METHOD"] == "POST":
            # Adding: a blank name is the default one ("Passkey 2").
            assert answer.status_code == 200 and answer.json()["passkey"]["name"] == "Passkey 2"
            continue
        assert (answer.status_code, answer.json()) == (
            400, {"status": 400, "message": f"Invalid input. name: {' '.join(errors)}", "errors": {"name": errors}}
        )
    assert Passkey.objects.order_by("pk").first().name == "Phone"


# --- signing in ----------------------------------------------------------------------------------


def _sealed(value: dict) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    "forge",
    [
        lambda challenge: TOTPDevice.secret_encrypt("JBSWY3DPEHPK3PXP" * 2),
        lambda challenge: vault.encrypt(b"-----BEGIN PRIVATE KEY-----\nMIG...\n-----END PRIVATE KEY-----\n"),
        lambda challenge: vault.encrypt(_sealed({"purpose": "refresh grace", "challenge": challenge, "expires": 9999999999})),
        lambda challenge: vault.encrypt(_sealed({"challenge": challenge, "expires": 9999999999})),
        lambda challenge: vault.encrypt(_sealed(["passkey sign-in", challenge, 9999999999])),
        lambda challenge: vault.seal(
            _sealed({"purpose": "passkey sign-in", "challenge": challenge, "expires": 9999999999}), secret="a refresh token"
        ),
    ],
    ids=["totp-secret", "signing-key", "other-purpose", "no-purpose", "a-list", "sealed-under-a-bearer-secret"],
)
def test_another_value_the_server_encrypted_is_no_ceremony(client, user, forge):
    """Attack: anything else core.vault produces (a TOTP secret, a signing key, JSON of another
    purpose, a value sealed under a refresh token) sent as the ceremony, with an assertion signed
    over the challenge the forgery would carry."""
    authenticator, _ = registered(client)
    started = sign_in_options()
    credential = authenticator.get(started["options"])

    answer = APIClient().post(
        "/api/authenticate/passkey", {"ceremony": forge(started["options"]["challenge"]), "credential": credential}, format="json"
    )

    assert (answer.status_code, answer.json()) == (401, INVALID_PASSKEY)
    assert AuthEvent.objects.get(type=AuthEvent.Type.PASSKEY_FAILED).detail == "the ceremony is not one of ours"


def test_a_passkey_removed_during_the_ceremony_does_not_sign_in(client, user):
    """Attack: the assertion is made while the passkey exists and posted once it was removed."""
    authenticator, passkey = registered(client)
    started = sign_in_options(user.email)
    credential = authenticator.get(started["options"])
    assert client.delete(f"/api/passkeys/{passkey['id']}", {"password": PASSWORD}, format="json").status_code == 200

    answer = APIClient().post("/api/authenticate/passkey", {"ceremony": started["ceremony"], "credential": credential}, format="json")

    assert (answer.status_code, answer.json()) == (401, INVALID_PASSKEY)
    assert AuthEvent.objects.get(type=AuthEvent.Type.PASSKEY_FAILED).detail == "unknown credential"


def test_a_deleted_users_passkey_does_not_sign_in(client, user):
    authenticator, _ = registered(client)
    user.delete()

    answer = passkey_login(authenticator)

    assert (answer.status_code, answer.json()) == (401, INVALID_PASSKEY)
    assert not Passkey.objects.exists()


def test_an_unconfirmed_or_disabled_account_gets_no_session(client, user):
    """A genuine assertion for an account that may not sign in opens nothing, at the API and the page."""
    authenticator, _ = registered(client)
    sessions = Session.objects.count()
    user.confirmed_at = None
    user.save(update_fields=["confirmed_at"])
    browser = Client()
    started = browser.post("/api/authenticate/passkey/options", "{}", content_type="application/json").json()

    api = passkey_login(authenticator)
    page = browser.post("/signin/passkey", {"ceremony": started["ceremony"], "credential": json.dumps(authenticator.get(started["options"]))})

    assert (api.status_code, api.json()) == (400, {"status": 400, "message": "Please confirm your account"})
    assert page.status_code == 401 and "Please confirm your account" in page.content.decode()
    assert Session.objects.count() == sessions
    assert SESSION_KEY not in browser.session


def test_failures_at_the_pages_count_in_the_address_limit(client, user, settings):
    """Attack: guessing through the sign-in page and the admin instead of the API: one limit."""
    authenticator, _ = registered(client)
    settings.LOGIN_ADDRESS_RATE = "2/hour"
    browser = Client()
    for path in ("/signin/passkey", "/admin/login/passkey/"):
        started = browser.post("/api/authenticate/passkey/options", "{}", content_type="application/json").json()
        credential = json.dumps(authenticator.get(started["options"], verified=False))
        assert browser.post(path, {"ceremony": started["ceremony"], "credential": credential}).status_code == 401

    throttled = passkey_login(authenticator)

    assert (throttled.status_code, throttled.json()) == (429, {"status": 429, "message": "Too many requests"})


# --- the pages -----------------------------------------------------------------------------------

ELSEWHERE = [
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "https:evil.example",
    "https://evil.example/",
    "http://testserver.evil.example/",
    "javascript:alert(1)",
    " //evil.example",
]


def page_ceremony(browser: Client, authenticator: SoftPasskey, **answer) -> dict:
    started = browser.post("/api/authenticate/passkey/options", "{}", content_type="application/json").json()
    return {"ceremony": started["ceremony"], "credential": json.dumps(authenticator.get(started["options"], **answer))}


@pytest.mark.parametrize("next_url", ELSEWHERE)
def test_the_sign_in_page_goes_nowhere_else(client, user, next_url):
    """Attack: an open redirect through `next` on POST /signin/passkey."""
    authenticator, _ = registered(client)
    browser = Client()
    answer = browser.post("/signin/passkey", {**page_ceremony(browser, authenticator), "next": next_url})
    assert (answer.status_code, answer["Location"]) == (302, "/signin/done")


@pytest.fixture
def staff(user):
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


@pytest.mark.parametrize("next_url", ELSEWHERE)
def test_the_admin_goes_nowhere_else(client, staff, next_url):
    """Attack: an open redirect through `next` on POST /admin/login/passkey/."""
    authenticator, _ = registered(client)
    browser = Client()
    answer = browser.post("/admin/login/passkey/", {**page_ceremony(browser, authenticator), "next": next_url})
    assert (answer.status_code, answer["Location"]) == (302, "/admin/")


def test_the_admin_passkey_post_needs_the_csrf_token(client, staff):
    """Attack: login CSRF, another site posting an assertion to /admin/login/passkey/."""
    authenticator, _ = registered(client)
    browser = Client(enforce_csrf_checks=True)
    answer = browser.post("/admin/login/passkey/", page_ceremony(browser, authenticator))
    assert answer.status_code == 403
    assert SESSION_KEY not in browser.session


def test_disabled_staff_do_not_get_into_the_admin(client, staff):
    """Attack: a staff member whose account was disabled still holds the passkey."""
    authenticator, _ = registered(client)
    staff.is_active = False
    staff.save(update_fields=["is_active"])
    browser = Client()

    answer = browser.post("/admin/login/passkey/", page_ceremony(browser, authenticator))

    assert answer.status_code == 401 and "That passkey did not sign you in." in answer.content.decode()
    assert browser.get("/admin/").status_code == 302


def test_a_passkeys_name_is_text_in_the_admin_and_the_emails(client, user, user_factory):
    """Attack: markup in the passkey's name, shown to staff (the admin) and in the HTML email."""
    from django.core import mail

    from tests.conftest import admin_login

    registered(client, name='<img src=x onerror="alert(1)">')
    browser = Client()
    admin_login(browser, user_factory(email="root@example.com", is_staff=True, is_superuser=True))

    for page in (browser.get("/admin/accounts/passkey/"), browser.get(f"/admin/accounts/user/{user.pk}/change/")):
        assert page.status_code == 200
        assert "<img src=x" not in page.content.decode() and "&lt;img src=x onerror=" in page.content.decode()
    html = mail.outbox[-1].alternatives[0][0]
    assert "<img src=x" not in html and "&lt;img src=x onerror=" in html


# --- at the same time ----------------------------------------------------------------------------


def at_once(count: int, send) -> list[int]:
    """Send `count` requests at the same moment, each from a thread of its own; return the statuses.

    PostgreSQL only (the CI's postgres run): the test database of SQLite is in memory, shared by
    the threads' connections, and there a write waits for no lock ("database table is locked"),
    where the server's SQLite file waits up to 20 seconds."""
    if connection.vendor == "sqlite":
        pytest.skip("concurrent writers need PostgreSQL (SQLite's in-memory test database refuses them)")
    barrier, statuses = threading.Barrier(count), []

    def one():
        try:
            barrier.wait()
            statuses.append(send().status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def test_one_assertion_posted_six_times_at_once_signs_in_once(transactional_db, user, token_for):
    """Attack: a double (sextuple) submit of one assertion, concurrently, from a synced passkey
    (counter 0, so only the spent challenge can stop the copies)."""
    owner = APIClient()
    owner.credentials(HTTP_AUTHORIZATION=token_for(user))
    authenticator, _ = registered(owner)
    started = sign_in_options()
    body = {"ceremony": started["ceremony"], "credential": authenticator.get(started["options"], counter=0)}

    statuses = at_once(6, lambda: APIClient().post("/api/authenticate/passkey", body, format="json"))

    assert statuses == [200, 401, 401, 401, 401, 401]
    assert Session.objects.filter(user=user, amr=["hwk", "user", "mfa"]).count() == 1


def test_one_registration_posted_four_times_at_once_adds_one_passkey(transactional_db, user, token_for):
    """Attack: the answer to one set of creation options posted concurrently."""
    token = token_for(user)
    owner = APIClient()
    owner.credentials(HTTP_AUTHORIZATION=token)
    body = {"credential": SoftPasskey().create(creation_options(owner))}

    def send():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=token)
        return client.post("/api/passkeys", body, format="json")

    statuses = at_once(4, send)

    assert statuses == [200, 401, 401, 401]
    assert Passkey.objects.count() == 1


# --- settings --------------------------------------------------------------------------------


def test_a_ceremony_started_for_one_email_signs_in_no_other_account(client, user, user_factory, token_for):
    """Attack: sign-in options asked with A's email (they list A's passkeys), answered with B's
    passkey. Harmless as far as who signs in goes (B proves B), but WebAuthn asks the RP to check
    that the credential is one the options allowed, and a client that shows "signing in as A"
    signs B in."""
    registered(client)
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=token_for(user_factory(email="bob@example.com")))
    theirs, _ = registered(other)

    answer = passkey_login(theirs, sign_in_options(user.email))

    assert (answer.status_code, answer.json()) == (401, INVALID_PASSKEY)


@pytest.mark.parametrize(
    "rp_id, origins, warning",
    [
        ("10.0.0.1", ["https://10.0.0.1"], "accounts.W001"),
        ("::1", [], "accounts.W001"),
        ("", [], "accounts.W001"),
        ("example.com", [], "accounts.W002"),
        ("example.com", ["https://example.com"], None),
    ],
)
def test_the_checks_warn_when_passkeys_cannot_work(settings, rp_id, origins, warning):
    """Misconfiguration: an RP ID taken from an IP-address TOKEN_ISSUER (the settings' comment
    promised a system check for it, and there was none), or no origin at all: every ceremony fails."""
    from django.core import checks

    settings.WEBAUTHN_RP_ID, settings.WEBAUTHN_ORIGINS = rp_id, origins
    found = [message.id for message in checks.run_checks() if message.id.startswith("accounts.W")]
    assert found == ([warning] if warning else [])


def test_a_next_with_markup_is_text_on_the_refusal_pages(client, staff):
    """Attack: reflected XSS through `next`, echoed into the page a refused passkey ends on."""
    authenticator, _ = registered(client)
    browser = Client()
    next_url = '/x"><script>alert(1)</script>'
    for path in ("/signin/passkey", "/admin/login/passkey/"):
        answer = browser.post(path, {**page_ceremony(browser, authenticator, verified=False), "next": next_url})
        assert answer.status_code == 401
        assert "<script>alert(1)" not in answer.content.decode()


def test_another_users_id_is_not_found_before_the_password_is_checked(client, user, user_factory, token_for, settings):
    """Attack: DELETE of someone else's passkey with a wrong password: 404, and nothing is counted
    against the caller's account or recorded as a failed password check."""
    settings.LOGIN_ACCOUNT_RATE = "1/hour"
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=token_for(user_factory(email="bob@example.com")))
    _, theirs = registered(other)

    answer = client.delete(f"/api/passkeys/{theirs['id']}", {"password": "wrong"}, format="json")

    assert (answer.status_code, answer.json()) == (404, {"status": 404, "message": "Not found"})
    assert not AuthEvent.objects.filter(type=AuthEvent.Type.PASSWORD_CHECK_FAILED).exists()
    assert client.post("/api/passkeys/options", {"password": PASSWORD}, format="json").status_code == 200


def test_an_assertion_signed_by_another_key_is_refused_counted_and_flags_nothing(client, user, settings):
    """Attack: A's credential id and user handle (from sign-in options with A's email, and the
    handle a stolen assertion shows) on an assertion signed with the attacker's key, with a counter
    below A's: refused and counted against A's account, and A's passkey is not flagged as cloned,
    since only a genuine signature says anything about the counter."""
    settings.LOGIN_ACCOUNT_RATE = "2/hour"
    victim, _ = registered(client)
    assert passkey_login(victim, counter=10).status_code == 200
    forger = SoftPasskey(credential_id=victim.credential_id, user_handle=victim.user_handle)

    answers = [passkey_login(forger, sign_in_options(user.email), counter=counter) for counter in (3, 11)]

    for answer in answers:
        assert (answer.status_code, answer.json()) == (401, INVALID_PASSKEY)
    stored = Passkey.objects.get()
    assert stored.cloned_at is None and stored.sign_count == 10
    assert not AuthEvent.objects.filter(type=AuthEvent.Type.PASSKEY_CLONED).exists()
    assert passkey_login(victim).status_code == 429


def test_flags_changed_after_signing_are_refused(client, user):
    """Attack: a genuine assertion made without user verification, its UV flag set afterwards."""
    import base64

    authenticator, _ = registered(client)
    started = sign_in_options()
    credential = authenticator.get(started["options"], verified=False)
    data = bytearray(base64.urlsafe_b64decode(credential["response"]["authenticatorData"] + "=="))
    data[32] |= 0x04
    credential["response"]["authenticatorData"] = base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode()

    answer = APIClient().post("/api/authenticate/passkey", {"ceremony": started["ceremony"], "credential": credential}, format="json")

    assert (answer.status_code, answer.json()) == (401, INVALID_PASSKEY)
    assert "signature" in AuthEvent.objects.get(type=AuthEvent.Type.PASSKEY_FAILED).detail.lower()


def test_sign_in_options_for_any_email_make_the_same_queries(client, user, user_factory):
    """Attack: enumeration by timing. An unknown email was answered after one query (the user), an
    account after two (the user, then its passkeys): about 0.27 ms slower, every time, which many
    samples measure. One query now, whoever the email is."""
    registered(client)
    user_factory(email="nopasskey@example.com")
    counts = []
    for email in (user.email, "nopasskey@example.com", "nobody@example.com"):
        with CaptureQueriesContext(connection) as queries:
            sign_in_options(email)
        counts.append(len(queries))
    assert counts == [1, 1, 1]
