"""The DRF authentication class: Authorization header → auth token → session and user → checks.

The checks run in the contract's order: no header → LoginRequired (by the permission class, as
DRF does for anonymous requests); a header that does not hold a valid auth token of an existing
user → TokenInvalid; disabled → AccountDisabled; deactivated → AccountNotActive; a session that
was ended (sign-out, revocation, password change, recovery, staff) or has expired → TokenInvalid
(accounts.sessions.tokens.token_authenticate). One SQL query, the session joined with its user;
`last_seen_at` is written at most once a minute per session.

`request.user` is the user and `request.auth` the session.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication

from accounts.sessions.services import session_touch
from accounts.sessions.tokens import token_authenticate


def token_from_header(header: str) -> str:
    """Return the token of `Authorization: <token>` or `Authorization: Bearer <token>`."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip()
    return header.strip()


class TokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        if header is None:
            return None
        _, session = token_authenticate(raw=token_from_header(header))
        session_touch(session=session)
        return session.user, session

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """How /api/schema describes TokenAuthentication (registered by being defined)."""

    target_class = TokenAuthentication
    name = "token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "The auth token, raw (`Authorization: <token>`) or as `Bearer <token>`.",
        }
