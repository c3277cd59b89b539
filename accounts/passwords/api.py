"""/api/validate/recovery: a new password with the emailed recovery link."""

from rest_framework import serializers
from rest_framework.response import Response

from accounts.passwords import services as passwords
from core import errors
from core.api import ContractViewSet
from core.schema import BODY_ERRORS, MessageOutput, action_schema, message
from core.serializers import TOKEN_MAX_LENGTH, PasswordField, TextField


class PasswordResetSerializer(serializers.Serializer):
    token = TextField(max_length=TOKEN_MAX_LENGTH)
    new_password = PasswordField()
    confirm = PasswordField()


class RecoveryViewSet(ContractViewSet):
    """/api/validate/recovery: set a new password with a recovery token."""

    actions = {"post": "reset_password"}
    public = frozenset({"reset_password"})
    inputs = {"reset_password": PasswordResetSerializer}

    @action_schema(
        "validate",
        "Reset the password with a recovery token",
        public=True,
        request=PasswordResetSerializer,
        output=MessageOutput,
        errors=(*BODY_ERRORS, errors.InvalidToken, errors.PasswordConfirmationInvalid),
    )
    def reset_password(self, request):
        passwords.password_reset(**self.validated(request))
        return Response(message("Password reset"))
