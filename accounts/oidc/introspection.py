"""Token introspection (RFC 7662), POST /api/introspect: for every token this server issues.

The caller is a client of the registry (a resource server, or any confidential client) with its
id and secret. Its answer: `active`, and for an active token its claims: an auth token's (the
API's own), an OAuth access token's (with `scope` and `client_id`), or a refresh token's.

One SQL query when the token names a session: the session, its user and the caller's digest are
read together (and, for an access token, whether its row is still there). A token that names no
session costs a query for the caller alone, and one for the token's row.
"""

import hashlib
import re
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts.clients.errors import InvalidClientCredentials
from accounts.clients.models import Client
from accounts.clients.services import client_authenticate, secret_matches
from accounts.oidc import tokens
from accounts.oidc.models import AccessToken, RefreshToken
from accounts.sessions.tokens import Extra, SessionRead, auth_token_decode, session_check, token_session_check
from core.errors import AuthError


def _caller_digest_sql(connection) -> str:
    """The secret digest of the active confidential client with this client id (NULL if none);
    its parameters: the client id, True (is_active), "confidential"."""
    quote, meta = connection.ops.quote_name, Client._meta
    table = quote(meta.db_table)

    def column(name: str) -> str:
        return f"{table}.{quote(meta.get_field(name).column)}"

    return (
        f"SELECT {column('client_secret')} FROM {table} WHERE {column('client_id')} = %s "
        f"AND {column('is_active')} = %s AND {column('client_type')} = %s ORDER BY {column(meta.pk.name)} LIMIT 1"
    )


# Only the columns token_session_check reads (the answer's claims come from the verified token):
# a third fewer values to convert, each a datetime parse on SQLite.
INTROSPECTION_SESSION_FIELDS = ("ended_at", "expires_at")
INTROSPECTION_USER_FIELDS = ("public_id", "is_active", "deactivated_at")
_session_and_caller = SessionRead(
    session_fields=INTROSPECTION_SESSION_FIELDS,
    user_fields=INTROSPECTION_USER_FIELDS,
    extra=Extra("caller_digest", Client._meta.get_field("client_secret"), _caller_digest_sql),
)

INACTIVE = {"active": False}
REFRESH_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9]{30}")
CLAIMS = ("sub", "sid", "exp", "iat", "iss", "aud", "email", "email_verified", "groups", "amr", "jti")
ACCESS_CLAIMS = ("sub", "sid", "exp", "iat", "iss", "aud", "jti", "client_id", "scope")


def _caller(client_id: str) -> tuple:
    return (client_id, True, Client.CLIENT_CONFIDENTIAL)


def _secret_check(digest: str | None, client_secret: str) -> None:
    if not secret_matches(digest, client_secret):
        raise InvalidClientCredentials


def token_introspect(*, client_id: str, client_secret: str, token: str) -> dict:
    """Authenticate the caller (or raise InvalidClientCredentials), then return RFC 7662's answer."""
    try:
        verified = auth_token_decode(token)
    except AuthError:
        verified = None
    if verified is not None:
        session = _session_and_caller(verified.session_id, _caller(client_id))
        if session is None:
            client_authenticate(client_id=client_id, client_secret=client_secret)
            return dict(INACTIVE)
        _secret_check(session.caller_digest, client_secret)
        try:
            token_session_check(token=verified, session=session)
        except AuthError:
            return dict(INACTIVE)
        claims = verified.payload
        return {"active": True, **{name: claims[name] for name in CLAIMS if name in claims}, "token_type": "Bearer"}
    client_authenticate(client_id=client_id, client_secret=client_secret)
    return _oauth_token_introspect(token)


def _open(session, user) -> bool:
    try:
        session_check(user=user, session=session)
    except AuthError:
        return False
    return True


def _oauth_token_introspect(token: str) -> dict:
    """An access token (JWT, `at+jwt`) or a refresh token (opaque) of the OpenID provider."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        return dict(INACTIVE)
    checksum = hashlib.sha256(token.encode()).hexdigest()
    claims = tokens.access_token_verify(token)
    if claims is not None:
        row = AccessToken.objects.select_related("session", "user").filter(token_checksum=checksum).first()
        if row is None or row.expires <= timezone.now():
            return dict(INACTIVE)
        if row.session is not None and not _open(row.session, row.user):
            return dict(INACTIVE)
        return {"active": True, **{name: claims[name] for name in ACCESS_CLAIMS if name in claims}, "token_type": "Bearer"}
    if not REFRESH_TOKEN_SHAPE.fullmatch(token):
        # Not a refresh token of this server (oauthlib's: 30 letters and digits): no query.
        return dict(INACTIVE)
    row = (
        RefreshToken.objects.select_related("session", "user", "application", "access_token")
        .filter(token_checksum=checksum, revoked__isnull=True)
        .first()
    )
    if row is None or row.access_token is None or not _open(row.session, row.user):
        return dict(INACTIVE)
    return {
        "active": True,
        "sub": str(row.user.public_id),
        "sid": row.session.public_id,
        "client_id": row.application.client_id,
        "scope": row.access_token.scope,
        "iat": int(row.created.timestamp()),
        "exp": int(min(row.session.expires_at, row.access_token.expires + timedelta(seconds=settings.OIDC_REFRESH_TOKEN_LIFETIME)).timestamp()),
        "iss": settings.TOKEN_ISSUER,
        "token_type": "refresh_token",
    }
