"""Sign-in: POST /api/authenticate, and the admin site's login form.

Both run the same checks, in the contract's order: the rate limits (LOGIN_RATE for this email
and client address, LOGIN_ADDRESS_RATE for the address, LOGIN_ACCOUNT_RATE for the account), the
password (in equal time, accounts.passwords.credentials), confirmation, disabled, then for a user
with two-factor on the code (a sign-in stage, accounts.signin.stages). Failures count against all three limits and
are recorded in the audit trail; at a limit, every attempt is refused until the window moves on,
the right password included.
"""

from django.db import transaction
from django.utils import timezone

from accounts.audit import services as audit
from accounts.passwords.credentials import account_limit, password_matches
from accounts.sessions.models import Session
from accounts.sessions.services import session_open
from accounts.sessions.tokens import auth_token_issue
from accounts.signin.stages import signin_stages
from accounts.users.models import User, email_normalize
from accounts.webhooks.events import user_event_emit
from core import metrics
from core.addresses import address_group
from core.errors import AccountDisabled, AuthError, InvalidCredentials, Throttled, UserConfirmationRequired
from core.ratelimit import RateLimit, address_limit


def _login_limits(*, email: str, client_address: str) -> list:
    """Return LOGIN_RATE (this email from this address) and LOGIN_ADDRESS_RATE (the address, and
    an IPv6 client's /48: core.ratelimit.address_limit)."""
    group = address_group(client_address)
    return [RateLimit("login", f"{email_normalize(email)}|{group}"), address_limit("login_address", client_address)]


def credentials_check(*, email: str, password: str, client_address: str, where: str = "") -> User:
    """Return the user whose email and password these are, if the account may sign in.

    Raise Throttled, InvalidCredentials, UserConfirmationRequired or AccountDisabled; `where`
    names the entry point in the audit trail ("" for the API, "admin site").
    """
    limits = _login_limits(email=email, client_address=client_address)
    user = None
    try:
        for limit in limits:
            limit.check()
        user = User.objects.with_email(email).first()
        limits.append(account_limit(user=user, email=email))
        limits[-1].check()
        if not password_matches(user, password, on_failure=lambda: [limit.hit() for limit in limits]):
            raise InvalidCredentials
        if not user.is_confirmed:
            raise UserConfirmationRequired
        if not user.is_active:
            raise AccountDisabled
    except Throttled as exc:
        # The failures that reached the limit are recorded; a flood of refusals writes nothing.
        metrics.login_counted(entry=entry_of(where), exc=exc)
        raise
    except AuthError as exc:
        detail = f"{exc.message} ({where})" if where else exc.message
        audit.record(audit.Type.LOGIN_FAILED, user=user, email=email, detail=detail)
        metrics.login_counted(entry=entry_of(where), exc=exc)
        raise
    return user


def second_factor_check(*, user: User, otp: str, email: str, client_address: str, where: str = "") -> list[str]:
    """Run the stages after the password (accounts.signin.stages) for a user whose credentials
    were checked; return the session's `amr`.

    A user without two-factor signs in with the password alone (["pwd"]), whatever `otp` holds.
    Raise what a stage raises (TwoFactorRequired, InvalidTwoFactorCode, Throttled); a wrong guess
    counts against LOGIN_RATE and LOGIN_ADDRESS_RATE too, as a failed login.
    """
    amr = ["pwd"]
    try:
        for stage in signin_stages():
            amr += stage(user=user, otp=otp, where=where)
        return amr
    except AuthError as exc:
        if exc.wrong_guess:
            for limit in _login_limits(email=email, client_address=client_address):
                limit.hit()
        metrics.login_counted(entry=entry_of(where), exc=exc)
        raise


def sign_in(*, user: User, remember: bool, amr: list[str], client_address: str, user_agent: str, where: str = "") -> Session:
    """Open a session for a user whose credentials were checked; reactivate a deactivated account."""
    now = timezone.now()
    user.last_login = now
    fields = ["last_login"]
    with transaction.atomic():
        if user.is_deactivated:
            # Reactivation: the sessions ended by the deactivation stay ended.
            user.deactivated_at = None
            fields.append("deactivated_at")
            audit.record(audit.Type.REACTIVATE, user=user)
            user_event_emit("user.reactivated", user=user)
        user.save(update_fields=fields)
        session = session_open(
            user=user, remember=remember, amr=amr, user_agent=user_agent, client_address=client_address, now=now
        )
    details = [where] if where else []
    if remember:
        details.append("remember")
    audit.record(audit.Type.LOGIN, user=user, detail=", ".join(details))
    metrics.login_counted(entry=entry_of(where))
    return session


def entry_of(where: str) -> str:
    """Return the entry point's label in /metrics: "api", "admin" for the admin site, "page" for
    the hosted sign-in page (`where` may name the method too: "passkey, admin site")."""
    return "admin" if "admin" in where else "page" if "page" in where else "api"


def user_login(
    *, email: str, password: str, remember: bool = False, otp: str = "", client_address: str, user_agent: str = ""
) -> str:
    """Check the credentials (and the two-factor code), open a session and return its first auth token."""
    user = credentials_check(email=email, password=password, client_address=client_address)
    amr = second_factor_check(user=user, otp=otp, email=email, client_address=client_address)
    session = sign_in(user=user, remember=remember, amr=amr, client_address=client_address, user_agent=user_agent)
    return auth_token_issue(session=session, user=user, now=session.created_at)
