"""Two-factor sign-in: TOTP enrollment, recovery codes, the code check of a login, staff reset.

- Enrollment: POST /api/mfa/totp, with the password, makes a secret (shown once, stored
  encrypted) and PUT confirms it with a code of the app; only then is two-factor on, and ten
  recovery codes are shown, once. Turning it on or off, or restarting an enrollment, thus takes
  the password: a stolen token alone changes nothing.
- A code works once: the time step of each accepted code is stored, and a code of that step or
  an older one is refused, so a code seen over a shoulder cannot be replayed within its window.
  A recovery code works once too (it is marked used). Both are compare-and-set UPDATEs, so two
  concurrent requests with one code cannot both pass.
- Every failed code check, on any endpoint (login, the admin login, confirm, disable, new
  recovery codes), counts against LOGIN_ACCOUNT_RATE with the failed password checks
  (accounts.passwords.credentials) and is recorded (MFA_FAILED); at the limit, every code check of
  the account answers Throttled, the right code included. It is also counted apart, at the same
  rate (two_factor_limit), in a count a password reset does not clear: a reset clears password
  failures only, so whoever holds the mailbox and the password gets no more code guesses by it.
- What a client may type: `otp` and `code` are trimmed, and spaces inside are ignored ("123 456").
  A value of six digits is a TOTP code; anything else is read as a recovery code, case-insensitive,
  hyphens and spaces ignored, O read as 0 and I or L as 1 (the codes use Crockford's base32
  alphabet, which has none of those letters). Recovery codes are accepted at login and to turn
  two-factor off (the way back for a user who lost the app); confirming an enrollment and making
  new recovery codes take a code of the app.
"""

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.audit import services as audit
from accounts.mfa import totp
from accounts.mfa.errors import (
    InvalidTwoFactorCode,
    NoTwoFactorEnrollment,
    TwoFactorAlreadyEnabled,
    TwoFactorNotEnabled,
    TwoFactorRequired,
)
from accounts.mfa.models import RecoveryCode, TOTPDevice
from accounts.notices import services as emails
from accounts.passwords.credentials import account_limit, password_check
from accounts.sessions.services import EndReason, sessions_end
from accounts.users.models import User
from accounts.webhooks.events import user_event_emit
from core import metrics
from core.errors import InvalidCredentials
from core.ratelimit import RateLimit

RECOVERY_CODES = 10
# Crockford's base32: no I, L, O or U, so a code read aloud or copied by hand stays unambiguous.
RECOVERY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# 10 characters of 5 bits: 50 random bits per code, in two groups of five for reading.
RECOVERY_CODE_LENGTH = 10
_RECOVERY_READING = str.maketrans({"O": "0", "I": "1", "L": "1"})
_DIGEST_SALT = "accounts.mfa.services.recovery_code"


@dataclass(frozen=True)
class TwoFactorStatus:
    totp: bool
    recovery_codes_left: int


@dataclass(frozen=True)
class Enrollment:
    secret: str
    otpauth_uri: str
    qr_svg: str


# --- recovery codes ------------------------------------------------------------------------------


def _recovery_code_new() -> str:
    code = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return f"{code[:5]}-{code[5:]}"


def _recovery_code_read(typed: str) -> str | None:
    """Return the code as stored (10 characters of the alphabet), or None if it cannot be one."""
    code = "".join(typed.upper().replace("-", "").split()).translate(_RECOVERY_READING)
    if len(code) != RECOVERY_CODE_LENGTH or any(char not in RECOVERY_ALPHABET for char in code):
        return None
    return code


def _digest(code: str, *, secret_key: str | None = None) -> str:
    """Return the keyed digest a recovery code is stored as (HMAC-SHA256 under SECRET_KEY)."""
    return salted_hmac(_DIGEST_SALT, code, secret=secret_key, algorithm="sha256").hexdigest()


def _recovery_codes_replace(*, user: User) -> list[str]:
    """Make the user's ten recovery codes, the earlier ones gone; return them as shown, once."""
    codes = [_recovery_code_new() for _ in range(RECOVERY_CODES)]
    with transaction.atomic():
        RecoveryCode.objects.filter(user=user).delete()
        RecoveryCode.objects.bulk_create(
            [RecoveryCode(user=user, digest=_digest(_recovery_code_read(code))) for code in codes]
        )
    return codes


