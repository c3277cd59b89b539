"""Who among the staff may act on whose account, and the audit entry of every staff action.

The admin pages of every room (sessions, users, ...) and the staff flows (accounts.staff) ask here.
"""

from django.contrib.auth.models import Group, Permission
from django.db.models import Exists, Q

from accounts.audit import services as audit
from accounts.privileges.errors import StaffActionForbidden
from accounts.users.models import User


def staff_action_allowed(*, actor: User | None, user: User) -> bool:
    """Return whether `actor` may act on `user`'s account.

    An operator's command (None) and a superuser may act on anyone, and staff on their own account.
    Other staff never act on a superuser or another staff member, nor on an account holding a
    group or a permission they lack: the account's groups must be among the actor's, and its
    permissions (its own and its groups') among the actor's (their own and their groups'). A
    password they set or an email they change would hand them that account, with its groups in
    its tokens (which other services authorize on) and its permissions. One query (none for a
    superuser, an operator or their own account).
    """
    if actor is None or actor.is_superuser or actor.pk == user.pk:
        return True
    if user.is_superuser or user.is_staff:
        return False
    groups_beyond = Group.objects.filter(user=user.pk).exclude(user=actor.pk)
    actor_permissions = Permission.objects.filter(Q(user=actor.pk) | Q(group__user=actor.pk)).values("pk")
    permissions_beyond = Permission.objects.filter(Q(user=user.pk) | Q(group__user=user.pk)).exclude(pk__in=actor_permissions)
    return not User.objects.filter(pk=user.pk).filter(Exists(groups_beyond) | Exists(permissions_beyond)).exists()


def staff_action_check(*, actor: User | None, user: User) -> None:
    """Raise StaffActionForbidden unless `actor` may act on `user`'s account."""
    if not staff_action_allowed(actor=actor, user=user):
        raise StaffActionForbidden


def staff_action_record(*, user: User, actor: User | None, action: str) -> None:
    """Record a staff action on an account; `actor` None means an operator's command."""
    by = actor.email if actor is not None else "an operator command"
    audit.record(audit.Type.STAFF_ACTION, user=user, detail=f"{action} by {by}")
