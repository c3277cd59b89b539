"""Auth tokens: JWTs signed with the current signing key, that any service can verify with the
public keys of /.well-known/jwks.json.

simplejwt's `Token` checks the envelope (type, `exp`, `jti`) of the tokens it is given, which
auth_token_issue writes in the same claims (TOKEN_TYPE_CLAIM, JTI_CLAIM); its backend here
hands signing and verification to PyJWT through accounts.keys.jose, with the key the header's `kid`
names and that key's own algorithm (no `alg` from the token is trusted). Claims: `iss`, `aud`,
`sub` (the user's public id), `exp`, `iat`, `jti`, `sid` (the session), `email`, `email_verified`,
`groups`, `amr`.

A token is valid while its session is open; that is checked by the authentication class against
the database, not here. Verifying an ECDSA signature costs ~70 µs, and a client sends the same
token for up to TOKEN_LIFETIME: each worker remembers the tokens it has verified (a bounded
memo keyed by the exact token string), re-checks their expiry on every use, and forgets those of
a key that is no longer published.
"""

import functools
from datetime import datetime, timedelta
from uuid import uuid4

from django.conf import settings
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token

from accounts.keys import jose
from core.errors import TokenInvalid
from accounts.sessions.models import Session
from accounts.users.models import User
from core.prepared import PreparedQuery
from accounts.keys.keyring import keyring

# Tokens remembered per worker: a few MiB at most.
MEMO_SIZE = 4096
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "sid", "jti"]
# The latest epoch second a datetime can hold (9999-12-31T23:59:59Z).
_MAX_EPOCH = 253402300799


def _now() -> datetime:
    """Return the current time; the one clock of this module, so tests can move it."""
    return timezone.now()


def _lifetime() -> timedelta:
    """TOKEN_LIFETIME, read at each use (tests and operators may change it)."""
    return timedelta(seconds=settings.TOKEN_LIFETIME)


class KeyringBackend(TokenBackend):
    """simplejwt's token backend for the keys of accounts.keys.keyring."""

    def __init__(self, *, issuer: str, audience: tuple[str, ...]):
        super().__init__(algorithm="ES256", audience=list(audience), issuer=issuer, leeway=0)
        self._verified = functools.lru_cache(maxsize=MEMO_SIZE)(self._verify)

    def encode(self, payload: dict) -> str:
        keys = keyring.keyset()
        return jose.encode(payload, private_key=keys.private_key, algorithm=keys.signing_algorithm, kid=keys.signing_kid)

    def decode(self, token: str, verify: bool = True) -> dict:
        if not verify or not isinstance(token, str):
            raise TokenBackendError("Token is invalid")
        try:
            payload, kid = self._verified(token)
        except (jose.InvalidToken, ValueError, TypeError) as exc:
            raise TokenBackendError("Token is invalid") from exc
        if kid not in keyring.keyset().verifying:
            # Its key was retired since the token was verified.
            raise TokenBackendError("Token is invalid")
        # A copy: the caller may change its token's payload, never the memo's.
        return dict(payload)

    def _verify(self, token: str) -> tuple[dict, str]:
        kid = jose.unverified_kid(token)
        key = keyring.verifying_key(kid) if kid else None
        if key is None:
            raise jose.InvalidToken("unknown key")
        payload = jose.decode(
            token,
            public_key=key.public_key,
            algorithm=key.algorithm,
            issuer=self.issuer,
            audience=self.audience,
            required=REQUIRED_CLAIMS,
        )
        # PyJWT reads "123" as a number; this server writes whole seconds as JSON integers only.
        for claim in ("exp", "iat"):
            if type(payload[claim]) is not int or not 0 <= payload[claim] <= _MAX_EPOCH:
                raise jose.InvalidToken(f"{claim} is not a number of seconds")
        return payload, kid

    def forget(self, kids=None) -> None:
        self._verified.cache_clear()


@functools.cache
def _backend(issuer: str, audience: tuple[str, ...]) -> KeyringBackend:
    backend = KeyringBackend(issuer=issuer, audience=audience)
    keyring.on_unpublished.append(backend.forget)
    return backend


def token_backend() -> KeyringBackend:
    return _backend(settings.TOKEN_ISSUER, tuple(settings.TOKEN_AUDIENCE))


class AuthToken(Token):
    """The token a sign-in hands out."""

    token_type = "auth"

    def get_token_backend(self) -> KeyringBackend:
        return token_backend()

    @property
    def lifetime(self) -> timedelta:
        return _lifetime()

    def verify(self) -> None:
        """Check exp, jti and type (simplejwt), then the types of the claims this server reads."""
        super().verify()
        payload = self.payload
        for claim in ("sub", "sid", "jti"):
            if not isinstance(payload.get(claim), str) or not payload[claim]:
                raise TokenError(f"Token has no valid {claim}")
        amr = payload.get("amr")
        if not isinstance(amr, list) or not all(isinstance(method, str) for method in amr):
            raise TokenError("Token has no valid amr")

    @property
    def session_id(self) -> str:
        return self.payload["sid"]

    @property
    def subject(self) -> str:
        return self.payload["sub"]


def _audience():
    audience = settings.TOKEN_AUDIENCE
    return audience[0] if len(audience) == 1 else list(audience)


# Each login and refresh runs it: compiled once (core.prepared).
_group_names = PreparedQuery(lambda user_id: Group.objects.filter(user=user_id).values_list("name", flat=True), int)


def auth_token_issue(*, session: Session, user: User, now: datetime | None = None) -> str:
    """Return a new auth token of this session: it lives TOKEN_LIFETIME, never past the session.

    `groups` is read now (one query), so a change of the user's groups shows in the next token.
    """
    now = now or _now()
    # The envelope simplejwt's Token would give a new token (type and jti), with this server's
    # own iat and exp: a Token built here would work out an exp and iat only to lose them.
    payload = {
        api_settings.TOKEN_TYPE_CLAIM: AuthToken.token_type,
        api_settings.JTI_CLAIM: uuid4().hex,
        "iss": settings.TOKEN_ISSUER,
        "aud": _audience(),
        "sub": str(user.public_id),
        "sid": session.public_id,
        "email": user.email,
        "email_verified": user.is_email_verified,
        "groups": sorted(_group_names(user.pk)),
        "amr": list(session.amr),
        "iat": int(now.timestamp()),
        "exp": int(min(now + _lifetime(), session.expires_at).timestamp()),
    }
    return token_backend().encode(payload)


def auth_token_decode(raw: str) -> AuthToken:
    """Return the verified token (signature by a published key, iss, aud, expiry, type), or raise
    TokenInvalid."""
    try:
        return AuthToken(raw)
    except TokenError as exc:
        raise TokenInvalid from exc
