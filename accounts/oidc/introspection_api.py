"""/api/introspect: token introspection (RFC 7662) for the registered clients (resource servers)."""

import base64
import binascii
import re
from urllib.parse import unquote

from rest_framework.response import Response

from accounts.clients.errors import InvalidClientCredentials
from accounts.clients.services import client_authenticate
from accounts.oidc.introspection import token_introspect
from accounts.oidc.introspection_serializers import IntrospectionOutput, IntrospectionSerializer, introspected_token
from core import metrics
from core.api import ContractViewSet
from core.schema import BODY_ERRORS, action_schema

CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def basic_credentials(header: str | None) -> dict:
    """Return the client id and secret of an HTTP Basic Authorization header (RFC 6749, 2.3.1:
    each part form-urlencoded before base64), or raise InvalidClientCredentials."""
    scheme, _, encoded = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClientCredentials
    try:
        # ValueError: a str that is not ASCII.
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidClientCredentials from None
    client_id, colon, client_secret = decoded.partition(":")
    client_id, client_secret = unquote(client_id.replace("+", " ")), unquote(client_secret.replace("+", " "))
    # Client ids are URL-safe base64; anything else (a NUL, say) names no client, and never
    # reaches the database.
    if not colon or not CLIENT_ID.fullmatch(client_id):
        raise InvalidClientCredentials
    return {"client_id": client_id, "client_secret": client_secret}


class IntrospectionViewSet(ContractViewSet):
    """POST /api/introspect: is this token active, and what does it say?"""

    actions = {"post": "introspect"}
    public = frozenset({"introspect"})
    # No `inputs`: the body is checked by introspected_token, IntrospectionSerializer's rules
    # at a fraction of the cost (the description below names that serializer).

    @action_schema(
        "introspection",
        "Introspect a token (RFC 7662), for registered resource servers",
        request=IntrospectionSerializer,
        output=IntrospectionOutput,
        errors=(*BODY_ERRORS, InvalidClientCredentials),
        # The "client" scheme (HTTP Basic) is declared in SPECTACULAR_SETTINGS["APPEND_COMPONENTS"].
        auth=[{"client": []}],
    )
    def introspect(self, request):
        credentials = basic_credentials(request.META.get("HTTP_AUTHORIZATION"))
        try:
            token = introspected_token(request.data)
        except Exception:
            # The caller's credentials come first: only a resource server learns what is wrong
            # with its body (DRF's parse and validation errors, and Django's own refusals, such
            # as too many form fields).
            client_authenticate(**credentials)
            raise
        # The caller's credentials and the token are checked together (one query).
        answer = token_introspect(**credentials, token=token)
        metrics.introspection_counted("active" if answer["active"] else "inactive")
        # RFC 7662: the answer is not to be cached (every answer of the API is no-store).
        # A hot path: the services build IntrospectionOutput's shape (a serializer costs some
        # 150 µs here); tests/core/test_api_output.py holds the two to the same keys.
        return Response(answer)

    def handle_exception(self, exc):
        if isinstance(exc, InvalidClientCredentials):
            metrics.introspection_counted(metrics.outcome_of(exc))
        return super().handle_exception(exc)
