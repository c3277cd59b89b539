"""Login: POST /api/authenticate."""

from django.utils import timezone

from accounts import audit
from accounts.addresses import address_group
from accounts.errors import (
    AccountDisabled,
    AuthError,
    InvalidCredentials,
    Throttled,
    UserConfirmationRequired,
)
from accounts.models import User
from accounts.ratelimit import RateLimit
from accounts.tokens.auth import auth_token_issue


def _password_matches(user: User | None, password: str) -> bool:
    """Check the password; without a user, hash it anyway so that the answer takes as long
    as for a real account and does not tell which emails exist (Django ticket #20760)."""
    if user is None:
        User().set_password(password)
        return False
    return user.check_password(password)


def user_login(*, email: str, password: str, remember: bool = False, client_address: str) -> str:
    """Check the credentials and return a new auth token; a deactivated account is reactivated.

    Failed attempts count against LOGIN_RATE for this email and client address (an IPv6 client's
    /64, which it can walk through for free); once it is reached, every attempt is refused until
    the window moves on, right password or not.
    """
    failures = RateLimit("login", f"{email.lower()}|{address_group(client_address)}")
    user = None
    try:
        failures.check()
        user = User.objects.with_email(email).first()
        if not _password_matches(user, password):
            failures.hit()
            raise InvalidCredentials
        if not user.is_confirmed:
            raise UserConfirmationRequired
        if not user.is_active:
            raise AccountDisabled
    except Throttled:
        # The failures that reached the limit are recorded; a flood of refusals writes nothing.
        raise
    except AuthError as exc:
        audit.record(audit.Type.LOGIN_FAILED, user=user, email=email, detail=exc.message)
        raise
    now = timezone.now()
    user.last_login = now
    fields = ["last_login"]
    if user.is_deactivated:
        # Reactivation: tokens issued before (and during) the deactivation stay dead.
        user.deactivated_at = None
        user.tokens_valid_after = now
        fields += ["deactivated_at", "tokens_valid_after"]
        audit.record(audit.Type.REACTIVATE, user=user)
    user.save(update_fields=fields)
    audit.record(audit.Type.LOGIN, user=user, detail="remember" if remember else "")
    return auth_token_issue(user=user, remember=remember, now=now)
