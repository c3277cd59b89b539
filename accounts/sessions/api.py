"""/api/sessions: where the user is signed in; sign out one device or all the others."""

from rest_framework.response import Response

from core.api import ContractViewSet
from accounts.sessions.models import Session
from accounts.sessions import services as sessions


def _session_json(session: Session, *, current: Session) -> dict:
    return {
        "id": session.public_id,
        "created_at": session.created_at,
        "last_seen_at": session.last_seen_at,
        "expires_at": session.expires_at,
        "user_agent": session.user_agent,
        "ip": session.ip,
        "current": session.pk == current.pk,
    }


class SessionsViewSet(ContractViewSet):
    """/api/sessions: the signed-in user's open sessions."""

    actions = {"get": "list_sessions", "delete": "revoke_others"}

    def list_sessions(self, request):
        found = sessions.sessions_of(user=request.user)
        return Response({"sessions": [_session_json(session, current=request.auth) for session in found]})

    def revoke_others(self, request):
        revoked = sessions.sessions_revoke_others(user=request.user, current=request.auth)
        return Response({"message": "Other sessions revoked", "revoked": revoked})


class SessionViewSet(ContractViewSet):
    """/api/sessions/<id>: one of them; revoking the current one signs out."""

    actions = {"delete": "revoke"}

    def revoke(self, request, session_id: str):
        sessions.session_revoke(user=request.user, session_id=session_id)
        return Response({"message": "Session revoked"})
