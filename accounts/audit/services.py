"""The audit trail: `record()` writes one AuthEvent, and never fails the request that causes it.

Who acts from where (client address, user agent) comes from the request being served, whose META
`RequestContextMiddleware` puts in a context variable, so the services that record events take
values only and need no request. Outside a request (commands) the context is empty.
"""

import contextvars
import ipaddress
import logging

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, transaction

from core.addresses import client_address
from accounts.audit.models import AuthEvent
from accounts.users.models import User

logger = logging.getLogger(__name__)

Type = AuthEvent.Type


# The META of the request being served; empty outside a request (commands).
_request_meta: contextvars.ContextVar[dict] = contextvars.ContextVar("audit_request_meta", default={})


def _email_or_nothing(value: str) -> str:
    """Return the value if it is an email address: what a client typed into the email field of a
    login may be anything, a password even, and the audit trail keeps only addresses."""
    try:
        validate_email(value)
    except ValidationError:
        return ""
    return value


def record(type: Type, *, user: User | None = None, email: str = "", detail: str = "") -> None:
    """Write one event (one INSERT); a failure is logged, never raised."""
    meta = _request_meta.get()
    address = client_address(meta)
    email = _email_or_nothing(email[:254]) if email else ""
    try:
        # A savepoint when inside a transaction, so a failed insert cannot break the caller's.
        with transaction.atomic():
            AuthEvent.objects.create(
                type=type,
                user=user if user is not None and user.pk is not None else None,
                email=(email or (user.email if user is not None else ""))[:254],
                client_address=address if _is_ip(address) else None,
                user_agent=meta.get("HTTP_USER_AGENT", "")[:512],
                detail=detail[:255],
            )
    except (DatabaseError, ValueError) as exc:
        logger.error("Audit event %s for %s not written: %s", type, email or user, exc)


class RequestContextMiddleware:
    """Make the current request's client address and user agent known to `record()`.

    It only keeps the request's META: most requests record nothing, so the address is worked
    out when an event is written, not on every request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request_meta.set(request.META)
        try:
            return self.get_response(request)
        finally:
            _request_meta.reset(token)


def _is_ip(value: str | None) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