def _recovery_code_spend(*, user: User, typed: str, action: str) -> bool:
    """Spend one unused recovery code of the user; return False if `typed` is none of them."""
    code = _recovery_code_read(typed)
    if code is None:
        return False
    # Codes made under a SECRET_KEY that is being rotated out still work.
    digests = [_digest(code, secret_key=key) for key in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)]
    for stored in RecoveryCode.objects.filter(user=user, used_at__isnull=True):
        if any(constant_time_compare(stored.digest, digest) for digest in digests):
            if not RecoveryCode.objects.filter(pk=stored.pk, used_at__isnull=True).update(used_at=timezone.now()):
                return False  # a concurrent request spent it first
            left = RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()
            audit.record(audit.Type.MFA_RECOVERY_CODE_USED, user=user, detail=f"{action}, {left} left")
            emails.send_recovery_code_used(user=user, codes_left=left)
            return True
    return False


# --- the code check ------------------------------------------------------------------------------


def _totp_accept(*, device: TOTPDevice, typed: str) -> bool:
    """Accept a code of the device's app once: its step must be later than the last accepted one."""
    step = totp.code_step(secret=device.secret(), code="".join(typed.split()))
    if step is None:
        return False
    fresh = Q(last_used_step__isnull=True) | Q(last_used_step__lt=step)
    if not TOTPDevice.objects.filter(fresh, pk=device.pk).update(last_used_step=step):
        return False  # replayed: this step, or a later one, was accepted already
    device.last_used_step = step
    return True


def two_factor_limit(*, user: User) -> RateLimit:
    """Return the account's two-factor failures, counted at LOGIN_ACCOUNT_RATE apart from the
    account's limit (which a password reset clears; this count it does not)."""
    return RateLimit("login_account_two_factor", f"user:{user.pk}", rate_setting="LOGIN_ACCOUNT_RATE")


def _code_check(*, user: User, device: TOTPDevice, code: str, action: str, recovery_codes: bool) -> None:
    """Check a code of the user's app (or, if `recovery_codes`, a recovery code), or raise.

    Throttled at LOGIN_ACCOUNT_RATE, counting the account's failed password and code checks
    (account_limit) or its code failures alone (two_factor_limit); InvalidTwoFactorCode for a
    wrong, replayed or spent code, counted against both and recorded.
    """
    limits = [account_limit(user=user), two_factor_limit(user=user)]
    for limit in limits:
        limit.check()
    if totp.is_code("".join(code.split())):
        accepted, outcome = _totp_accept(device=device, typed=code), "accepted"
    else:
        accepted, outcome = recovery_codes and _recovery_code_spend(user=user, typed=code, action=action), "recovery_code"
    if not accepted:
        for limit in limits:
            limit.hit()
        audit.record(audit.Type.MFA_FAILED, user=user, detail=action)
        metrics.two_factor_counted("refused")
        raise InvalidTwoFactorCode
    metrics.two_factor_counted(outcome)


def _device_on(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed_at__isnull=False).first()


# --- the flows -----------------------------------------------------------------------------------


def two_factor_status(*, user: User) -> TwoFactorStatus:
    """Return whether TOTP is on, and how many recovery codes are left unused."""
    on = TOTPDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()
    left = RecoveryCode.objects.filter(user=user, used_at__isnull=True).count() if on else 0
    return TwoFactorStatus(totp=on, recovery_codes_left=left)


def totp_enrollment_start(*, user: User, password: str) -> Enrollment:
    """Start (or start again) an enrollment, with the password: a new secret, not in use until confirmed.

    The password, as to turn two-factor off: a stolen token alone must not turn it on (the thief's
    app and recovery codes would then lock the owner out past a password reset), nor replace an
    enrollment in progress. This is the one way an enrollment is made, so PUT confirms only one
    started with the password. TwoFactorAlreadyEnabled is checked first (the password is not even
    looked at); a wrong password is InvalidCredentials, counted in LOGIN_ACCOUNT_RATE and recorded.
    """
    if _device_on(user) is not None:
        raise TwoFactorAlreadyEnabled
    if not password_check(user=user, password=password, action="two-factor enrollment"):
        raise InvalidCredentials
    secret = totp.secret_new()
    try:
        with transaction.atomic():
            # A pending enrollment is replaced; a confirmed device is not found by this lookup,
            # and the user's one device then refuses the insert.
            TOTPDevice.objects.update_or_create(
                user=user,
                confirmed_at=None,
                defaults={
                    "secret_encrypted": TOTPDevice.secret_encrypt(secret),
                    "last_used_step": None,
                    "created_at": timezone.now(),
                },
            )
    except IntegrityError:
        raise TwoFactorAlreadyEnabled from None
    uri = totp.otpauth_uri(secret=secret, account=user.email)
    return Enrollment(secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri))


