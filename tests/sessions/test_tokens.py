"""Unit tests of accounts.tokens.

Validation tokens: the two purposes never pass for each other, the tokens are URL-safe, they
expire after CONFIRMATION_MAX_AGE / RECOVERY_MAX_AGE, a recovery token dies with the state it was
made from (password, last login, email), a deleted user or a tampered token is refused, and no
token tells the database key. Auth tokens: the claims auth_token_issue writes, its lifetime inside
the session, and what auth_token_decode refuses.
"""

import re
from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from accounts.passwords import services as passwords
from accounts.account import registration
from accounts.sessions import tokens
from accounts.users import links as validation
from core.errors import InvalidToken, TokenInvalid
from accounts.users.models import User
from accounts.sessions.tokens import auth_token_decode, auth_token_issue
from accounts.users.links import Purpose, validation_token_make, validation_token_user
from tests.conftest import PASSWORD, claims, sign_in

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


def test_recovery_token_dies_when_the_user_logs_in(user):
    token = validation_token_make(user=user, purpose=Purpose.RECOVERY)

    User.objects.filter(pk=user.pk).update(last_login=timezone.now())

    with pytest.raises(InvalidToken):
        validation_token_user(token=token, purpose=Purpose.RECOVERY)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_validation_token_dies_when_the_email_changes(user, purpose):
    token = validation_token_make(user=user, purpose=purpose)

    user.email = "ann.new@example.com"
    user.save(update_fields=["email"])

    with pytest.raises(InvalidToken):
        validation_token_user(token=token, purpose=purpose)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_validation_token_names_the_public_id_not_the_database_key(user, purpose):
    token = validation_token_make(user=user, purpose=purpose)
    payload = signing.Signer(salt=purpose.salt, sep=".", algorithm="sha256").unsign_object(token)

    assert payload["u"] == user.public_id.hex
    assert str(user.pk) not in [str(value) for value in payload.values()]


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


def test_auth_token_claims(user, settings):
    session = sign_in(user, amr=("pwd", "otp"))

    payload = claims(auth_token_issue(session=session, user=user, now=session.created_at))

    now = int(session.created_at.timestamp())
    assert payload["iss"] == settings.TOKEN_ISSUER and payload["aud"] == "authserver"
    assert (payload["sub"], payload["sid"], payload["email"]) == (str(user.public_id), session.public_id, user.email)
    assert (payload["groups"], payload["amr"], payload["token_type"]) == ([], ["pwd", "otp"], "auth")
    assert (payload["iat"], payload["exp"]) == (now, now + settings.TOKEN_LIFETIME)


def test_auth_token_never_outlives_its_session(user, settings):
    session = sign_in(user)
    session.expires_at = session.created_at + timedelta(seconds=100)

    payload = claims(auth_token_issue(session=session, user=user, now=session.created_at))

    assert payload["exp"] == int(session.expires_at.timestamp())


def test_auth_token_ids_are_unique(user):
    session = sign_in(user)

    assert len({claims(auth_token_issue(session=session, user=user))["jti"] for _ in range(5)}) == 5


def test_auth_token_decode_accepts_a_fresh_token(user):
    session = sign_in(user)
    token = auth_token_decode(auth_token_issue(session=session, user=user))

    assert (token.session_id, token.subject) == (session.public_id, str(user.public_id))


@pytest.mark.parametrize("purpose", list(Purpose))
def test_auth_token_decode_refuses_a_validation_token(user, purpose):
    with pytest.raises(TokenInvalid):
        auth_token_decode(validation_token_make(user=user, purpose=purpose))


@pytest.mark.parametrize("raw", ["", "a", "a.b", "a.b.c", "é.é.é", "." * 3, "x" * 5000])
def test_auth_token_decode_refuses_what_is_no_token(db, raw):
    with pytest.raises(TokenInvalid):
        auth_token_decode(raw)


def test_auth_token_decode_refuses_an_expired_token(user):
    long_ago = timezone.now() - timedelta(days=1)
    session = sign_in(user, when=long_ago)

    with pytest.raises(TokenInvalid):
        auth_token_decode(auth_token_issue(session=session, user=user, now=long_ago))


# --- one token, one string: no padded, loosely spelled or twin signature passes ------------------

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _b64decode(segment: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64encode(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _s(token: str) -> int:
    return int.from_bytes(_b64decode(token.rpartition(".")[2])[32:], "big")


def test_es256_tokens_are_issued_with_the_low_s(user, settings):
    assert settings.TOKEN_ALGORITHM == "ES256"
    session = sign_in(user)
    # cryptography's ECDSA leaves s high half the time: 24 tokens all low by chance is 2**-24.
    for _ in range(24):
        token = auth_token_issue(session=session, user=user)
        assert _s(token) <= P256_ORDER // 2
        auth_token_decode(token)


def test_auth_token_decode_refuses_the_twin_signature(user):
    session = sign_in(user)
    for _ in range(4):
        token = auth_token_issue(session=session, user=user)
        head, _, signature = token.rpartition(".")
        raw = _b64decode(signature)
        twin = f"{head}.{_b64encode(raw[:32] + (P256_ORDER - int.from_bytes(raw[32:], 'big')).to_bytes(32, 'big'))}"
        outcomes = []
        for candidate in (token, twin):
            try:
                auth_token_decode(candidate)
                outcomes.append(True)
            except TokenInvalid:
                outcomes.append(False)
        assert outcomes == [True, False]


@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("padding", ["=", "==", "%3D"])
def test_auth_token_decode_refuses_padding(user, index, padding):
    session = sign_in(user)
    token = auth_token_issue(session=session, user=user)
    segments = token.split(".")
    segments[index] += padding
    with pytest.raises(TokenInvalid):
        auth_token_decode(".".join(segments))


def test_auth_token_decode_refuses_stray_bits_and_characters(user):
    session = sign_in(user)
    token = auth_token_issue(session=session, user=user)
    head, _, signature = token.rpartition(".")
    # 64 bytes are 86 characters, whose last 4 bits are not part of the signature: another last
    # character with the same first 2 bits decodes to the same bytes.
    last = B64.index(signature[-1])
    stray = B64[(last & 0b110000) | ((last + 1) & 0b001111)]
    assert _b64decode(signature[:-1] + stray) == _b64decode(signature)
    for variant in (f"{head}.{signature[:-1]}{stray}", f"{head}.{signature[:10]}!{signature[10:]}", f"{head}.{signature[:10]}\n{signature[10:]}"):
        with pytest.raises(TokenInvalid):
            auth_token_decode(variant)
