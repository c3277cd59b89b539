"""Sessions: one per sign-in, listed and revoked per device, ended by every revocation.

The endpoints (/api/sessions GET and DELETE, /api/sessions/<id> DELETE) with their errors; the
revocations that end sessions (password change, recovery, deactivation, staff); the refresh that
races a revocation (forced interleaving); the prune command and the admin pages.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from accounts.audit.models import AuthEvent
from accounts.sessions import services as session_services
from accounts.sessions.models import Session
from accounts.staff.services import tokens_revoke, user_set_active
from accounts.users.links import Purpose, validation_token_make
from tests.conftest import PASSWORD, admin_login, claims, session_of
from tests.support.api import client_with, login_token
from tests.support.contract import LOGIN_REQUIRED, TOKEN_INVALID, assert_error
from tests.support.database import sql_parameters

SESSIONS = "/api/sessions"
NEW_PASSWORD = "a fresh staple battery"
NOT_FOUND = {"status": 404, "message": "Not found"}


def works(token: str) -> bool:
    response = client_with(token).get("/api/user")
    # Not a loose status: a probe. Each caller asserts which of the two it expects (works or not).
    assert response.status_code in (200, 401), response.json()
    return response.status_code == 200


# --- A sign-in opens a session --------------------------------------------------------------


def test_a_login_opens_a_session_with_what_the_client_showed(user):
    token = login_token(client=APIClient(HTTP_USER_AGENT="Firefox/140 on a laptop", REMOTE_ADDR="198.51.100.7"))

    session = session_of(token)
    assert (session.user, session.user_agent, session.ip, session.amr) == (user, "Firefox/140 on a laptop", "198.51.100.7", ["pwd"])
    assert session.ended_at is None
    assert claims(token)["sid"] == session.public_id
    # The public id is random and URL-safe, not the database key.
    assert session.public_id != str(session.pk) and len(session.public_id) >= 43


def test_the_user_agent_is_truncated(user):
    session = session_of(login_token(client=APIClient(HTTP_USER_AGENT="x" * 2000)))

    assert session.user_agent == "x" * 256


def test_a_refresh_stays_in_the_session(user):
    token = login_token()

    refreshed = client_with(token).get("/api/authenticate").json()["token"]

    assert claims(refreshed)["sid"] == claims(token)["sid"]
    assert Session.objects.count() == 1


# --- GET /api/sessions ----------------------------------------------------------------------


def test_list_shows_the_open_sessions_newest_first_and_marks_the_current_one(user, user_factory):
    first = login_token(client=APIClient(HTTP_USER_AGENT="phone", REMOTE_ADDR="203.0.113.1"))
    second = login_token(client=APIClient(HTTP_USER_AGENT="laptop", REMOTE_ADDR="2001:db8::5"))
    ended = login_token(client=APIClient(HTTP_USER_AGENT="old tablet"))
    session_services.session_end(session_id=claims(ended)["sid"], reason="revoked")
    expired = session_of(login_token(client=APIClient(HTTP_USER_AGENT="expired")))
    Session.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    user_factory(email="bob@example.com")
    login_token("bob@example.com")  # someone else's session is not listed

    response = client_with(first).get(SESSIONS)

    assert response.status_code == 200
    listed = response.json()["sessions"]
    assert [(entry["user_agent"], entry["ip"], entry["current"]) for entry in listed] == [
        ("laptop", "2001:db8::5", False),
        ("phone", "203.0.113.1", True),
    ]
    assert set(listed[0]) == {"id", "created_at", "last_seen_at", "expires_at", "user_agent", "ip", "current", "apps"}
    assert listed[0]["apps"] == []  # no app signed in with it (tests/oidc: one that did)
    assert listed[0]["id"] == claims(second)["sid"]
    for entry in listed:
        for field in ("created_at", "last_seen_at", "expires_at"):
            assert parse_datetime(entry[field]) is not None, entry[field]
        assert parse_datetime(entry["expires_at"]) > parse_datetime(entry["created_at"])


@pytest.mark.parametrize("path", [SESSIONS, SESSIONS + "/"])
def test_list_answers_with_and_without_a_trailing_slash(user, path):
    response = client_with("Bearer " + login_token()).get(path)

    assert response.status_code == 200
    assert len(response.json()["sessions"]) == 1


@pytest.mark.parametrize("method", ["get", "delete"])
def test_the_endpoints_need_a_token(db, method):
    assert_error(getattr(APIClient(), method)(SESSIONS), LOGIN_REQUIRED)
    assert_error(getattr(APIClient(), method)(SESSIONS, HTTP_AUTHORIZATION="garbage"), TOKEN_INVALID)


# --- DELETE /api/sessions (the others) -------------------------------------------------------


def test_revoking_the_others_keeps_the_current_session(user):
    current, other, third = login_token(), login_token(), login_token()

    response = client_with(current).delete(SESSIONS)

    assert response.status_code == 200
    assert response.json() == {"message": "Other sessions revoked", "revoked": 2}
    assert works(current)
    assert not works(other) and not works(third)
    assert_error(client_with(other).get("/api/authenticate"), TOKEN_INVALID)
    assert session_of(other).end_reason == "revoked"


def test_revoking_the_others_with_none_open_revokes_zero(user):
    response = client_with(login_token()).delete(SESSIONS + "/")

    assert response.json() == {"message": "Other sessions revoked", "revoked": 0}


def test_revoking_the_others_leaves_other_users_alone(user, user_factory):
    user_factory(email="bob@example.com")
    bob = login_token("bob@example.com")

    client_with(login_token()).delete(SESSIONS)

    assert works(bob)


# --- DELETE /api/sessions/<id> ---------------------------------------------------------------


def test_revoking_one_session_ends_it_everywhere(user):
    current, phone = login_token(), login_token()

    response = client_with(current).delete(f"{SESSIONS}/{claims(phone)['sid']}")

    assert response.status_code == 200
    assert response.json() == {"message": "Session revoked"}
    assert not works(phone)
    assert works(current)
    event = AuthEvent.objects.get(type=AuthEvent.Type.SESSION_REVOKED)
    assert event.user == user


def test_revoking_the_current_session_signs_out(user):
    token = login_token()

    assert client_with(token).delete(f"{SESSIONS}/{claims(token)['sid']}/").status_code == 200

    assert not works(token)
    assert_error(client_with(token).get("/api/authenticate"), TOKEN_INVALID)


@pytest.mark.parametrize(
    "which",
    ["another-users", "already-ended", "expired", "unknown", "database-key", "garbage"],
)
def test_an_id_that_is_not_an_open_session_of_the_user_is_not_found(user, user_factory, which):
    token = login_token()
    user_factory(email="bob@example.com")
    bob = login_token("bob@example.com")
    if which == "another-users":
        target = claims(bob)["sid"]
    elif which == "already-ended":
        ended = login_token()
        session_services.session_end(session_id=claims(ended)["sid"], reason="revoked")
        target = claims(ended)["sid"]
    elif which == "expired":
        old = login_token()
        Session.objects.filter(public_id=claims(old)["sid"]).update(expires_at=timezone.now())
        target = claims(old)["sid"]
    elif which == "unknown":
        target = "A" * 43
    elif which == "database-key":
        target = str(session_of(token).pk)
    else:
        target = "%00..%2F"

    response = client_with(token).delete(f"{SESSIONS}/{target}")

    assert_error(response, NOT_FOUND)
    # Nothing leaked and nothing changed: Bob's session still works.
    assert works(bob) and works(token)


# --- Revocations end sessions ----------------------------------------------------------------


def test_a_password_change_ends_every_session_and_opens_one_for_the_caller(user):
    caller, other = login_token(client=APIClient(HTTP_USER_AGENT="laptop")), login_token(client=APIClient(HTTP_USER_AGENT="phone"))

    response = client_with(caller, HTTP_USER_AGENT="laptop").put(
        "/api/authenticate", {"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, format="json"
    )

    assert response.status_code == 200
    new = response.json()["token"]
    assert works(new)
    assert not works(caller) and not works(other)
    assert session_of(caller).end_reason == session_of(other).end_reason == "password_change"
    assert session_of(new).user_agent == "laptop"
    assert [s["current"] for s in client_with(new).get(SESSIONS).json()["sessions"]] == [True]
    # The user is told, in case it was not them.
    assert [m.subject for m in mail.outbox] == ["Your password was changed"]


def test_a_recovery_reset_ends_every_session(api_client, user):
    tokens = [login_token(), login_token()]
    # Made after the logins (a login kills the recovery tokens made before it).
    user.refresh_from_db()
    reset = validation_token_make(user=user, purpose=Purpose.RECOVERY)

    response = api_client.post(
        "/api/validate/recovery", {"token": reset, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, format="json"
    )

    assert response.status_code == 200
    assert not any(works(token) for token in tokens)
    assert {session_of(token).end_reason for token in tokens} == {"recovery"}


def test_deactivation_ends_every_session(user):
    tokens = [login_token(), login_token()]

    assert client_with(tokens[0]).delete("/api/user").status_code == 200

    assert {session_of(token).end_reason for token in tokens} == {"deactivation"}
    # Logging in again reactivates the account and opens a new session; the old ones stay ended.
    new = login_token()
    assert works(new)
    assert not any(works(token) for token in tokens)


def test_staff_disabling_and_sign_out_everywhere_end_every_session(user, user_factory):
    staff = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    signed_out = login_token()
    tokens_revoke(user=user, actor=staff)
    assert session_of(signed_out).end_reason == "staff"
    disabled = login_token()
    user_set_active(user=user, active=False, actor=staff)
    assert session_of(disabled).end_reason == "disabled"
    user_set_active(user=user, active=True, actor=staff)
    # Enabling again does not bring the sessions back.
    assert not works(signed_out) and not works(disabled)


# --- The refresh that races a revocation --------------------------------------------------------


@pytest.mark.parametrize("revocation", ["password change", "sign out everywhere", "revoke others", "deactivation"])
def test_a_refresh_racing_a_revocation_cannot_mint_a_surviving_token(user, monkeypatch, revocation):
    """Forced interleaving: the refresh has read its session (open) and is about to sign the new
    token when the revocation commits; the token it hands out must be refused."""
    victim = login_token()  # the token a thief refreshes in a loop
    owner = login_token()  # the owner's own device
    issue = session_services.auth_token_issue

    def revoke_then_issue(**kwargs):
        if revocation == "password change":
            body = {"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
            assert client_with(owner).put("/api/authenticate", body, format="json").status_code == 200
        elif revocation == "sign out everywhere":
            tokens_revoke(user=user, actor=None)
        elif revocation == "revoke others":
            assert client_with(owner).delete(SESSIONS).status_code == 200
        else:
            assert client_with(owner).delete("/api/user").status_code == 200
        return issue(**kwargs)

    monkeypatch.setattr(session_services, "auth_token_issue", revoke_then_issue)
    response = client_with(victim).get("/api/authenticate")
    monkeypatch.setattr(session_services, "auth_token_issue", issue)

    assert response.status_code == 200  # it did mint a token ...
    minted = response.json()["token"]
    # ... of the session the revocation ended: refused at once, and cannot be refreshed again.
    assert not works(minted)
    assert client_with(minted).get("/api/authenticate").status_code == 401


# --- Prune, admin ----------------------------------------------------------------------------


def test_prune_deletes_only_sessions_ended_or_expired_long_enough_ago(user):
    now = timezone.now()
    open_session = session_of(login_token())
    recently_ended = session_of(login_token())
    old_ended = session_of(login_token())
    old_expired = session_of(login_token())
    Session.objects.filter(pk=recently_ended.pk).update(ended_at=now - timedelta(days=2), end_reason="revoked")
    Session.objects.filter(pk=old_ended.pk).update(ended_at=now - timedelta(days=40), end_reason="revoked")
    Session.objects.filter(pk=old_expired.pk).update(expires_at=now - timedelta(days=40))
    out = StringIO()

    call_command("prune_sessions", "--older-than", "30", stdout=out)

    assert out.getvalue() == (
        "1 expired session(s) ended.\n"  # old_expired: ended first (listeners told), then deleted
        "2 session(s) ended or expired more than 30 days ago deleted.\n"
    )
    assert set(Session.objects.values_list("pk", flat=True)) == {open_session.pk, recently_ended.pk}


def test_admin_lists_sessions_and_revokes_them(user, user_factory):
    staff = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    browser = Client()
    admin_login(browser, staff)
    token = login_token()
    sid = claims(token)["sid"]

    page = browser.get(f"/admin/accounts/user/{user.pk}/change/")
    assert page.status_code == 200 and "open sessions" in page.content.decode().lower()
    listing = browser.get("/admin/accounts/session/?open=yes&q=ann%40example.com")
    assert listing.status_code == 200 and "ann@example.com" in listing.content.decode()

    response = browser.post(
        "/admin/accounts/session/",
        {"action": "revoke", "_selected_action": [session_of(token).pk]},
        follow=True,
    )

    assert "1 session revoked." in response.content.decode()
    assert not works(token)
    assert session_of(token).end_reason == "staff"
    assert sid not in browser.get("/admin/accounts/session/?open=yes").content.decode()


def test_admin_sessions_end_with_sign_out_everywhere(user_factory):
    """An admin browser session is one of the server's sessions: every revocation ends it too."""
    staff = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    browser = Client()
    admin_login(browser, staff)
    assert browser.get("/admin/").status_code == 200

    tokens_revoke(user=staff, actor=None)

    response = browser.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- 9. NUL bytes from the URL and the Basic header reach the database -------------------------


def test_a_nul_in_a_session_id_never_reaches_the_database(user, token_for):
    """Attacker with any valid token (their own) gains a 500 on PostgreSQL, which refuses NUL in
    text ("PostgreSQL text fields cannot contain NUL"). DRF's fields refuse NUL in bodies, but the
    <id> of /api/sessions/<id> goes from the URL straight into a query. On SQLite it is a 404;
    shown here on every database by the value handed to the database.
    """
    client = client_with(token_for(user))
    with sql_parameters() as parameters:
        response = client.delete("/api/sessions/%00")

    assert response.status_code == 404
    assert not any(isinstance(value, str) and "\x00" in value for value in parameters)
