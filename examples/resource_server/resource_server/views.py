"""The service's endpoints: what a signed-in user may see, and what needs a group."""

from django.conf import settings
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from resource_server.authentication import InGroup


class MeView(APIView):
    """GET /me: who the token says the caller is (any signed-in user)."""

    def get(self, request):
        user = request.user
        return Response({"sub": user.sub, "email": user.email, "groups": list(user.groups)})


class ReportsView(APIView):
    """GET /reports: for the members of REQUIRED_GROUP only."""

    def get_permissions(self):
        return [IsAuthenticated(), InGroup(settings.REQUIRED_GROUP)]

    def get(self, request):
        return Response(
            {
                "reports": [
                    {"id": 1, "title": "Sign-ins per day"},
                    {"id": 2, "title": "Active sessions"},
                ],
                "requested_by": request.user.sub,
            }
        )
