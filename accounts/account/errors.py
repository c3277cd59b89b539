"""The account's own life (registration, confirmation, profile, email): its entries of the error catalogue (core.errors holds the base and the handler)."""

from core.errors import AuthError


class UserAlreadyExist(AuthError):
    status, message = 401, "A user with that email already exists"


class NoUpdatesToMake(AuthError):
    status, message = 401, "No updates to make"


class UserAlreadyConfirmed(AuthError):
    status, message = 401, "Account already confirmed"


class InvalidPassword(AuthError):
    status, message = 401, "Password is incorrect"
