"""Tests of accounts.authentication through the protected endpoints: the contract's token checks.

In order: no Authorization header → LoginRequired; anything that is not a valid auth token of an
existing user → TokenInvalid; disabled → AccountDisabled; deactivated → AccountNotActive; issued
before the user's tokens_valid_after → TokenInvalid. Every check runs on every protected endpoint,
each with a body that would succeed, and a refused request changes nothing.
"""

import base64
import hashlib
import hmac
import json
import warnings
from datetime import timedelta

import jwt
import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from jwt.warnings import InsecureKeyLengthWarning
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tokens.auth import auth_token_issue
from accounts.tokens.validation import Purpose, validation_token_make
from tests.conftest import PASSWORD, mint_at
from tests.contract import ACCOUNT_DISABLED, ACCOUNT_NOT_ACTIVE, LOGIN_REQUIRED, TOKEN_INVALID

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


def signing_key() -> str:
    return django_settings.SIMPLE_JWT["SIGNING_KEY"]


def genuine_claims(user: User) -> dict:
    """Return the payload of a genuine auth token of the user."""
    token = auth_token_issue(user=user, remember=False)
    return jwt.decode(token, signing_key(), algorithms=["HS256"])


def b64(data: dict, compact: bool = False) -> str:
    text = json.dumps(data, separators=(",", ":")) if compact else json.dumps(data)
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def assert_untouched(user: User) -> None:
    """Assert that a refused request changed nothing of the user."""
    fresh = User.objects.get(pk=user.pk)
    assert fresh.email == user.email
    assert fresh.name == user.name
    assert fresh.check_password(PASSWORD)
    assert fresh.deactivated_at == user.deactivated_at
    assert fresh.tokens_valid_after == user.tokens_valid_after


@pytest.fixture
def member(user_factory) -> User:
    """An active user whose tokens are revoked only up to a day ago, so any token minted since counts."""
    return user_factory(email="ann@example.com", tokens_valid_after=timezone.now() - timedelta(days=1))


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


def _other_key(member, make_user):
    return jwt.encode(genuine_claims(member), "another-signing-key-" + "x" * 40, algorithm="HS256")


def _alg_none(member, make_user):
    return jwt.encode(genuine_claims(member), None, algorithm="none")


def _alg_none_with_signature(member, make_user):
    header, payload, signature = auth_token_issue(user=member, remember=False).split(".")
    return ".".join([b64({"alg": "none", "typ": "JWT"}), payload, signature])


def _other_algorithm(algorithm):
    def build(member, make_user):
        with warnings.catch_warnings():
            # The development key is short for HS512; the point here is the algorithm.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return jwt.encode(genuine_claims(member), signing_key(), algorithm=algorithm)

    return build


def _tampered_user(member, make_user):
    # Keep the signature of member's token and point its payload at another (existing) user.
    other = make_user(tokens_valid_after=timezone.now() - timedelta(days=1))
    header, payload, signature = auth_token_issue(user=member, remember=False).split(".")
    claims = genuine_claims(member) | {"user_id": str(other.pk)}
    return ".".join([header, b64(claims), signature])


def _tampered_expiry(member, make_user):
    header, payload, signature = auth_token_issue(user=member, remember=False).split(".")
    claims = genuine_claims(member)
    claims["exp"] += 86_400
    return ".".join([header, b64(claims), signature])


def _forged(**change):
    """A token signed with the real key whose payload this server did not write."""

    def build(member, make_user):
        claims = {key: value for key, value in (genuine_claims(member) | change).items() if value is not None}
        return jwt.encode(claims, signing_key(), algorithm="HS256")

    return build


