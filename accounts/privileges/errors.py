"""Who among the staff may act on whom: its entries of the error catalogue (core.errors holds the base and the handler)."""

from core.errors import AuthError


class StaffActionForbidden(AuthError):
    """A staff member who is not a superuser acting on a superuser, another staff account, or an
    account holding a group or permission they lack (admin only)."""

    status, message = 403, "only a superuser may act on a superuser, another staff account, or an account with a group or permission you lack"
