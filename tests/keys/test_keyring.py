"""Signing keys: tokens any service verifies with the published keys alone.

The JWKS and the metadata document; verification by PyJWT from the served JWKS only; rotation
and retirement through the command and the admin; first keys made on first use; private parts
encrypted at rest and never served; RS256 by setting; the keyring's reload rules.
"""

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import timedelta
from io import StringIO

import jwt
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.keys import keyring as keyring_module
from accounts.keys.keyring import keyring
from accounts.keys.models import SigningKey
from accounts.keys.services import key_retire, keys_rotate
from accounts.sessions.tokens import token_backend
from core import vault
from tests.conftest import admin_login, claims
from tests.support.api import client_with, login, login_token

JWKS = "/.well-known/jwks.json"
METADATA = "/.well-known/openid-configuration"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


def served_jwks() -> dict:
    response = APIClient().get(JWKS)
    assert response.status_code == 200
    return response.json()


def verify_with_jwks(token: str, jwks: dict, settings) -> dict:
    """Verify as a resource server would: the key named by kid in the served set, iss and aud."""
    keys = {key["kid"]: jwt.PyJWK(key) for key in jwks["keys"]}
    key = keys[jwt.get_unverified_header(token)["kid"]]
    return jwt.decode(token, key.key, algorithms=[key.algorithm_name], audience=settings.TOKEN_AUDIENCE[0], issuer=settings.TOKEN_ISSUER)


def command(*args) -> str:
    out = StringIO()
    call_command("signing_keys", *args, stdout=out)
    return out.getvalue()


# --- The published keys ----------------------------------------------------------------------


def test_first_keys_are_made_on_first_use(db):
    assert SigningKey.objects.count() == 0

    jwks = served_jwks()

    # One current and one next key per algorithm: ES256 (the auth tokens') and RS256 (OpenID's
    # default for ID tokens).
    assert sorted(SigningKey.objects.values_list("algorithm", "state")) == [
        ("ES256", "current"), ("ES256", "next"), ("RS256", "current"), ("RS256", "next"),
    ]
    # Current keys first, the auth tokens' algorithm before the other, then the next keys.
    assert [key["kid"] for key in jwks["keys"]] == [
        SigningKey.objects.get(state="current", algorithm="ES256").kid,
        SigningKey.objects.get(state="current", algorithm="RS256").kid,
        SigningKey.objects.get(state="next", algorithm="ES256").kid,
        SigningKey.objects.get(state="next", algorithm="RS256").kid,
    ]


def test_jwks_has_public_members_only_and_cache_headers(db, settings):
    settings.JWKS_MAX_AGE = 123
    served_jwks()
    keys_rotate()  # one previous key too

    response = APIClient().get(JWKS + "/")

    assert response["Cache-Control"] == "public, max-age=123"
    assert response["Content-Type"] == "application/json"
    keys = response.json()["keys"]
    assert len(keys) == 6  # current, next and previous of each algorithm
    for key in keys:
        assert {"kid", "kty", "alg", "use"} <= key.keys()
        if key["alg"] == "ES256":
            assert (key["kty"], key["use"], key["crv"]) == ("EC", "sig", "P-256")
        else:
            assert (key["kty"], key["alg"], key["use"], key["e"]) == ("RSA", "RS256", "sig", "AQAB")
        assert not PRIVATE_MEMBERS & key.keys()


def test_metadata_names_the_keys_and_the_introspection_endpoint(db, settings):
    settings.TOKEN_ISSUER = "https://auth.example.com"

    response = APIClient().get(METADATA)

    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == "https://auth.example.com"
    assert metadata["jwks_uri"] == "https://auth.example.com/.well-known/jwks.json"
    assert metadata["introspection_endpoint"] == "https://auth.example.com/api/introspect"
    assert "client_secret_basic" in metadata["introspection_endpoint_auth_methods_supported"]
    # The same document at RFC 8414's address.
    assert APIClient().get("/.well-known/oauth-authorization-server").json() == metadata


def test_private_keys_are_encrypted_at_rest(db):
    served_jwks()
    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key_encrypted FROM accounts_signingkey")
        stored = [row[0] for row in cursor.fetchall()]

    assert len(stored) == 4
    for value in stored:
        assert "PRIVATE KEY" not in value and value.startswith("gAAAAA")  # a Fernet token


