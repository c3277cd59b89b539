"""DRF glue: `Authorization: Bearer <token>` → TokenUser, and a group permission.

- BearerTokenAuthentication: `request.user` is the TokenUser, `request.auth` the verified claims.
  No Authorization header (or another scheme) → 401 `Login required`; a token that does not
  verify → 401 `Invalid or expired token`; both with `WWW-Authenticate: Bearer`. The auth
  server's keys out of reach → 503. (The messages and the envelope: resource_server.errors.)
  Each refused token is logged with the reason (the issuer, the expiry, an unknown key, ...),
  which the client's answer does not tell; never the token itself.
- InGroup: 403 for a signed-in user outside the group.
"""

import functools
import logging

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from resource_server.tokens import InvalidToken, KeysUnavailable, TokenVerifier, user_from_claims

CHALLENGE = 'Bearer realm="api"'

logger = logging.getLogger(__name__)


@functools.cache
def _verifier(issuer: str, audience: str, jwks_url: str, max_age: int, cooldown: int, leeway: int) -> TokenVerifier:
    return TokenVerifier(
        issuer=issuer, audience=audience, jwks_url=jwks_url, jwks_max_age=max_age, cooldown=cooldown, leeway=leeway
    )


def verifier() -> TokenVerifier:
    """Return this process's verifier for the configured auth server; its key set is shared by
    every request the process serves."""
    return _verifier(
        settings.AUTH_ISSUER,
        settings.AUTH_AUDIENCE,
        settings.AUTH_JWKS_URL,
        settings.AUTH_JWKS_MAX_AGE,
        settings.AUTH_JWKS_COOLDOWN,
        settings.AUTH_LEEWAY,
    )


class KeysUnreachable(exceptions.APIException):
    status_code = 503
    default_detail = "Cannot check tokens now: the auth server's keys are out of reach"


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            # Not ours: without a user, IsAuthenticated answers 401.
            return None
        try:
            claims = verifier().claims(token.strip())
            user = user_from_claims(claims)
        except InvalidToken as exc:
            # The reason, quoted: a made-up kid is the caller's text and could hold a line break.
            logger.info("Token refused: %r", str(exc)[:300])
            raise exceptions.AuthenticationFailed("Invalid or expired token") from None
        except KeysUnavailable as exc:
            logger.warning("The auth server's keys could not be fetched: %s", exc)
            raise KeysUnreachable from None
        return user, claims

    def authenticate_header(self, request):
        return CHALLENGE


class InGroup(BasePermission):
    """Let through the users whose token lists the group."""

    def __init__(self, group: str):
        self.group = group
        self.message = f"Requires the group {group}"

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.in_group(self.group))
