"""The two validation-token purposes: signed, URL-safe strings for the confirmation and recovery emails.

Each purpose has its own salt, so one never passes for the other, and each signs a fingerprint of
the user state it depends on: a recovery token dies when the password changes, which also makes it
single-use.
"""

import uuid
from datetime import datetime
from enum import Enum

from django.conf import settings
from django.core import signing
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.users.models import User
from core.errors import InvalidToken


def _now() -> datetime:
    """Return the current time; the one clock of this module, so tests can move it."""
    return timezone.now()


class Purpose(str, Enum):
    CONFIRMATION = "confirmation"
    RECOVERY = "recovery"

    @property
    def max_age(self) -> int:
        if self is Purpose.CONFIRMATION:
            return settings.CONFIRMATION_MAX_AGE
        return settings.RECOVERY_MAX_AGE

    @property
    def salt(self) -> str:
        return f"accounts.tokens.{self.value}"


def _fingerprint(user: User, purpose: Purpose) -> str:
    """Return a digest of the user state the token depends on; when it changes, the token dies."""
    if purpose is Purpose.CONFIRMATION:
        state = f"{user.pk}:{user.email.lower()}"
    else:
        # What Django's PasswordResetTokenGenerator binds: the token dies when the password
        # changes (so it works once), when the user logs in, and when the email changes.
        last_login = user.last_login.replace(microsecond=0, tzinfo=None).isoformat() if user.last_login else ""
        state = f"{user.pk}:{user.password}:{last_login}:{user.email_normalized}"
    return salted_hmac(purpose.salt, state, algorithm="sha256").hexdigest()[:32]


def _signer(purpose: Purpose) -> signing.Signer:
    return signing.Signer(salt=purpose.salt, sep=".", algorithm="sha256")


def validation_token_make(*, user: User, purpose: Purpose) -> str:
    """Return a URL-safe validation token for the user and purpose."""
    # The user's public id, not the database key: a link must not tell how many accounts exist.
    payload = {"u": user.public_id.hex, "t": int(_now().timestamp()), "s": _fingerprint(user, purpose)}
    return _signer(purpose).sign_object(payload)


def validation_token_user(*, token: str, purpose: Purpose) -> User:
    """Return the user a validation token was made for, or raise InvalidToken.

    Refused: a bad signature, another purpose, an expired token, a deleted user, and a token
    whose user state changed since it was made (a used or outdated recovery token).
    """
    try:
        payload = _signer(purpose).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError, UnicodeError) as exc:
        raise InvalidToken from exc
    if not isinstance(payload, dict):
        raise InvalidToken
    user_id, made_at, fingerprint = payload.get("u"), payload.get("t"), payload.get("s")
    if not (isinstance(user_id, str) and isinstance(made_at, int) and isinstance(fingerprint, str)):
        raise InvalidToken
    try:
        public_id = uuid.UUID(hex=user_id)
    except ValueError:
        raise InvalidToken from None
    # `t` is whole seconds, so a token checked at once has an age between 0 and 1.
    age = _now().timestamp() - made_at
    if not 0 <= age <= purpose.max_age:
        raise InvalidToken
    user = User.objects.filter(public_id=public_id).first()
    if user is None or not constant_time_compare(_fingerprint(user, purpose), fingerprint):
        raise InvalidToken
    return user


def validation_token_for_email(*, email: str, purpose: Purpose) -> str:
    """Return a link token for the account with this email (python manage.py generate_validation_token)."""
    user = User.objects.with_email(email).first()
    if user is None:
        raise User.DoesNotExist(f"No user with email {email!r}")
    return validation_token_make(user=user, purpose=purpose)
