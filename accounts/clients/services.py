"""Resource servers (the introspection endpoint's callers) and token introspection (RFC 7662)."""

import hashlib
import hmac
import secrets

from accounts.audit import services as audit
from accounts.clients.errors import InvalidClientCredentials
from accounts.clients.models import ResourceServer
from accounts.sessions.tokens import Extra, SessionRead, auth_token_decode, token_session_check
from accounts.users.models import User
from core.errors import AuthError


def _caller_digest_sql(connection) -> str:
    """The secret digest of the active resource server with this client id (NULL if none); its
    parameters: the client id, then True (is_active)."""
    quote, meta = connection.ops.quote_name, ResourceServer._meta
    table = quote(meta.db_table)

    def column(name: str) -> str:
        return f"{table}.{quote(meta.get_field(name).column)}"

    return (
        f"SELECT {column('secret_digest')} FROM {table} WHERE {column('client_id')} = %s "
        f"AND {column('is_active')} = %s ORDER BY {column(meta.pk.name)} LIMIT 1"
    )


# What an introspection reads, in one query: the session the token names, with its user, and the
# secret digest of the active resource server calling (NULL when there is none). Only the columns
# token_session_check reads (the answer's claims come from the verified token): a third fewer
# values to convert, each a datetime parse on SQLite. Reading any other field of these instances
# would cost a query of its own, which tests/clients/test_api.py's query counts would show.
INTROSPECTION_SESSION_FIELDS = ("ended_at", "expires_at")
INTROSPECTION_USER_FIELDS = ("public_id", "is_active", "deactivated_at")
_session_and_caller = SessionRead(
    session_fields=INTROSPECTION_SESSION_FIELDS,
    user_fields=INTROSPECTION_USER_FIELDS,
    extra=Extra("caller_digest", ResourceServer._meta.get_field("secret_digest"), _caller_digest_sql),
)

# Compared against when the client id is unknown, so that the answer takes the same time.
_NO_DIGEST = hashlib.sha256(b"no such client").hexdigest()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def resource_server_create(*, name: str, actor: User | None = None) -> tuple[ResourceServer, str]:
    """Register a resource server; return it and its secret, which is shown this once only."""
    secret = secrets.token_urlsafe(32)
    server = ResourceServer.objects.create(name=name, secret_digest=_digest(secret))
    by = actor.email if actor is not None else "an operator command"
    audit.record(audit.Type.RESOURCE_SERVER_CREATED, detail=f"{name} ({server.client_id}) by {by}")
    return server, secret


def resource_server_secret_reset(*, server: ResourceServer) -> str:
    """Give the resource server a new secret (the old one stops working); return it, once."""
    secret = secrets.token_urlsafe(32)
    server.secret_digest = _digest(secret)
    server.save(update_fields=["secret_digest"])
    return secret


def _secret_check(digest: str | None, client_secret: str) -> None:
    """Raise InvalidClientCredentials unless the secret's digest is `digest`.

    No digest (no such client, or a row whose secret was never set) matches no secret; it is
    compared all the same, against a stand-in, so that the answer takes the same time.
    """
    matched = hmac.compare_digest(digest or _NO_DIGEST, _digest(client_secret))
    if not matched or not digest:
        raise InvalidClientCredentials


def resource_server_authenticate(*, client_id: str, client_secret: str) -> ResourceServer:
    """Return the active resource server with these credentials, or raise InvalidClientCredentials."""
    server = (
        ResourceServer.objects.filter(client_id=client_id, is_active=True).order_by("pk").first() if client_id else None
    )
    _secret_check(server.secret_digest if server is not None else None, client_secret)
    return server


INACTIVE = {"active": False}
CLAIMS = ("sub", "sid", "exp", "iat", "iss", "aud", "email", "email_verified", "groups", "amr", "jti")


def token_introspect(*, client_id: str, client_secret: str, token: str) -> dict:
    """Authenticate the calling resource server (or raise InvalidClientCredentials), then return
    RFC 7662's answer for the token: its claims if the API would accept it, else inactive.

    One SQL query when the token names a session: the session, its user and the caller's
    digest are read together. A token that names none costs a second, for the caller alone.
    """
    try:
        verified = auth_token_decode(token)
    except AuthError:
        verified = None
    session = _session_and_caller(verified.session_id, (client_id, True)) if verified is not None else None
    if session is None:
        # Not a token of this server, or its session is gone: the caller is checked on its own.
        resource_server_authenticate(client_id=client_id, client_secret=client_secret)
        return dict(INACTIVE)
    _secret_check(session.caller_digest, client_secret)
    try:
        token_session_check(token=verified, session=session)
    except AuthError:
        return dict(INACTIVE)
    claims = verified.payload
    return {"active": True, **{name: claims[name] for name in CLAIMS if name in claims}, "token_type": "Bearer"}
