"""The signed-in user's account: profile, email, deactivation, deletion."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.account.errors import InvalidPassword, NoUpdatesToMake, UserAlreadyExist
from accounts.audit import services as audit
from accounts.notices import services as emails
from accounts.passwords.credentials import password_check
from accounts.sessions.services import EndReason, sessions_end
from accounts.users.links import Purpose, validation_token_make
from accounts.users.models import User
from accounts.webhooks.events import user_deleted_emit, user_event_emit
from core.errors import InvalidCredentials


def profile_update(*, user: User, name: str | None) -> User:
    """Change the profile (the name)."""
    if not name:
        raise NoUpdatesToMake
    user.name = name
    with transaction.atomic():
        user.save(update_fields=["name"])
        user_event_emit("user.updated", user=user, name=name)
    return user


def email_change(*, user: User, new_email: str, password: str) -> User:
    """Change the login email at once and tell the old address."""
    if not password_check(user=user, password=password, action="email change"):
        raise InvalidPassword
    if User.objects.with_email(new_email).exclude(pk=user.pk).exists():
        raise UserAlreadyExist
    old_email, old_verified = user.email, user.is_email_verified
    # Any change of the stored string is a new address to prove: it is what tokens assert and
    # what mail is sent to (another case of the local part can be another mailbox).
    moved = old_email != new_email
    user.email = new_email
    fields = ["email"]
    if moved:
        # The new address is the login at once (the contract), but not shown to be the user's
        # until its link is followed: tokens say `email_verified: false` meanwhile.
        user.email_verified_at = None
        fields.append("email_verified_at")
    try:
        with transaction.atomic():
            user.save(update_fields=fields)
            user_event_emit(
                "user.email_changed", user=user, previous_email=old_email, email_verified=user.is_email_verified
            )
    except IntegrityError as exc:
        raise UserAlreadyExist from exc
    audit.record(audit.Type.EMAIL_CHANGE, user=user, detail=f"from {old_email}")
    if moved:
        # To an address the user had shown to be theirs, a security notice (never refused by its
        # EMAIL_RATE, queued if it fails); to one they never had, an ordinary email within the
        # quota, so that an account cannot be used to mail strangers again and again.
        emails.send_email_changed(user=user, old_email=old_email, counted=not old_verified)
        emails.send_email_verification(user=user, token=validation_token_make(user=user, purpose=Purpose.CONFIRMATION))
    return user


def user_deactivate(*, user: User) -> None:
    """Deactivate the account (the user's choice) and end its sessions; logging in reactivates it."""
    user.deactivated_at = timezone.now()
    with transaction.atomic():
        user.save(update_fields=["deactivated_at"])
        sessions_end(user=user, reason=EndReason.DEACTIVATION)
        user_event_emit("user.deactivated", user=user)
    audit.record(audit.Type.DEACTIVATE, user=user)


def user_delete(*, user: User, password: str) -> None:
    """Delete the account and everything of it (its sessions too), after checking the password."""
    if not password_check(user=user, password=password, action="account deletion"):
        raise InvalidCredentials
    email = user.email
    with transaction.atomic():
        # Ended first, so that the apps it signed in to hear of it (back-channel logout).
        sessions_end(user=user, reason=EndReason.DELETED)
        user_deleted_emit(user=user)
        user.delete()
    audit.record(audit.Type.DELETE, email=email)
