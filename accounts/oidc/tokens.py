"""The provider's tokens, all signed by the keyring (accounts.keys): no key of their own.

- Access tokens are RFC 9068 JWTs (`typ: at+jwt`): `iss`, `sub` (the user's public id, or the
  client id for client_credentials), `aud` (TOKEN_AUDIENCE, or the resource the client asked for),
  `client_id`, `scope`, `exp`, `iat`, `jti`, and `sid` when a user's session stands behind them.
  Signed with the auth tokens' key (TOKEN_ALGORITHM); a resource server verifies them offline.
- ID tokens are signed in the client's algorithm (RS256 by default, or ES256).
- Logout tokens (Back-Channel Logout 1.0, `typ: logout+jwt`) likewise.

The server's own endpoints accept none of these: an auth token carries `token_type: auth`, which
none of them has, and an access token must say `at+jwt` in its header, which no auth token does.
"""

import functools
import uuid
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from accounts.keys import jose
from accounts.keys.keyring import keyring

ACCESS_TOKEN_TYPE = "at+jwt"
LOGOUT_TOKEN_TYPE = "logout+jwt"
ACCESS_REQUIRED = ["exp", "iat", "iss", "aud", "sub", "client_id", "jti"]
MEMO_SIZE = 4096
_MAX_EPOCH = 253402300799


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def audience_of(request) -> str | list[str]:
    """The access token's audience: the resources asked for (RFC 8707, checked against the
    client's list by the validator), else TOKEN_AUDIENCE."""
    resources = getattr(request, "oidc_resources", None)
    audience = list(resources) if resources else list(settings.TOKEN_AUDIENCE)
    return audience[0] if len(audience) == 1 else audience


def access_token_generate(request, refresh_token=False) -> str:
    """OAUTH2_PROVIDER["ACCESS_TOKEN_GENERATOR"]: the signed access token of a token request."""
    now = timezone.now()
    client, user = request.client, request.user
    session = getattr(request, "server_session", None)
    payload = {
        "iss": settings.TOKEN_ISSUER,
        "sub": str(user.public_id) if user is not None and request.grant_type != "client_credentials" else client.client_id,
        "aud": audience_of(request),
        "client_id": client.client_id,
        "scope": " ".join(request.scopes or []),
        "iat": _epoch(now),
        "exp": _epoch(now) + settings.OIDC_ACCESS_TOKEN_LIFETIME,
        "jti": uuid.uuid4().hex,
    }
    if session is not None and request.grant_type != "client_credentials":
        payload["sid"] = session.public_id
    return sign(payload, algorithm=settings.TOKEN_ALGORITHM, typ=ACCESS_TOKEN_TYPE)


def sign(payload: dict, *, algorithm: str, typ: str | None = None) -> str:
    """Sign the payload with the keyring's current key of this algorithm."""
    kid, private_key = keyring.keyset().signer(algorithm)
    return jose.encode(payload, private_key=private_key, algorithm=algorithm, kid=kid, typ=typ)


@functools.lru_cache(maxsize=MEMO_SIZE)
def _verified(token: str) -> tuple[dict, str]:
    kid, typ = jose.unverified_header(token)
    if typ != ACCESS_TOKEN_TYPE:
        raise jose.InvalidToken("not an access token")
    key = keyring.verifying_key(kid) if kid else None
    if key is None:
        raise jose.InvalidToken("unknown key")
    payload = jose.decode(
        token,
        public_key=key.public_key,
        algorithm=key.algorithm,
        issuer=settings.TOKEN_ISSUER,
        audience=None,
        required=ACCESS_REQUIRED,
    )
    for claim in ("exp", "iat"):
        if type(payload[claim]) is not int or not 0 <= payload[claim] <= _MAX_EPOCH:
            raise jose.InvalidToken(f"{claim} is not a number of seconds")
    for claim in ("sub", "client_id", "jti"):
        if not isinstance(payload[claim], str) or not payload[claim]:
            raise jose.InvalidToken(f"{claim} is not a string")
    if "sid" in payload and not isinstance(payload["sid"], str):
        raise jose.InvalidToken("sid is not a string")
    return payload, kid


def access_token_verify(token: str) -> dict | None:
    """Return the claims of an access token of this server that has not expired (its signature,
    `typ`, `iss` checked; remembered per worker), or None. Its row and session are the caller's."""
    if not isinstance(token, str) or len(token) > 4096:
        return None
    try:
        payload, kid = _verified(token)
    except (jose.InvalidToken, ValueError, TypeError):
        return None
    if payload["exp"] <= _epoch(timezone.now()) or kid not in keyring.keyset().verifying:
        return None
    return payload


def id_token_hint_verify(token: str) -> dict | None:
    """Return the claims of an ID token this server signed (expired ones too: RP-Initiated Logout
    accepts them), or None. Its audience (`aud`, a client id) is the caller's to check."""
    if not isinstance(token, str) or len(token) > 8192:
        return None
    try:
        kid, typ = jose.unverified_header(token)
        # An access token (at+jwt) or a logout token (logout+jwt) is signed by the same keys.
        if typ not in (None, "JWT"):
            return None
        key = keyring.verifying_key(kid) if kid else None
        if key is None:
            return None
        claims = jose.decode(
            token,
            public_key=key.public_key,
            algorithm=key.algorithm,
            issuer=settings.TOKEN_ISSUER,
            audience=None,
            required=["iss", "sub", "aud", "exp", "iat"],
            verify_exp=False,
        )
    except (jose.InvalidToken, ValueError, TypeError):
        return None
    if not isinstance(claims.get("aud"), str) or not isinstance(claims.get("sub"), str):
        return None
    # The API's auth tokens are signed by the same keys too, and say what they are.
    if settings.SIMPLE_JWT["TOKEN_TYPE_CLAIM"] in claims:
        return None
    return claims


def logout_token_make(*, client_id: str, subject: str, session_id: str, algorithm: str) -> str:
    """A Back-Channel Logout 1.0 logout token for one client and session."""
    now = _epoch(timezone.now())
    payload = {
        "iss": settings.TOKEN_ISSUER,
        "aud": client_id,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        "sub": subject,
        "sid": session_id,
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    }
    return sign(payload, algorithm=algorithm, typ=LOGOUT_TOKEN_TYPE)


def _forget(kids=None) -> None:
    _verified.cache_clear()


keyring.on_unpublished.append(_forget)
