"""Unit tests of accounts.tokens.

Validation tokens: the two purposes never pass for each other, the tokens are URL-safe, they
expire after CONFIRMATION_MAX_AGE / RECOVERY_MAX_AGE, a recovery token dies with the state it was
made from (password, tokens_valid_after), and a deleted user or a tampered token is refused.
Auth tokens: the claims auth_token_issue and auth_token_refresh write (lifetime, refresh window,
remember) and the tokens auth_token_decode refuses.
"""

import re
from datetime import timedelta

import jwt
import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from accounts.services import passwords, registration
from accounts.tokens import auth as tokens
from accounts.tokens import validation
from accounts.errors import InvalidToken, TokenInvalid
from accounts.models import User
from accounts.tokens.auth import auth_token_decode, auth_token_issue, auth_token_refresh
from accounts.tokens.validation import Purpose, validation_token_make, validation_token_user
from tests.conftest import PASSWORD, claims

NEW_PASSWORD = "a fresh staple battery"
# RFC 3986 unreserved characters: what a token may hold to sit in a URL path unescaped.
URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")


@pytest.fixture
def clock(monkeypatch):
    """Return a function that sets the clock of accounts.tokens to a given instant."""

    def set_to(when):
        monkeypatch.setattr(tokens, "_now", lambda: when)
        monkeypatch.setattr(validation, "_now", lambda: when)

    return set_to


@pytest.fixture
def start():
    """A whole-second instant, so that token ages are exact."""
    return timezone.now().replace(microsecond=0)


# Validation tokens: purposes


@pytest.mark.parametrize("purpose", list(Purpose))
def test_validation_token_names_its_user(user, purpose):
    token = validation_token_make(user=user, purpose=purpose)

    assert validation_token_user(token=token, purpose=purpose) == user


@pytest.mark.parametrize(
    ("made_for", "used_for"),
    [(Purpose.CONFIRMATION, Purpose.RECOVERY), (Purpose.RECOVERY, Purpose.CONFIRMATION)],
)
def test_validation_token_purposes_are_not_interchangeable(user, made_for, used_for):
    token = validation_token_make(user=user, purpose=made_for)

    with pytest.raises(InvalidToken):
        validation_token_user(token=token, purpose=used_for)


def test_confirmation_token_does_not_reset_a_password(user):
    token = validation_token_make(user=user, purpose=Purpose.CONFIRMATION)

    with pytest.raises(InvalidToken):
        passwords.password_reset(token=token, new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)

    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not user.check_password(NEW_PASSWORD)


def test_recovery_token_does_not_confirm_an_account(user_factory):
    user = user_factory(confirmed=False)
    token = validation_token_make(user=user, purpose=Purpose.RECOVERY)

    with pytest.raises(InvalidToken):
        registration.account_confirm(token=token)

    user.refresh_from_db()
    assert user.confirmed_at is None


@pytest.mark.parametrize("purpose", list(Purpose))
@pytest.mark.parametrize(
    "email",
    ["ann@example.com", "O'Brien+tag/x=y@exa-mple.co.uk", "zoë@example.com", "a" * 64 + "@example.com"],
)
def test_validation_token_is_url_safe(user_factory, purpose, email):
    user = user_factory(email=email, name="Zoë O'Brien & <Co>")

    token = validation_token_make(user=user, purpose=purpose)

    assert URL_SAFE.fullmatch(token), token


# Validation tokens: expiry


@pytest.mark.parametrize(
    ("purpose", "setting"),
    [(Purpose.CONFIRMATION, "CONFIRMATION_MAX_AGE"), (Purpose.RECOVERY, "RECOVERY_MAX_AGE")],
)
@pytest.mark.parametrize(("age", "valid"), [(0, True), (99, True), (101, False), (86_400 * 2, False)])
def test_validation_token_expires_after_its_max_age(
    user, settings, clock, start, purpose, setting, age, valid
):
    setattr(settings, setting, 100)
    clock(start)
    token = validation_token_make(user=user, purpose=purpose)

    clock(start + timedelta(seconds=age))

    if valid:
        assert validation_token_user(token=token, purpose=purpose) == user
    else:
        with pytest.raises(InvalidToken):
            validation_token_user(token=token, purpose=purpose)


