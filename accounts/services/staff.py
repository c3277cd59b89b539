"""Staff actions on accounts (the admin), each recorded in the audit trail."""

from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.models import User
from accounts.services.passwords import recovery_send
from accounts.services.registration import confirmation_send
from accounts.services.sessions import EndReason, sessions_end


def staff_action_record(*, user: User, actor: User | None, action: str) -> None:
    """Record a staff action on an account; `actor` None means an operator's command."""
    by = actor.email if actor is not None else "an operator command"
    audit.record(audit.Type.STAFF_ACTION, user=user, detail=f"{action} by {by}")


def user_confirm(*, user: User, actor: User | None) -> bool:
    """Confirm an account without its email link; return False if it was confirmed already."""
    if user.is_confirmed:
        return False
    user.confirmed_at = timezone.now()
    user.save(update_fields=["confirmed_at"])
    staff_action_record(user=user, actor=actor, action="confirmed")
    return True


def user_set_active(*, user: User, active: bool, actor: User | None) -> bool:
    """Disable (or enable again) an account; disabling ends its sessions. Return False if
    the account was in that state already."""
    if user.is_active == active:
        return False
    user.is_active = active
    with transaction.atomic():
        user.save(update_fields=["is_active"])
        if not active:
            sessions_end(user=user, reason=EndReason.DISABLED)
    staff_action_record(user=user, actor=actor, action="enabled" if active else "disabled")
    return True


def tokens_revoke(*, user: User, actor: User | None) -> None:
    """Sign the user out everywhere: every session ends (API and admin site), with its tokens."""
    ended = sessions_end(user=user, reason=EndReason.STAFF if actor is not None else EndReason.OPERATOR)
    staff_action_record(user=user, actor=actor, action=f"signed out everywhere ({ended} sessions ended)")


def staff_confirmation_send(*, user: User, actor: User | None) -> None:
    """Send a new confirmation email, as PUT /api/validate/confirmation does."""
    confirmation_send(user=user)
    staff_action_record(user=user, actor=actor, action="sent a confirmation email")


def staff_recovery_send(*, user: User, actor: User | None) -> None:
    """Send a recovery email, as PATCH /api/authenticate does."""
    recovery_send(user=user)
    staff_action_record(user=user, actor=actor, action="sent a recovery email")
