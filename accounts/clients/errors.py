"""Resource servers (introspection): its entries of the error catalogue (core.errors holds the base and the handler)."""

from core.errors import AuthError


class InvalidClientCredentials(AuthError):
    status, message = 401, "Invalid client credentials"
    challenge = 'Basic realm="introspection"'
