"""Two-factor sign-in as a stage of the sign-in (accounts.signin.stages)."""

from accounts.mfa.errors import InvalidTwoFactorCode, TwoFactorRequired
from accounts.mfa.services import login_code_check
from accounts.users.models import User


def two_factor(*, user: User, otp: str, where: str = "") -> list[str]:
    """Check the code of a user with two-factor on: ["otp"]; [] for a user without it."""
    return ["otp"] if login_code_check(user=user, otp=otp, where=where) else []


# What the stage can refuse a sign-in with, for the login's description (accounts.signin.api).
two_factor.errors = (TwoFactorRequired, InvalidTwoFactorCode)
