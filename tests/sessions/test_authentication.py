"""Tests of accounts.sessions.authentication through the protected endpoints: the contract's token checks.

In order: no Authorization header → LoginRequired; anything that is not a valid auth token of an
existing user → TokenInvalid (forged, tampered, signed by a key not published or retired, another
algorithm, another issuer or audience, ...); disabled → AccountDisabled; deactivated →
AccountNotActive; a session that ended or expired → TokenInvalid. Every check runs on every
protected endpoint, each with a body that would succeed, and a refused request changes nothing.
"""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.sessions.models import Session
from accounts.users.models import User
from accounts.keys.services import key_retire, keys_rotate
from accounts.sessions.tokens import auth_token_issue
from accounts.keys.keyring import keyring
from accounts.users.links import Purpose, validation_token_make
from tests.conftest import PASSWORD, claims, mint_at, sign_in
from tests.support.contract import ACCOUNT_DISABLED, ACCOUNT_NOT_ACTIVE, LOGIN_REQUIRED, TOKEN_INVALID

NEW_PASSWORD = "a fresh staple battery"

ENDPOINTS = [
    pytest.param("get", "/api/authenticate", None, id="refresh"),
    pytest.param(
        "put",
        "/api/authenticate",
        {"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        id="change-password",
    ),
    pytest.param("delete", "/api/authenticate", {"password": PASSWORD}, id="delete-account"),
    pytest.param("get", "/api/user", None, id="profile"),
    pytest.param("put", "/api/user", {"name": "Bea Example"}, id="update-profile"),
    pytest.param(
        "patch", "/api/user", {"new_email": "bea@example.com", "password": PASSWORD}, id="change-email"
    ),
    pytest.param("delete", "/api/user", None, id="deactivate"),
]


def call(method: str, path: str, body: dict | None, authorization: str | None = None):
    """Send one request, with `authorization` as the Authorization header when given."""
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


def genuine_claims(user: User) -> dict:
    """Return the payload of a genuine auth token of the user (a new session)."""
    return claims(sign_in_token(user))


def sign_in_token(user: User) -> str:
    session = sign_in(user)
    return auth_token_issue(session=session, user=user, now=session.created_at)


def current_key():
    """Return the private key that signs, and its kid."""
    keys = keyring.keyset()
    return keys.private_key, keys.signing_kid


def b64(data, compact: bool = False) -> str:
    raw = data if isinstance(data, bytes) else (json.dumps(data, separators=(",", ":")) if compact else json.dumps(data)).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def assert_untouched(user: User) -> None:
    """Assert that a refused request changed nothing of the user."""
    fresh = User.objects.get(pk=user.pk)
    assert fresh.email == user.email
    assert fresh.name == user.name
    assert fresh.check_password(PASSWORD)
    assert fresh.deactivated_at == user.deactivated_at


def assert_token_invalid(response, member) -> None:
    """401 TOKEN_INVALID with a Bearer challenge, and the account untouched."""
    assert response.status_code == 401
    assert response.json() == TOKEN_INVALID
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_untouched(member)


@pytest.fixture
def member(user_factory) -> User:
    return user_factory(email="ann@example.com")


# No header


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_no_header_is_login_required(member, method, path, body):
    response = call(method, path, body)

    assert response.status_code == 401
    assert response.json() == LOGIN_REQUIRED
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_untouched(member)


# Good tokens


@pytest.mark.parametrize(
    "form",
    ["{}", "Bearer {}", "bearer {}", "  Bearer   {}  "],
    ids=["raw", "bearer", "bearer-lowercase", "padded"],
)
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_valid_token_is_accepted_raw_or_bearer(member, token_for, method, path, body, form):
    response = call(method, path, body, form.format(token_for(member)))

    assert response.status_code == 200, response.json()


# Bad tokens: each builder returns an Authorization header for `member`


def _signed_with(private_key, algorithm: str, kid: str | None, **change):
    def build(member, make_user):
        payload = {key: value for key, value in (genuine_claims(member) | change).items() if value is not None}
        headers = {"kid": kid} if kid is not None else None
        return jwt.encode(payload, private_key, algorithm=algorithm, headers=headers)

    return build


def _forged(**change):
    """A token signed with the real current key whose payload this server did not write."""

    def build(member, make_user):
        key, kid = current_key()
        return _signed_with(key, "ES256", kid, **change)(member, make_user)

    return build


def _key_not_in_the_set(member, make_user):
    return _signed_with(ec.generate_private_key(ec.SECP256R1()), "ES256", current_key()[1])(member, make_user)


def _unknown_kid(member, make_user):
    return _signed_with(ec.generate_private_key(ec.SECP256R1()), "ES256", "no-such-key")(member, make_user)


def _no_kid(member, make_user):
    return _signed_with(current_key()[0], "ES256", None)(member, make_user)


def _alg_none(member, make_user):
    return jwt.encode(genuine_claims(member), None, algorithm="none", headers={"kid": current_key()[1]})


def _alg_none_with_signature(member, make_user):
    header, payload, signature = sign_in_token(member).split(".")
    return ".".join([b64({"alg": "none", "typ": "JWT", "kid": current_key()[1]}), payload, signature])


def _hs256_with_the_public_key(member, make_user):
    """Key confusion: HMAC-signed with the published public key (PEM and JWK JSON) as the secret."""
    key, kid = current_key()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = b64({"alg": "HS256", "typ": "JWT", "kid": kid}, compact=True)
    signing_input = f"{head}.{b64(genuine_claims(member))}"
    digest = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(digest)}"


