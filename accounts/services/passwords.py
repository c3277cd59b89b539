"""Passwords: change, recovery by email, reset, and staff setting one."""

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts import audit, emails
from accounts.errors import (
    AccountDisabled,
    InvalidCredentials,
    InvalidToken,
    PasswordConfirmationInvalid,
    UserConfirmationRequired,
)
from accounts.models import User
from accounts.selectors import user_by_email
from accounts.tokens.auth import AuthToken, auth_token_issue
from accounts.tokens.validation import (
    Purpose,
    validation_token_make,
    validation_token_user,
)


def password_validate(password: str, *, user: User, field: str) -> None:
    """Run Django's password validators; their messages go under `field`."""
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from exc


def password_change(*, user: User, token: AuthToken, password: str, new_password: str, confirm: str) -> str:
    """Set a new password, revoke every other token of the user and return a new one."""
    if new_password != confirm:
        raise PasswordConfirmationInvalid
    if not user.check_password(password):
        raise InvalidCredentials
    password_validate(new_password, user=user, field="new_password")
    now = timezone.now()
    user.set_password(new_password)
    user.tokens_valid_after = now
    user.save(update_fields=["password", "tokens_valid_after"])
    audit.record(audit.Type.PASSWORD_CHANGE, user=user)
    return auth_token_issue(user=user, remember=token["remember"], now=now)


def recovery_request(*, email: str) -> None:
    """Email a password recovery link to a confirmed account."""
    user = user_by_email(email)
    if not user.is_confirmed:
        raise UserConfirmationRequired
    if not user.is_active:
        raise AccountDisabled
    emails.send_recovery(user=user, token=validation_token_make(user=user, purpose=Purpose.RECOVERY))
    audit.record(audit.Type.RECOVERY_REQUEST, user=user)


def password_reset(*, token: str, new_password: str, confirm: str) -> None:
    """Set the password a recovery token allows; the token is spent and all auth tokens die."""
    user = validation_token_user(token=token, purpose=Purpose.RECOVERY)
    if new_password != confirm:
        raise PasswordConfirmationInvalid
    password_validate(new_password, user=user, field="new_password")
    # Compare-and-set on the state the token was made from (`user` is left as read): of two
    # resets with one token, one writes and the other finds the state changed.
    updated = User.objects.filter(
        pk=user.pk, password=user.password, tokens_valid_after=user.tokens_valid_after
    ).update(password=make_password(new_password), tokens_valid_after=timezone.now())
    if not updated:
        raise InvalidToken
    audit.record(audit.Type.RECOVERY_COMPLETE, user=user)


def password_set(*, user: User, password: str | None) -> None:
    """Set a password chosen by staff (None: no usable password); the user is signed out.

    The caller records the staff action (the admin, in UserAdmin.log_change)."""
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.tokens_valid_after = timezone.now()
    user.save(update_fields=["password", "tokens_valid_after"])
