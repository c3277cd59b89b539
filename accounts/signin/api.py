"""/api/authenticate (alias /api/auth): login, refresh, password change, recovery, deletion."""

from rest_framework.response import Response

from accounts.audit import services as audit
from core import metrics
from core.addresses import client_address
from accounts import serializers as s
from core.api import ContractViewSet
from core.errors import AuthError
from accounts.account import profile as account
from accounts.signin import services as login
from accounts.passwords import services as passwords
from accounts.sessions import services as sessions


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
        token = login.user_login(**self.validated(request), **self.client(request))
        return Response({"token": token})

    def refresh(self, request):
        token = sessions.session_refresh(session=request.auth)
        metrics.refresh_counted()
        return Response({"token": token})

    def handle_exception(self, exc):
        if self.action == "refresh" and isinstance(exc, AuthError):
            # A refused refresh is worth an audit entry (a stolen or replayed token, say).
            audit.record(audit.Type.REFRESH_REFUSED, user=getattr(exc, "user", None), detail=exc.message)
            metrics.refresh_counted(exc=exc)
        return super().handle_exception(exc)

    def change_password(self, request):
        token = passwords.password_change(
            user=request.user, session=request.auth, **self.validated(request), **self.client(request)
        )
        return Response({"message": "Password updated", "token": token})

    def recover(self, request):
        passwords.recovery_request(**self.validated(request), client_address=client_address(request.META))
        return Response({"message": "Recovery link sent"})

    def delete_account(self, request):
        account.user_delete(user=request.user, **self.validated(request))
        # The old server sent "Message"; clients may read either key.
        return Response({"message": "Account removed", "Message": "Account removed"})