# --- Tokens verified by others --------------------------------------------------------------


def test_a_token_verifies_with_the_served_jwks_alone(user, settings):
    token = login_token()

    claims = verify_with_jwks(token, served_jwks(), settings)

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] == SigningKey.objects.get(state="current", algorithm="ES256").kid
    assert claims["sub"] == str(user.public_id)
    assert claims["email"] == "ann@example.com"
    assert claims["groups"] == [] and claims["amr"] == ["pwd"]
    assert {"iss", "aud", "sub", "exp", "iat", "jti", "sid", "email", "groups", "amr"} <= claims.keys()
    # The database key is nowhere in the token.
    assert "user_id" not in claims and str(user.pk) not in [str(value) for value in claims.values()]


def test_groups_are_sorted_names_read_at_each_issue(user, django_user_model):
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.create(name="writers"), Group.objects.create(name="admins"))
    token = login_token()
    assert jwt.decode(token, options={"verify_signature": False})["groups"] == ["admins", "writers"]

    user.groups.add(Group.objects.create(name="beta"))
    refreshed = APIClient().get("/api/authenticate", HTTP_AUTHORIZATION=token).json()["token"]

    assert jwt.decode(refreshed, options={"verify_signature": False})["groups"] == ["admins", "beta", "writers"]


def test_the_audience_is_a_list_when_there_are_several(user, settings):
    settings.TOKEN_AUDIENCE = ["authserver", "reports-api"]

    claims = jwt.decode(login_token(), options={"verify_signature": False})

    assert claims["aud"] == ["authserver", "reports-api"]
    assert APIClient().get("/api/user", HTTP_AUTHORIZATION=login_token()).status_code == 200


def test_rs256_by_setting(user, settings):
    settings.TOKEN_ALGORITHM = "RS256"

    token = login_token()

    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    (key,) = [key for key in served_jwks()["keys"] if key["kid"] == jwt.get_unverified_header(token)["kid"]]
    assert key["kty"] == "RSA" and not PRIVATE_MEMBERS & key.keys()
    verify_with_jwks(token, served_jwks(), settings)
    assert APIClient().get("/api/user", HTTP_AUTHORIZATION=token).status_code == 200


# --- Rotation and retirement -------------------------------------------------------------------


def test_rotation_moves_every_state_and_keeps_old_tokens_valid(user, settings):
    old_token = login_token()
    before = dict(SigningKey.objects.filter(algorithm="ES256").values_list("state", "kid"))
    rsa_before = dict(SigningKey.objects.filter(algorithm="RS256").values_list("state", "kid"))

    printed = command("--rotate")

    after = dict(SigningKey.objects.filter(algorithm="ES256").exclude(state="retired").values_list("state", "kid"))
    rsa_after = dict(SigningKey.objects.filter(algorithm="RS256").exclude(state="retired").values_list("state", "kid"))
    assert (rsa_after["current"], rsa_after["previous"]) == (rsa_before["next"], rsa_before["current"])
    assert after["current"] == before["next"]
    assert after["previous"] == before["current"]
    assert after["next"] not in before.values()
    assert printed.splitlines()[0] == f"Rotated: {before['next']} is current."
    new_token = login_token()
    assert jwt.get_unverified_header(new_token)["kid"] == before["next"]
    for token in (old_token, new_token):
        assert APIClient().get("/api/user", HTTP_AUTHORIZATION=token).status_code == 200
        verify_with_jwks(token, served_jwks(), settings)


def test_retirement_unpublishes_the_key_and_refuses_its_tokens(user):
    token = login_token()
    kid = jwt.get_unverified_header(token)["kid"]
    command("--rotate")

    printed = command("--retire", kid, "--force")

    assert printed.splitlines()[0] == f"Retired: {kid}."
    assert kid not in [key["kid"] for key in served_jwks()["keys"]]
    response = APIClient().get("/api/user", HTTP_AUTHORIZATION=token)
    assert response.status_code == 401
    assert response.json() == {"status": 401, "message": "Invalid or expired token"}


