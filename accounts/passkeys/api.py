"""/api/passkeys: the signed-in user's passkeys; /api/authenticate/passkey: signing in with one."""

import json

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.passkeys import services as passkeys
from accounts.passkeys.errors import InvalidPasskey
# The password of POST /api/passkeys/options and DELETE /api/passkeys/<id>: signin's serializer, so
# that the schema has one PasswordRequest component (two classes of that name fail check --deploy).
from accounts.signin.api import PasswordSerializer, TokenOutput
from core import errors
from core.api import ContractViewSet
from core.schema import BODY_ERRORS, TOKEN_ERRORS, MessageOutput, action_schema, message
from core.serializers import NameField, TextField

# A credential's JSON (credential.toJSON()) is a few hundred bytes; an attestation with
# certificates some kilobytes. Anything larger is not one.
CREDENTIAL_MAX_LENGTH = 64 * 1024


@extend_schema_field({"type": "object", "description": "What `PublicKeyCredential.toJSON()` gives."})
class CredentialField(serializers.Field):
    """A WebAuthn credential as JSON: an object in a JSON body; in a form body, its JSON text."""

    default_error_messages = {"invalid": "Give the credential as a JSON object (credential.toJSON())."}

    def to_internal_value(self, data):
        if isinstance(data, str) and len(data) <= CREDENTIAL_MAX_LENGTH:
            try:
                data = json.loads(data)
            except (ValueError, RecursionError):
                # RecursionError: JSON nested too deeply (a few kilobytes of "[" suffice).
                self.fail("invalid")
        if not isinstance(data, dict):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


# --- input -------------------------------------------------------------------------------------


class PasskeyAddSerializer(serializers.Serializer):
    credential = CredentialField()
    name = NameField(required=False, allow_blank=True, default="")


class PasskeyRenameSerializer(serializers.Serializer):
    name = NameField()


class SignInOptionsSerializer(serializers.Serializer):
    # Optional: with it, the options name the account's passkeys (for browsers without discoverable ones).
    email = TextField(max_length=254, required=False, allow_blank=True, default="")


class PasskeySignInSerializer(serializers.Serializer):
    ceremony = TextField(max_length=2048)
    credential = CredentialField()
    remember = serializers.BooleanField(required=False, default=False)


# --- output ------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="Passkey")
class PasskeyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    backed_up = serializers.BooleanField(help_text="Synced to a cloud (a multi-device passkey).")
    transports = serializers.ListField(child=serializers.CharField())


@extend_schema_serializer(component_name="PasskeyAnswer")
class PasskeyAnswerOutput(serializers.Serializer):
    passkey = PasskeyOutput()


@extend_schema_serializer(component_name="Passkeys")
class PasskeysOutput(serializers.Serializer):
    passkeys = PasskeyOutput(many=True)


@extend_schema_serializer(component_name="PasskeyCreationOptions")
class CreationOptionsOutput(serializers.Serializer):
    options = serializers.DictField(
        help_text="PublicKeyCredentialCreationOptionsJSON, for PublicKeyCredential.parseCreationOptionsFromJSON()."
    )


@extend_schema_serializer(component_name="PasskeyRequestOptions")
class RequestOptionsOutput(serializers.Serializer):
    options = serializers.DictField(
        help_text="PublicKeyCredentialRequestOptionsJSON, for PublicKeyCredential.parseRequestOptionsFromJSON()."
    )
    ceremony = serializers.CharField(help_text="Opaque; send it back with the credential, within 5 minutes, once.")


# --- views -------------------------------------------------------------------------------------


class PasskeyOptionsViewSet(ContractViewSet):
    """/api/passkeys/options: start adding a passkey."""

    actions = {"post": "registration_options"}
    inputs = {"registration_options": PasswordSerializer}

    @action_schema(
        "passkeys",
        "Start adding a passkey (the password required): the options for navigator.credentials.create()",
        request=PasswordSerializer,
        output=CreationOptionsOutput,
        errors=(*TOKEN_ERRORS, *BODY_ERRORS, errors.InvalidCredentials, errors.Throttled),
    )
    def registration_options(self, request):
        options = passkeys.passkey_registration_options(user=request.user, **self.validated(request))
        return Response(CreationOptionsOutput({"options": options}).data)


