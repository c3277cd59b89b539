"""Back-Channel Logout 1.0: every way a session ends posts a logout token to each app signed in
with it, and kills the grant's tokens.

The app's back-channel logout URI is a small HTTP server of the test (http.server on 127.0.0.1);
the logout token is verified with PyJWT against the JWKS, as an app would. The tests commit
(transactional database): logout tokens leave after the commit, from the sender's threads.
"""

import dataclasses
import io
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone
from django.test import Client as Browser

from accounts.audit.models import AuthEvent
from accounts.oidc import backchannel
from accounts.sessions.models import Session
from accounts.staff import services as staff_services
from tests.conftest import admin_login, totp_code
from tests.support.api import NEW_PASSWORD, PASSWORD, client_with
from rest_framework.test import APIClient

from tests.support.oidc_flow import (
    BACKCHANNEL_EVENT,
    assert_alive,
    assert_dead,
    authorize_params,
    pkce,
    register,
    sign_in_app,
    signed_in_browser,
)

pytestmark = pytest.mark.django_db(transaction=True)
ISSUER = "http://localhost:8000"
USERS = "/admin/accounts/user/"


@pytest.fixture(autouse=True)
def _no_rate_limit_left_over():
    """The database cache is a table that a transactional test's flush leaves as it is: empty it,
    so that no sign-in here counts against a later test's limits."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _no_retry_wait(monkeypatch):
    """Deliveries are tried twice; the wait between is not what these tests are about."""
    monkeypatch.setattr(backchannel, "RETRY_AFTER_SECONDS", 0)


@pytest.fixture(autouse=True)
def deliveries(monkeypatch):
    """Deliveries start when the test says, once the request that ended the session is answered.

    The tests' in-memory SQLite (shared cache) refuses a write made while another connection
    writes, where PostgreSQL or a SQLite file waits: the sender's audit event, written from its
    thread while the request still writes its own, would be lost now and then. Only the start is
    held back; what is sent, and how, is the sender's."""
    release = threading.Event()
    deliver = backchannel._deliver

    def held(*args):
        release.wait(30)
        return deliver(*args)

    monkeypatch.setattr(backchannel, "_deliver", held)

    class Deliveries:
        def run(self) -> None:
            """Let the deliveries go, and wait until they are done."""
            release.set()
            assert backchannel.wait_idle()

    yield Deliveries()
    release.set()
    assert backchannel.wait_idle()


class Receiver:
    """An app's back-channel logout endpoint: records every request, answers `status`."""

    def __init__(self, status: int = 200):
        self.status = status
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body.decode()})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/backchannel-logout"

    def logout_tokens(self) -> list[str]:
        tokens = []
        for request in self.requests:
            assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
            form = parse_qs(request["body"], strict_parsing=True)
            assert list(form) == ["logout_token"] and len(form["logout_token"]) == 1
            tokens.append(form["logout_token"][0])
        return tokens

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def verified_logout_token(token: str, client_id: str) -> tuple[dict, dict]:
    """The header and claims of a logout token, verified against the JWKS (PyJWT) as the spec's
    section 2.6 asks of the app."""
    jwks = Browser().get("/.well-known/jwks.json").json()
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWK(next(key for key in jwks["keys"] if key["kid"] == header["kid"]))
    claims = jwt.decode(
        token, key.key, algorithms=[key.algorithm_name], audience=client_id, issuer=ISSUER,
        options={"require": ["iss", "aud", "iat", "jti", "events", "sid", "sub"]},
    )
    return header, claims


def id_token_sid(id_token: str) -> str:
    return jwt.decode(id_token, options={"verify_signature": False})["sid"]


@dataclasses.dataclass
class Signed:
    """A user signed in on the hosted page, and an app signed in with that session."""

    user: object
    browser: Browser
    sid: str
    tokens: dict
    request: pytest.FixtureRequest

    def api(self):
        """The user's own API client, in a session of its own (another device)."""
        return client_with(self.request.getfixturevalue("token_for")(self.user))

    def admin(self):
        staff = self.request.getfixturevalue("user_factory")(email="admin@example.com", is_staff=True, is_superuser=True)
        client = Browser()
        admin_login(client, staff)
        return client, staff


# --- Every way a session ends --------------------------------------------------------------------


def hosted_sign_out(signed):
    response = signed.browser.post("/signout")
    assert response.status_code == 200


def end_session_with_id_token_hint(signed):
    response = signed.browser.get("/oauth/logout", {"id_token_hint": signed.tokens["id_token"]})
    assert response.status_code == 200


def end_session_confirmed(signed):
    asked = signed.browser.get("/oauth/logout")
    assert asked.status_code == 200 and b'name="confirm"' in asked.content
    assert signed.browser.post("/oauth/logout", {"confirm": "yes"}).status_code == 200


def sessions_api_revoke_one(signed):
    assert signed.api().delete(f"/api/sessions/{signed.sid}").status_code == 200


def sessions_api_sign_out_everywhere(signed):
    assert signed.api().delete("/api/sessions").status_code == 200


