"""/.well-known/: what resource servers need to verify auth tokens without our secrets."""

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.keys.keyring import keyring
from core.api import PublicView


@extend_schema_serializer(component_name="JWKS")
class JWKSOutput(serializers.Serializer):
    keys = serializers.ListField(child=serializers.DictField())


@extend_schema_serializer(component_name="AuthorizationServerMetadata")
class AuthorizationServerMetadataOutput(serializers.Serializer):
    issuer = serializers.URLField()
    jwks_uri = serializers.URLField()
    introspection_endpoint = serializers.URLField()
    introspection_endpoint_auth_methods_supported = serializers.ListField(child=serializers.CharField())


class JWKSView(PublicView):
    """GET /.well-known/jwks.json: the public keys (next, current, previous), cacheable."""

    @extend_schema(
        summary="The public keys that verify auth tokens (JWKS)",
        operation_id="jwks",
        tags=["keys"],
        auth=[],
        responses={200: JWKSOutput},
    )
    def get(self, request):
        response = Response(JWKSOutput({"keys": keyring.keyset().jwks}).data)
        response["Cache-Control"] = f"public, max-age={settings.JWKS_MAX_AGE}"
        return response


class AuthorizationServerMetadataView(PublicView):
    """GET /.well-known/openid-configuration: where the keys and the introspection endpoint are
    (RFC 8414 names). The server issues no ID tokens: it is not an OpenID provider."""

    @extend_schema(
        summary="Where the keys and the introspection endpoint are (RFC 8414)",
        operation_id="authorization_server_metadata",
        tags=["keys"],
        auth=[],
        responses={200: AuthorizationServerMetadataOutput},
    )
    def get(self, request):
        issuer = settings.TOKEN_ISSUER
        return Response(
            AuthorizationServerMetadataOutput(
                {
                    "issuer": issuer,
                    "jwks_uri": f"{issuer}/.well-known/jwks.json",
                    "introspection_endpoint": f"{issuer}/api/introspect",
                    "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
                }
            ).data
        )
