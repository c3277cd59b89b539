"""One viewset per resource of the contract; each action is input → one service → response."""

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework import viewsets
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import audit, services
from accounts.api import serializers as s
from accounts.errors import AuthError
from accounts.ratelimit import client_address
from accounts.tokens import auth_token_refresh


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
    inputs: dict[str, type[s.serializers.Serializer]] = {}

    def get_permissions(self):
        # A verb with no action (None) is let through to answer 405, not 401.
        if self.action in self.public or self.action in (None, "metadata"):
            return [AllowAny()]
        return [IsAuthenticated()]

    def perform_authentication(self, request):
        """Authenticate lazily, when the permission asks for the user.

        A public action (login, register, ...) thus ignores whatever Authorization header the
        client sends, instead of refusing the request for a stale token.
        """

    def validated(self, request) -> dict:
        """Return the request body checked by this action's input serializer."""
        serializer = self.inputs[self.action](data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


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
        "login": s.LoginSerializer,
        "change_password": s.PasswordChangeSerializer,
        "recover": s.EmailSerializer,
        "delete_account": s.PasswordSerializer,
    }

    def login(self, request):
        token = services.user_login(**self.validated(request), client_address=client_address(request.META))
        return Response({"token": token})

    def refresh(self, request):
        return Response({"token": auth_token_refresh(user=request.user, token=request.auth)})

    def handle_exception(self, exc):
        if self.action == "refresh" and isinstance(exc, AuthError):
            # A refused refresh is worth an audit entry (a stolen or replayed token, say).
            audit.record(audit.Type.REFRESH_REFUSED, user=getattr(exc, "user", None), detail=exc.message)
        return super().handle_exception(exc)

    def change_password(self, request):
        token = services.password_change(user=request.user, token=request.auth, **self.validated(request))
        return Response({"message": "Password updated", "token": token})

    def recover(self, request):
        services.recovery_request(**self.validated(request))
        return Response({"message": "Recovery link sent"})

    def delete_account(self, request):
        services.user_delete(user=request.user, **self.validated(request))
        # The old server sent "Message"; clients may read either key.
        return Response({"message": "Account removed", "Message": "Account removed"})


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
        user = services.user_register(**self.validated(request), client_address=client_address(request.META))
        return Response({"user": user.email})

    def update_profile(self, request):
        user = services.profile_update(user=request.user, name=self.validated(request).get("name"))
        return Response({"profile": {"name": user.name}})

    def change_email(self, request):
        user = services.email_change(user=request.user, **self.validated(request))
        return Response({"email": user.email})

    def deactivate(self, request):
        services.user_deactivate(user=request.user)
        return Response({"message": "Account deactivated"})


class ConfirmationViewSet(ContractViewSet):
    """/api/validate/confirmation: confirm an account, or send a new link."""

    actions = {"post": "confirm", "put": "resend"}
    public = frozenset({"confirm", "resend"})
    inputs = {"confirm": s.ValidationTokenSerializer, "resend": s.EmailSerializer}

    def confirm(self, request):
        services.account_confirm(**self.validated(request))
        return Response({"message": "Account confirmed"})

    def resend(self, request):
        services.confirmation_resend(**self.validated(request))
        return Response({"message": "New confirmation link sent"})


class RecoveryViewSet(ContractViewSet):
    """/api/validate/recovery: set a new password with a recovery token."""

    actions = {"post": "reset_password"}
    public = frozenset({"reset_password"})
    inputs = {"reset_password": s.PasswordResetSerializer}

    def reset_password(self, request):
        services.password_reset(**self.validated(request))
        return Response({"message": "Password reset"})


class StatusView(APIView):
    """GET /status: 200 when the database (and the shared cache, if configured) answer, else 503."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        checks = {"database": _database_ok()}
        if settings.CACHE_URL:
            checks["cache"] = _cache_ok()
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            return Response({"status": 503, "message": f"Unavailable: {', '.join(failed)}"}, status=503)
        return Response({"status": 200, "message": f"OK: {', '.join(checks)}"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def _cache_ok() -> bool:
    try:
        cache.set("status:probe", "1", 10)
        return cache.get("status:probe") == "1"
    except Exception:
        return False
