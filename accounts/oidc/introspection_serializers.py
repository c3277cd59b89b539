"""The shapes of /api/introspect: its body (a token), and RFC 7662's answer."""

from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework.fields import get_error_detail

from core.serializers import AUTH_TOKEN_MAX_LENGTH, TextField

# --- input -------------------------------------------------------------------------------------


class IntrospectionSerializer(serializers.Serializer):
    # Present but empty: a token that is not active (only a missing field is a 400).
    token = TextField(max_length=AUTH_TOKEN_MAX_LENGTH, trim_whitespace=False, allow_blank=True)


# The token field, bound once. Its validation keeps no state, so every call may share it.
_INTROSPECTED_TOKEN = IntrospectionSerializer().fields["token"]


def introspected_token(data) -> str:
    """Return the token of an introspection body exactly as IntrospectionSerializer(data=data)
    validates it, or raise the ValidationError that serializer would raise.

    Each resource server calls introspection on every request it serves. A serializer instance
    costs some 20 µs to build and run for this one field; the field itself, run as the
    serializer runs it, a few (tests/core/test_serializers.py holds the two to the same answers).
    """
    if not isinstance(data, Mapping):
        # Not an object: the serializer's own refusal ("Invalid data. Expected a dictionary...").
        serializer = IntrospectionSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["token"]
    field = _INTROSPECTED_TOKEN
    try:
        return field.run_validation(field.get_value(data))
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({field.field_name: exc.detail}) from None
    except DjangoValidationError as exc:
        raise serializers.ValidationError({field.field_name: get_error_detail(exc)}) from None


# --- output ------------------------------------------------------------------------------------


# RFC 7662's answer: `active`, and for an active token its claims (accounts.oidc.introspection
# CLAIMS) and `token_type`. (No docstring: it would become the schema's description.)
@extend_schema_serializer(component_name="Introspection")
class IntrospectionOutput(serializers.Serializer):
    active = serializers.BooleanField()
    sub = serializers.CharField(required=False)
    sid = serializers.CharField(required=False)
    exp = serializers.IntegerField(required=False)
    iat = serializers.IntegerField(required=False)
    iss = serializers.CharField(required=False)
    aud = serializers.JSONField(required=False)
    email = serializers.EmailField(required=False)
    email_verified = serializers.BooleanField(required=False)
    groups = serializers.ListField(child=serializers.CharField(), required=False)
    amr = serializers.ListField(child=serializers.CharField(), required=False)
    jti = serializers.CharField(required=False)
    client_id = serializers.CharField(required=False)
    scope = serializers.CharField(required=False)
    token_type = serializers.CharField(required=False)
