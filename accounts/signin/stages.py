"""The stages of a sign-in after the password, as settings.SIGNIN_STAGES names them.

A stage is a function `stage(*, user, otp, where) -> list[str]`: it returns the methods it
checked, for the session's `amr` (none when it does not apply to the user), or raises an AuthError;
its `errors` attribute lists the AuthErrors it can raise (the login's OpenAPI description).
An error whose `wrong_guess` is set (a wrong code) counts as a failed login. The rooms that add a
way to sign in (two-factor: accounts.mfa.stages) plug in here, so that sign-in imports none of them.
"""

import functools
from collections.abc import Callable

from django.conf import settings
from django.utils.module_loading import import_string

Stage = Callable[..., list[str]]


@functools.cache
def _stages(paths: tuple[str, ...]) -> tuple[Stage, ...]:
    return tuple(import_string(path) for path in paths)


def signin_stages() -> tuple[Stage, ...]:
    """Return the configured stages, in order (read at each sign-in, imported once)."""
    return _stages(tuple(settings.SIGNIN_STAGES))
