"""/api/validate/recovery: a new password with the emailed recovery link."""

from rest_framework.response import Response

from accounts import serializers as s
from accounts.passwords import services as passwords
from core.api import ContractViewSet


class RecoveryViewSet(ContractViewSet):
    """/api/validate/recovery: set a new password with a recovery token."""

    actions = {"post": "reset_password"}
    public = frozenset({"reset_password"})
    inputs = {"reset_password": s.PasswordResetSerializer}

    def reset_password(self, request):
        passwords.password_reset(**self.validated(request))
        return Response({"message": "Password reset"})
