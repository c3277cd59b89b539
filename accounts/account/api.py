"""/api/user (registration and the signed-in user's account) and /api/validate/confirmation."""

from rest_framework.response import Response

from core.addresses import client_address
from accounts import serializers as s
from core.api import ContractViewSet
from accounts.account import profile as account
from accounts.account import registration


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
        "register": s.RegisterSerializer,
        "update_profile": s.ProfileSerializer,
        "change_email": s.EmailChangeSerializer,
    }

    def profile(self, request):
        user = request.user
        return Response({"email": user.email, "profile": {"name": user.name}})

    def register(self, request):
        user = registration.user_register(**self.validated(request), client_address=client_address(request.META))
        return Response({"user": user.email})

    def update_profile(self, request):
        user = account.profile_update(user=request.user, name=self.validated(request).get("name"))
        return Response({"profile": {"name": user.name}})

    def change_email(self, request):
        user = account.email_change(user=request.user, **self.validated(request))
        return Response({"email": user.email})

    def deactivate(self, request):
        account.user_deactivate(user=request.user)
        return Response({"message": "Account deactivated"})


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
