"""Passkeys: their entry of the error catalogue (core.errors holds the base and the handler)."""

from core.errors import AuthError


class InvalidPasskey(AuthError):
    """Any failed WebAuthn verification; why is recorded in the audit trail, never told."""

    status, message = 401, "Invalid passkey"
    wrong_guess = True