def test_validation_token_lifetimes_are_separate(user, settings, clock, start):
    settings.CONFIRMATION_MAX_AGE = 1000
    settings.RECOVERY_MAX_AGE = 100
    clock(start)
    confirmation = validation_token_make(user=user, purpose=Purpose.CONFIRMATION)
    recovery = validation_token_make(user=user, purpose=Purpose.RECOVERY)

    clock(start + timedelta(seconds=500))

    assert validation_token_user(token=confirmation, purpose=Purpose.CONFIRMATION) == user
    with pytest.raises(InvalidToken):
        validation_token_user(token=recovery, purpose=Purpose.RECOVERY)


# Validation tokens: state


def test_recovery_token_dies_when_the_password_changes(user):
    token = validation_token_make(user=user, purpose=Purpose.RECOVERY)

    user.set_password(NEW_PASSWORD)
    user.save(update_fields=["password"])

    with pytest.raises(InvalidToken):
        validation_token_user(token=token, purpose=Purpose.RECOVERY)


def test_recovery_token_dies_when_tokens_valid_after_moves(user):
    token = validation_token_make(user=user, purpose=Purpose.RECOVERY)

    User.objects.filter(pk=user.pk).update(tokens_valid_after=user.tokens_valid_after + timedelta(seconds=1))

    with pytest.raises(InvalidToken):
        validation_token_user(token=token, purpose=Purpose.RECOVERY)


def test_recovery_token_works_once(user):
    token = validation_token_make(user=user, purpose=Purpose.RECOVERY)
    passwords.password_reset(token=token, new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)

    with pytest.raises(InvalidToken):
        passwords.password_reset(token=token, new_password=NEW_PASSWORD + "!", confirm=NEW_PASSWORD + "!")

    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_validation_token_of_a_deleted_user_is_invalid(user_factory, purpose):
    user = user_factory()
    token = validation_token_make(user=user, purpose=purpose)
    user.delete()

    with pytest.raises(InvalidToken):
        validation_token_user(token=token, purpose=purpose)


def _flip(char: str) -> str:
    return "A" if char != "A" else "B"


TAMPERINGS = {
    "last-signature-char": lambda token: token[:-1] + _flip(token[-1]),
    "first-payload-char": lambda token: _flip(token[0]) + token[1:],
    "truncated": lambda token: token[:-5],
    "signature-removed": lambda token: token.rsplit(".", 1)[0],
    "extra-suffix": lambda token: token + "x",
    "empty": lambda token: "",
    "garbage": lambda token: "not-a-token",
    "dots-only": lambda token: "..",
}


@pytest.mark.parametrize("purpose", list(Purpose))
@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_tampered_validation_token_is_invalid(user, purpose, tamper):
    token = tamper(validation_token_make(user=user, purpose=purpose))

    with pytest.raises(InvalidToken):
        validation_token_user(token=token, purpose=purpose)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_validation_token_signed_with_another_key_is_invalid(user, settings, purpose):
    real_key = settings.SECRET_KEY
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    token = validation_token_make(user=user, purpose=purpose)
    settings.SECRET_KEY = real_key

    with pytest.raises(InvalidToken):
        validation_token_user(token=token, purpose=purpose)


# Auth tokens


@pytest.mark.parametrize(
    ("remember", "window"), [(False, "TOKEN_REFRESH_LIFETIME"), (True, "TOKEN_REMEMBER_LIFETIME")]
)
def test_auth_token_issue_claims(user, settings, remember, window):
    settings.TOKEN_LIFETIME = 600
    settings.TOKEN_REFRESH_LIFETIME = 4_000
    settings.TOKEN_REMEMBER_LIFETIME = 9_000

    payload = claims(auth_token_issue(user=user, remember=remember))

    assert payload["token_type"] == "auth"
    assert payload["user_id"] == str(user.pk)
    assert payload["remember"] is remember
    assert payload["exp"] == int(payload["iat"]) + 600
    assert payload["refresh_exp"] == int(payload["iat"]) + getattr(settings, window)
    assert payload["jti"]


def test_auth_token_never_outlives_its_refresh_window(user, settings):
    settings.TOKEN_LIFETIME = 5_000
    settings.TOKEN_REFRESH_LIFETIME = 100

    payload = claims(auth_token_issue(user=user, remember=False))

    assert payload["exp"] == payload["refresh_exp"] == int(payload["iat"]) + 100