def _hs256_with_the_jwk(member, make_user):
    key, kid = current_key()
    jwk = json.dumps(keyring.keyset().jwks[0]).encode()
    head = b64({"alg": "HS256", "typ": "JWT", "kid": kid}, compact=True)
    signing_input = f"{head}.{b64(genuine_claims(member))}"
    return f"{signing_input}.{b64(hmac.new(jwk, signing_input.encode(), hashlib.sha256).digest())}"


def _other_algorithm(algorithm, key_factory):
    def build(member, make_user):
        return _signed_with(key_factory(), algorithm, current_key()[1])(member, make_user)

    return build


def _tampered(**change):
    """The signature of a genuine token on a payload changed afterwards."""

    def build(member, make_user):
        token = sign_in_token(member)
        header, _, signature = token.split(".")
        return ".".join([header, b64(claims(token) | change), signature])

    return build


def _tampered_sub(member, make_user):
    other = make_user()
    return _tampered(sub=str(other.public_id))(member, make_user)


def _session_of_another_user(member, make_user):
    # Signed by the server, but the sid names another user's session: the sub does not match.
    other_session = sign_in(make_user())
    return _forged(sid=other_session.public_id)(member, make_user)


def _tampered_body(body: bytes):
    def build(member, make_user):
        header, _, signature = sign_in_token(member).split(".")
        return ".".join([header, b64(body), signature])

    return build


def _padded_signature(member, make_user):
    return sign_in_token(member) + "="


def _extra_segment(member, make_user):
    return sign_in_token(member) + ".AAAA"


def _non_ascii(member, make_user):
    header, payload, signature = sign_in_token(member).split(".")
    return ".".join([header, payload, signature[:-1] + "é"])


def _validation_token(purpose):
    def build(member, make_user):
        return validation_token_make(user=member, purpose=purpose)

    return build


def _expired(member, make_user):
    lifetime = django_settings.TOKEN_LIFETIME
    return mint_at(member, timezone.now() - timedelta(seconds=lifetime + 60))


def _expired_bearer(member, make_user):
    return "Bearer " + _expired(member, make_user)


def _deleted_user(member, make_user):
    other = make_user()
    token = sign_in_token(other)
    other.delete()
    return token