@pytest.mark.parametrize("state", ["current", "next"])
def test_only_a_previous_key_can_be_retired(db, state):
    served_jwks()
    kid = SigningKey.objects.get(state=state, algorithm="ES256").kid

    with pytest.raises(CommandError, match="only a previous key can be retired"):
        command("--retire", kid)

    assert SigningKey.objects.get(kid=kid).state == state


def test_a_new_key_id_never_begins_with_a_dash(db, monkeypatch):
    # A shell reads "--retire -abc" as two options; the ids we make can always be typed plainly.
    drawn = iter(["-dashfirst000000", "plain00000000000"])
    monkeypatch.setattr("accounts.keys.models.secrets.token_urlsafe", lambda n: next(drawn))

    key = SigningKey.objects.generate(algorithm="ES256", state="next")

    assert key.kid == "plain00000000000"
    assert key.public_jwk["kid"] == "plain00000000000"


def test_a_key_id_that_begins_with_a_dash_is_retired_with_an_equals_sign(db):
    # Keys made before ids avoided a leading dash can still be retired: --retire=KID.
    served_jwks()
    keys_rotate()
    SigningKey.objects.filter(state="previous", algorithm="ES256").update(kid="-olddashkid00000")

    printed = command("--retire=-olddashkid00000", "--force")

    assert printed.splitlines()[0] == "Retired: -olddashkid00000."
    assert SigningKey.objects.get(kid="-olddashkid00000").state == "retired"


def test_retiring_an_unknown_key_is_an_error(db):
    with pytest.raises(CommandError, match="no signing key"):
        command("--retire", "nope")


def test_the_list_is_one_line_per_key(db):
    served_jwks()
    keys_rotate()

    lines = command().splitlines()

    assert len(lines) == 6
    listed = []
    for line in lines:
        kid, algorithm, state, created = line.split(" ")
        assert SigningKey.objects.get(kid=kid).state == state
        assert SigningKey.objects.get(kid=kid).algorithm == algorithm
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", created)
        listed.append((state, algorithm))
    # Current first, then next, then previous; the auth tokens' algorithm first in each.
    assert listed == [(state, alg) for state in ("current", "next", "previous") for alg in ("ES256", "RS256")]


def test_the_admin_shows_no_private_part_and_rotates(user_factory):
    staff = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    browser = Client()
    admin_login(browser, staff)
    served_jwks()
    current = SigningKey.objects.get(state="current", algorithm="ES256")

    page = browser.get(f"/admin/accounts/signingkey/{current.pk}/change/").content.decode()
    listing = browser.get("/admin/accounts/signingkey/").content.decode()

    assert current.kid in page and current.kid in listing
    for html in (page, listing):
        assert current.private_key_encrypted not in html
        assert "PRIVATE KEY" not in html and '"d":' not in html
    assert "Rotate the keys" in listing
    # The button opens a page that says what a rotation does, and changes nothing yet.
    confirmation = browser.get("/admin/accounts/signingkey/rotate/")
    assert confirmation.status_code == 200
    assert "Rotate the signing keys?" in confirmation.content.decode()
    assert 'value="Yes, rotate the keys"' in confirmation.content.decode()
    assert SigningKey.objects.get(pk=current.pk).state == "current"
    response = browser.post("/admin/accounts/signingkey/rotate/", follow=True)
    assert "Keys rotated" in response.content.decode()
    assert SigningKey.objects.get(pk=current.pk).state == "previous"


