"""Attacks on passkeys: what an attacker may send to /api/passkeys, /api/authenticate/passkey,
POST /signin/passkey and /admin/login/passkey/, forged with the software authenticator
(tests/support/authenticator.py). Each test's docstring says the attack; most are refused as they
should be (kept as regression tests), the others were fixed with the test that showed them.
tests/passkeys/test_api.py holds the feature's own behaviour; nothing here repeats it.
"""

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.audit.models import AuthEvent
from accounts.passkeys.models import Passkey
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