def _retired_key(member, make_user):
    token = sign_in_token(member)
    keys_rotate()  # the key that signed it is previous now: still accepted, until retired
    key_retire(kid=jwt.get_unverified_header(token)["kid"])
    return token


BAD_HEADERS = {
    "empty": lambda member, make_user: "",
    "spaces": lambda member, make_user: "   ",
    "bearer-without-token": lambda member, make_user: "Bearer",
    "bearer-space": lambda member, make_user: "Bearer ",
    "bearer-bearer": lambda member, make_user: "Bearer Bearer",
    "garbage": lambda member, make_user: "not-a-token",
    "bearer-garbage": lambda member, make_user: "Bearer not.a.token",
    "other-scheme": lambda member, make_user: "Basic " + base64.b64encode(b"ann@example.com:pw").decode(),
    "key-not-in-the-set": _key_not_in_the_set,
    "unknown-kid": _unknown_kid,
    "no-kid": _no_kid,
    "retired-key": _retired_key,
    "alg-none": _alg_none,
    "alg-none-header-on-signed-token": _alg_none_with_signature,
    "hs256-with-the-public-key": _hs256_with_the_public_key,
    "hs256-with-the-jwk": _hs256_with_the_jwk,
    "es384": _other_algorithm("ES384", lambda: ec.generate_private_key(ec.SECP384R1())),
    "rs256-own-key": _other_algorithm("RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    "payload-not-json": _tampered_body(b"not json"),
    "payload-a-list": _tampered_body(b"[1, 2, 3]"),
    "exp-a-string": _forged(exp="9999999999"),
    "exp-a-boolean": _forged(exp=True),
    "exp-out-of-range": _forged(exp=10**20),
    "signature-padded": _padded_signature,
    "extra-segment": _extra_segment,
    "non-ascii": _non_ascii,
    "tampered-sub": _tampered_sub,
    "tampered-expiry": lambda member, make_user: _tampered(exp=int(timezone.now().timestamp()) + 86_400)(member, make_user),
    "tampered-groups": _tampered(groups=["admins"]),
    "session-of-another-user": _session_of_another_user,
    "unknown-session": _forged(sid="no-such-session"),
    "other-issuer": _forged(iss="https://evil.example"),
    "other-audience": _forged(aud="another-service"),
    "type-refresh": _forged(token_type="refresh"),
    "no-type": _forged(token_type=None),
    "no-sub": _forged(sub=None),
    "no-sid": _forged(sid=None),
    "sid-a-number": _forged(sid=12),
    "no-exp": _forged(exp=None),
    "no-jti": _forged(jti=None),
    "no-amr": _forged(amr=None),
    "amr-a-string": _forged(amr="pwd"),
    "issued-in-the-future": _forged(iat=int(timezone.now().timestamp()) + 3600),
    "confirmation-token": _validation_token(Purpose.CONFIRMATION),
    "recovery-token": _validation_token(Purpose.RECOVERY),
    "expired": _expired,
    "expired-bearer": _expired_bearer,
    "deleted-user": _deleted_user,
}


@pytest.mark.parametrize("build", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_bad_token_is_token_invalid(member, user_factory, method, path, body, build):
    response = call(method, path, body, build(member, user_factory))

    assert_token_invalid(response, member)


# Account state and revocation


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_disabled_user_is_account_disabled(member, token_for, method, path, body):
    token = token_for(member)
    User.objects.filter(pk=member.pk).update(is_active=False)
    member.refresh_from_db()

    response = call(method, path, body, token)

    assert response.status_code == 403
    assert response.json() == ACCOUNT_DISABLED
    assert_untouched(member)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_deactivated_user_is_account_not_active(user_factory, token_for, method, path, body):
    member = user_factory(deactivated=True)
    token = token_for(member)

    response = call(method, path, body, token)

    assert response.status_code == 401
    assert response.json() == ACCOUNT_NOT_ACTIVE
    assert_untouched(member)


@pytest.mark.parametrize("reason", [choice for choice, _ in Session.EndReason.choices])
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_token_of_an_ended_session_is_token_invalid(member, token_for, method, path, body, reason):
    token = token_for(member)
    Session.objects.filter(user=member).update(ended_at=timezone.now(), end_reason=reason)

    response = call(method, path, body, token)

    assert_token_invalid(response, member)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_token_of_an_expired_session_is_token_invalid(member, token_for, method, path, body):
    # The token itself is still within its lifetime; its session's refresh window is over.
    token = token_for(member)
    Session.objects.filter(user=member).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = call(method, path, body, token)

    assert_token_invalid(response, member)


def test_ending_one_session_leaves_the_others_working(member, token_for):
    first, second = token_for(member), token_for(member)
    Session.objects.filter(public_id=claims(first)["sid"]).update(ended_at=timezone.now(), end_reason="revoked")

    assert call("get", "/api/user", None, first).status_code == 401
    assert call("get", "/api/user", None, second).status_code == 200


@pytest.mark.parametrize(
    ("disabled", "deactivated", "revoked", "expected"),
    [
        pytest.param(True, False, True, ACCOUNT_DISABLED, id="disabled-before-revoked"),
        pytest.param(True, True, False, ACCOUNT_DISABLED, id="disabled-before-deactivated"),
        pytest.param(True, True, True, ACCOUNT_DISABLED, id="disabled-before-all"),
        pytest.param(False, True, True, ACCOUNT_NOT_ACTIVE, id="deactivated-before-revoked"),
    ],
)
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_state_checks_run_in_contract_order(
    member, token_for, method, path, body, disabled, deactivated, revoked, expected
):
    now = timezone.now()
    token = token_for(member)
    User.objects.filter(pk=member.pk).update(is_active=not disabled, deactivated_at=now if deactivated else None)
    if revoked:
        Session.objects.filter(user=member).update(ended_at=now, end_reason="staff")
    member.refresh_from_db()

    response = call(method, path, body, token)

    assert response.status_code == expected["status"]
    assert response.json() == expected
    assert_untouched(member)


@pytest.mark.parametrize("state", ["disabled", "deactivated"])
@pytest.mark.parametrize("bad", ["expired", "key-not-in-the-set", "type-refresh", "unknown-session"])
def test_token_validity_is_checked_before_account_state(user_factory, state, bad):
    member = user_factory(**{state: True})

    response = call("get", "/api/user", None, BAD_HEADERS[bad](member, user_factory))

    assert response.status_code == 401
    assert response.json() == TOKEN_INVALID


def test_deactivation_through_the_api_answers_account_not_active(member, token_for):
    # Deactivating ends the sessions too; the state check comes first and says why.
    token = token_for(member)
    assert call("delete", "/api/user", None, token).status_code == 200

    response = call("get", "/api/user", None, token)

    assert response.status_code == 401
    assert response.json() == ACCOUNT_NOT_ACTIVE


def test_a_token_stays_valid_across_a_rotation_until_its_key_is_retired(member, token_for):
    token = token_for(member)
    keys_rotate()
    assert call("get", "/api/user", None, token).status_code == 200

    key_retire(kid=jwt.get_unverified_header(token)["kid"])

    response = call("get", "/api/user", None, token)
    assert response.status_code == 401
    assert response.json() == TOKEN_INVALID


def test_a_verified_token_is_still_refused_once_it_expires(member, monkeypatch):
    # The per-worker memo of verified tokens must not outlive a token's exp.
    token = mint_at(member, timezone.now() - timedelta(seconds=django_settings.TOKEN_LIFETIME - 2))
    assert call("get", "/api/user", None, token).status_code == 200

    later = datetime.now(UTC) + timedelta(seconds=5)
    monkeypatch.setattr("rest_framework_simplejwt.tokens.aware_utcnow", lambda: later)

    response = call("get", "/api/user", None, token)
    assert response.status_code == 401
    assert response.json() == TOKEN_INVALID
