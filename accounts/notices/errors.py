"""Emails: its entries of the error catalogue (core.errors holds the base and the handler)."""

from core.errors import AuthError


class CouldNotSendEmail(AuthError):
    status, message = 500, "Server could not process email request"
