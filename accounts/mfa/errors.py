"""Two-factor sign-in: its entries of the error catalogue (core.errors holds the base and the handler)."""

from core.errors import AuthError


class TwoFactorRequired(AuthError):
    status, message = 401, "Two-factor code required"


class InvalidTwoFactorCode(AuthError):
    status, message = 401, "Invalid two-factor code"
    wrong_guess = True


class TwoFactorAlreadyEnabled(AuthError):
    status, message = 409, "Two-factor authentication is already enabled"


class TwoFactorNotEnabled(AuthError):
    status, message = 409, "Two-factor authentication is not enabled"


class NoTwoFactorEnrollment(AuthError):
    status, message = 409, "No two-factor enrollment in progress"