def totp_enrollment_confirm(*, user: User, code: str) -> list[str]:
    """Turn TOTP on with a first code of the app; return the ten recovery codes, shown once."""
    device = TOTPDevice.objects.filter(user=user, confirmed_at__isnull=True).first()
    if device is None:
        raise NoTwoFactorEnrollment
    _code_check(user=user, device=device, code=code, action="two-factor confirmation", recovery_codes=False)
    with transaction.atomic():
        # The very enrollment whose code was checked: not one restarted meanwhile.
        confirmed = TOTPDevice.objects.filter(
            pk=device.pk, confirmed_at__isnull=True, secret_encrypted=device.secret_encrypted
        ).update(confirmed_at=timezone.now())
        if not confirmed:
            raise NoTwoFactorEnrollment
        codes = _recovery_codes_replace(user=user)
        user_event_emit("two_factor.enabled", user=user, method="totp")
    audit.record(audit.Type.MFA_ENABLED, user=user)
    emails.send_two_factor_enabled(user=user)
    return codes


def totp_disable(*, user: User, password: str, code: str) -> None:
    """Turn two-factor off, with the password and a code (of the app, or a recovery code)."""
    device = _device_on(user)
    if device is None:
        raise TwoFactorNotEnabled
    if not password_check(user=user, password=password, action="two-factor disable"):
        raise InvalidCredentials
    _code_check(user=user, device=device, code=code, action="two-factor disable", recovery_codes=True)
    with transaction.atomic():
        device.delete()
        RecoveryCode.objects.filter(user=user).delete()
        user_event_emit("two_factor.disabled", user=user, method="totp", by="user")
    audit.record(audit.Type.MFA_DISABLED, user=user)
    emails.send_two_factor_disabled(user=user, how="with your password and a code")


def recovery_codes_regenerate(*, user: User, code: str) -> list[str]:
    """Replace the user's recovery codes with ten new ones (a code of the app required)."""
    device = _device_on(user)
    if device is None:
        raise TwoFactorNotEnabled
    _code_check(user=user, device=device, code=code, action="new recovery codes", recovery_codes=False)
    codes = _recovery_codes_replace(user=user)
    audit.record(audit.Type.MFA_RECOVERY_CODES_REGENERATED, user=user)
    return codes


def login_code_check(*, user: User, otp: str, where: str = "") -> bool:
    """The login's second step, once the password is right: return whether a code was checked.

    A user without TOTP on needs none (and `otp` is ignored); otherwise raise TwoFactorRequired
    without one, or what `_code_check` raises. `where` names the entry point ("" for the API).
    """
    device = _device_on(user)
    if device is None:
        return False
    if not otp.strip():
        metrics.two_factor_counted("required")
        raise TwoFactorRequired
    action = f"login ({where})" if where else "login"
    _code_check(user=user, device=device, code=otp, action=action, recovery_codes=True)
    return True


def two_factor_reset(*, user: User, by: str) -> bool:
    """Turn the user's two-factor off for staff or an operator (`by` says who, for the audit
    trail); they may enroll again. End every session.

    Return False if two-factor was not on. The user is told by email. Who may do this is the
    caller's rule (accounts.staff.services.two_factor_reset).
    """
    device = _device_on(user)
    if device is None:
        return False
    with transaction.atomic():
        device.delete()
        RecoveryCode.objects.filter(user=user).delete()
        ended = sessions_end(user=user, reason=EndReason.TWO_FACTOR_RESET)
        user_event_emit("two_factor.disabled", user=user, method="totp", by="staff")
    audit.record(audit.Type.MFA_RESET, user=user, detail=f"by {by} ({ended} sessions ended)")
    emails.send_two_factor_disabled(user=user, how="by our staff (a reset)")
    return True
