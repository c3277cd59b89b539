"""The audit trail (accounts/audit.py, AuthEvent): each event type is recorded by the flow that
causes it, through the API, the admin and the commands, with the user, the email, the client
address (REMOTE_ADDR, or X-Forwarded-For through TRUSTED_PROXIES), the user agent and a
detail where one means something.

Also: an event outlives its user (email kept, user null); an insert that fails never fails the
request that causes it; one event is one INSERT.
"""

import json
import logging
import re
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.audit import services as audit
from accounts.audit.models import AuthEvent
from accounts.sessions.services import sessions_end
from accounts.users.models import User
from tests.conftest import PASSWORD, SESSIONS_INLINE, admin_login
from tests.support.api import login
from tests.support.contract import AUTHENTICATE_PATH, CONFIRMATION_PATH, RECOVERY_PATH, USER_PATH

Type = AuthEvent.Type

ADDRESS = "198.51.100.23"
AGENT = "AuditTest/1.0 (+https://example.com/bot)"
NEW_PASSWORD = "a fresh staple battery"
ADMIN_PASSWORD = "operator phrase 31"


@pytest.fixture
def client() -> APIClient:
    """An API client that comes from ADDRESS with the user agent AGENT."""
    return APIClient(REMOTE_ADDR=ADDRESS, HTTP_USER_AGENT=AGENT)


@pytest.fixture
def unconfirmed(user_factory) -> User:
    return user_factory(email="una@example.com", name="Una", confirmed=False)


