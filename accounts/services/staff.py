"""Staff actions on accounts (the admin), each recorded in the audit trail."""

from django.utils import timezone

from accounts import audit
from accounts.models import User
from accounts.services.passwords import recovery_request
from accounts.services.registration import confirmation_resend


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
    """Disable (or enable again) an account; disabling revokes its tokens. Return False if
    the account was in that state already."""
    if user.is_active == active:
        return False
    user.is_active = active
    fields = ["is_active"]
    if not active:
        user.tokens_valid_after = timezone.now()
        fields.append("tokens_valid_after")
    user.save(update_fields=fields)
    staff_action_record(user=user, actor=actor, action="enabled" if active else "disabled")
    return True


def tokens_revoke(*, user: User, actor: User | None) -> None:
    """Sign the user out everywhere: every auth token issued so far stops working."""
    user.tokens_valid_after = timezone.now()
    user.save(update_fields=["tokens_valid_after"])
    staff_action_record(user=user, actor=actor, action="signed out everywhere")


def staff_confirmation_send(*, user: User, actor: User | None) -> None:
    """Send a new confirmation email, as PUT /api/validate/confirmation does."""
    confirmation_resend(email=user.email)
    staff_action_record(user=user, actor=actor, action="sent a confirmation email")


def staff_recovery_send(*, user: User, actor: User | None) -> None:
    """Send a recovery email, as PATCH /api/authenticate does."""
    recovery_request(email=user.email)
    staff_action_record(user=user, actor=actor, action="sent a recovery email")
