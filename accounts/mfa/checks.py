"""System check: two-factor is a sign-in stage (SIGNIN_STAGES), so a settings file that left it out
would let users with two-factor on sign in with the password alone; refuse that at the check."""

from django.conf import settings
from django.core import checks

TWO_FACTOR_STAGE = "accounts.mfa.stages.two_factor"


@checks.register(checks.Tags.security)
def two_factor_is_a_signin_stage(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if TWO_FACTOR_STAGE in getattr(settings, "SIGNIN_STAGES", []):
        return []
    return [
        checks.Error(
            f"SIGNIN_STAGES does not list {TWO_FACTOR_STAGE}: users with two-factor on would sign in "
            "with their password alone.",
            id="accounts.E001",
        )
    ]
