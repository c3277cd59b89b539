"""Verify the auth server's tokens offline, with the public keys it publishes (its JWKS).

Plain Python on PyJWT, no Django: copy this file into any service.

- The keys come from AUTH_JWKS_URL through PyJWT's `PyJWKClient`, which keeps the key set for
  `jwks_max_age` seconds. A token naming a key id (`kid`) that is not in the kept set makes it
  fetch the set again at once (a key made by a rotation), but at most once every `cooldown`
  seconds, so that made-up key ids cannot make this service flood the auth server.
- The signature is checked with the algorithm of the key the token names (the JWK's `alg`),
  never with the one the token's header asks for, and only asymmetric algorithms are accepted.
- Then `exp`, `iat`, `iss` and `aud`, and the claims this service reads: `sub`, `email`,
  `groups`, `amr`.
- And the token's kind: an access token of the auth server's OpenID provider (RFC 9068: its header
  says `typ: at+jwt`; it has no `email` or `groups`, its `scope` and `client_id` say which app
  asked for it), or one of the auth server's own auth tokens (`token_type: auth`). Any other token
  of the same keys (an ID token, a logout token) is refused, whatever its `aud`.

What it cannot know: a token is accepted here until it expires, even after its session was
revoked on the auth server (sign-out, password change, a disabled account). Keep the auth
server's TOKEN_LIFETIME short, or ask its introspection endpoint where that matters (README.md).
"""

import dataclasses
from typing import ClassVar

import jwt

# A JWKS publishes public keys. An HMAC "key" taken from one would be a secret everybody can read,
# so only algorithms whose keys are public are accepted.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
# RFC 9068's media type for JWT access tokens, short or long (compared without case).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# The claim and value of the auth server's own auth tokens (its login's tokens).
AUTH_TOKEN_TYPE_CLAIM, AUTH_TOKEN_TYPE = "token_type", "auth"


class InvalidToken(Exception):
    """Not a valid token of the auth server: malformed, unknown key, bad signature, wrong issuer
    or audience, expired, or claims of the wrong shape."""


class KeysUnavailable(Exception):
    """The auth server's keys could not be fetched, so the token could not be checked."""


@dataclasses.dataclass(frozen=True)
class TokenUser:
    """The signed-in user, as the token describes them: no database row behind it."""

    sub: str
    email: str
    groups: tuple[str, ...]
    amr: tuple[str, ...]

    # What Django and DRF (IsAuthenticated) ask of a user object.
    is_authenticated: ClassVar[bool] = True
    is_anonymous: ClassVar[bool] = False

    def in_group(self, name: str) -> bool:
        return name in self.groups


def _strings(claims: dict, name: str) -> tuple[str, ...]:
    value = claims.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidToken(f"the {name} claim is not a list of strings")
    return tuple(value)


def kind_check(header: dict, claims: dict) -> None:
    """Raise InvalidToken unless the token is an access token (RFC 9068) or an auth token."""
    typ = header.get("typ")
    typ = typ.lower() if isinstance(typ, str) else ""
    if typ in ACCESS_TOKEN_TYPES:
        return
    if claims.get(AUTH_TOKEN_TYPE_CLAIM) == AUTH_TOKEN_TYPE and typ in ("", "jwt"):
        return
    raise InvalidToken("not an access token nor an auth token of the auth server")


def user_from_claims(claims: dict) -> TokenUser:
    """Return the user a verified token describes, or raise InvalidToken if a claim is malformed."""
    sub, email = claims.get("sub"), claims.get("email", "")
    if not isinstance(sub, str) or not sub:
        raise InvalidToken("the sub claim is not a string")
    if not isinstance(email, str):
        raise InvalidToken("the email claim is not a string")
    return TokenUser(sub=sub, email=email, groups=_strings(claims, "groups"), amr=_strings(claims, "amr"))


class TokenVerifier:
    """Verify tokens of one auth server (`issuer`) for one audience."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str,
        jwks_max_age: float = 300,
        cooldown: float = 30,
        leeway: float = 0,
        timeout: float = 5,
    ):
        self.issuer, self.audience, self.leeway = issuer, audience, leeway
        # cache_keys stays off: its per-key cache never expires, so a key retired by the auth
        # server would verify here until a restart. The key set's cache expires (jwks_max_age).
        self.jwks = jwt.PyJWKClient(
            jwks_url, cache_jwk_set=True, lifespan=jwks_max_age, cooldown_duration=cooldown, timeout=timeout
        )

    def claims(self, token: str) -> dict:
        """Return the verified claims of the token, or raise InvalidToken or KeysUnavailable."""
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise KeysUnavailable(str(exc)) from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if key.algorithm_name not in ASYMMETRIC_ALGORITHMS:
            raise InvalidToken(f"the key's algorithm {key.algorithm_name} is not an asymmetric one")
        try:
            verified = jwt.decode_complete(
                token,
                key,
                # The key's own algorithm: a token cannot choose how it is checked.
                algorithms=[key.algorithm_name],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        kind_check(verified["header"], verified["payload"])
        return verified["payload"]

    def verify(self, token: str) -> TokenUser:
        """Return the user the token describes, or raise InvalidToken or KeysUnavailable."""
        return user_from_claims(self.claims(token))
