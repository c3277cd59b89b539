"""Operators' commands: `prune_auth_events`, `revoke_tokens`, and `createsuperuser` with an email
that then logs into the admin.

In-process through call_command; the exit status and stderr of a failure are checked by running
`manage.py` in a fresh process, in a copy of the project with its own SQLite file.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from accounts.audit import services as audit
from accounts.audit.models import AuthEvent
from accounts.users.models import User
from tests.conftest import PASSWORD, run
from tests.support.contract import AUTHENTICATE_PATH, TOKEN_INVALID, USER_PATH, assert_error

Type = AuthEvent.Type


def command(*args: str) -> str:
    """Run a command in-process and return what it printed."""
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def event_aged(days: float, *, email: str) -> AuthEvent:
    return AuthEvent.objects.create(type=Type.LOGIN, email=email, created_at=timezone.now() - timedelta(days=days))


# --- prune_auth_events -------------------------------------------------------------------------


@pytest.fixture
def aged_events(db) -> dict[str, AuthEvent]:
    return {
        "400 days": event_aged(400, email="old@example.com"),
        "31 days": event_aged(31, email="month@example.com"),
        "29 days": event_aged(29, email="recent@example.com"),
        "1 hour": event_aged(1 / 24, email="hour@example.com"),
        "now": event_aged(0, email="now@example.com"),
    }


def kept() -> set[str]:
    return set(AuthEvent.objects.values_list("email", flat=True))


def test_prune_deletes_only_events_older_than_the_days_and_prints_the_count(aged_events):
    printed = command("prune_auth_events", "--older-than", "30")

    assert kept() == {"recent@example.com", "hour@example.com", "now@example.com"}
    assert printed == "2 authentication event(s) older than 30 days deleted.\n"


def test_prune_with_nothing_to_delete_prints_zero(aged_events):
    printed = command("prune_auth_events", "--older-than", "1000")

    assert len(kept()) == 5
    assert printed.startswith("0 ")


def test_prune_zero_days_deletes_everything_up_to_now(aged_events):
    future = event_aged(-5 / 1440, email="later@example.com")  # five minutes ahead (a skewed clock)

    printed = command("prune_auth_events", "--older-than", "0", "--yes")

    assert kept() == {future.email}
    assert printed.startswith("5 ")


def test_prune_zero_days_without_yes_is_refused_and_deletes_nothing(aged_events):
    with pytest.raises(CommandError, match="deletes the whole audit trail. Add --yes"):
        command("prune_auth_events", "--older-than", "0")

    assert len(kept()) == 5


@pytest.mark.parametrize("days, count", [("30", 2), ("0", 5)])
def test_prune_dry_run_counts_and_deletes_nothing(aged_events, days, count):
    printed = command("prune_auth_events", "--older-than", days, "--dry-run")

    assert printed == f"{count} authentication event(s) older than {days} days would be deleted (dry run: none was).\n"
    assert len(kept()) == 5


def test_prune_keeps_an_event_just_inside_the_window(db):
    event_aged(30 - 1 / 1440, email="inside@example.com")  # a minute younger than 30 days
    event_aged(30 + 1 / 1440, email="outside@example.com")

    command("prune_auth_events", "--older-than", "30")

    assert kept() == {"inside@example.com"}


def test_prune_keeps_the_rest_of_the_data(user):
    audit.record(Type.LOGIN, user=user)
    AuthEvent.objects.update(created_at=timezone.now() - timedelta(days=90))

    command("prune_auth_events", "--older-than", "30")

    assert AuthEvent.objects.count() == 0
    assert User.objects.filter(pk=user.pk).exists()


@pytest.mark.parametrize("days", ["-1", "-30"])
def test_prune_with_negative_days_is_a_command_error(aged_events, days):
    with pytest.raises(CommandError, match="older-than"):
        command("prune_auth_events", "--older-than", days)

    assert len(kept()) == 5


@pytest.mark.parametrize("args", [[], ["--older-than"], ["--older-than", "ten"], ["--older-than", "1.5"]])
def test_prune_without_a_whole_number_of_days_is_a_command_error(aged_events, args):
    with pytest.raises(CommandError):
        command("prune_auth_events", *args)

    assert len(kept()) == 5


# --- revoke_tokens -----------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["ann@example.com", "ANN@Example.COM", "  ann@example.com "])
def test_revoke_tokens_signs_the_user_out_everywhere(api_client, user, token_for, email):
    tokens = [token_for(user), token_for(user, remember=True)]
    for token in tokens:
        assert api_client.get(USER_PATH, HTTP_AUTHORIZATION=token).status_code == 200

    printed = command("revoke_tokens", email)

    assert printed == "Every session of ann@example.com is ended: its tokens are revoked.\n"
    for token in tokens:
        assert_error(api_client.get(USER_PATH, HTTP_AUTHORIZATION=token), TOKEN_INVALID)
        assert_error(api_client.get(AUTHENTICATE_PATH, HTTP_AUTHORIZATION=token), TOKEN_INVALID)
    # Not a ban: the user logs in again and the new token works.
    login = api_client.post(AUTHENTICATE_PATH, {"email": "ann@example.com", "password": PASSWORD}, format="json")
    assert login.status_code == 200
    assert api_client.get(USER_PATH, HTTP_AUTHORIZATION=login.json()["token"]).status_code == 200


def test_revoke_tokens_leaves_other_users_alone(api_client, user, user_factory, token_for):
    other = user_factory(email="bob@example.com")
    token = token_for(other)

    command("revoke_tokens", "ann@example.com")

    assert api_client.get(USER_PATH, HTTP_AUTHORIZATION=token).status_code == 200


def test_revoke_tokens_records_a_staff_action(user):
    command("revoke_tokens", "ann@example.com")

    (event,) = AuthEvent.objects.all()
    assert (event.type, event.user, event.email, event.client_address) == (
        Type.STAFF_ACTION,
        user,
        "ann@example.com",
        None,
    )


def test_revoke_tokens_for_an_unknown_email_is_a_command_error(user):
    out = StringIO()

    with pytest.raises(CommandError, match="nobody@example.com"):
        call_command("revoke_tokens", "nobody@example.com", stdout=out)

    assert out.getvalue() == ""
    assert AuthEvent.objects.count() == 0


def test_revoke_tokens_needs_an_email(db):
    with pytest.raises(CommandError):
        command("revoke_tokens")


# --- In a fresh process: exit status 1 and the message on stderr --------------------------------


@pytest.fixture(scope="module")
def migrated(project, tmp_path_factory) -> dict[str, str]:
    """Migrate a throwaway SQLite database for manage.py in the project copy; return its variables."""
    database = tmp_path_factory.mktemp("operators") / "db.sqlite3"
    variables = {"DEBUG": "true", "DATABASE_URL": f"sqlite:///{database}"}
    result = run(project, "manage.py", "migrate", "--noinput", "--verbosity", "0", **variables)
    assert result.returncode == 0, result.stderr
    return variables


def test_revoke_tokens_for_an_unknown_email_exits_1(project, migrated):
    result = run(project, "manage.py", "revoke_tokens", "nobody@example.com", **migrated)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "CommandError: No user with email 'nobody@example.com'."


def test_prune_with_negative_days_exits_1(project, migrated):
    result = run(project, "manage.py", "prune_auth_events", "--older-than", "-1", **migrated)

    assert result.returncode == 1
    assert result.stdout == ""
    assert "--older-than" in result.stderr and "CommandError" in result.stderr


def test_commands_work_from_manage_py(project, migrated):
    created = run(
        project,
        "manage.py",
        "createsuperuser",
        "--noinput",
        DJANGO_SUPERUSER_EMAIL="op@example.com",
        DJANGO_SUPERUSER_NAME="Olga Operator",
        DJANGO_SUPERUSER_PASSWORD="operator phrase 31",
        **migrated,
    )
    assert created.returncode == 0, created.stderr

    revoked = run(project, "manage.py", "revoke_tokens", "OP@example.com", **migrated)
    pruned = run(project, "manage.py", "prune_auth_events", "--older-than", "0", "--yes", **migrated)

    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout == "Every session of op@example.com is ended: its tokens are revoked.\n"
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.endswith("authentication event(s) older than 0 days deleted.\n")


def test_help_documents_the_arguments(project):
    prune = run(project, "manage.py", "help", "prune_auth_events", DEBUG="true")
    revoke = run(project, "manage.py", "help", "revoke_tokens", DEBUG="true")

    assert prune.returncode == 0 and "--older-than DAYS" in prune.stdout
    assert revoke.returncode == 0 and "email" in revoke.stdout.lower()


# --- createsuperuser with an email, then the admin ---------------------------------------------


def test_createsuperuser_email_logs_into_the_admin(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "Root@Example.COM")
    monkeypatch.setenv("DJANGO_SUPERUSER_NAME", "")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "operator phrase 31")
    call_command("createsuperuser", interactive=False, stdout=StringIO(), stderr=StringIO())
    client = Client()

    response = client.post("/admin/login/", {"username": "root@example.com", "password": "operator phrase 31"})

    assert response.status_code == 302
    assert client.get("/admin/accounts/user/").status_code == 200
    admin = User.objects.get()
    assert (admin.email, admin.state) == ("Root@example.com", "active")


def test_createsuperuser_interactive_asks_for_the_email_and_the_name(db, monkeypatch):
    from django.contrib.auth.management.commands import createsuperuser

    answers = {"Email address: ": "root@example.com", "Name: ": "Rita Root"}
    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt="": asked.append(prompt) or answers[prompt])
    monkeypatch.setattr(createsuperuser.getpass, "getpass", lambda prompt="": "operator phrase 31")
    out = StringIO()

    call_command("createsuperuser", interactive=True, stdout=out, stderr=StringIO(), stdin=_Tty())

    assert asked == ["Email address: ", "Name: "]
    admin = User.objects.get()
    assert (admin.email, admin.name, admin.is_superuser, admin.is_staff) == ("root@example.com", "Rita Root", True, True)
    assert admin.check_password("operator phrase 31")


def test_createsuperuser_noinput_needs_the_name_given(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@example.com")
    monkeypatch.delenv("DJANGO_SUPERUSER_NAME", raising=False)
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "operator phrase 31")

    with pytest.raises(CommandError, match="You must use --name with --noinput."):
        call_command("createsuperuser", interactive=False, stdout=StringIO(), stderr=StringIO())

    assert not User.objects.exists()


class _Tty(StringIO):
    """A stdin that says it is a terminal, so createsuperuser prompts."""

    def isatty(self):
        return True
