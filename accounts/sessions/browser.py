"""A browser's sign-in: the server session behind a Django session cookie.

The admin site and the hosted pages (accounts.oidc) keep, in Django's session, the public id of
the server session the browser signed in with. Every page checks that session is still open, so
every way a session ends (sign-out, the sessions API, a password change, disabling, staff...)
signs the browser out too.
"""

from django.contrib.auth import login, logout

from accounts.sessions.models import Session
from accounts.sessions.services import EndReason, session_end

# The key, in Django's session, of the server session the browser signed in with.
SESSION_ID_KEY = "accounts_session_id"


def browser_session(request) -> Session | None:
    """Return the open server session of the browser's sign-in (with its user), or None; a
    browser whose session has ended is signed out of Django's session too."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    session_id = request.session.get(SESSION_ID_KEY)
    session = (
        Session.objects.open().select_related("user").filter(public_id=session_id, user=user).first()
        if isinstance(session_id, str)
        else None
    )
    if session is None or not session.user.is_active or session.user.is_deactivated:
        logout(request)
        return None
    return session


def browser_sign_in(request, *, session: Session) -> None:
    """Sign the browser in with this (new) server session: a new Django session id (no fixation)."""
    login(request, session.user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_ID_KEY] = session.public_id


def browser_sign_out(request) -> Session | None:
    """End the browser's server session and its Django session; return the session it ended."""
    session = browser_session(request)
    if session is not None:
        session_end(session_id=session.public_id, reason=EndReason.SIGNED_OUT)
    logout(request)
    return session
