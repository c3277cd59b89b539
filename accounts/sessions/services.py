"""Sessions: opened by a sign-in, listed and revoked by their user, ended by every revocation.

Ending sessions is one UPDATE of their rows; the authentication class reads the session with
every request, so a revoked session's tokens are refused at once by every worker and node, and a
token minted by a refresh that raced the revocation belongs to an ended session too.
"""

import ipaddress
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.audit import services as audit
from core.errors import AccountDisabled, AccountNotActive, AuthError, NotFound, TokenInvalid
from accounts.sessions.models import Session
from accounts.users.models import User
from accounts.sessions.models import USER_AGENT_MAX_LENGTH
from core.prepared import PreparedQuery
from accounts.sessions.tokens import AuthToken, auth_token_decode, auth_token_issue

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


def sessions_with_user(session_id: str) -> QuerySet:
    """Return the queryset of the session with this public id, with its user: one row at most
    (public_id is unique), so no ORDER BY, as get() would not have one."""
    return Session.objects.select_related("user").filter(public_id=session_id).order_by()


# Every authenticated request and refresh runs it: compiled once (core.prepared).
_session_with_user = PreparedQuery(sessions_with_user, str)


def token_decode(raw: str) -> AuthToken:
    """Return the verified token (signature, iss, aud, expiry, type; no SQL), or raise TokenInvalid."""
    if not raw or raw.lower() == "bearer":
        raise TokenInvalid
    return auth_token_decode(raw)


def session_check(*, user: User, session: Session, now: datetime | None = None) -> None:
    """Raise the contract's error if this user may not use this session's tokens, in its order."""
    if not user.is_active:
        raise AccountDisabled
    if user.is_deactivated:
        raise AccountNotActive
    if not session.is_open(now):
        raise TokenInvalid


def token_session_check(*, token: AuthToken, session: Session | None) -> Session:
    """Return the session if it is the token's (read by its `sid`, with its user) and the token
    may be used, or raise the contract's error: TokenInvalid, AccountDisabled, AccountNotActive.

    The error carries the user when there is one (`exc.user`), for the audit trail.
    """
    if session is None or str(session.user.public_id) != token.subject:
        raise TokenInvalid
    try:
        session_check(user=session.user, session=session)
    except AuthError as exc:
        exc.user = session.user
        raise
    return session


def token_authenticate(*, raw: str) -> tuple[AuthToken, Session]:
    """Return the verified token and its open session (with the user), or raise the contract's
    error (token_session_check). One SQL query."""
    token = token_decode(raw)
    found = _session_with_user(token.session_id)
    return token, token_session_check(token=token, session=found[0] if found else None)


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


def session_revoke(*, user: User, session_id: str) -> None:
    """End one open session of the user (its tokens stop working), or raise NotFound."""
    ended = (
        Session.objects.open()
        .filter(user=user, public_id=session_id)
        .update(ended_at=timezone.now(), end_reason=EndReason.REVOKED)
    )
    if not ended:
        raise NotFound
    audit.record(audit.Type.SESSION_REVOKED, user=user, detail="one session, by the user")


def sessions_revoke_others(*, user: User, current: Session) -> int:
    """End every open session of the user but `current`; return how many."""
    ended = (
        Session.objects.open()
        .filter(user=user)
        .exclude(pk=current.pk)
        .update(ended_at=timezone.now(), end_reason=EndReason.REVOKED)
    )
    audit.record(audit.Type.SESSION_REVOKED, user=user, detail=f"{ended} other sessions, by the user")
    return ended


def sessions_end(*, user: User, reason: str) -> int:
    """End every session of the user (a revocation); return how many were open."""
    return Session.objects.filter(user=user, ended_at__isnull=True).update(ended_at=timezone.now(), end_reason=reason)


def session_end(*, session_id: str, reason: str) -> bool:
    """End one session by its id (sign-out, staff); return False if it had ended already."""
    return bool(
        Session.objects.filter(public_id=session_id, ended_at__isnull=True).update(
            ended_at=timezone.now(), end_reason=reason
        )
    )


def session_is_open(*, session_id: str | None, user: User) -> bool:
    """Return whether this is an open session of the user (the admin site asks on each page)."""
    return bool(session_id) and Session.objects.open().filter(public_id=session_id, user=user).exists()


def sessions_prune(*, older_than_days: int) -> int:
    """Delete sessions that ended, or expired, more than the given number of days ago."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = Session.objects.filter(Q(ended_at__lt=cutoff) | Q(expires_at__lt=cutoff)).delete()
    return deleted
