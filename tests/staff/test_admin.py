"""The admin site (accounts/admin.py), through the test client as staff would use it.

Covers: login with the email, the user list (columns, search, the state and staff filters), the
change, add and password forms, each bulk action's effect (database, mail.outbox, and tokens
checked the only way that matters: through GET /api/user) and the message that reports it, the
refusal of non-staff users, and the read-only audit trail.
"""

import re

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import constants as message_levels
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from accounts.audit.models import AuthEvent
from accounts.sessions.models import Session
from accounts.users.links import Purpose, validation_token_make
from accounts.users.models import User
from tests.conftest import PASSWORD, SESSIONS_INLINE, admin_login, claims
from tests.support.api import assert_password_reset, client_with, login
from tests.support.contract import (
    ACCOUNT_DISABLED,
    AUTHENTICATE_PATH,
    CONFIRMATION_PATH,
    THROTTLED,
    TOKEN_INVALID,
    USER_CONFIRMATION_REQUIRED,
    USER_PATH,
    assert_error,
)

USERS = "/admin/accounts/user/"
EVENTS = "/admin/accounts/authevent/"
ADMIN_PASSWORD = "operator phrase 31"
NEW_PASSWORD = "fresh staff choice 77"


def change_url(user: User) -> str:
    return f"{USERS}{user.pk}/change/"


def password_url(user: User) -> str:
    return f"{USERS}{user.pk}/password/"


@pytest.fixture
def staff(user_factory) -> User:
    return user_factory(
        email="admin@example.com", name="Ada Admin", password=ADMIN_PASSWORD, is_staff=True, is_superuser=True
    )


@pytest.fixture
def admin_client(staff) -> Client:
    client = Client()
    admin_login(client, staff)
    return client


@pytest.fixture
def accounts(user_factory) -> dict[str, User]:
    """One account in each state of the contract."""
    return {
        "active": user_factory(email="ann@example.com", name="Ann Active"),
        "unconfirmed": user_factory(email="una@example.com", name="Una Unconfirmed", confirmed=False),
        "deactivated": user_factory(email="dee@example.com", name="Dee Deactivated", deactivated=True),
        "disabled": user_factory(email="dis@example.com", name="Dis Abled", disabled=True),
    }


def results(response) -> set[str]:
    """Return the emails of the rows a changelist shows."""
    assert response.status_code == 200
    return {row.email for row in response.context["cl"].result_list}


def act(client: Client, action: str, *users: User):
    """Run a bulk action of the user list on `users`; return the page it leads to."""
    return client.post(
        USERS, {"action": action, "_selected_action": [user.pk for user in users], "index": 0}, follow=True
    )


def reported(response) -> list[tuple[str, str]]:
    """Return the messages on the page as (level, text)."""
    names = {message_levels.SUCCESS: "success", message_levels.INFO: "info", message_levels.WARNING: "warning"}
    return [(names.get(message.level, str(message.level)), str(message)) for message in response.context["messages"]]


def api_profile(api_client, token: str):
    return api_client.get(USER_PATH, HTTP_AUTHORIZATION=token)


def api_login(api_client, email: str, password: str = PASSWORD):
    return api_client.post(AUTHENTICATE_PATH, {"email": email, "password": password}, format="json")


def link_token(body: str, settings, path: str) -> str:
    match = re.search(re.escape(f"{settings.CLIENT_ORIGIN}{path}/") + r"(\S+)", body)
    assert match, body
    return match.group(1)


def sent_link(settings, to: str, subject: str, path: str) -> str:
    """Require one email sent, to `to` with `subject`; return the token of its link to `path`."""
    (email,) = mail.outbox
    assert email.to == [to]
    assert email.subject == subject
    return link_token(email.body, settings, path)


# --- Login and access --------------------------------------------------------------------------


def test_login_page_asks_for_the_email(db):
    response = Client().get("/admin/login/")

    assert response.status_code == 200
    assert "Email address" in response.content.decode()


@pytest.mark.parametrize("email", ["admin@example.com", "ADMIN@Example.COM"])
def test_staff_logs_in_with_the_email_in_any_case(staff, email):
    client = Client()

    response = client.post("/admin/login/", {"username": email, "password": ADMIN_PASSWORD, "next": "/admin/"})

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get(USERS).status_code == 200


def test_login_with_a_wrong_password_is_refused(staff):
    client = Client()

    response = client.post("/admin/login/", {"username": "admin@example.com", "password": "wrong password"})

    assert response.status_code == 200
    assert "correct email address and password" in response.content.decode()
    assert client.get(USERS).status_code == 302


def test_a_disabled_staff_account_cannot_log_in(user_factory):
    user_factory(email="gone@example.com", password=ADMIN_PASSWORD, is_staff=True, is_superuser=True, disabled=True)
    client = Client()

    response = client.post("/admin/login/", {"username": "gone@example.com", "password": ADMIN_PASSWORD})

    assert response.status_code == 200
    assert client.get(USERS).status_code == 302


def test_a_non_staff_user_cannot_log_in_to_the_admin(user):
    client = Client()

    response = client.post("/admin/login/", {"username": user.email, "password": PASSWORD})

    assert response.status_code == 200
    assert "staff account" in response.content.decode()
    assert client.get(USERS).status_code == 302


