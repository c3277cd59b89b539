"""/api/authenticate (alias /api/auth): login, refresh, password change, recovery, deletion."""

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.account import profile as account
from accounts.audit import services as audit
from accounts.notices.errors import CouldNotSendEmail
from accounts.passwords import services as passwords
from accounts.sessions import services as sessions
from accounts.signin import services as login
from accounts.signin.stages import signin_stages
from accounts.users.serializers import EmailSerializer
from core import errors, metrics
from core.addresses import client_address
from core.api import ContractViewSet
from core.errors import AuthError
from core.schema import BODY_ERRORS, TOKEN_ERRORS, MessageOutput, action_schema, message
from core.serializers import LoginEmailField, PasswordField, TwoFactorCodeField

# --- input -------------------------------------------------------------------------------------


class LoginSerializer(serializers.Serializer):
    email = LoginEmailField()
    password = PasswordField()
    remember = serializers.BooleanField(required=False, default=False)
    # Only for users with two-factor on: a code of their app, or a recovery code.
    otp = TwoFactorCodeField(required=False, allow_blank=True, default="")


class PasswordChangeSerializer(serializers.Serializer):
    password = PasswordField()
    new_password = PasswordField()
    confirm = PasswordField()


class PasswordSerializer(serializers.Serializer):
    password = PasswordField()


# --- output ------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="Token")
class TokenOutput(serializers.Serializer):
    token = serializers.CharField()


@extend_schema_serializer(component_name="PasswordUpdated")
class PasswordUpdatedOutput(serializers.Serializer):
    message = serializers.CharField()
    token = serializers.CharField()


@extend_schema_serializer(component_name="AccountRemoved")
class AccountRemovedOutput(serializers.Serializer):
    message = serializers.CharField()
    # The old server sent "Message"; clients may read either key.
    Message = serializers.CharField()


# The errors of the stages after the password (two-factor: accounts.mfa.stages), as configured.
STAGE_ERRORS = tuple(error for stage in signin_stages() for error in getattr(stage, "errors", ()))


class AuthenticateViewSet(ContractViewSet):
    """/api/authenticate (alias /api/auth): the login and what hangs on the password."""

    actions = {
        "post": "login",
        "get": "refresh",
        "put": "change_password",
        "patch": "recover",
        "delete": "delete_account",
    }
    public = frozenset({"login", "recover"})
    inputs = {
        "login": LoginSerializer,
        "change_password": PasswordChangeSerializer,
        "recover": EmailSerializer,
        "delete_account": PasswordSerializer,
    }

    @action_schema(
        "authenticate",
        "Log in (with `otp` too, for a user with two-factor on)",
        public=True,
        request=LoginSerializer,
        output=TokenOutput,
        errors=(
            *BODY_ERRORS, errors.InvalidCredentials, errors.UserConfirmationRequired, errors.AccountDisabled,
            *STAGE_ERRORS, errors.Throttled,
        ),
    )
    def login(self, request):
        token = login.user_login(**self.validated(request), **self.client(request))
        return Response(TokenOutput({"token": token}).data)

    @action_schema("authenticate", "Refresh the token", output=TokenOutput, errors=TOKEN_ERRORS)
    def refresh(self, request):
        token = sessions.session_refresh(session=request.auth)
        metrics.refresh_counted()
        # A hot path: TokenOutput's shape as a literal (a serializer costs some 14 µs);
        # tests/core/test_api_output.py holds the two to the same keys.
        return Response({"token": token})

    def handle_exception(self, exc):
        if self.action == "refresh" and isinstance(exc, AuthError):
            # A refused refresh is worth an audit entry (a stolen or replayed token, say).
            audit.record(audit.Type.REFRESH_REFUSED, user=getattr(exc, "user", None), detail=exc.message)
            metrics.refresh_counted(exc=exc)
        return super().handle_exception(exc)

    @action_schema(
        "authenticate",
        "Change the password (every other token of the user stops working)",
        request=PasswordChangeSerializer,
        output=PasswordUpdatedOutput,
        errors=(*TOKEN_ERRORS, *BODY_ERRORS, errors.PasswordConfirmationInvalid, errors.InvalidCredentials),
    )
    def change_password(self, request):
        token = passwords.password_change(
            user=request.user, session=request.auth, **self.validated(request), **self.client(request)
        )
        return Response(PasswordUpdatedOutput({"message": "Password updated", "token": token}).data)

    @action_schema(
        "authenticate",
        "Send a password recovery email",
        public=True,
        request=EmailSerializer,
        output=MessageOutput,
        errors=(
            *BODY_ERRORS, errors.InvalidCredentials, errors.UserConfirmationRequired, errors.AccountDisabled,
            CouldNotSendEmail, errors.Throttled,
        ),
    )
    def recover(self, request):
        passwords.recovery_request(**self.validated(request), client_address=client_address(request.META))
        return Response(message("Recovery link sent"))

    @action_schema(
        "authenticate",
        "Delete the account and everything of it",
        request=PasswordSerializer,
        output=AccountRemovedOutput,
        errors=(*TOKEN_ERRORS, *BODY_ERRORS, errors.InvalidCredentials),
    )
    def delete_account(self, request):
        account.user_delete(user=request.user, **self.validated(request))
        return Response(AccountRemovedOutput({"message": "Account removed", "Message": "Account removed"}).data)
