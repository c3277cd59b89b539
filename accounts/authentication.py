"""The DRF authentication class: Authorization header → auth token → user → state checks.

The checks run in the contract's order: no header → LoginRequired (by the permission class, as
DRF does for anonymous requests); a header that does not hold a valid auth token of an existing
user → TokenInvalid; disabled → AccountDisabled; deactivated → AccountNotActive; issued before
the user's `tokens_valid_after` → TokenInvalid. One query: the user row by primary key.
"""

from rest_framework.authentication import BaseAuthentication

from accounts.errors import AccountDisabled, AccountNotActive, AuthError, TokenInvalid
from accounts.models import User
from accounts.tokens.auth import AuthToken, auth_token_decode


def token_from_header(header: str) -> str:
    """Return the token of `Authorization: <token>` or `Authorization: Bearer <token>`."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip()
    return header.strip()


def user_check_token(user: User, token: AuthToken) -> None:
    """Raise the contract's error if this user may not use this (valid) token."""
    if not user.is_active:
        raise AccountDisabled
    if user.is_deactivated:
        raise AccountNotActive
    if token.issued_at < user.tokens_valid_after.timestamp():
        raise TokenInvalid


class TokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        if header is None:
            return None
        raw = token_from_header(header)
        if not raw or raw.lower() == "bearer":
            raise TokenInvalid
        token = auth_token_decode(raw)
        try:
            # get(), not filter().first(): no ORDER BY to compile on every request.
            user = User.objects.get(pk=token.user_id)
        except User.DoesNotExist:
            raise TokenInvalid from None
        try:
            user_check_token(user, token)
        except AuthError as exc:
            # Whose token was refused, for the audit trail (a refused refresh names the user).
            exc.user = user
            raise
        return user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
