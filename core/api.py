"""The API base every room builds on: JSON answers, verb → action maps, lazy authentication,
and the public views outside /api/ (status, index, keys)."""

from rest_framework import viewsets
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from core.addresses import client_address


class JSONNegotiation(DefaultContentNegotiation):
    """Answer JSON whatever the Accept header asks for, as the Flask server did.

    The API has one renderer. DRF's negotiation would parse the Accept header on every request
    only to pick that renderer, or to refuse the request with a 406 that no client of this API
    wants. Request bodies are still matched to a parser by their Content-Type.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ContractViewSet(viewsets.ViewSet):
    """Map HTTP verbs to actions (`actions`); `public` actions need no token."""

    content_negotiation_class = JSONNegotiation
    actions: dict[str, str] = {}
    public: frozenset[str] = frozenset()
    inputs: dict[str, type[Serializer]] = {}

    def get_permissions(self):
        # A verb with no action (None) is let through to answer 405, not 401.
        if self.action in self.public or self.action in (None, "metadata"):
            return [AllowAny()]
        return [IsAuthenticated()]

    def finalize_response(self, request, response, *args, **kwargs):
        """Every answer of the API is marked `Cache-Control: no-store`: each is one caller's, and
        many carry a token, recovery codes or a secret that no browser or proxy cache may keep
        (RFC 6749, 5.1). An action that sets its own Cache-Control keeps it."""
        response = super().finalize_response(request, response, *args, **kwargs)
        response.setdefault("Cache-Control", "no-store")
        return response

    def perform_authentication(self, request):
        """Authenticate lazily, when the permission asks for the user.

        A public action (login, register, ...) thus ignores whatever Authorization header the
        client sends, instead of refusing the request for a stale token.
        """

    @staticmethod
    def client(request) -> dict:
        """Return who is calling, as the services take it: client address and user agent."""
        return {
            "client_address": client_address(request.META),
            "user_agent": request.META.get("HTTP_USER_AGENT", ""),
        }

    def validated(self, request) -> dict:
        """Return the request body checked by this action's input serializer."""
        serializer = self.inputs[self.action](data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class PublicView(APIView):
    """A view anyone may call, answering JSON: no authentication, no permission."""

    authentication_classes = []
    permission_classes = [AllowAny]
    content_negotiation_class = JSONNegotiation
