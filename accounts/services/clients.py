"""Resource servers (the introspection endpoint's callers) and token introspection (RFC 7662)."""

import hashlib
import hmac
import secrets

from accounts import audit
from accounts.errors import AuthError, InvalidClientCredentials
from accounts.models import ResourceServer, User
from accounts.prepared import PreparedQuery
from accounts.services.sessions import token_authenticate

# Every introspection runs it: compiled once (accounts.prepared).
_active_server = PreparedQuery(
    lambda client_id: ResourceServer.objects.filter(client_id=client_id, is_active=True).order_by("pk")[:1], str
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


def resource_server_authenticate(*, client_id: str, client_secret: str) -> ResourceServer:
    """Return the active resource server with these credentials, or raise InvalidClientCredentials."""
    found = _active_server(client_id) if client_id else []
    server = found[0] if found else None
    expected = server.secret_digest if server is not None else _NO_DIGEST
    if not hmac.compare_digest(expected, _digest(client_secret)) or server is None:
        raise InvalidClientCredentials
    return server


def token_introspect(*, token: str) -> dict:
    """Return RFC 7662's answer for a token: its claims if the API would accept it, else inactive."""
    try:
        verified, _ = token_authenticate(raw=token)
    except AuthError:
        return {"active": False}
    claims = verified.payload
    return {
        "active": True,
        **{name: claims[name] for name in ("sub", "sid", "exp", "iat", "iss", "aud", "email", "email_verified", "groups", "amr", "jti") if name in claims},
        "token_type": "Bearer",
    }
