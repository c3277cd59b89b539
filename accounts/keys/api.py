"""/.well-known/jwks.json: the public keys that verify every token this server signs."""

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.keys.keyring import keyring
from core.api import PublicView


@extend_schema_serializer(component_name="JWKS")
class JWKSOutput(serializers.Serializer):
    keys = serializers.ListField(child=serializers.DictField())


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
