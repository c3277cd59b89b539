"""Who among the staff may act on whom: its entries of the error catalogue (core.errors holds the base and the handler)."""

from core.errors import AuthError


class StaffActionForbidden(AuthError):
    """A staff member who is not a superuser acting on a superuser or another staff account (admin only)."""

    status, message = 403, "only a superuser may act on a superuser or another staff account"