@pytest.fixture
def staff(user_factory) -> User:
    return user_factory(email="admin@example.com", password=ADMIN_PASSWORD, is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(staff) -> Client:
    admin = Client(REMOTE_ADDR="192.0.2.10", HTTP_USER_AGENT="StaffBrowser/2.0")
    admin_login(admin, staff)
    return admin


def events(type: str | None = None) -> list[AuthEvent]:
    queryset = AuthEvent.objects.order_by("created_at", "pk")
    return list(queryset.filter(type=type) if type else queryset)


def the_event(type: str) -> AuthEvent:
    """Return the one event of this type, failing if there is none or more than one."""
    found = events(type)
    assert len(found) == 1, [(event.type, event.email, event.detail) for event in events()]
    return found[0]


def assert_event(
    event: AuthEvent,
    *,
    user: User | None,
    email: str,
    detail: str = "",
    address: str | None = ADDRESS,
    agent: str = AGENT,
) -> None:
    assert (event.user_id, event.email, event.detail) == (user.pk if user else None, email, detail)
    assert (event.client_address, event.user_agent) == (address, agent)


def link_token(body: str, path: str, settings) -> str:
    match = re.search(re.escape(f"{settings.CLIENT_ORIGIN}{path}/") + r"(\S+)", body)
    assert match, body
    return match.group(1)


# --- Each event, from the flow that causes it --------------------------------------------------


def test_login(client, user):
    assert login(client, "ann@example.com").status_code == 200

    assert [event.type for event in events()] == [Type.LOGIN]
    assert_event(the_event(Type.LOGIN), user=user, email="ann@example.com")


def test_login_with_remember(client, user):
    assert login(client, "ann@example.com", remember=True).status_code == 200

    assert_event(the_event(Type.LOGIN), user=user, email="ann@example.com", detail="remember")


@pytest.mark.parametrize(
    "account, email, password, detail",
    [
        ("user", "ann@example.com", "wrong password", "Invalid email or password"),
        ("user", "ANN@example.com", "wrong password", "Invalid email or password"),
        (None, "nobody@example.com", PASSWORD, "Invalid email or password"),
        ("unconfirmed", "una@example.com", PASSWORD, "Please confirm your account"),
        ("disabled", "dis@example.com", PASSWORD, "Account disabled"),
    ],
)
def test_login_failed(client, user_factory, account, email, password, detail):
    users = {
        "user": user_factory(email="ann@example.com"),
        "unconfirmed": user_factory(email="una@example.com", confirmed=False),
        "disabled": user_factory(email="dis@example.com", disabled=True),
    }

    # The status of each refusal, as the contract lists them (tests/signin checks the envelopes).
    status = {"Invalid email or password": 401, "Please confirm your account": 400, "Account disabled": 403}[detail]
    assert login(client, email, password).status_code == status

    assert [event.type for event in events()] == [Type.LOGIN_FAILED]
    # The email as the client typed it: that is what was tried.
    assert_event(the_event(Type.LOGIN_FAILED), user=users.get(account), email=email, detail=detail)


def test_refusals_past_the_login_rate_are_not_recorded(client, user, settings):
    # A flood of throttled attempts must not flood the table; the failures that reached the limit are there.
    settings.LOGIN_RATE = "2/min"

    statuses = [login(client, "ann@example.com", "wrong password").status_code for _ in range(5)]

    assert statuses == [401, 401, 429, 429, 429]
    assert len(events(Type.LOGIN_FAILED)) == 2


def test_refresh_refused_for_a_revoked_token(client, user, token_for):
    token = token_for(user)
    sessions_end(user=user, reason="staff")

    response = client.get(AUTHENTICATE_PATH, HTTP_AUTHORIZATION=token)

    assert response.status_code == 401
    assert_event(the_event(Type.REFRESH_REFUSED), user=user, email="ann@example.com", detail="Invalid or expired token")


def test_refresh_refused_for_a_disabled_account(client, user_factory, token_for):
    user = user_factory(email="dis@example.com")
    token = token_for(user)
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert client.get(AUTHENTICATE_PATH, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 403

    assert_event(the_event(Type.REFRESH_REFUSED), user=user, email="dis@example.com", detail="Account disabled")


def test_refresh_refused_for_a_garbage_token(client, db):
    assert client.get(AUTHENTICATE_PATH, HTTP_AUTHORIZATION="Bearer not.a.token").status_code == 401

    assert_event(the_event(Type.REFRESH_REFUSED), user=None, email="", detail="Invalid or expired token")


def test_a_refresh_that_works_records_nothing(client, user, token_for):
    assert client.get(AUTHENTICATE_PATH, HTTP_AUTHORIZATION=token_for(user)).status_code == 200

    assert events() == []


def test_register(client, db):
    response = client.post(
        USER_PATH,
        {"email": " reg@example.com ", "name": "Reg", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        format="json",
    )

    assert response.status_code == 200
    assert_event(the_event(Type.REGISTER), user=User.objects.get(email="reg@example.com"), email="reg@example.com")


def test_a_refused_registration_records_no_registration(client, user):
    body = {"email": "ANN@example.com", "name": "Reg", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}

    assert client.post(USER_PATH, body, format="json").status_code == 401

    assert events(Type.REGISTER) == []


def test_confirm(client, unconfirmed, settings):
    client.put(CONFIRMATION_PATH, {"email": "una@example.com"}, format="json")
    token = link_token(mail.outbox[0].body, settings.CONFIRMATION_URL, settings)

    assert client.post(CONFIRMATION_PATH, {"token": token}, format="json").status_code == 200
    assert client.post(CONFIRMATION_PATH, {"token": token}, format="json").status_code == 200

    # Confirming again is no new confirmation.
    assert_event(the_event(Type.CONFIRM), user=unconfirmed, email="una@example.com")


def test_password_change(client, user, token_for):
    body = {"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}

    assert client.put(AUTHENTICATE_PATH, body, format="json", HTTP_AUTHORIZATION=token_for(user)).status_code == 200

    assert [event.type for event in events()] == [Type.PASSWORD_CHANGE]
    assert_event(the_event(Type.PASSWORD_CHANGE), user=user, email="ann@example.com", detail="1 sessions ended")


def test_recovery_requested_and_completed(client, user, settings):
    assert client.patch(AUTHENTICATE_PATH, {"email": "ANN@example.com"}, format="json").status_code == 200
    token = link_token(mail.outbox[0].body, settings.RECOVER_URL, settings)
    reset = client.post(
        RECOVERY_PATH, {"token": token, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, format="json"
    )

    assert reset.status_code == 200
    assert [event.type for event in events()] == [Type.RECOVERY_REQUEST, Type.RECOVERY_COMPLETE]
    assert_event(the_event(Type.RECOVERY_REQUEST), user=user, email="ann@example.com")
    assert_event(the_event(Type.RECOVERY_COMPLETE), user=user, email="ann@example.com", detail="0 sessions ended")


def test_a_refused_recovery_reset_records_no_completion(client, user):
    body = {"token": "forged", "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}

    assert client.post(RECOVERY_PATH, body, format="json").status_code == 400

    assert events(Type.RECOVERY_COMPLETE) == []


def test_email_change(client, user, token_for):
    body = {"new_email": "ann.new@example.com", "password": PASSWORD}

    assert client.patch(USER_PATH, body, format="json", HTTP_AUTHORIZATION=token_for(user)).status_code == 200

    event = the_event(Type.EMAIL_CHANGE)
    assert_event(event, user=user, email="ann.new@example.com", detail="from ann@example.com")


def test_deactivation_and_reactivation(client, user, token_for):
    assert client.delete(USER_PATH, HTTP_AUTHORIZATION=token_for(user)).status_code == 200
    assert login(client, "ann@example.com").status_code == 200

    assert [event.type for event in events()] == [Type.DEACTIVATE, Type.REACTIVATE, Type.LOGIN]
    for type in (Type.DEACTIVATE, Type.REACTIVATE, Type.LOGIN):
        assert_event(the_event(type), user=user, email="ann@example.com")


def test_deletion_keeps_the_email_and_every_earlier_event(client, user, token_for):
    login(client, "ann@example.com")
    login(client, "ann@example.com", "wrong password")

    response = client.generic(
        "DELETE", AUTHENTICATE_PATH, '{"password": "%s"}' % PASSWORD, content_type="application/json",
        HTTP_AUTHORIZATION=token_for(user),
    )

    assert response.status_code == 200
    assert not User.objects.filter(email="ann@example.com").exists()
    assert [event.type for event in events()] == [Type.LOGIN, Type.LOGIN_FAILED, Type.DELETE]
    assert_event(the_event(Type.DELETE), user=None, email="ann@example.com")
    # The user's rows are gone, its history is not: user null, email kept.
    for event in events():
        assert (event.user_id, event.email) == (None, "ann@example.com")


def test_an_event_survives_the_deletion_of_its_user(user):
    audit.record(Type.LOGIN, user=user)

    user.delete()

    event = the_event(Type.LOGIN)
    assert (event.user, event.email) == (None, "ann@example.com")


# --- Staff actions -----------------------------------------------------------------------------


def act(admin_client: Client, action: str, user: User):
    response = admin_client.post(
        "/admin/accounts/user/", {"action": action, "_selected_action": [user.pk], "index": 0}
    )
    assert response.status_code == 302
    return response


@pytest.mark.parametrize(
    "action, state, words",
    [
        ("confirm", {"confirmed": False}, "confirmed"),
        ("disable", {}, "disabled"),
        ("enable", {"disabled": True}, "enabled"),
        ("send_confirmation", {"confirmed": False}, "confirmation email"),
        ("send_recovery", {}, "recovery email"),
        ("sign_out_everywhere", {}, "signed out everywhere"),
    ],
)
def test_staff_action_in_the_admin(admin_client, user_factory, action, state, words):
    target = user_factory(email="target@example.com", **state)

    act(admin_client, action, target)

    event = the_event(Type.STAFF_ACTION)
    assert (event.user_id, event.email) == (target.pk, "target@example.com")
    assert words in event.detail and "admin@example.com" in event.detail
    assert (event.client_address, event.user_agent) == ("192.0.2.10", "StaffBrowser/2.0")


def test_staff_action_skipped_records_nothing(admin_client, unconfirmed):
    act(admin_client, "send_recovery", unconfirmed)

    assert events(Type.STAFF_ACTION) == []
    assert events(Type.RECOVERY_REQUEST) == []


def test_send_recovery_in_the_admin_also_records_the_recovery_request(admin_client, user):
    act(admin_client, "send_recovery", user)

    request = the_event(Type.RECOVERY_REQUEST)
    assert (request.user_id, request.email, request.client_address) == (user.pk, "ann@example.com", "192.0.2.10")


def test_password_set_in_the_admin(admin_client, user):
    response = admin_client.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    event = the_event(Type.STAFF_ACTION)
    assert (event.user_id, event.email) == (user.pk, "ann@example.com")
    assert "password" in event.detail and "admin@example.com" in event.detail
    assert (event.client_address, event.user_agent) == ("192.0.2.10", "StaffBrowser/2.0")


def test_user_added_in_the_admin(admin_client, db):
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "new@example.com",
            "name": "Nia",
            "usable_password": "true",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )

    assert response.status_code == 302
    created = User.objects.get(email="new@example.com")
    event = the_event(Type.STAFF_ACTION)
    assert (event.user_id, event.email) == (created.pk, "new@example.com")
    assert "admin@example.com" in event.detail
    assert event.client_address == "192.0.2.10"


def test_user_changed_in_the_admin(admin_client, user):
    # Granting staff status is the staff action an audit trail exists for.
    response = admin_client.post(
        f"/admin/accounts/user/{user.pk}/change/",
        {"email": "ann@example.com", "name": "Ann", "is_staff": "on", "is_superuser": "on", **SESSIONS_INLINE},
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.is_superuser
    event = the_event(Type.STAFF_ACTION)
    assert (event.user_id, event.email) == (user.pk, "ann@example.com")
    assert "admin@example.com" in event.detail
    assert event.client_address == "192.0.2.10"


def test_user_deleted_in_the_admin(admin_client, user):
    response = admin_client.post(f"/admin/accounts/user/{user.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()
    (event,) = [event for event in events() if event.type in (Type.DELETE, Type.STAFF_ACTION)]
    assert (event.user_id, event.email) == (None, "ann@example.com")
    assert "admin@example.com" in event.detail
    assert event.client_address == "192.0.2.10"


def test_revoke_tokens_command_is_a_staff_action_without_an_address(user):
    call_command("revoke_tokens", "ann@example.com", stdout=StringIO())

    event = the_event(Type.STAFF_ACTION)
    assert_event(event, user=user, email="ann@example.com", detail=event.detail, address=None, agent="")
    assert "signed out everywhere" in event.detail and "command" in event.detail


# --- Client address and user agent -------------------------------------------------------------


@pytest.mark.parametrize(
    "trusted, remote, forwarded, expected",
    [
        ([], "10.0.0.7", None, "10.0.0.7"),
        ([], "10.0.0.7", "203.0.113.5", "10.0.0.7"),  # no proxy trusted: the header is the client's word only
        (["10.0.0.7"], "203.0.113.9", "203.0.113.5", "203.0.113.9"),  # not from the proxy: not believed
        (["10.0.0.7"], "10.0.0.7", "203.0.113.5", "203.0.113.5"),
        (["10.0.0.7"], "10.0.0.7", "192.0.2.66, 203.0.113.5", "203.0.113.5"),  # the left part is the client's word
        (["10.0.0.0/24"], "10.0.0.7", "192.0.2.66, 203.0.113.5, 10.0.0.3", "203.0.113.5"),  # two proxies
        (["10.0.0.7"], "10.0.0.7", None, "10.0.0.7"),
        (["2001:db8:ffff::/48"], "2001:db8:ffff::2", "2001:db8:1:2::99, 2001:db8:ffff::1", "2001:db8:1:2::99"),
    ],
)
def test_client_address_follows_trusted_proxies(user, settings, trusted, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = trusted
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    client = APIClient(REMOTE_ADDR=remote, HTTP_USER_AGENT=AGENT, **headers)

    assert login(client, "ann@example.com").status_code == 200

    assert the_event(Type.LOGIN).client_address == expected


def test_ipv6_client_address(user):
    client = APIClient(REMOTE_ADDR="2001:db8::1")

    assert login(client, "ann@example.com").status_code == 200

    assert the_event(Type.LOGIN).client_address == "2001:db8::1"


@pytest.mark.parametrize("remote", ["", "unix:/run/gunicorn.sock", "not an address"])
def test_a_client_address_that_is_not_an_ip_is_left_empty(user, remote):
    client = APIClient(REMOTE_ADDR=remote)

    assert login(client, "ann@example.com").status_code == 200

    assert the_event(Type.LOGIN).client_address is None


def test_a_forwarded_address_that_is_not_an_ip_is_left_empty(user, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.7"]
    client = APIClient(REMOTE_ADDR="10.0.0.7", HTTP_X_FORWARDED_FOR="<script>")

    assert login(client, "ann@example.com").status_code == 200

    assert the_event(Type.LOGIN).client_address is None


def test_no_user_agent_is_recorded_as_empty(user):
    assert login(APIClient(), "ann@example.com").status_code == 200

    assert the_event(Type.LOGIN).user_agent == ""


def test_a_long_user_agent_is_cut_not_refused(user):
    client = APIClient(HTTP_USER_AGENT="x" * 5000)

    assert login(client, "ann@example.com").status_code == 200

    assert the_event(Type.LOGIN).user_agent == "x" * 512


def test_outside_a_request_there_is_no_address(user):
    audit.record(Type.LOGIN, user=user)

    assert_event(the_event(Type.LOGIN), user=user, email="ann@example.com", address=None, agent="")


def test_the_request_context_does_not_leak_into_later_work(client, user):
    login(client, "ann@example.com")

    audit.record(Type.STAFF_ACTION, user=user, detail="after the request")

    assert the_event(Type.STAFF_ACTION).client_address is None


# --- A failing insert never fails the request ---------------------------------------------------


@pytest.fixture
def inserts_fail(monkeypatch):
    """Make every audit insert raise, as a database refusing the write would."""

    def refuse(**fields):
        raise DatabaseError("audit table is unavailable")

    monkeypatch.setattr(AuthEvent.objects, "create", refuse)


def test_login_works_when_the_event_cannot_be_written(client, user, inserts_fail, caplog):
    with caplog.at_level(logging.ERROR, logger="accounts.audit.services"):
        response = login(client, "ann@example.com")

    assert response.status_code == 200
    assert set(response.json()) >= {"token"}
    assert client.get(USER_PATH, HTTP_AUTHORIZATION=response.json()["token"]).status_code == 200
    assert "not written" in caplog.text
    assert AuthEvent.objects.count() == 0


def test_registration_works_when_the_event_cannot_be_written(client, db, inserts_fail):
    body = {"email": "reg@example.com", "name": "Reg", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}

    response = client.post(USER_PATH, body, format="json")

    assert response.status_code == 200
    assert response.json() == {"user": "reg@example.com"}
    assert User.objects.filter(email="reg@example.com").exists()
    assert len(mail.outbox) == 1


def test_failed_login_still_answers_its_error_when_the_event_cannot_be_written(client, user, inserts_fail):
    response = login(client, "ann@example.com", "wrong password")

    assert response.status_code == 401
    assert response.json() == {"status": 401, "message": "Invalid email or password"}


def test_admin_action_works_when_the_event_cannot_be_written(admin_client, user, inserts_fail):
    response = admin_client.post(
        "/admin/accounts/user/", {"action": "disable", "_selected_action": [user.pk], "index": 0}
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.is_active


@pytest.fixture
def table_missing(monkeypatch):
    """Point AuthEvent at a table that does not exist: the database itself refuses the INSERT.

    On PostgreSQL a failed statement poisons the transaction it runs in; `record()` must fence it
    off (a savepoint), or everything after it in the same transaction fails.
    """
    monkeypatch.setattr(AuthEvent._meta, "db_table", "accounts_authevent_gone")


def test_a_database_error_in_the_insert_leaves_the_request_and_transaction_usable(client, user_factory, table_missing):
    user = user_factory(email="dee@example.com", deactivated=True)

    # Reactivation: an event, a write of the user, another event, then the token.
    response = login(client, "dee@example.com")

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.state == "active"
    assert client.get(USER_PATH, HTTP_AUTHORIZATION=response.json()["token"]).status_code == 200


def test_a_database_error_in_the_insert_during_registration(client, db, table_missing):
    body = {"email": "reg@example.com", "name": "Reg", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}

    response = client.post(USER_PATH, body, format="json")

    assert response.status_code == 200
    assert User.objects.filter(email="reg@example.com").exists()


# --- One event, one INSERT ---------------------------------------------------------------------

# Transaction control (the savepoint that fences the insert off, SQLite's BEGIN) is not a write.
CONTROL = re.compile(r"^\s*(BEGIN|SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK|COMMIT)\b", re.IGNORECASE)


def statements(context: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in context.captured_queries if not CONTROL.match(query["sql"])]


def test_record_is_one_insert(user):
    with CaptureQueriesContext(connection) as context:
        audit.record(Type.LOGIN, user=user, detail="remember")

    (sql,) = statements(context)
    assert sql.upper().startswith("INSERT") and "accounts_authevent" in sql


def test_record_without_a_user_is_one_insert(db):
    with CaptureQueriesContext(connection) as context:
        audit.record(Type.LOGIN_FAILED, email="nobody@example.com", detail="Invalid email or password")

    (sql,) = statements(context)
    assert sql.upper().startswith("INSERT")


@pytest.mark.django_db(transaction=True)
def test_record_outside_a_transaction_is_one_insert(django_user_model):
    user = django_user_model.objects.create_user(email="ann@example.com", password=PASSWORD)

    with CaptureQueriesContext(connection) as context:
        audit.record(Type.LOGIN, user=user)

    assert len(statements(context)) == 1
    assert AuthEvent.objects.count() == 1


def test_a_login_request_writes_one_event_row(client, user):
    with CaptureQueriesContext(connection) as context:
        assert login(client, "ann@example.com").status_code == 200

    touching_events = [sql for sql in statements(context) if "accounts_authevent" in sql]
    assert len(touching_events) == 1 and touching_events[0].upper().startswith("INSERT")


# --- 13. Smaller ones ------------------------------------------------------------------------


def test_a_password_typed_into_the_email_field_stays_out_of_the_audit_trail(user):
    login(APIClient(), "correct horse battery staple", "whatever")

    event = AuthEvent.objects.get(type=AuthEvent.Type.LOGIN_FAILED)
    assert event.email == ""
    assert "horse" not in json.dumps([event.email, event.detail, event.user_agent])
