"""The signed-in user's account: profile, email, deactivation, deletion."""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import audit, emails
from accounts.errors import (
    CouldNotSendEmail,
    InvalidCredentials,
    InvalidPassword,
    NoUpdatesToMake,
    Throttled,
    UserAlreadyExist,
)
from accounts.models import User

logger = logging.getLogger(__name__)

def profile_update(*, user: User, name: str | None) -> User:
    """Change the profile (the name)."""
    if not name:
        raise NoUpdatesToMake
    user.name = name
    user.save(update_fields=["name"])
    return user


def email_change(*, user: User, new_email: str, password: str) -> User:
    """Change the login email at once and tell the old address."""
    if not user.check_password(password):
        raise InvalidPassword
    if User.objects.with_email(new_email).exclude(pk=user.pk).exists():
        raise UserAlreadyExist
    old_email = user.email
    user.email = new_email
    try:
        with transaction.atomic():
            user.save(update_fields=["email"])
    except IntegrityError as exc:
        raise UserAlreadyExist from exc
    audit.record(audit.Type.EMAIL_CHANGE, user=user, detail=f"from {old_email}")
    if old_email.lower() != new_email.lower():
        try:
            emails.send_email_changed(user=user, old_email=old_email)
        except (CouldNotSendEmail, Throttled):
            # The change is made and the client told so; a lost notice must not undo it.
            logger.warning("Email change notice for user %s not sent", user.pk)
    return user


def user_deactivate(*, user: User) -> None:
    """Deactivate the account (the user's choice); logging in again reactivates it."""
    now = timezone.now()
    user.deactivated_at = now
    user.tokens_valid_after = now
    user.save(update_fields=["deactivated_at", "tokens_valid_after"])
    audit.record(audit.Type.DEACTIVATE, user=user)


def user_delete(*, user: User, password: str) -> None:
    """Delete the account and everything of it, after checking the password."""
    if not user.check_password(password):
        raise InvalidCredentials
    email = user.email
    user.delete()
    audit.record(audit.Type.DELETE, email=email)
