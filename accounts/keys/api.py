"""/.well-known/: what resource servers need to verify auth tokens without our secrets."""

from django.conf import settings
from rest_framework.response import Response

from accounts.keys.keyring import keyring
from core.api import PublicView


class JWKSView(PublicView):
    """GET /.well-known/jwks.json: the public keys (next, current, previous), cacheable."""

    def get(self, request):
        response = Response({"keys": keyring.keyset().jwks})
        response["Cache-Control"] = f"public, max-age={settings.JWKS_MAX_AGE}"
        return response


class AuthorizationServerMetadataView(PublicView):
    """GET /.well-known/openid-configuration: where the keys and the introspection endpoint are
    (RFC 8414 names). The server issues no ID tokens: it is not an OpenID provider."""

    def get(self, request):
        issuer = settings.TOKEN_ISSUER
        return Response(
            {
                "issuer": issuer,
                "jwks_uri": f"{issuer}/.well-known/jwks.json",
                "introspection_endpoint": f"{issuer}/api/introspect",
                "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )
