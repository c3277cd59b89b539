"""Sessions' lifecycle: opened by a sign-in, refreshed, listed and revoked by their user, ended
by every revocation.

Ending sessions is one UPDATE of their rows; the authentication class reads the session with
every request (accounts.sessions.tokens, where a token and its session are checked), so a revoked
session's tokens are refused at once by every worker and node, and a token minted by a refresh
that raced the revocation belongs to an ended session too.
"""

import ipaddress
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.audit import services as audit
from accounts.sessions.models import USER_AGENT_MAX_LENGTH, Session
from accounts.sessions.tokens import auth_token_issue
from accounts.users.models import User
from core.errors import NotFound

LAST_SEEN_EVERY = timedelta(minutes=1)

EndReason = Session.EndReason


def _ip_or_none(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def session_open(
    *,
    user: User,
    remember: bool,
    amr: list[str],
    user_agent: str,
    client_address: str,
    now: datetime | None = None,
) -> Session:
    """Open a session for a sign-in; it lasts the refresh window (TOKEN_REFRESH_LIFETIME, or
    TOKEN_REMEMBER_LIFETIME when `remember`)."""
    now = now or timezone.now()
    window = settings.TOKEN_REMEMBER_LIFETIME if remember else settings.TOKEN_REFRESH_LIFETIME
    return Session.objects.create(
        user=user,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=window),
        user_agent=user_agent[:USER_AGENT_MAX_LENGTH],
        ip=_ip_or_none(client_address),
        remember=remember,
        amr=amr,
    )


def session_touch(*, session: Session, now: datetime | None = None) -> None:
    """Move `last_seen_at` on, at most once every LAST_SEEN_EVERY (one UPDATE when due)."""
    now = now or timezone.now()
    if now - session.last_seen_at >= LAST_SEEN_EVERY:
        # The condition makes concurrent requests of one session write once between them.
        Session.objects.filter(pk=session.pk, last_seen_at__lte=now - LAST_SEEN_EVERY).update(last_seen_at=now)
        session.last_seen_at = now


def session_refresh(*, session: Session) -> str:
    """Return a new token of the session (TOKEN_LIFETIME more, never past the session's end)."""
    return auth_token_issue(session=session, user=session.user)


def sessions_of(*, user: User) -> QuerySet:
    """Return the user's open sessions, newest first."""
    return Session.objects.open().filter(user=user).order_by("-created_at", "-pk")


# Given sessions' primary keys, return {pk: [names of the apps signed in with it]}: registered by
# accounts.oidc (the sessions list and the admin show them), none without it.
apps_of_sessions: list = []


def session_apps(pks: list[int]) -> dict[int, list[str]]:
    """The apps (OpenID clients) each of these sessions signed in to."""
    found: dict[int, list[str]] = {}
    for provider in apps_of_sessions:
        for pk, names in provider(pks).items():
            found.setdefault(pk, []).extend(names)
    return found


# Called with the primary keys of the sessions that just ended, inside the transaction that ended
# them (rooms above this one register here: accounts.oidc sends back-channel logouts).
ended_listeners: list = []


def _end(queryset, reason: str) -> int:
    """End the open sessions of the queryset; tell the listeners which; return how many."""
    now = timezone.now()
    if not ended_listeners:
        return queryset.filter(ended_at__isnull=True).update(ended_at=now, end_reason=reason)
    with transaction.atomic():
        pks = list(queryset.filter(ended_at__isnull=True).values_list("pk", flat=True))
        if not pks:
            return 0
        ended = Session.objects.filter(pk__in=pks, ended_at__isnull=True).update(ended_at=now, end_reason=reason)
        for listener in ended_listeners:
            listener(pks)
    return ended


def session_revoke(*, user: User, session_id: str) -> None:
    """End one open session of the user (its tokens stop working), or raise NotFound."""
    ended = _end(Session.objects.open().filter(user=user, public_id=session_id), EndReason.REVOKED)
    if not ended:
        raise NotFound
    audit.record(audit.Type.SESSION_REVOKED, user=user, detail="one session, by the user")


def sessions_revoke_others(*, user: User, current: Session) -> int:
    """End every open session of the user but `current`; return how many."""
    ended = _end(Session.objects.open().filter(user=user).exclude(pk=current.pk), EndReason.REVOKED)
    audit.record(audit.Type.SESSION_REVOKED, user=user, detail=f"{ended} other sessions, by the user")
    return ended


def sessions_end(*, user: User, reason: str) -> int:
    """End every session of the user (a revocation); return how many were open."""
    return _end(Session.objects.filter(user=user), reason)


def session_end(*, session_id: str, reason: str) -> bool:
    """End one session by its id (sign-out, staff); return False if it had ended already."""
    return bool(_end(Session.objects.filter(public_id=session_id), reason))


def session_is_open(*, session_id: str | None, user: User) -> bool:
    """Return whether this is an open session of the user (the admin site asks on each page)."""
    return bool(session_id) and Session.objects.open().filter(public_id=session_id, user=user).exists()


def sessions_expired_end() -> int:
    """End the sessions whose time ran out (their tokens were refused from that moment already),
    so that the listeners hear of them too: the apps signed in with them get their back-channel
    logout. Return how many."""
    return _end(Session.objects.filter(ended_at__isnull=True, expires_at__lte=timezone.now()), EndReason.EXPIRED)


def sessions_prune(*, older_than_days: int) -> int:
    """Delete sessions that ended, or expired, more than the given number of days ago."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = Session.objects.filter(Q(ended_at__lt=cutoff) | Q(expires_at__lt=cutoff)).delete()
    return deleted