def password_change(signed):
    body = {"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert signed.api().put("/api/authenticate", body, format="json").status_code == 200


def password_reset(signed):
    anonymous = APIClient()
    assert anonymous.patch("/api/authenticate", {"email": signed.user.email}, format="json").status_code == 200
    [token] = re.findall(re.escape(settings.RECOVER_URL) + r"/([A-Za-z0-9_:.-]+)", mail.outbox[-1].body)
    body = {"token": token, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert Browser().post("/api/validate/recovery", body, content_type="application/json").status_code == 200


def deactivation(signed):
    assert signed.api().delete("/api/user").status_code == 200


def account_deletion(signed):
    assert signed.api().delete("/api/authenticate", {"password": PASSWORD}, format="json").status_code == 200


def _admin_action(signed, action: str):
    client, _staff = signed.admin()
    response = client.post(USERS, {"action": action, "_selected_action": [signed.user.pk], "index": 0})
    assert response.status_code in (200, 302), response.content[:300]


def staff_disable_in_admin(signed):
    _admin_action(signed, "disable")
    signed.user.refresh_from_db()
    assert not signed.user.is_active


def staff_disable_service(signed):
    _client, staff = signed.admin()
    assert staff_services.user_set_active(user=signed.user, active=False, actor=staff)


def staff_sign_out_everywhere_in_admin(signed):
    _admin_action(signed, "sign_out_everywhere")


def staff_revoke_session_in_admin(signed):
    client, _staff = signed.admin()
    session = Session.objects.get(public_id=signed.sid)
    response = client.post("/admin/accounts/session/", {"action": "revoke", "_selected_action": [session.pk], "index": 0})
    assert response.status_code == 302


def staff_password_in_admin(signed):
    client, _staff = signed.admin()
    body = {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    assert client.post(f"{USERS}{signed.user.pk}/password/", body).status_code == 302


def staff_two_factor_reset_in_admin(signed):
    clock = signed.request.getfixturevalue("totp_clock")
    api = signed.api()
    secret = api.post("/api/mfa/totp", {"password": PASSWORD}, format="json").json()["secret"]
    assert api.put("/api/mfa/totp", {"code": totp_code(secret, clock.now)}, format="json").status_code == 200
    assert Session.objects.get(public_id=signed.sid).ended_at is None
    _admin_action(signed, "reset_two_factor")


def staff_delete_in_admin(signed):
    client, _staff = signed.admin()
    response = client.post(f"{USERS}{signed.user.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not type(signed.user).objects.filter(pk=signed.user.pk).exists()


def staff_delete_selected_in_admin(signed):
    client, _staff = signed.admin()
    response = client.post(USERS, {"action": "delete_selected", "_selected_action": [signed.user.pk], "post": "yes", "index": 0})
    assert response.status_code == 302
    assert not type(signed.user).objects.filter(pk=signed.user.pk).exists()


def operator_revoke_tokens_command(signed):
    call_command("revoke_tokens", signed.user.email, stdout=io.StringIO())


def operator_service(signed):
    staff_services.tokens_revoke(user=signed.user, actor=None)


def expiry_then_prune_sessions(signed):
    # The session's time runs out: its tokens are refused from then on; the apps hear of it when
    # prune_sessions (run hourly) ends the expired sessions.
    Session.objects.filter(public_id=signed.sid).update(expires_at=timezone.now() - timedelta(seconds=1))
    out = io.StringIO()
    call_command("prune_sessions", "--older-than", "30", stdout=out)
    assert out.getvalue().startswith("1 expired session(s) ended.")
    assert Session.objects.get(public_id=signed.sid).end_reason == Session.EndReason.EXPIRED


WAYS = [
    hosted_sign_out, end_session_with_id_token_hint, end_session_confirmed, sessions_api_revoke_one,
    sessions_api_sign_out_everywhere, password_change, password_reset, deactivation, account_deletion,
    staff_disable_in_admin, staff_disable_service, staff_sign_out_everywhere_in_admin, staff_revoke_session_in_admin,
    staff_password_in_admin, staff_two_factor_reset_in_admin, staff_delete_in_admin, staff_delete_selected_in_admin,
    operator_revoke_tokens_command,
    operator_service,
    expiry_then_prune_sessions,
]


@pytest.fixture
def signed(request, user, receiver, introspect):
    app = register("Notes", backchannel_logout_uri=receiver.uri)
    browser = signed_in_browser(user.email)
    tokens = sign_in_app(browser, app)
    assert_alive(app, tokens, introspect)
    signed = Signed(user=user, browser=browser, sid=id_token_sid(tokens["id_token"]), tokens=tokens, request=request)
    signed.app = app
    return signed


@pytest.mark.parametrize("end", WAYS, ids=[way.__name__.replace("_", "-") for way in WAYS])
def test_each_way_a_session_ends_sends_a_logout_token_and_kills_the_grant(signed, receiver, introspect, end, deliveries):
    subject = str(signed.user.public_id)
    email = signed.user.email

    end(signed)
    deliveries.run()

    [token] = receiver.logout_tokens()
    assert receiver.requests[0]["path"] == "/backchannel-logout"
    header, claims = verified_logout_token(token, signed.app.client_id)
    assert header["typ"] == "logout+jwt"
    assert header["alg"] == "RS256"
    assert claims["iss"] == ISSUER and claims["aud"] == signed.app.client_id
    assert claims["sid"] == signed.sid and claims["sub"] == subject
    assert claims["events"] == {BACKCHANNEL_EVENT: {}}
    assert "nonce" not in claims
    assert isinstance(claims["iat"], int) and isinstance(claims["jti"], str) and claims["jti"]
    assert_dead(signed.app, signed.tokens, introspect)
    assert AuthEvent.objects.filter(type=AuthEvent.Type.BACKCHANNEL_LOGOUT, email=email).count() == 1
    # The browser is signed out too: a new authorization asks it to sign in.
    _verifier, challenge = pkce()
    again = signed.browser.get("/oauth/authorize", authorize_params(signed.app, challenge))
    assert again.status_code == 302 and again["Location"].startswith("/signin?")


def test_each_logout_token_is_new(signed, receiver, user_factory, introspect, deliveries):
    """Two sessions end: two tokens, each with its own jti and sid."""
    second_browser = signed_in_browser(signed.user.email)
    second = sign_in_app(second_browser, signed.app)

    operator_service(signed)
    deliveries.run()

    tokens = [verified_logout_token(token, signed.app.client_id)[1] for token in receiver.logout_tokens()]
    assert sorted(claims["sid"] for claims in tokens) == sorted([signed.sid, id_token_sid(second["id_token"])])
    assert len({claims["jti"] for claims in tokens}) == 2
    assert_dead(signed.app, second, introspect)


def test_an_es256_app_gets_an_es256_logout_token(user, receiver, introspect, deliveries):
    app = register("Elliptic", backchannel_logout_uri=receiver.uri, algorithm="ES256")
    browser = signed_in_browser(user.email)
    tokens = sign_in_app(browser, app)

    hosted_sign_out(Signed(user=user, browser=browser, sid="", tokens=tokens, request=None))
    deliveries.run()

    [token] = receiver.logout_tokens()
    header, claims = verified_logout_token(token, app.client_id)
    assert header["alg"] == "ES256" and header["typ"] == "logout+jwt"
    assert claims["sid"] == id_token_sid(tokens["id_token"])


def test_only_the_apps_of_the_ended_session_hear_of_it(user, receiver, introspect, deliveries):
    other_receiver = Receiver()
    try:
        notes = register("Notes", backchannel_logout_uri=receiver.uri)
        files = register("Files", backchannel_logout_uri=other_receiver.uri)
        no_openid = register("Reports", backchannel_logout_uri=other_receiver.uri)
        first, second = signed_in_browser(user.email), signed_in_browser(user.email)
        notes_tokens = sign_in_app(first, notes)
        sign_in_app(first, no_openid, scope="profile offline_access")  # no ID token: nothing to end
        files_tokens = sign_in_app(second, files)

        hosted_sign_out(Signed(user=user, browser=first, sid="", tokens=notes_tokens, request=None))
        deliveries.run()

        assert len(receiver.logout_tokens()) == 1
        assert other_receiver.requests == []
        assert_dead(notes, notes_tokens, introspect)
        assert_alive(files, files_tokens, introspect)
    finally:
        other_receiver.close()


# --- Delivery failures: recorded, and the session ends all the same ------------------------------


@pytest.mark.parametrize("status", [500, 404, 302])
def test_an_app_answering_an_error_is_recorded_and_the_session_ends_all_the_same(signed, receiver, introspect, status, deliveries):
    receiver.status = status

    hosted_sign_out(signed)
    deliveries.run()

    assert len(receiver.requests) == backchannel.ATTEMPTS
    assert Session.objects.get(public_id=signed.sid).ended_at is not None
    assert_dead(signed.app, signed.tokens, introspect)
    failed = AuthEvent.objects.get(type=AuthEvent.Type.BACKCHANNEL_LOGOUT_FAILED)
    assert failed.email == signed.user.email and f"HTTP {status}" in failed.detail
    assert not AuthEvent.objects.filter(type=AuthEvent.Type.BACKCHANNEL_LOGOUT).exists()


def test_an_app_that_is_down_is_recorded_and_the_session_ends_all_the_same(signed, receiver, introspect, deliveries):
    receiver.close()
    # Nothing listens on the port any more (a fresh socket of our own proves it refuses).
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", receiver.server.server_address[1])) != 0

    response = signed.api().delete(f"/api/sessions/{signed.sid}")
    deliveries.run()

    assert response.status_code == 200
    assert Session.objects.get(public_id=signed.sid).ended_at is not None
    assert_dead(signed.app, signed.tokens, introspect)
    assert AuthEvent.objects.filter(type=AuthEvent.Type.BACKCHANNEL_LOGOUT_FAILED, email=signed.user.email).count() == 1
