"""Who among the staff may act on whose account, and the audit entry of every staff action.

The admin pages of every room (sessions, users, ...) and the staff flows (accounts.staff) ask here.
"""

from accounts.audit import services as audit
from accounts.privileges.errors import StaffActionForbidden
from accounts.users.models import User


def staff_action_allowed(*, actor: User | None, user: User) -> bool:
    """Return whether `actor` may act on `user`'s account.

    An operator's command (None) and a superuser may act on anyone. Other staff may act on their
    own account and on accounts without privileges, never on a superuser or another staff member:
    a password they set, an email they change or a disabling would hand them, or take from them,
    an account that holds permissions they were not given.
    """
    if actor is None or actor.is_superuser or actor.pk == user.pk:
        return True
    return not (user.is_superuser or user.is_staff)


def staff_action_check(*, actor: User | None, user: User) -> None:
    """Raise StaffActionForbidden unless `actor` may act on `user`'s account."""
    if not staff_action_allowed(actor=actor, user=user):
        raise StaffActionForbidden


def staff_action_record(*, user: User, actor: User | None, action: str) -> None:
    """Record a staff action on an account; `actor` None means an operator's command."""
    by = actor.email if actor is not None else "an operator command"
    audit.record(audit.Type.STAFF_ACTION, user=user, detail=f"{action} by {by}")