def _signed(header: dict | None = None, body: bytes | None = None, claims_change: dict | None = None):
    """A token signed with the real key whose header or payload bytes this server did not write."""

    def build(member, make_user):
        head = b64(header or {"alg": "HS256", "typ": "JWT"}, compact=True)
        payload = body if body is not None else json.dumps(genuine_claims(member) | (claims_change or {})).encode()
        signing_input = f"{head}.{base64.urlsafe_b64encode(payload).rstrip(b'=').decode()}"
        digest = hmac.new(signing_key().encode(), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"

    return build


def _padded_signature(member, make_user):
    return auth_token_issue(user=member, remember=False) + "="


def _extra_segment(member, make_user):
    return auth_token_issue(user=member, remember=False) + ".AAAA"


def _non_ascii(member, make_user):
    header, payload, signature = auth_token_issue(user=member, remember=False).split(".")
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
    other = make_user(tokens_valid_after=timezone.now() - timedelta(days=1))
    token = auth_token_issue(user=other, remember=False)
    other.delete()
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
    "bad-signature": _other_key,
    "alg-none": _alg_none,
    "alg-none-header-on-signed-token": _alg_none_with_signature,
    "hs512": _other_algorithm("HS512"),
    "hs384": _other_algorithm("HS384"),
    "header-keys-reordered": _signed(header={"typ": "JWT", "alg": "HS256"}),
    "header-with-kid": _signed(header={"alg": "HS256", "kid": "1", "typ": "JWT"}),
    "header-without-typ": _signed(header={"alg": "HS256"}),
    "payload-not-json": _signed(body=b"not json"),
    "payload-a-list": _signed(body=b"[1, 2, 3]"),
    "exp-a-string": _signed(claims_change={"exp": "9999999999"}),
    "exp-a-boolean": _signed(claims_change={"exp": True}),
    "exp-a-float": _signed(claims_change={"exp": 9999999999.5}),
    "exp-out-of-range": _signed(claims_change={"exp": 10**20}),
    "signature-padded": _padded_signature,
    "extra-segment": _extra_segment,
    "non-ascii": _non_ascii,
    "tampered-user-id": _tampered_user,
    "tampered-expiry": _tampered_expiry,
    "type-refresh": _forged(token_type="refresh"),
    "type-access": _forged(token_type="access"),
    "no-type": _forged(token_type=None),
    "no-user-id": _forged(user_id=None),
    "no-exp": _forged(exp=None),
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

    assert response.status_code == 401
    assert response.json() == TOKEN_INVALID
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_untouched(member)


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
def test_deactivated_user_is_account_not_active(user_factory, method, path, body):
    member = user_factory(deactivated=True, tokens_valid_after=timezone.now() - timedelta(days=1))
    token = auth_token_issue(user=member, remember=False)

    response = call(method, path, body, token)

    assert response.status_code == 401
    assert response.json() == ACCOUNT_NOT_ACTIVE
    assert_untouched(member)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_token_issued_before_tokens_valid_after_is_token_invalid(member, method, path, body):
    now = timezone.now()
    token = mint_at(member, now - timedelta(seconds=60))
    User.objects.filter(pk=member.pk).update(tokens_valid_after=now - timedelta(seconds=30))
    member.refresh_from_db()

    response = call(method, path, body, token)

    assert response.status_code == 401
    assert response.json() == TOKEN_INVALID
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_untouched(member)


@pytest.mark.parametrize(
    "margin",
    [timedelta(0), timedelta(microseconds=1), timedelta(seconds=30)],
    ids=["same-instant", "1us-after", "30s-after"],
)
def test_token_issued_at_or_after_tokens_valid_after_is_accepted(member, margin):
    issued = timezone.now().replace(microsecond=654_321) - timedelta(seconds=60)
    User.objects.filter(pk=member.pk).update(tokens_valid_after=issued - margin)

    response = call("get", "/api/user", None, mint_at(member, issued))

    assert response.status_code == 200
    assert response.json()["email"] == member.email


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
    member, method, path, body, disabled, deactivated, revoked, expected
):
    now = timezone.now()
    token = mint_at(member, now - timedelta(seconds=60))
    User.objects.filter(pk=member.pk).update(
        is_active=not disabled,
        deactivated_at=now if deactivated else None,
        tokens_valid_after=now if revoked else member.tokens_valid_after,
    )
    member.refresh_from_db()

    response = call(method, path, body, token)

    assert response.status_code == expected["status"]
    assert response.json() == expected
    assert_untouched(member)


@pytest.mark.parametrize("state", ["disabled", "deactivated"])
@pytest.mark.parametrize("bad", ["expired", "bad-signature", "type-refresh"])
def test_token_validity_is_checked_before_account_state(user_factory, state, bad):
    member = user_factory(**{state: True}, tokens_valid_after=timezone.now() - timedelta(days=1))

    response = call("get", "/api/user", None, BAD_HEADERS[bad](member, user_factory))

    assert response.status_code == 401
    assert response.json() == TOKEN_INVALID


def test_deactivation_through_the_api_answers_account_not_active(member, token_for):
    # Deactivating moves tokens_valid_after too; the state check comes first and says why.
    token = token_for(member)
    assert call("delete", "/api/user", None, token).status_code == 200

    response = call("get", "/api/user", None, token)

    assert response.status_code == 401
    assert response.json() == ACCOUNT_NOT_ACTIVE

