"""/api/authorizations: the apps a user allowed (consents), and withdrawing one; and the
provider's discovery document (/.well-known/openid-configuration, and RFC 8414's
/.well-known/oauth-authorization-server)."""

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.oidc import services
from accounts.oidc.models import Consent
from accounts.oidc.views import provider_metadata
from core import errors
from core.api import ContractViewSet, PublicView
from core.schema import TOKEN_ERRORS, MessageOutput, action_schema, message


@extend_schema_serializer(component_name="Authorization")
class AuthorizationOutput(serializers.Serializer):
    id = serializers.CharField()
    client_id = serializers.CharField()
    client_name = serializers.CharField()
    scope = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="Authorizations")
class AuthorizationsOutput(serializers.Serializer):
    authorizations = AuthorizationOutput(many=True)


def _consent_json(consent: Consent) -> dict:
    return {
        "id": str(consent.public_id),
        "client_id": consent.client.client_id,
        "client_name": consent.client.name,
        "scope": consent.scope,
        "created_at": consent.created_at,
        "updated_at": consent.updated_at,
    }


class AuthorizationsViewSet(ContractViewSet):
    """/api/authorizations: the apps the signed-in user allowed, newest first."""

    actions = {"get": "list_authorizations"}

    @action_schema("authorizations", "List the apps you allowed (your consents), newest first", output=AuthorizationsOutput, errors=TOKEN_ERRORS)
    def list_authorizations(self, request):
        consents = services.consents_of(user=request.user)
        return Response(AuthorizationsOutput({"authorizations": [_consent_json(consent) for consent in consents]}).data)


class AuthorizationViewSet(ContractViewSet):
    """/api/authorizations/<id>: withdraw a consent; the app's tokens are revoked."""

    actions = {"delete": "withdraw"}

    @action_schema(
        "authorizations",
        "Withdraw a consent (the app's tokens stop working; it must ask again)",
        output=MessageOutput,
        errors=(*TOKEN_ERRORS, errors.NotFound),
    )
    def withdraw(self, request, authorization_id: str):
        services.consent_withdraw(user=request.user, consent_id=authorization_id)
        return Response(message("Authorization withdrawn"))


@extend_schema_serializer(component_name="ProviderMetadata")
class ProviderMetadataOutput(serializers.Serializer):
    issuer = serializers.URLField()
    authorization_endpoint = serializers.URLField()
    token_endpoint = serializers.URLField()
    userinfo_endpoint = serializers.URLField()
    jwks_uri = serializers.URLField()
    revocation_endpoint = serializers.URLField()
    introspection_endpoint = serializers.URLField()
    end_session_endpoint = serializers.URLField()
    response_types_supported = serializers.ListField(child=serializers.CharField())
    response_modes_supported = serializers.ListField(child=serializers.CharField())
    grant_types_supported = serializers.ListField(child=serializers.CharField())
    subject_types_supported = serializers.ListField(child=serializers.CharField())
    id_token_signing_alg_values_supported = serializers.ListField(child=serializers.CharField())
    token_endpoint_auth_methods_supported = serializers.ListField(child=serializers.CharField())
    revocation_endpoint_auth_methods_supported = serializers.ListField(child=serializers.CharField())
    introspection_endpoint_auth_methods_supported = serializers.ListField(child=serializers.CharField())
    code_challenge_methods_supported = serializers.ListField(child=serializers.CharField())
    scopes_supported = serializers.ListField(child=serializers.CharField())
    claims_supported = serializers.ListField(child=serializers.CharField())
    prompt_values_supported = serializers.ListField(child=serializers.CharField())
    ui_locales_supported = serializers.ListField(child=serializers.CharField())
    authorization_response_iss_parameter_supported = serializers.BooleanField()
    backchannel_logout_supported = serializers.BooleanField()
    backchannel_logout_session_supported = serializers.BooleanField()
    frontchannel_logout_supported = serializers.BooleanField()
    request_parameter_supported = serializers.BooleanField()
    request_uri_parameter_supported = serializers.BooleanField()
    claims_parameter_supported = serializers.BooleanField()


class ProviderMetadataView(PublicView):
    """GET /.well-known/openid-configuration (and /.well-known/oauth-authorization-server): the
    OpenID provider's metadata, cacheable."""

    @extend_schema(
        summary="The OpenID provider's metadata (OpenID Connect Discovery 1.0, RFC 8414)",
        operation_id="openid_configuration",
        tags=["keys"],
        auth=[],
        responses={200: ProviderMetadataOutput},
    )
    def get(self, request):
        response = Response(provider_metadata())
        response["Cache-Control"] = f"public, max-age={settings.JWKS_MAX_AGE}"
        return response


class AuthorizationServerMetadataView(ProviderMetadataView):
    """GET /.well-known/oauth-authorization-server: the same metadata at RFC 8414's address."""

    @extend_schema(
        summary="The authorization server's metadata (RFC 8414): the same document",
        operation_id="authorization_server_metadata",
        tags=["keys"],
        auth=[],
        responses={200: ProviderMetadataOutput},
    )
    def get(self, request):
        return super().get(request)
