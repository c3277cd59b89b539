"""/api/user (registration and the signed-in user's account) and /api/validate/confirmation."""

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.account import profile as account
from accounts.account import registration
from accounts.account.errors import InvalidPassword, NoUpdatesToMake, UserAlreadyConfirmed, UserAlreadyExist
from accounts.notices.errors import CouldNotSendEmail
from accounts.users.serializers import EmailAddressField, EmailSerializer
from core import errors
from core.addresses import client_address
from core.api import ContractViewSet
from core.schema import BODY_ERRORS, TOKEN_ERRORS, MessageOutput, action_schema, message
from core.serializers import TOKEN_MAX_LENGTH, NameField, PasswordField, TextField

# --- input -------------------------------------------------------------------------------------


class RegisterSerializer(serializers.Serializer):
    email = EmailAddressField()
    name = NameField()
    password = PasswordField()
    confirm = PasswordField()


class ProfileSerializer(serializers.Serializer):
    name = NameField(required=False, allow_blank=True)


class EmailChangeSerializer(serializers.Serializer):
    new_email = EmailAddressField()
    password = PasswordField()


class ValidationTokenSerializer(serializers.Serializer):
    token = TextField(max_length=TOKEN_MAX_LENGTH)


# --- output ------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="Profile")
class ProfileOutput(serializers.Serializer):
    name = serializers.CharField()


@extend_schema_serializer(component_name="User")
class UserOutput(serializers.Serializer):
    email = serializers.EmailField()
    profile = ProfileOutput()


@extend_schema_serializer(component_name="Registered")
class RegisteredOutput(serializers.Serializer):
    user = serializers.EmailField()


@extend_schema_serializer(component_name="ProfileUpdated")
class ProfileUpdatedOutput(serializers.Serializer):
    profile = ProfileOutput()


@extend_schema_serializer(component_name="EmailChanged")
class EmailChangedOutput(serializers.Serializer):
    email = serializers.EmailField()


class UserViewSet(ContractViewSet):
    """/api/user: registration and the signed-in user's account."""

    actions = {
        "get": "profile",
        "post": "register",
        "put": "update_profile",
        "patch": "change_email",
        "delete": "deactivate",
    }
    public = frozenset({"register"})
    inputs = {
        "register": RegisterSerializer,
        "update_profile": ProfileSerializer,
        "change_email": EmailChangeSerializer,
    }

    @action_schema("user", "Read the profile", output=UserOutput, errors=TOKEN_ERRORS)
    def profile(self, request):
        user = request.user
        # A hot path: UserOutput's shape as a literal (a serializer costs some 30 µs);
        # tests/core/test_api_output.py holds the two to the same keys.
        return Response({"email": user.email, "profile": {"name": user.name}})

    @action_schema(
        "user",
        "Register (a confirmation email is sent)",
        public=True,
        request=RegisterSerializer,
        output=RegisteredOutput,
        errors=(*BODY_ERRORS, UserAlreadyExist, errors.PasswordConfirmationInvalid, CouldNotSendEmail, errors.Throttled),
    )
    def register(self, request):
        user = registration.user_register(**self.validated(request), client_address=client_address(request.META))
        return Response(RegisteredOutput({"user": user.email}).data)

    @action_schema(
        "user",
        "Update the profile",
        request=ProfileSerializer,
        output=ProfileUpdatedOutput,
        errors=(*TOKEN_ERRORS, *BODY_ERRORS, NoUpdatesToMake),
    )
    def update_profile(self, request):
        user = account.profile_update(user=request.user, name=self.validated(request).get("name"))
        return Response(ProfileUpdatedOutput({"profile": {"name": user.name}}).data)

    @action_schema(
        "user",
        "Change the email (a notice goes to the old address)",
        request=EmailChangeSerializer,
        output=EmailChangedOutput,
        errors=(*TOKEN_ERRORS, *BODY_ERRORS, InvalidPassword, UserAlreadyExist),
    )
    def change_email(self, request):
        user = account.email_change(user=request.user, **self.validated(request))
        return Response(EmailChangedOutput({"email": user.email}).data)

    @action_schema("user", "Deactivate the account (logging in reactivates it)", output=MessageOutput, errors=TOKEN_ERRORS)
    def deactivate(self, request):
        account.user_deactivate(user=request.user)
        return Response(message("Account deactivated"))


class ConfirmationViewSet(ContractViewSet):
    """/api/validate/confirmation: confirm an account, or send a new link."""

    actions = {"post": "confirm", "put": "resend"}
    public = frozenset({"confirm", "resend"})
    inputs = {"confirm": ValidationTokenSerializer, "resend": EmailSerializer}

    @action_schema(
        "validate",
        "Confirm the account",
        public=True,
        request=ValidationTokenSerializer,
        output=MessageOutput,
        errors=(*BODY_ERRORS, errors.InvalidToken),
    )
    def confirm(self, request):
        registration.account_confirm(**self.validated(request))
        return Response(message("Account confirmed"))

    @action_schema(
        "validate",
        "Send a new confirmation email",
        public=True,
        request=EmailSerializer,
        output=MessageOutput,
        errors=(*BODY_ERRORS, errors.InvalidCredentials, UserAlreadyConfirmed, CouldNotSendEmail, errors.Throttled),
    )
    def resend(self, request):
        registration.confirmation_resend(**self.validated(request), client_address=client_address(request.META))
        return Response(message("New confirmation link sent"))
