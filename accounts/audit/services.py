"""The audit trail: `record()` writes one AuthEvent, and never fails the request that causes it.

Who acts from where (client address, user agent) comes from the request being served, which the
one request-context middleware (core.middleware.requests_observed) keeps in a context variable,
so the services that record events take values only and need no request. Outside a request
(commands) the context is empty.
"""

import ipaddress
import logging
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, transaction
from django.utils import timezone

from accounts.audit.models import AuthEvent
from accounts.users.models import User
from core.logs import request_context

logger = logging.getLogger(__name__)

Type = AuthEvent.Type


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
    context = request_context.get() or {}
    address = context.get("client_address", "")
    email = _email_or_nothing(email[:254]) if email else ""
    try:
        # A savepoint when inside a transaction, so a failed insert cannot break the caller's.
        with transaction.atomic():
            AuthEvent.objects.create(
                type=type,
                user=user if user is not None and user.pk is not None else None,
                email=(email or (user.email if user is not None else ""))[:254],
                client_address=address if _is_ip(address) else None,
                user_agent=context.get("user_agent", "")[:512],
                detail=detail[:255],
            )
    except (DatabaseError, ValueError) as exc:
        logger.error("Audit event %s for %s not written: %s", type, email or user, exc)


def _is_ip(value: str | None) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def events_prune(*, older_than_days: int, dry_run: bool = False) -> int:
    """Delete the events older than the given number of days; return how many (with `dry_run`,
    count them and delete nothing)."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    old = AuthEvent.objects.filter(created_at__lt=cutoff)
    if dry_run:
        return old.count()
    deleted, _ = old.delete()
    return deleted
