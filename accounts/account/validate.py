"""/api/validate/confirmation and /api/validate/recovery: the emailed links."""

from rest_framework.response import Response

from core.addresses import client_address
from accounts import serializers as s
from core.api import ContractViewSet
from accounts.passwords import services as passwords
from accounts.account import registration


class ConfirmationViewSet(ContractViewSet):
    """/api/validate/confirmation: confirm an account, or send a new link."""

    actions = {"post": "confirm", "put": "resend"}
    public = frozenset({"confirm", "resend"})
    inputs = {"confirm": s.ValidationTokenSerializer, "resend": s.EmailSerializer}

    def confirm(self, request):
        registration.account_confirm(**self.validated(request))
        return Response({"message": "Account confirmed"})

    def resend(self, request):
        registration.confirmation_resend(**self.validated(request), client_address=client_address(request.META))
        return Response({"message": "New confirmation link sent"})


class RecoveryViewSet(ContractViewSet):
    """/api/validate/recovery: set a new password with a recovery token."""

    actions = {"post": "reset_password"}
    public = frozenset({"reset_password"})
    inputs = {"reset_password": s.PasswordResetSerializer}

    def reset_password(self, request):
        passwords.password_reset(**self.validated(request))
        return Response({"message": "Password reset"})
