"""Staff actions on accounts (the admin), each recorded in the audit trail.

Each takes the `actor`: the staff member acting, or None for an operator's command. Who may act
on whom is accounts.privileges.rules; every action checks it first.
"""

from django.db import transaction
from django.utils import timezone

from accounts.account.registration import confirmation_send
from accounts.mfa import services as mfa
from accounts.passkeys import services as passkeys
from accounts.passkeys.models import Passkey
from accounts.passwords.services import recovery_send
from accounts.privileges.rules import staff_action_check, staff_action_record
from accounts.sessions.services import EndReason, sessions_end
from accounts.users.models import User
from accounts.webhooks.events import user_event_emit


def user_confirm(*, user: User, actor: User | None) -> bool:
    """Confirm an account without its email link; return False if it was confirmed already."""
    staff_action_check(actor=actor, user=user)
    if user.is_confirmed:
        return False
    user.confirmed_at = timezone.now()
    # Staff vouch for the address, as the link would have.
    user.email_verified_at = user.email_verified_at or user.confirmed_at
    with transaction.atomic():
        user.save(update_fields=["confirmed_at", "email_verified_at"])
        user_event_emit("user.confirmed", user=user)
    staff_action_record(user=user, actor=actor, action="confirmed")
    return True


def user_set_active(*, user: User, active: bool, actor: User | None) -> bool:
    """Disable (or enable again) an account; disabling ends its sessions. Return False if
    the account was in that state already."""
    staff_action_check(actor=actor, user=user)
    if user.is_active == active:
        return False
    user.is_active = active
    with transaction.atomic():
        user.save(update_fields=["is_active"])
        user_event_emit("user.enabled" if active else "user.disabled", user=user)
        if not active:
            sessions_end(user=user, reason=EndReason.DISABLED)
    staff_action_record(user=user, actor=actor, action="enabled" if active else "disabled")
    return True


def tokens_revoke(*, user: User, actor: User | None) -> None:
    """Sign the user out everywhere: every session ends (API and admin site), with its tokens."""
    staff_action_check(actor=actor, user=user)
    ended = sessions_end(user=user, reason=EndReason.STAFF if actor is not None else EndReason.OPERATOR)
    staff_action_record(user=user, actor=actor, action=f"signed out everywhere ({ended} sessions ended)")


def staff_confirmation_send(*, user: User, actor: User | None) -> None:
    """Send a new confirmation email, as PUT /api/validate/confirmation does."""
    staff_action_check(actor=actor, user=user)
    confirmation_send(user=user)
    staff_action_record(user=user, actor=actor, action="sent a confirmation email")


def staff_recovery_send(*, user: User, actor: User | None) -> None:
    """Send a recovery email, as PATCH /api/authenticate does."""
    staff_action_check(actor=actor, user=user)
    recovery_send(user=user)
    staff_action_record(user=user, actor=actor, action="sent a recovery email")


def two_factor_reset(*, user: User, actor: User | None) -> bool:
    """Turn the user's two-factor off (they may enroll again) and end every session.

    Return False if two-factor was not on. The user is told by email.
    """
    staff_action_check(actor=actor, user=user)
    return mfa.two_factor_reset(user=user, by=actor.email if actor is not None else "an operator command")


def passkey_remove(*, passkey: Passkey, actor: User | None) -> None:
    """Remove a user's passkey (a lost device, a flagged clone). The user is told by email."""
    staff_action_check(actor=actor, user=passkey.user)
    passkeys.passkey_remove_by_staff(passkey=passkey, by=actor.email if actor is not None else "an operator command")