def test_auth_token_iat_is_the_given_instant(user):
    now = timezone.now().replace(microsecond=123_456)

    payload = claims(auth_token_issue(user=user, remember=False, now=now))

    # Microseconds kept: iat is compared exactly with tokens_valid_after.
    assert payload["iat"] == now.timestamp()


def test_auth_token_ids_are_unique(user):
    assert claims(auth_token_issue(user=user, remember=False))["jti"] != claims(
        auth_token_issue(user=user, remember=False)
    )["jti"]


@pytest.mark.parametrize("remember", [False, True])
def test_auth_token_refresh_keeps_the_login_window(user, settings, clock, start, remember):
    settings.TOKEN_LIFETIME = 600
    settings.TOKEN_REFRESH_LIFETIME = 4_000
    settings.TOKEN_REMEMBER_LIFETIME = 9_000
    clock(start)
    first = auth_token_issue(user=user, remember=remember)
    clock(start + timedelta(seconds=500))

    second = claims(auth_token_refresh(user=user, token=auth_token_decode(first)))

    assert second["refresh_exp"] == claims(first)["refresh_exp"]
    assert second["remember"] is remember
    assert second["iat"] == (start + timedelta(seconds=500)).timestamp()
    assert second["exp"] == int(second["iat"]) + 600


def test_auth_token_refresh_stops_at_the_window_end(user, settings, clock, start):
    settings.TOKEN_LIFETIME = 600
    settings.TOKEN_REFRESH_LIFETIME = 1_000
    clock(start - timedelta(seconds=500))
    first = auth_token_issue(user=user, remember=False)
    clock(start)

    second = claims(auth_token_refresh(user=user, token=auth_token_decode(first)))

    # The window ends 500 seconds from now: the new token ends with it, not 600 seconds from now.
    assert second["exp"] == second["refresh_exp"] == int(start.timestamp()) + 500


def test_auth_token_decode_accepts_a_fresh_token(user):
    token = auth_token_decode(auth_token_issue(user=user, remember=False))

    assert token.user_id == user.pk


def test_auth_token_decode_refuses_an_expired_token(user, settings, clock):
    settings.TOKEN_LIFETIME = 600
    clock(timezone.now() - timedelta(seconds=601))
    token = auth_token_issue(user=user, remember=False)

    with pytest.raises(TokenInvalid):
        auth_token_decode(token)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_auth_token_decode_refuses_a_validation_token(user, purpose):
    with pytest.raises(TokenInvalid):
        auth_token_decode(validation_token_make(user=user, purpose=purpose))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"token_type": "refresh"}, id="other-type"),
        pytest.param({"token_type": None}, id="no-type"),
        pytest.param({"user_id": None}, id="no-user-id"),
        pytest.param({"user_id": "1 OR 1=1"}, id="non-numeric-user-id"),
        pytest.param({"refresh_exp": None}, id="no-refresh-exp"),
        pytest.param({"remember": None}, id="no-remember"),
        pytest.param({"jti": None}, id="no-jti"),
    ],
)
def test_auth_token_decode_refuses_a_payload_it_did_not_write(user, change):
    payload = claims(auth_token_issue(user=user, remember=False))
    payload.update(change)
    payload = {key: value for key, value in payload.items() if value is not None}
    forged = jwt.encode(payload, django_settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")

    with pytest.raises(TokenInvalid):
        auth_token_decode(forged)


def test_auth_tokens_are_interchangeable_with_pyjwt(user):
    """Tokens this server writes are standard HS256 JWTs, and so are the ones it accepts.

    PyJWT writes the same header bytes, so tokens issued before the server checked its own
    signatures (when simplejwt's PyJWT backend did) stay valid.
    """
    issued = auth_token_issue(user=user, remember=False)
    key = django_settings.SIMPLE_JWT["SIGNING_KEY"]
    assert jwt.get_unverified_header(issued) == {"alg": "HS256", "typ": "JWT"}

    written_by_pyjwt = jwt.encode(claims(issued), key, algorithm="HS256")

    assert written_by_pyjwt.split(".")[0] == issued.split(".")[0]
    assert auth_token_decode(written_by_pyjwt).payload == claims(issued)


@pytest.mark.parametrize("header", ["Bearer", "", "..", "a.b", "a.b.c.d", "é.é.é", "\x00.\x00.\x00"])
def test_auth_token_decode_refuses_what_is_no_token(header):
    with pytest.raises(TokenInvalid):
        auth_token_decode(header)
