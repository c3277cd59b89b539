"""Time-based one-time passwords: the one module that calls pyotp and segno.

RFC 6238 as authenticator apps expect it: a 160-bit base32 secret, 30-second steps, 6 digits,
HMAC-SHA1, and one step of tolerance either side (a code is accepted from 30 s before its step
to 30 s after it, for clocks that drift and users who type slowly). pyotp does every part of the
arithmetic; this module fixes the choices, builds the otpauth URI (issuer MFA_ISSUER, account
name the user's email) and draws it as a QR code (segno, SVG).

`code_step` returns the time step a code matched, so that the caller can refuse a second use
of the same code, or of any older one (RFC 6238, section 5.2).
"""

import io
import re
from datetime import datetime

import pyotp
import segno
from django.conf import settings
from django.utils import timezone
from pyotp.exceptions import OTPVerificationError

INTERVAL = 30
DIGITS = 6
# Steps accepted either side of the current one.
TOLERANCE = 1

_CODE = re.compile(rf"[0-9]{{{DIGITS}}}")


def _now() -> datetime:
    """Return the current time; the one clock of this module, so tests can move it."""
    return timezone.now()


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)


def secret_new() -> str:
    """Return a new secret: 160 random bits (RFC 4226's recommendation), base32 (32 characters)."""
    return pyotp.random_base32(length=32)


def otpauth_uri(*, secret: str, account: str) -> str:
    """Return the otpauth:// URI that authenticator apps read (by QR code or pasted)."""
    return _totp(secret).provisioning_uri(name=account, issuer_name=settings.MFA_ISSUER)


def qr_svg(uri: str) -> str:
    """Return the URI as a QR code: a standalone SVG document (no XML declaration), ready to be
    put inline in a page or in an <img src="data:image/svg+xml,...">."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", xmldecl=False, scale=4, border=4, nl=False)
    return buffer.getvalue().decode()


def is_code(value: str) -> bool:
    """Return whether the value has the form of a code (six ASCII digits)."""
    return bool(_CODE.fullmatch(value))


def code_step(*, secret: str, code: str) -> int | None:
    """Return the time step the code belongs to, within the tolerance of now, or None.

    The comparison is pyotp's, in constant time.
    """
    if not is_code(code):
        return None
    try:
        return _totp(secret).verify_and_get_timecode(code, for_time=_now(), valid_window=TOLERANCE)
    except OTPVerificationError:
        return None