class PasskeysViewSet(ContractViewSet):
    """/api/passkeys: the user's passkeys; POST finishes adding one."""

    actions = {"get": "list_passkeys", "post": "add"}
    inputs = {"add": PasskeyAddSerializer}

    @action_schema("passkeys", "List the passkeys, newest first", output=PasskeysOutput, errors=TOKEN_ERRORS)
    def list_passkeys(self, request):
        return Response(PasskeysOutput({"passkeys": passkeys.passkey_list(user=request.user)}).data)

    @action_schema(
        "passkeys",
        "Finish adding a passkey: the answer of navigator.credentials.create(), as credential.toJSON()",
        request=PasskeyAddSerializer,
        output=PasskeyAnswerOutput,
        errors=(*TOKEN_ERRORS, *BODY_ERRORS, InvalidPasskey),
    )
    def add(self, request):
        passkey = passkeys.passkey_add(user=request.user, **self.validated(request))
        return Response(PasskeyAnswerOutput({"passkey": passkey}).data)


class PasskeyViewSet(ContractViewSet):
    """/api/passkeys/<id>: rename or remove one of them."""

    actions = {"patch": "rename", "delete": "remove"}
    inputs = {"rename": PasskeyRenameSerializer, "remove": PasswordSerializer}

    @action_schema(
        "passkeys",
        "Rename a passkey",
        request=PasskeyRenameSerializer,
        output=PasskeyAnswerOutput,
        errors=(*TOKEN_ERRORS, *BODY_ERRORS, errors.NotFound),
    )
    def rename(self, request, passkey_id: str):
        passkey = passkeys.passkey_rename(user=request.user, passkey_id=int(passkey_id), **self.validated(request))
        return Response(PasskeyAnswerOutput({"passkey": passkey}).data)

    @action_schema(
        "passkeys",
        "Remove a passkey (the password required)",
        request=PasswordSerializer,
        output=MessageOutput,
        errors=(*TOKEN_ERRORS, *BODY_ERRORS, errors.NotFound, errors.InvalidCredentials, errors.Throttled),
    )
    def remove(self, request, passkey_id: str):
        passkeys.passkey_remove(user=request.user, passkey_id=int(passkey_id), **self.validated(request))
        return Response(message("Passkey removed"))


class PasskeySignInOptionsViewSet(ContractViewSet):
    """/api/authenticate/passkey/options: start signing in with a passkey."""

    actions = {"post": "signin_options"}
    public = frozenset({"signin_options"})
    inputs = {"signin_options": SignInOptionsSerializer}

    @action_schema(
        "authenticate",
        "Start signing in with a passkey: the options for navigator.credentials.get(), and the ceremony",
        public=True,
        request=SignInOptionsSerializer,
        output=RequestOptionsOutput,
        errors=BODY_ERRORS,
    )
    def signin_options(self, request):
        started = passkeys.passkey_signin_options(**self.validated(request))
        return Response(RequestOptionsOutput({"options": started.options, "ceremony": started.ceremony}).data)


class PasskeySignInViewSet(ContractViewSet):
    """/api/authenticate/passkey: sign in with a passkey; answers as a password login does."""

    actions = {"post": "signin"}
    public = frozenset({"signin"})
    inputs = {"signin": PasskeySignInSerializer}

    @action_schema(
        "authenticate",
        "Sign in with a passkey: the answer of navigator.credentials.get(), as credential.toJSON()",
        public=True,
        request=PasskeySignInSerializer,
        output=TokenOutput,
        errors=(
            *BODY_ERRORS, InvalidPasskey, errors.UserConfirmationRequired, errors.AccountDisabled, errors.Throttled,
        ),
    )
    def signin(self, request):
        token = passkeys.passkey_login(**self.validated(request), **self.client(request))
        return Response(TokenOutput({"token": token}).data)
