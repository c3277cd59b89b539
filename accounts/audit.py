"""The audit trail: `record()` writes one AuthEvent, and never fails the request that causes it.

Who acts from where (client address, user agent) comes from the request being served, which
`RequestContextMiddleware` puts in a context variable, so the services that record events take
values only and need no request. Outside a request (commands) the context is empty.
"""

import contextvars
import ipaddress
import logging
from dataclasses import dataclass

from django.db import DatabaseError, transaction

from accounts.models import AuthEvent, User
from accounts.ratelimit import client_address

logger = logging.getLogger(__name__)

Type = AuthEvent.Type


@dataclass(frozen=True)
class RequestContext:
    client_address: str | None = None
    user_agent: str = ""


_context: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("audit_context", default=RequestContext())


def record(type: Type, *, user: User | None = None, email: str = "", detail: str = "") -> None:
    """Write one event (one INSERT); a failure is logged, never raised."""
    context = _context.get()
    try:
        # A savepoint when inside a transaction, so a failed insert cannot break the caller's.
        with transaction.atomic():
            AuthEvent.objects.create(
                type=type,
                user=user if user is not None and user.pk is not None else None,
                email=(email or (user.email if user is not None else ""))[:254],
                client_address=context.client_address,
                user_agent=context.user_agent,
                detail=detail[:255],
            )
    except (DatabaseError, ValueError) as exc:
        logger.error("Audit event %s for %s not written: %s", type, email or user, exc)


class RequestContextMiddleware:
    """Make the client address and user agent of the current request known to `record()`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        address = client_address(request.META) or None
        token = _context.set(
            RequestContext(
                client_address=address if _is_ip(address) else None,
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:512],
            )
        )
        try:
            return self.get_response(request)
        finally:
            _context.reset(token)


def _is_ip(value: str | None) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
