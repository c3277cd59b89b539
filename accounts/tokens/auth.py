"""Auth tokens (JWT through simplejwt).

Auth token: one per login, a JWT of type "auth" that lives TOKEN_LIFETIME and can be refreshed
(GET /api/authenticate) until `refresh_exp`, the end of the refresh window that began at login.
Its `iat` carries microseconds so that it can be compared exactly with the user's
`tokens_valid_after`.

"""

import base64
import binascii
import functools
import hmac
import json
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import datetime_from_epoch, datetime_to_epoch

from accounts.errors import TokenInvalid
from accounts.models import User


def _now() -> datetime:
    """Return the current time; the one clock of this module, so tests can move it."""
    return timezone.now()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# The latest epoch second a datetime can hold (9999-12-31T23:59:59Z).
_MAX_EPOCH = 253402300799


class HS256Backend(TokenBackend):
    """simplejwt's token backend for this server's tokens: JWS compact form, HS256, one header.

    simplejwt's own backend hands every token to PyJWT, which accepts any header and algorithm
    on its allow-list, re-checks the key (PEM, SSH, DER parsing) and re-validates each base64
    character on every call: about 60% of the cost of an authenticated read beyond a bare
    Django view. This server issues one kind of token, so it checks just that: the header must
    be the exact bytes it writes (`{"alg":"HS256","typ":"JWT"}`, as PyJWT writes them, so
    tokens stay interchangeable), which leaves no algorithm for a client to choose (no `none`,
    no HS512, no key confusion), and the signature must equal, compared in constant time, the
    HMAC-SHA256 of header and payload under the signing key. Expiry, type and the other claims
    are checked by the token class (simplejwt's `Token.verify` and `AuthToken.verify`).
    """

    HEADER = _b64encode(b'{"alg":"HS256","typ":"JWT"}')

    def __init__(self, signing_key: str, leeway=None):
        super().__init__(algorithm="HS256", signing_key=signing_key, leeway=leeway)
        self._key = signing_key.encode()

    def _signature(self, signing_input: str) -> bytes:
        return _b64encode(hmac.digest(self._key, signing_input.encode("ascii"), "sha256")).encode("ascii")

    def encode(self, payload: dict) -> str:
        body = _b64encode(json.dumps(payload, separators=(",", ":")).encode())
        signing_input = f"{self.HEADER}.{body}"
        return f"{signing_input}.{self._signature(signing_input).decode('ascii')}"

    def decode(self, token: str, verify: bool = True) -> dict:
        if not isinstance(token, str) or not token.isascii():
            raise TokenBackendError("Token is invalid")
        signing_input, _, signature = token.rpartition(".")
        header, _, body = signing_input.partition(".")
        if header != self.HEADER or not body or "." in body:
            raise TokenBackendError("Token is invalid")
        if verify and not hmac.compare_digest(signature.encode("ascii"), self._signature(signing_input)):
            raise TokenBackendError("Token is invalid")
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (binascii.Error, ValueError, RecursionError) as exc:
            raise TokenBackendError("Token is invalid") from exc
        if not isinstance(payload, dict):
            raise TokenBackendError("Token is invalid")
        exp = payload.get("exp")
        if exp is not None and (type(exp) is not int or not 0 <= exp <= _MAX_EPOCH):
            raise TokenBackendError("Token has no valid exp")
        return payload


@functools.cache
def _token_backend(signing_key: str, leeway) -> HS256Backend:
    return HS256Backend(signing_key, leeway)


class AuthToken(Token):
    """The token a login hands out."""

    token_type = "auth"

    def get_token_backend(self) -> HS256Backend:
        return _token_backend(api_settings.SIGNING_KEY, api_settings.LEEWAY)

    @property
    def lifetime(self) -> timedelta:
        return timedelta(seconds=settings.TOKEN_LIFETIME)

    def verify(self) -> None:
        """Check exp, jti and type (simplejwt), then the claims this server relies on."""
        super().verify()
        user_id = self.payload.get("user_id")
        if not (isinstance(user_id, str) and user_id.isascii() and user_id.isdigit()):
            raise TokenError("Token has no valid user_id")
        for claim in ("iat", "refresh_exp"):
            value = self.payload.get(claim)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TokenError(f"Token has no valid {claim}")
        if not isinstance(self.payload.get("remember"), bool):
            raise TokenError("Token has no valid remember")

    @property
    def user_id(self) -> int:
        return int(self.payload["user_id"])

    @property
    def issued_at(self) -> float:
        return float(self.payload["iat"])


def auth_token_issue(
    *, user: User, remember: bool, refresh_until: datetime | None = None, now: datetime | None = None
) -> str:
    """Return a new auth token for the user.

    A login starts a refresh window (TOKEN_REFRESH_LIFETIME, or TOKEN_REMEMBER_LIFETIME when
    `remember`); a refresh passes the window's end as `refresh_until`. The token lives
    TOKEN_LIFETIME but never past the window. `now` lets a caller issue the token at the very
    instant it wrote into `tokens_valid_after`.
    """
    now = now or _now()
    if refresh_until is None:
        window = settings.TOKEN_REMEMBER_LIFETIME if remember else settings.TOKEN_REFRESH_LIFETIME
        refresh_until = now + timedelta(seconds=window)
    token = AuthToken()
    token.payload.update(
        {
            "user_id": str(user.pk),
            "iat": now.timestamp(),
            "exp": datetime_to_epoch(min(now + token.lifetime, refresh_until)),
            "refresh_exp": datetime_to_epoch(refresh_until),
            "remember": remember,
        }
    )
    return str(token)


def auth_token_refresh(*, user: User, token: AuthToken) -> str:
    """Return a fresh token for the same login: same refresh window, TOKEN_LIFETIME more."""
    return auth_token_issue(
        user=user,
        remember=token["remember"],
        refresh_until=datetime_from_epoch(token["refresh_exp"]),
    )


def auth_token_decode(raw: str) -> AuthToken:
    """Return the verified token (signature, algorithm, expiry, type), or raise TokenInvalid."""
    try:
        return AuthToken(raw)
    except TokenError as exc:
        raise TokenInvalid from exc
