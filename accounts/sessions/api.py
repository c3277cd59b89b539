"""/api/sessions: where the user is signed in; sign out one device or all the others."""

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.sessions import services as sessions
from accounts.sessions.models import Session
from core import errors
from core.api import ContractViewSet
from core.schema import TOKEN_ERRORS, MessageOutput, action_schema, message


@extend_schema_serializer(component_name="Session")
class SessionOutput(serializers.Serializer):
    id = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    user_agent = serializers.CharField()
    ip = serializers.IPAddressField(allow_null=True)
    current = serializers.BooleanField()
    apps = serializers.ListField(child=serializers.CharField(), help_text="The apps signed in with this session (OpenID Connect).")


@extend_schema_serializer(component_name="Sessions")
class SessionsOutput(serializers.Serializer):
    sessions = SessionOutput(many=True)


@extend_schema_serializer(component_name="SessionsRevoked")
class SessionsRevokedOutput(serializers.Serializer):
    message = serializers.CharField()
    revoked = serializers.IntegerField()


def _session_json(session: Session, *, current: Session, apps: dict) -> dict:
    return {
        "id": session.public_id,
        "created_at": session.created_at,
        "last_seen_at": session.last_seen_at,
        "expires_at": session.expires_at,
        "user_agent": session.user_agent,
        "ip": session.ip,
        "current": session.pk == current.pk,
        "apps": apps.get(session.pk, []),
    }


class SessionsViewSet(ContractViewSet):
    """/api/sessions: the signed-in user's open sessions."""

    actions = {"get": "list_sessions", "delete": "revoke_others"}

    @action_schema("sessions", "List the open sessions (one per sign-in), newest first", output=SessionsOutput, errors=TOKEN_ERRORS)
    def list_sessions(self, request):
        found = list(sessions.sessions_of(user=request.user))
        apps = sessions.session_apps([session.pk for session in found])
        return Response(
            SessionsOutput({"sessions": [_session_json(session, current=request.auth, apps=apps) for session in found]}).data
        )

    @action_schema("sessions", "Sign out every other session", output=SessionsRevokedOutput, errors=TOKEN_ERRORS)
    def revoke_others(self, request):
        revoked = sessions.sessions_revoke_others(user=request.user, current=request.auth)
        return Response(SessionsRevokedOutput({"message": "Other sessions revoked", "revoked": revoked}).data)


class SessionViewSet(ContractViewSet):
    """/api/sessions/<id>: one of them; revoking the current one signs out."""

    actions = {"delete": "revoke"}

    @action_schema(
        "sessions", "Sign out one session (the current one: sign out)", output=MessageOutput, errors=(*TOKEN_ERRORS, errors.NotFound)
    )
    def revoke(self, request, session_id: str):
        sessions.session_revoke(user=request.user, session_id=session_id)
        return Response(message("Session revoked"))