def test_only_staff_who_may_change_keys_rotate_them(user_factory):
    viewer = user_factory(email="view@example.com", is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_signingkey"))
    browser = Client()
    admin_login(browser, viewer)
    served_jwks()
    current = SigningKey.objects.get(state="current", algorithm="ES256").kid

    browser.post("/admin/accounts/signingkey/rotate/")

    assert SigningKey.objects.get(kid=current).state == "current"


# --- The keyring: what each worker holds ------------------------------------------------------


def test_a_rotation_elsewhere_is_seen_once_the_reload_time_passes(user, monkeypatch):
    token_before = login_token()
    clock = [1000.0]
    monkeypatch.setattr(keyring_module.time, "monotonic", lambda: clock[0])
    keyring.forget()
    signing = keyring.keyset().signing_kid
    # Another process rotates: this one still signs with what it loaded ...
    SigningKey.objects.filter(state="current", algorithm="ES256").update(state="previous")
    SigningKey.objects.filter(state="next", algorithm="ES256").update(state="current")
    assert keyring.keyset().signing_kid == signing
    # ... until RELOAD_SECONDS have passed.
    clock[0] += keyring_module.RELOAD_SECONDS + 1
    assert keyring.keyset().signing_kid != signing
    assert APIClient().get("/api/user", HTTP_AUTHORIZATION=token_before).status_code == 200


def test_an_unknown_kid_reloads_at_most_once_a_second(user, monkeypatch):
    login_token()
    clock = [5000.0]
    monkeypatch.setattr(keyring_module.time, "monotonic", lambda: clock[0])
    keyring.forget()
    keyring.keyset()

    with CaptureQueriesContext(connection) as flood:
        for _ in range(50):
            assert keyring.verifying_key("made-up-kid") is None
    assert len(flood.captured_queries) == 1

    clock[0] += keyring_module.UNKNOWN_KID_RELOAD_SECONDS
    with CaptureQueriesContext(connection) as later:
        keyring.verifying_key("another-made-up-kid")
    assert len(later.captured_queries) == 1


def test_a_key_published_elsewhere_is_accepted_at_once(user):
    """A token signed by a key this worker has not loaded (two rotations made by another node) is
    verified after one reload, without waiting RELOAD_SECONDS."""
    stale = keyring.keyset()
    keys_rotate()
    new = keys_rotate()
    token = login_token()
    assert jwt.get_unverified_header(token)["kid"] == new.kid and new.kid not in stale.verifying
    # This worker still holds the keys it loaded before the rotations, freshly.
    keyring._keyset, keyring._loaded_at = stale, time.monotonic()
    token_backend().forget()

    assert APIClient().get("/api/user", HTTP_AUTHORIZATION=token).status_code == 200


def test_retire_through_the_service_is_audited(db):
    served_jwks()
    keys_rotate()
    previous = SigningKey.objects.get(state="previous", algorithm="ES256")

    key_retire(kid=previous.kid)

    from accounts.audit.models import AuthEvent

    assert list(AuthEvent.objects.values_list("type", flat=True).order_by("created_at")) == ["keys_rotated", "key_retired"]


def test_after_a_secret_key_rotation_the_keys_move_to_the_new_key(user, settings):
    """Keys encrypted under the former SECRET_KEY are re-encrypted at the next reload, while it is
    still a fallback; once it is dropped, signing and verifying go on."""
    login_token()
    old_secret = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key-" + "n" * 50, [old_secret]
    keyring.reload()
    settings.SECRET_KEY_FALLBACKS = []
    keyring.forget()

    assert all(vault.is_current(key.private_key_encrypted) for key in SigningKey.objects.all())
    assert APIClient().get("/api/user", HTTP_AUTHORIZATION=login_token()).status_code == 200


def test_a_key_nobody_can_decrypt_any_more_still_verifies_and_a_rotation_replaces_it(user, settings):
    token = login_token()
    settings.SECRET_KEY = "a-new-secret-key-" + "m" * 50  # the old one dropped without a reload
    keyring.forget()
    token_backend().forget()

    assert APIClient().get("/api/user", HTTP_AUTHORIZATION=token).status_code == 200
    assert served_jwks()["keys"]
    keys_rotate()
    new = login_token()
    assert jwt.get_unverified_header(new)["kid"] not in {jwt.get_unverified_header(token)["kid"]}
    assert APIClient().get("/api/user", HTTP_AUTHORIZATION=new).status_code == 200


def test_reencrypt_secrets_moves_every_secret_to_the_new_key(user, settings):
    from io import StringIO

    from accounts.mfa.models import TOTPDevice

    login_token()
    TOTPDevice.objects.create(user=user, secret_encrypted=TOTPDevice.secret_encrypt("JBSWY3DPEHPK3PXP"))
    old_secret = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key-" + "r" * 50, [old_secret]
    out = StringIO()

    call_command("reencrypt_secrets", stdout=out)

    assert out.getvalue() == "re-encrypted 5, already current 0, unreadable 0\n"  # 4 keys, 1 TOTP secret
    settings.SECRET_KEY_FALLBACKS = []
    assert TOTPDevice.objects.get(user=user).secret() == "JBSWY3DPEHPK3PXP"
    assert all(vault.is_current(key.private_key_encrypted) for key in SigningKey.objects.all())


def test_reencrypt_secrets_names_what_no_key_can_read(user, settings):
    login_token()
    settings.SECRET_KEY = "a-new-secret-key-" + "u" * 50

    with pytest.raises(CommandError, match="signing key"):
        call_command("reencrypt_secrets", stdout=StringIO())


# --- 1. Tokens are never signed with SECRET_KEY ------------------------------------------------


def test_a_token_signed_with_secret_key_is_refused(user, token_for, settings):
    genuine = claims(token_for(user))
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(genuine).encode()).rstrip(b"=")
    signature = base64.urlsafe_b64encode(hmac.new(settings.SECRET_KEY.encode(), header + b"." + body, hashlib.sha256).digest())
    forged = b".".join([header, body, signature.rstrip(b"=")]).decode()

    assert client_with(forged).get("/api/user").status_code == 401


