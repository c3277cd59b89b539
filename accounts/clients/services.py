"""The registry of clients: register one, give it a new secret, authenticate its calls.

Secrets are random (256 bits, URL-safe) and kept as `sha256$<hex digest>` (accounts.clients.models).
Checking one costs a digest and a comparison in equal time; an unknown client id is compared
against a stand-in, so the answer takes the same time.
"""

import hashlib
import hmac
import secrets

from django.db import IntegrityError, transaction

from accounts.audit import services as audit
from accounts.clients.errors import InvalidClientCredentials
from accounts.clients.models import SCOPES, SECRET_DIGEST_PREFIX, Client, uri_problem
from accounts.users.models import User

_NO_DIGEST = SECRET_DIGEST_PREFIX + hashlib.sha256(b"no such client").hexdigest()


class ClientError(ValueError):
    """A registration that cannot be made as asked (the message says why)."""


def secret_digest(secret: str) -> str:
    return SECRET_DIGEST_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(digest: str | None, secret: str) -> bool:
    """Whether the secret's digest is `digest`, in equal time (no digest matches nothing)."""
    matched = hmac.compare_digest((digest or _NO_DIGEST).encode(), secret_digest(secret).encode())
    return matched and bool(digest) and digest.startswith(SECRET_DIGEST_PREFIX)


def _by(actor: User | None) -> str:
    return actor.email if actor is not None else "an operator command"


def _uris_check(uris: list[str], what: str) -> None:
    for uri in uris:
        problem = uri_problem(uri, what)
        if problem:
            raise ClientError(problem)


def client_create(
    *,
    name: str,
    redirect_uris: list[str] = (),
    public: bool = False,
    first_party: bool = False,
    scopes: str = "openid profile email",
    post_logout_redirect_uris: list[str] = (),
    backchannel_logout_uri: str = "",
    service: bool = False,
    algorithm: str = "RS256",
    actor: User | None = None,
) -> tuple[Client, str]:
    """Register a client; return it and its secret ("" for a public client), shown this once.

    An app that signs users in (authorization code + PKCE) needs a redirect URI; a service
    (`service`: client_credentials, such as a resource server that introspects tokens) needs none.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise ClientError("The name must be 1 to 100 characters.")
    scope_list = scopes.split()
    unknown = [scope for scope in scope_list if scope not in SCOPES]
    if unknown:
        raise ClientError(f"Unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}.")
    if service:
        if public:
            raise ClientError("A service authenticates with its secret: it cannot be public.")
        if redirect_uris:
            raise ClientError("A service signs nobody in: it takes no redirect URI.")
    elif not redirect_uris:
        raise ClientError("An app that signs users in needs at least one redirect URI.")
    _uris_check(list(redirect_uris), "Redirect URI")
    _uris_check(list(post_logout_redirect_uris), "Post-logout redirect URI")
    if backchannel_logout_uri:
        _uris_check([backchannel_logout_uri], "Back-channel logout URI")
    if algorithm not in ("RS256", "ES256"):
        raise ClientError("The ID token algorithm is RS256 or ES256.")
    secret = "" if public else secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            client = Client.objects.create(
                name=name,
                client_type=Client.CLIENT_PUBLIC if public else Client.CLIENT_CONFIDENTIAL,
                authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS if service else Client.GRANT_AUTHORIZATION_CODE,
                client_secret=secret_digest(secret) if secret else "",
                redirect_uris=" ".join(redirect_uris),
                post_logout_redirect_uris=" ".join(post_logout_redirect_uris),
                backchannel_logout_uri=backchannel_logout_uri,
                skip_authorization=first_party,
                allowed_scopes=" ".join(scope_list),
                algorithm=algorithm,
            )
    except IntegrityError:
        raise ClientError(f"A client named {name!r} exists already.") from None
    kind = "service" if service else ("public app" if public else "app")
    audit.record(audit.Type.CLIENT_CREATED, detail=f"{name} ({client.client_id}, {kind}) by {_by(actor)}")
    return client, secret


def resource_server_create(*, name: str, actor: User | None = None) -> tuple[Client, str]:
    """Register a resource server (a service that introspects tokens); return it and its secret."""
    return client_create(name=name, service=True, scopes="", actor=actor)


def client_secret_reset(*, client: Client, actor: User | None = None) -> str:
    """Give a confidential client a new secret (the old one stops working); return it, once."""
    if client.client_type != Client.CLIENT_CONFIDENTIAL:
        raise ClientError(f"{client.name} is a public client: it has no secret.")
    secret = secrets.token_urlsafe(32)
    client.client_secret = secret_digest(secret)
    client.save(update_fields=["client_secret", "updated"])
    audit.record(audit.Type.CLIENT_SECRET_RESET, detail=f"{client.name} ({client.client_id}) by {_by(actor)}")
    return secret


def client_authenticate(*, client_id: str, client_secret: str) -> Client:
    """Return the active confidential client with these credentials, or raise InvalidClientCredentials."""
    client = (
        Client.objects.filter(client_id=client_id, is_active=True, client_type=Client.CLIENT_CONFIDENTIAL)
        .order_by("pk")
        .first()
        if client_id
        else None
    )
    if not secret_matches(client.client_secret if client is not None else None, client_secret):
        raise InvalidClientCredentials
    return client
