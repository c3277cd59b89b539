"""/api/user: registration and the signed-in user's account."""

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