def test_the_published_keys_keep_their_own_cache_headers(db, settings):
    response = APIClient().get("/.well-known/jwks.json")

    assert response["Cache-Control"] == f"public, max-age={settings.JWKS_MAX_AGE}"


def api(token: str | None = None, **extra) -> APIClient:
    client = APIClient(**extra)
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=token)
    return client


# --- 6. Rotating SECRET_KEY as Django documents it takes the whole token service down ---------


def test_dropping_the_secret_key_fallback_after_a_rotation_keeps_tokens_working(user, token_for, settings):
    """Attacker: none is needed. This is an outage that the operator's routine SECRET_KEY rotation
    causes (e.g. after a leak). The private signing keys are encrypted under SECRET_KEY
    (core.vault). Nothing ever re-encrypts them (vault.reencrypt is never called), and even a
    signing-key rotation during the overlap window promotes the `next` key, encrypted under the old
    SECRET_KEY. Once the operator drops SECRET_KEY_FALLBACKS, keyring.reload() cannot decrypt the
    current key. Every login, every authenticated request and /.well-known/jwks.json answer 500,
    because verification also builds the full keyset, private key included.
    """
    old_key = settings.SECRET_KEY
    token = token_for(user)
    settings.SECRET_KEY = "rotated-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
    settings.SECRET_KEY_FALLBACKS = [old_key]
    keys_rotate()  # what a careful operator might do during the overlap window
    keyring.forget()
    token_backend().forget()
    assert api(token).get("/api/user").status_code == 200

    settings.SECRET_KEY_FALLBACKS = []  # the rotation ends, as Django's docs say it should
    keyring.forget()
    token_backend().forget()

    assert APIClient().get("/.well-known/jwks.json").status_code == 200
    assert login(APIClient()).status_code == 200


def test_retiring_a_key_whose_tokens_may_be_alive_needs_force(user, settings):
    settings.TOKEN_LIFETIME = 3600
    token = login_token()
    kid = jwt.get_unverified_header(token)["kid"]
    command("--rotate")

    with pytest.raises(CommandError, match=f"Not retired: tokens signed by {kid} may be alive until .*add --force"):
        command("--retire", kid)

    assert SigningKey.objects.get(kid=kid).state == "previous"
    assert APIClient().get("/api/user", HTTP_AUTHORIZATION=token).status_code == 200
    assert command("--retire", kid, "--force").splitlines()[0] == f"Retired: {kid}."
    assert SigningKey.objects.get(kid=kid).state == "retired"


def test_a_key_that_stopped_signing_longer_ago_than_the_token_lifetime_retires_without_force(db, settings):
    settings.TOKEN_LIFETIME = 3600
    served_jwks()
    keys_rotate()
    previous = SigningKey.objects.get(state="previous", algorithm="ES256")
    # It signed from a day ago until its successor took over, an hour and a minute ago: no token
    # it signed can be alive.
    SigningKey.objects.filter(pk=previous.pk).update(activated_at=timezone.now() - timedelta(days=1))
    SigningKey.objects.filter(state="current", algorithm="ES256").update(
        activated_at=timezone.now() - timedelta(seconds=3660)
    )

    assert command("--retire", previous.kid).splitlines()[0] == f"Retired: {previous.kid}."
    assert SigningKey.objects.get(pk=previous.pk).state == "retired"