@pytest.mark.parametrize(
    "path",
    ["/admin/", USERS, USERS + "add/", "{change}", "{password}", EVENTS],
)
@pytest.mark.parametrize("who", ["anonymous", "non-staff"])
def test_non_staff_are_redirected_to_the_admin_login(user, path, who):
    client = Client()
    if who == "non-staff":
        admin_login(client, user)
    path = path.format(change=change_url(user), password=password_url(user))

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


def test_a_non_staff_user_cannot_run_an_action(user_factory, user, token_for, api_client):
    victim = user_factory(email="victim@example.com")
    token = token_for(victim)
    client = Client()
    admin_login(client, user)

    response = client.post(USERS, {"action": "disable", "_selected_action": [victim.pk], "index": 0})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    victim.refresh_from_db()
    assert victim.is_active
    assert api_profile(api_client, token).status_code == 200
    assert not AuthEvent.objects.filter(type=AuthEvent.Type.STAFF_ACTION).exists()


# --- The user list -----------------------------------------------------------------------------


def test_list_shows_email_name_state_staff_and_dates(admin_client, accounts):
    response = admin_client.get(USERS)

    assert response.status_code == 200
    html = response.content.decode()
    for column in ("email", "name", "state", "is_staff", "last_login", "date_joined"):
        assert f"column-{column}" in html, column
    rows = {row.email: row for row in response.context["cl"].result_list}
    assert set(rows) == {"admin@example.com", *(user.email for user in accounts.values())}
    for state, user in accounts.items():
        row = re.search(rf"<tr>.*?{re.escape(user.email)}.*?</tr>", html, re.DOTALL).group(0)
        assert user.name in row
        assert f'<td class="field-state">{state}</td>' in row


@pytest.mark.parametrize(
    "query, expected",
    [
        ("ann@example.com", {"ann@example.com"}),
        ("ANN@EXAMPLE", {"ann@example.com"}),
        ("Unconfirmed", {"una@example.com"}),
        ("dee", {"dee@example.com"}),
        ("nobody", set()),
    ],
)
def test_search_by_email_and_name(admin_client, accounts, query, expected):
    assert results(admin_client.get(USERS, {"q": query})) == expected


@pytest.mark.parametrize("state", ["unconfirmed", "active", "deactivated", "disabled"])
def test_filter_by_state(admin_client, accounts, state):
    expected = {accounts[state].email}
    if state == "active":
        expected.add("admin@example.com")

    response = admin_client.get(USERS, {"state": state})

    assert results(response) == expected


def test_state_filter_offers_each_state(admin_client, accounts):
    html = admin_client.get(USERS).content.decode()

    for state in ("unconfirmed", "active", "deactivated", "disabled"):
        assert f"?state={state}" in html


@pytest.mark.parametrize(
    "flag, expected", [("1", {"admin@example.com"}), ("0", {"ann@example.com", "una@example.com"})]
)
def test_filter_by_staff(admin_client, user_factory, flag, expected):
    user_factory(email="ann@example.com")
    user_factory(email="una@example.com", confirmed=False)

    assert results(admin_client.get(USERS, {"is_staff__exact": flag})) == expected


def test_filters_combine_with_search(admin_client, accounts):
    assert results(admin_client.get(USERS, {"state": "disabled", "q": "example.com"})) == {"dis@example.com"}


# --- Change, add and password forms ------------------------------------------------------------


def test_change_form_renders_with_the_state_read_only(admin_client, accounts):
    user = accounts["deactivated"]

    response = admin_client.get(change_url(user))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="email"' in html and user.email in html
    assert 'name="name"' in html
    # State changes go through the actions, never through the form.
    for field in ("is_active", "confirmed_at", "deactivated_at", "tokens_valid_after"):
        assert f'name="{field}"' not in html
    assert '<div class="readonly">deactivated</div>' in html
    assert 'href="../password/"' in html  # the link to the password form


def test_change_form_saves_the_name_and_email(admin_client, user, token_for, api_client):
    response = admin_client.post(
        change_url(user), {"email": "ann.new@example.com", "name": "Ann Renamed", "is_staff": "on", **SESSIONS_INLINE}
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert (user.email, user.name, user.is_staff, user.is_active) == ("ann.new@example.com", "Ann Renamed", True, True)
    assert api_login(api_client, "ann.new@example.com").status_code == 200


def test_change_form_refuses_an_email_taken_in_another_case(admin_client, user, user_factory):
    other = user_factory(email="bob@example.com")

    response = admin_client.post(change_url(other), {"email": "ANN@example.com", "name": "Bob", **SESSIONS_INLINE})

    assert response.status_code == 200
    assert "A user with that email already exists" in response.content.decode()
    other.refresh_from_db()
    assert other.email == "bob@example.com"


def test_add_form_renders(admin_client):
    response = admin_client.get(USERS + "add/")

    assert response.status_code == 200
    html = response.content.decode()
    for field in ("email", "name", "password1", "password2"):
        assert f'name="{field}"' in html


def test_user_added_in_the_admin_logs_in_only_after_confirmation(admin_client, api_client, settings):
    response = admin_client.post(
        USERS + "add/",
        {
            "email": "  new@example.com ",
            "name": "Nia New",
            "usable_password": "true",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    created = User.objects.get(email="new@example.com")
    assert created.name == "Nia New"
    assert created.state == "unconfirmed"
    assert not created.is_staff
    assert_error(api_login(api_client, "new@example.com", NEW_PASSWORD), USER_CONFIRMATION_REQUIRED)

    sent = act(admin_client, "send_confirmation", created)
    assert ("info", "1 account sent a confirmation email.") in reported(sent)
    token = sent_link(settings, "new@example.com", "Welcome, Nia New", settings.CONFIRMATION_URL)
    confirmed = api_client.post(CONFIRMATION_PATH, {"token": token}, format="json")
    assert confirmed.status_code == 200

    login = api_login(api_client, "new@example.com", NEW_PASSWORD)
    assert login.status_code == 200
    assert api_profile(api_client, login.json()["token"]).json() == {
        "email": "new@example.com",
        "profile": {"name": "Nia New"},
    }


def test_add_form_refuses_an_email_taken_in_another_case(admin_client, user):
    response = admin_client.post(
        USERS + "add/",
        {
            "email": "ANN@Example.com",
            "name": "Imposter",
            "usable_password": "true",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )

    assert response.status_code == 200
    assert "A user with that email already exists" in response.content.decode()
    assert User.objects.with_email("ann@example.com").count() == 1


def test_add_form_applies_the_password_policy(admin_client):
    response = admin_client.post(
        USERS + "add/",
        {"email": "new@example.com", "name": "Nia", "usable_password": "true", "password1": "123", "password2": "123"},
    )

    assert response.status_code == 200
    assert "too short" in response.content.decode()
    assert not User.objects.filter(email="new@example.com").exists()


def test_password_form_renders(admin_client, user):
    response = admin_client.get(password_url(user))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="password1"' in html and 'name="password2"' in html
    assert user.email in html


def test_password_set_in_the_admin_revokes_old_tokens(admin_client, user, token_for, api_client):
    old_token = token_for(user)
    assert api_profile(api_client, old_token).status_code == 200

    response = admin_client.post(
        password_url(user), {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert_error(api_profile(api_client, old_token), TOKEN_INVALID)
    assert api_login(api_client, user.email, PASSWORD).status_code == 401
    login = api_login(api_client, user.email, NEW_PASSWORD)
    assert login.status_code == 200
    assert api_profile(api_client, login.json()["token"]).status_code == 200


def test_password_form_with_mismatching_passwords_changes_nothing(admin_client, user, token_for, api_client):
    old_token = token_for(user)

    response = admin_client.post(
        password_url(user), {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"}
    )

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert api_profile(api_client, old_token).status_code == 200


def test_staff_changing_their_own_password_stays_logged_in(admin_client, staff):
    response = admin_client.post(
        password_url(staff), {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assert response.status_code == 302
    assert admin_client.get(USERS).status_code == 200


# --- Bulk actions ------------------------------------------------------------------------------


def test_actions_are_offered_in_the_list(admin_client, user):
    html = admin_client.get(USERS).content.decode()

    for action in ("confirm", "disable", "enable", "send_confirmation", "send_recovery", "sign_out_everywhere"):
        assert f'<option value="{action}">' in html, action


def test_confirm_action(admin_client, accounts, user_factory, api_client):
    second = user_factory(email="sec@example.com", confirmed=False)

    response = act(admin_client, "confirm", accounts["unconfirmed"], second)

    assert ("info", "2 accounts confirmed.") in reported(response)
    for user in (accounts["unconfirmed"], second):
        user.refresh_from_db()
        assert user.state == "active"
    assert api_login(api_client, "una@example.com").status_code == 200
    assert mail.outbox == []


def test_confirm_action_reports_accounts_confirmed_already(admin_client, accounts):
    before = User.objects.get(pk=accounts["active"].pk).confirmed_at

    response = act(admin_client, "confirm", accounts["unconfirmed"], accounts["active"])

    messages = reported(response)
    assert ("info", "1 account confirmed.") in messages
    assert User.objects.get(pk=accounts["active"].pk).confirmed_at == before
    # The account that was not touched is accounted for, with the reason.
    assert any(level == "warning" and re.match(r"1 account skipped: .*already", text) for level, text in messages), (
        messages
    )


def test_disable_action_refuses_login_and_earlier_tokens(admin_client, accounts, token_for, api_client):
    user = accounts["active"]
    token = token_for(user)

    response = act(admin_client, "disable", user)

    assert ("info", "1 account disabled.") in reported(response)
    user.refresh_from_db()
    assert user.state == "disabled" and not user.is_active
    assert_error(api_profile(api_client, token), ACCOUNT_DISABLED)
    assert_error(api_login(api_client, user.email), ACCOUNT_DISABLED)


def test_disable_action_counts_only_accounts_it_disabled(admin_client, accounts):
    response = act(admin_client, "disable", accounts["active"], accounts["deactivated"], accounts["disabled"])

    messages = reported(response)
    assert ("info", "2 accounts disabled.") in messages
    assert User.objects.filter(is_active=False).count() == 3
    assert any(level == "warning" and re.match(r"1 account skipped: .*already", text) for level, text in messages), (
        messages
    )


def test_enable_action_lets_the_user_log_in_again_but_not_with_old_tokens(admin_client, user, token_for, api_client):
    token = token_for(user)
    act(admin_client, "disable", user)

    response = act(admin_client, "enable", user)

    assert ("info", "1 account enabled.") in reported(response)
    user.refresh_from_db()
    assert user.state == "active"
    login = api_login(api_client, user.email)
    assert login.status_code == 200
    assert api_profile(api_client, login.json()["token"]).status_code == 200
    # Disabling revoked the tokens of before; enabling does not bring them back.
    assert_error(api_profile(api_client, token), TOKEN_INVALID)


def test_enable_action_counts_only_accounts_it_enabled(admin_client, accounts):
    response = act(admin_client, "enable", accounts["disabled"], accounts["active"])

    messages = reported(response)
    assert ("info", "1 account enabled.") in messages
    assert any(level == "warning" and re.match(r"1 account skipped: .*already", text) for level, text in messages), (
        messages
    )
    assert User.objects.get(email="dis@example.com").state == "active"
    assert User.objects.get(email="ann@example.com").state == "active"


def test_send_confirmation_action(admin_client, accounts, api_client, settings):
    response = act(admin_client, "send_confirmation", accounts["unconfirmed"], accounts["active"])

    messages = reported(response)
    assert ("info", "1 account sent a confirmation email.") in messages
    assert ("warning", "1 account skipped: Account already confirmed.") in messages
    token = sent_link(settings, "una@example.com", "Welcome, Una Unconfirmed", settings.CONFIRMATION_URL)
    assert api_client.post(CONFIRMATION_PATH, {"token": token}, format="json").status_code == 200
    assert User.objects.get(email="una@example.com").state == "active"


def test_send_recovery_action(admin_client, accounts, api_client, settings, token_for):
    old_token = token_for(accounts["active"])

    response = act(admin_client, "send_recovery", accounts["active"], accounts["unconfirmed"], accounts["disabled"])

    messages = reported(response)
    assert ("info", "1 account sent a recovery email.") in messages
    assert ("warning", "1 account skipped: Please confirm your account.") in messages
    assert ("warning", "1 account skipped: Account disabled.") in messages
    token = sent_link(settings, "ann@example.com", "Recover Your Account", settings.RECOVER_URL)
    assert_password_reset(api_client, accounts["active"], token)
    assert_error(api_profile(api_client, old_token), TOKEN_INVALID)


def test_send_recovery_action_to_unconfirmed_accounts_only_sends_nothing(admin_client, accounts, user_factory):
    other = user_factory(email="oth@example.com", confirmed=False)

    response = act(admin_client, "send_recovery", accounts["unconfirmed"], other)

    messages = reported(response)
    assert ("info", "0 accounts sent a recovery email.") in messages
    assert ("warning", "2 accounts skipped: Please confirm your account.") in messages
    assert mail.outbox == []


def test_send_action_when_mail_fails_reports_the_reason(admin_client, accounts, failing_mail):
    response = act(admin_client, "send_confirmation", accounts["unconfirmed"])

    assert ("warning", "1 account skipped: Server could not process email request.") in reported(response)


def test_sign_out_everywhere_action(admin_client, user_factory, token_for, api_client):
    first = user_factory(email="one@example.com")
    second = user_factory(email="two@example.com")
    untouched = user_factory(email="three@example.com")
    tokens = {user.email: [token_for(user), token_for(user, remember=True)] for user in (first, second, untouched)}

    response = act(admin_client, "sign_out_everywhere", first, second)

    assert ("info", "2 accounts signed out everywhere.") in reported(response)
    for email in ("one@example.com", "two@example.com"):
        for token in tokens[email]:
            assert_error(api_profile(api_client, token), TOKEN_INVALID)
            assert_error(api_client.get(AUTHENTICATE_PATH, HTTP_AUTHORIZATION=token), TOKEN_INVALID)
        # Signing out is not disabling: the user can log in again.
        login = api_login(api_client, email)
        assert login.status_code == 200
        assert api_profile(api_client, login.json()["token"]).status_code == 200
    for token in tokens["three@example.com"]:
        assert api_profile(api_client, token).status_code == 200
    assert User.objects.get(email="one@example.com").state == "active"


def test_actions_record_a_staff_event_per_account_touched(admin_client, accounts):
    act(admin_client, "disable", accounts["active"], accounts["disabled"])

    events = list(AuthEvent.objects.filter(type=AuthEvent.Type.STAFF_ACTION))
    assert [(event.user, event.email) for event in events] == [(accounts["active"], "ann@example.com")]
    assert "disabled" in events[0].detail and "admin@example.com" in events[0].detail


# --- Who may do what: permissions, privileges, and acting on a superuser -----------------------
# Staff who are not superusers: one holding only view_user, one holding view_user and change_user
# (and one also holding delete_user). Targets: a superuser, another staff member, an ordinary user,
# a member of a privileged group.

FORBIDDEN = "only a superuser may act on a superuser, another staff account, or an account with a group or permission you lack"
PERMISSION_DENIED = {"status": 403, "message": "Permission denied"}
ACTIONS = ["confirm", "disable", "enable", "send_confirmation", "send_recovery", "sign_out_everywhere"]


def staff_with(user_factory, email: str, *codenames: str) -> User:
    member = user_factory(email=email, name="Sam Staff", password=ADMIN_PASSWORD, is_staff=True)
    member.user_permissions.set(Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames))
    return member


def logged_in(user: User) -> Client:
    client = Client()
    admin_login(client, user)
    return client


@pytest.fixture
def viewer(user_factory) -> Client:
    return logged_in(staff_with(user_factory, "viewer@example.com", "view_user"))


@pytest.fixture
def editor_user(user_factory) -> User:
    return staff_with(user_factory, "editor@example.com", "view_user", "change_user")


@pytest.fixture
def editor(editor_user) -> Client:
    return logged_in(editor_user)


@pytest.fixture
def deleter(user_factory) -> Client:
    return logged_in(staff_with(user_factory, "deleter@example.com", "view_user", "change_user", "delete_user"))


@pytest.fixture
def root(user_factory) -> User:
    """A superuser: the target worth attacking."""
    return user_factory(email="root@example.com", name="Root", is_staff=True, is_superuser=True)


def untouched(user: User, token: str, api_client) -> None:
    """Assert that no staff action reached `user`: still active, same password, token still good."""
    user.refresh_from_db()
    assert user.is_active and user.check_password(PASSWORD)
    assert api_profile(api_client, token).status_code == 200
    assert not AuthEvent.objects.filter(type=AuthEvent.Type.STAFF_ACTION, user=user).exists()


def assert_permission_denied(response) -> None:
    assert response.status_code == 403
    assert response.json() == PERMISSION_DENIED


def test_view_only_staff_are_offered_no_action(viewer, user):
    html = viewer.get(USERS).content.decode()

    for action in ACTIONS:
        assert f'<option value="{action}">' not in html, action


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("target", ["root", "user"])
def test_view_only_staff_cannot_run_an_action(viewer, root, user, target, action, token_for, api_client):
    victim = {"root": root, "user": user}[target]
    token = token_for(victim)

    response = act(viewer, action, victim)

    # No action is offered to this user, so the post runs none: the list is shown again, as it is.
    assert response.status_code == 200 and reported(response) == []
    untouched(victim, token, api_client)
    assert mail.outbox == []


@pytest.mark.parametrize("action", ACTIONS)
def test_staff_who_are_not_superusers_cannot_act_on_a_superuser(editor, root, action, token_for, api_client):
    token = token_for(root)

    response = act(editor, action, root)

    assert ("warning", f"1 account skipped: {FORBIDDEN}.") in reported(response)
    untouched(root, token, api_client)
    assert mail.outbox == []


def test_an_action_on_a_mixed_selection_spares_the_superuser(editor, root, user, token_for, api_client):
    root_token, user_token = token_for(root), token_for(user)

    response = act(editor, "disable", root, user)

    messages = reported(response)
    assert ("info", "1 account disabled.") in messages
    assert ("warning", f"1 account skipped: {FORBIDDEN}.") in messages
    untouched(root, root_token, api_client)
    assert_error(api_profile(api_client, user_token), ACCOUNT_DISABLED)


def test_staff_who_are_not_superusers_cannot_act_on_other_staff(editor, user_factory, token_for, api_client):
    """Another staff member may hold permissions the editor lacks: taking over that account would grant them."""
    colleague = staff_with(user_factory, "colleague@example.com", "view_user", "change_user", "delete_user")
    colleague.set_password(PASSWORD)
    colleague.save()
    token = token_for(colleague)

    response = act(editor, "sign_out_everywhere", colleague)

    assert ("warning", f"1 account skipped: {FORBIDDEN}.") in reported(response)
    untouched(colleague, token, api_client)
    form = {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    assert_permission_denied(editor.post(password_url(colleague), form))


def test_a_superuser_may_act_on_another_superuser(admin_client, root, token_for, api_client):
    token = token_for(root)

    response = act(admin_client, "disable", root)

    assert ("info", "1 account disabled.") in reported(response)
    assert_error(api_profile(api_client, token), ACCOUNT_DISABLED)


def test_editor_changes_an_ordinary_account(editor, user):
    response = editor.post(change_url(user), {"email": "ann@example.com", "name": "Ann Edited", **SESSIONS_INLINE})

    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.name == "Ann Edited"


def test_view_only_staff_cannot_post_the_change_form(viewer, user):
    assert_permission_denied(viewer.post(change_url(user), {"email": "evil@example.com", "name": "Evil"}))

    user.refresh_from_db()
    assert user.email == "ann@example.com"


def test_editor_cannot_change_a_superuser(editor, root):
    page = editor.get(change_url(root))
    response = editor.post(change_url(root), {"email": "evil@example.com", "name": "Evil"})

    # Shown read-only, as to anyone who may only view it.
    assert page.status_code == 200
    assert 'name="email"' not in page.content.decode()
    assert_permission_denied(response)
    root.refresh_from_db()
    assert (root.email, root.name) == ("root@example.com", "Root")


def test_privileges_are_read_only_for_staff_who_are_not_superusers(editor, editor_user):
    html = editor.get(change_url(editor_user)).content.decode()

    for field in ("is_staff", "is_superuser", "groups", "user_permissions"):
        assert f'name="{field}"' not in html, field
    assert 'name="name"' in html


def test_privileges_posted_by_staff_who_are_not_superusers_are_not_saved(editor, editor_user, user):
    group = Group.objects.create(name="operators")
    delete = Permission.objects.get(content_type__app_label="accounts", codename="delete_user")
    privileges = {"is_staff": "on", "is_superuser": "on", "groups": [group.pk], "user_permissions": [delete.pk]}

    for target in (editor_user, user):
        response = editor.post(change_url(target), {"email": target.email, "name": "Promoted", **privileges, **SESSIONS_INLINE})
        assert response.status_code == 302, response.context["adminform"].form.errors

    editor_user.refresh_from_db()
    user.refresh_from_db()
    assert (editor_user.name, editor_user.is_superuser, editor_user.is_staff) == ("Promoted", False, True)
    assert (user.name, user.is_superuser, user.is_staff) == ("Promoted", False, False)
    assert not editor_user.groups.exists() and not user.groups.exists()
    assert set(editor_user.user_permissions.values_list("codename", flat=True)) == {"view_user", "change_user"}
    assert not user.user_permissions.exists()


def test_a_superuser_edits_privileges(admin_client, user):
    response = admin_client.post(
        change_url(user), {"email": user.email, "name": user.name, "is_superuser": "on", **SESSIONS_INLINE}
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.is_superuser


def test_editor_cannot_set_a_superusers_password(editor, root):
    form = {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}

    assert_permission_denied(editor.get(password_url(root)))
    assert_permission_denied(editor.post(password_url(root), form))

    root.refresh_from_db()
    assert root.check_password(PASSWORD)


def test_editor_sets_an_ordinary_users_password(editor, user):
    form = {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}

    assert editor.post(password_url(user), form).status_code == 302

    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_view_only_staff_cannot_set_a_password(viewer, user):
    form = {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}

    assert_permission_denied(viewer.post(password_url(user), form))

    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.fixture
def billing_admin(user_factory) -> User:
    """A member, not staff, of a privileged group: the group is in their tokens, and other services
    authorize on it."""
    member = user_factory(email="bill@example.com", name="Bill Payer")
    group = Group.objects.create(name="billing-admins")
    group.permissions.set(Permission.objects.filter(content_type__app_label="accounts", codename="view_session"))
    member.groups.add(group)
    return member


def test_editor_cannot_take_over_a_member_of_a_group_they_are_not_in(editor, billing_admin, token_for, api_client):
    """Insider: staff with change_user set the password or the email of a billing-admins member,
    then sign in and hold tokens carrying that group."""
    token = token_for(billing_admin)
    form = {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}

    assert_permission_denied(editor.post(password_url(billing_admin), form))
    assert_permission_denied(editor.post(change_url(billing_admin), {"email": "evil@example.com", "name": "Bill", **SESSIONS_INLINE}))
    response = act(editor, "send_recovery", billing_admin)

    assert ("warning", f"1 account skipped: {FORBIDDEN}.") in reported(response)
    billing_admin.refresh_from_db()
    assert billing_admin.email == "bill@example.com"
    untouched(billing_admin, token, api_client)
    assert mail.outbox == []


def test_editor_in_the_group_with_its_permissions_may_act_on_its_members(editor_user, billing_admin):
    group = Group.objects.get(name="billing-admins")
    editor_user.groups.add(group)
    form = {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}

    assert logged_in(editor_user).post(password_url(billing_admin), form).status_code == 302

    billing_admin.refresh_from_db()
    assert billing_admin.check_password(NEW_PASSWORD)


def test_staff_with_delete_permission_cannot_delete_a_superuser(deleter, root):
    delete_url = f"{USERS}{root.pk}/delete/"

    assert_permission_denied(deleter.get(delete_url))
    assert_permission_denied(deleter.post(delete_url, {"post": "yes"}))

    assert User.objects.filter(pk=root.pk).exists()


def test_bulk_deletion_with_a_superuser_selected_deletes_nobody(deleter, root, user):
    response = deleter.post(
        USERS, {"action": "delete_selected", "_selected_action": [root.pk, user.pk], "post": "yes", "index": 0}
    )

    assert_permission_denied(response)
    assert User.objects.filter(pk__in=[root.pk, user.pk]).count() == 2


def test_staff_with_delete_permission_delete_an_ordinary_account(deleter, user):
    response = deleter.post(f"{USERS}{user.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()


# --- The audit trail in the admin ---------------------------------------------------------------


@pytest.fixture
def events(user, api_client):
    """A few real events: a login, a failed login and a registration."""
    api_login(api_client, user.email)
    api_client.post(
        AUTHENTICATE_PATH, {"email": user.email, "password": "wrong"}, format="json", REMOTE_ADDR="203.0.113.9"
    )
    api_client.post(
        USER_PATH,
        {"email": "reg@example.com", "name": "Reg", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        format="json",
    )
    assert AuthEvent.objects.count() == 3
    return AuthEvent.objects.all()


def test_audit_list_renders(admin_client, events):
    response = admin_client.get(EVENTS)

    assert response.status_code == 200
    html = response.content.decode()
    for column in ("created_at", "type", "email", "client_address", "detail"):
        assert f"column-{column}" in html, column
    assert len(response.context["cl"].result_list) == 3
    assert "203.0.113.9" in html
    assert "Invalid email or password" in html


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"type__exact": "login"}, {("login", "ann@example.com")}),
        ({"type__exact": "login_failed"}, {("login_failed", "ann@example.com")}),
        ({"type__exact": "register"}, {("register", "reg@example.com")}),
        ({"q": "reg@"}, {("register", "reg@example.com")}),
        ({"q": "203.0.113.9"}, {("login_failed", "ann@example.com")}),
        ({"q": "Invalid email"}, {("login_failed", "ann@example.com")}),
        ({"type__exact": "login", "q": "reg@"}, set()),
    ],
)
def test_audit_list_filters_and_search(admin_client, events, query, expected):
    response = admin_client.get(EVENTS, query)

    assert response.status_code == 200
    assert {(event.type, event.email) for event in response.context["cl"].result_list} == expected


def test_audit_list_filters_by_date(admin_client, events):
    event = events.first()
    day = event.created_at
    query = {"created_at__year": day.year, "created_at__month": day.month, "created_at__day": day.day}

    assert admin_client.get(EVENTS, query).status_code == 200


def test_audit_cannot_be_added(admin_client, events):
    assert admin_client.get(EVENTS + "add/").status_code == 403
    assert admin_client.post(EVENTS + "add/", {"type": "login", "email": "forged@example.com"}).status_code == 403
    assert not AuthEvent.objects.filter(email="forged@example.com").exists()
    assert 'href="/admin/accounts/authevent/add/"' not in admin_client.get(EVENTS).content.decode()


def test_audit_cannot_be_changed(admin_client, events):
    event = events.get(type="login_failed")

    page = admin_client.get(f"{EVENTS}{event.pk}/change/")
    post = admin_client.post(f"{EVENTS}{event.pk}/change/", {"type": "login", "email": "forged@example.com"})

    # The entry can be viewed, read-only: no form field, no save button.
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="email"' not in html and 'name="_save"' not in html
    assert post.status_code == 403
    event.refresh_from_db()
    assert (event.type, event.email) == ("login_failed", "ann@example.com")


def test_audit_cannot_be_deleted(admin_client, events):
    event = events.first()

    assert admin_client.get(f"{EVENTS}{event.pk}/delete/").status_code == 403
    assert admin_client.post(f"{EVENTS}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = admin_client.post(
        EVENTS, {"action": "delete_selected", "_selected_action": [e.pk for e in events], "post": "yes"}
    )
    assert bulk.status_code == 200  # the action is not offered: the changelist again, no redirect
    assert AuthEvent.objects.count() == 3
    assert "delete_selected" not in admin_client.get(EVENTS).content.decode()


RESET_PASSWORD = "a fresh staple battery"


def admin_post_login(client, email, password):
    return client.post("/admin/login/?next=/admin/", {"username": email, "password": password})


def test_the_admin_login_is_limited_and_audited(user_factory, settings):
    settings.LOGIN_ACCOUNT_RATE = "3/hour"
    user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    browser = Client(REMOTE_ADDR="203.0.113.5")

    for n in range(3):
        page = admin_post_login(browser, "root@example.com", f"guess {n}")
        assert page.status_code == 200 and "Please enter the correct email" in page.content.decode()
    page = admin_post_login(browser, "root@example.com", PASSWORD)

    assert page.status_code == 200
    assert "Too many requests" in page.content.decode()
    failures = AuthEvent.objects.filter(type=AuthEvent.Type.LOGIN_FAILED, email="root@example.com")
    assert failures.count() == 3
    assert all("admin site" in event.detail and event.client_address == "203.0.113.5" for event in failures)
    # The API's login for that account is refused as well: one account, one limit.
    assert_error(login(APIClient(), "root@example.com"), THROTTLED)


def test_a_good_admin_login_opens_a_session_and_is_audited(user_factory):
    staff = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    browser = Client(HTTP_USER_AGENT="StaffBrowser/3")

    response = admin_post_login(browser, "root@example.com", PASSWORD)

    assert response.status_code == 302
    assert browser.get("/admin/").status_code == 200
    session = staff.auth_sessions.get()
    assert (session.user_agent, session.amr) == ("StaffBrowser/3", ["pwd"])
    assert AuthEvent.objects.filter(type=AuthEvent.Type.LOGIN, user=staff, detail="admin site").exists()
    # Logging out ends it.
    browser.post("/admin/logout/")
    session.refresh_from_db()
    assert session.end_reason == "signed_out"


def test_a_get_of_the_logout_page_signs_nobody_out(user_factory):
    """<img src=".../admin/logout/"> on any page: Django refuses the GET (405), and the server
    session stays open too."""
    staff = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    browser = Client()
    session = admin_login(browser, staff)

    assert browser.get("/admin/logout/").status_code == 405

    session.refresh_from_db()
    assert session.is_open()
    assert browser.get("/admin/").status_code == 200


def test_a_logout_post_without_the_csrf_token_signs_nobody_out(user_factory):
    staff = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    browser = Client(enforce_csrf_checks=True)
    session = admin_login(browser, staff)

    assert browser.post("/admin/logout/").status_code == 403

    session.refresh_from_db()
    assert session.is_open()
    assert browser.get("/admin/").status_code == 200


# --- 9. Admin sessions end with every revocation ------------------------------------------------


@pytest.mark.parametrize("revocation", ["deactivation", "disabled", "password change", "recovery"])
def test_an_admin_browser_session_ends_with_every_revocation(user_factory, token_for, revocation):
    staff = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    browser = Client()
    admin_login(browser, staff)
    assert browser.get("/admin/").status_code == 200
    api = client_with(token_for(staff))

    if revocation == "deactivation":
        assert api.delete("/api/user").status_code == 200
    elif revocation == "disabled":
        User.objects.filter(pk=staff.pk).update(is_active=False)
    elif revocation == "password change":
        assert api.put("/api/authenticate", {"password": PASSWORD, "new_password": RESET_PASSWORD, "confirm": RESET_PASSWORD}, format="json").status_code == 200
    else:
        reset = validation_token_make(user=staff, purpose=Purpose.RECOVERY)
        assert APIClient().post("/api/validate/recovery", {"token": reset, "new_password": RESET_PASSWORD, "confirm": RESET_PASSWORD}, format="json").status_code == 200

    response = browser.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def api(token: str | None = None, **extra) -> APIClient:
    client = APIClient(**extra)
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=token)
    return client


def staff_browser(user) -> Client:
    browser = Client()
    admin_login(browser, user)
    return browser


# --- 2. The admin's own password change: no account limit, no session ends ---------------------


def test_admin_password_change_form_is_an_unlimited_password_oracle(user_factory, settings):
    """Attacker with a staff member's admin browser session (left open, stolen cookie) gains an
    unlimited oracle for that staff member's password. /admin/password_change/ (Django's own
    form) checks the old password with no LOGIN_ACCOUNT_RATE and writes no audit event, so the
    attacker can guess it offline-fast and reuse it at the API and elsewhere.
    """
    settings.LOGIN_ACCOUNT_RATE = "20/hour"
    staff = user_factory(email="staff@example.com", is_staff=True)
    browser = staff_browser(staff)
    for guess in range(21):
        browser.post(
            "/admin/password_change/",
            {"old_password": f"guess {guess}", "new_password1": RESET_PASSWORD, "new_password2": RESET_PASSWORD},
        )

    # 21 failed checks of this account: every further check is Throttled, from any endpoint.
    assert login(APIClient(), email="staff@example.com").status_code == 429


def test_admin_password_change_leaves_every_api_token_working(user_factory, token_for):
    """Attacker holding a stolen API token (or an open session) of a staff member gains
    persistence. When the staff member changes their password in /admin/password_change/
    (Django's view, not accounts.services), no session ends, so the thief's token keeps working.
    EXTENSIONS: "Password change ends every session of the user".
    """
    staff = user_factory(email="staff@example.com", is_staff=True)
    stolen = token_for(staff)
    browser = staff_browser(staff)

    response = browser.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": RESET_PASSWORD, "new_password2": RESET_PASSWORD},
    )
    assert response.status_code == 302  # changed

    assert api(stolen).get("/api/user").status_code == 401


# --- 3. Privilege escalation through the Group admin -------------------------------------------


def test_staff_who_may_change_groups_grant_themselves_every_permission(user_factory):
    """Attacker who is staff with only "change group" (a helpdesk lead, say) gains every model
    permission: delete users, rotate and retire signing keys, create resource servers, read the
    audit trail... UserAdmin keeps privileges (groups, permissions) superuser-only, but Django's
    stock GroupAdmin lets them edit the permissions of the group they are in.
    """
    staff = user_factory(email="helpdesk@example.com", is_staff=True)
    group = Group.objects.create(name="helpdesk")
    group.permissions.set(Permission.objects.filter(codename__in=["view_group", "change_group"]))
    staff.groups.add(group)
    browser = staff_browser(staff)

    browser.post(
        f"/admin/auth/group/{group.pk}/change/",
        {"name": "helpdesk", "permissions": list(Permission.objects.values_list("pk", flat=True))},
    )

    staff = User.objects.get(pk=staff.pk)  # fresh permission cache
    assert not staff.has_perm("accounts.delete_user")
    assert not staff.has_perm("accounts.change_signingkey")


# --- 7. Staff with "delete session" sign out superusers ----------------------------------------


def test_staff_who_may_delete_sessions_sign_a_superuser_out(user_factory, token_for):
    """Attacker who is staff with "delete session" gains the power to sign out superusers and
    other staff (again and again, e.g. to hide what they do while an admin is locked out, or as a
    nuisance). The revoke action checks staff_action_allowed, but Django's delete view and the
    bulk "delete selected" do not: SessionAdmin keeps the default has_delete_permission.
    (QueuedEmailAdmin likewise lets "delete queued email" drop security notices of any user.)
    """
    root = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    root_token = token_for(root)
    staff = user_factory(email="staff@example.com", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__in=["view_session", "delete_session"]))
    session = Session.objects.get(public_id=claims(root_token)["sid"])

    staff_browser(staff).post(f"/admin/accounts/session/{session.pk}/delete/", {"post": "yes"})

    assert api(root_token).get("/api/user").status_code == 200
