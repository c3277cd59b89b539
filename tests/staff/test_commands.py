"""Management commands: `generate_validation_token` and Django's `createsuperuser` for this user.

The tokens the command prints are checked the only way that matters, through the API: a
confirmation token confirms, a recovery token resets the password and does not confirm. An
unknown email is a CommandError in-process and exit status 1 with a message on stderr when
run as `manage.py` in a fresh process.
"""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.users.models import User
from tests.conftest import PASSWORD, PROJECT
from tests.support.api import NEW_PASSWORD, assert_password_reset
from tests.support.contract import AUTHENTICATE_PATH, CONFIRMATION_PATH, INVALID_TOKEN, RECOVERY_PATH

PYTHON = "/work/venv/bin/python" if Path("/work/venv/bin/python").exists() else sys.executable


def generate(*args: str) -> str:
    """Run generate_validation_token and return what it printed, without the line end."""
    out = StringIO()
    call_command("generate_validation_token", *args, stdout=out)
    printed = out.getvalue()
    assert printed.endswith("\n")
    assert printed.count("\n") == 1  # the token alone, so that shell scripts can capture it
    return printed.strip()


@pytest.fixture
def unconfirmed(user_factory) -> User:
    return user_factory(email="una@example.com", name="Una", confirmed=False)


# --- generate_validation_token ---------------------------------------------------------------


@pytest.mark.parametrize("email", ["una@example.com", "UNA@Example.COM", "  una@example.com  "])
def test_generate_prints_a_confirmation_token_that_confirms(api_client, unconfirmed, email):
    token = generate(email)

    response = api_client.post(CONFIRMATION_PATH, {"token": token}, format="json")

    assert response.status_code == 200
    assert response.json() == {"message": "Account confirmed"}
    unconfirmed.refresh_from_db()
    assert unconfirmed.confirmed_at is not None


def test_generate_with_purpose_confirmation_is_the_default(api_client, unconfirmed):
    token = generate("una@example.com", "--purpose", "confirmation")

    assert api_client.post(CONFIRMATION_PATH, {"token": token}, format="json").status_code == 200


def test_generate_recovery_token_resets_the_password(api_client, user):
    token = generate("ann@example.com", "--purpose", "recovery")

    assert_password_reset(api_client, user, token)


def test_generate_recovery_token_does_not_confirm(api_client, unconfirmed):
    token = generate("una@example.com", "--purpose", "recovery")

    response = api_client.post(CONFIRMATION_PATH, {"token": token}, format="json")

    assert response.status_code == 400
    assert response.json() == INVALID_TOKEN
    unconfirmed.refresh_from_db()
    assert unconfirmed.confirmed_at is None


def test_generate_confirmation_token_does_not_reset_the_password(api_client, user):
    token = generate("ann@example.com")

    response = api_client.post(
        RECOVERY_PATH, {"token": token, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == INVALID_TOKEN
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_generate_for_an_unknown_email_is_a_command_error(user):
    out = StringIO()

    with pytest.raises(CommandError, match="nobody@example.com"):
        call_command("generate_validation_token", "nobody@example.com", stdout=out)

    assert out.getvalue() == ""


def test_generate_with_an_unknown_purpose_is_a_command_error(user):
    with pytest.raises(CommandError, match="purpose"):
        call_command("generate_validation_token", "ann@example.com", "--purpose", "login", stdout=StringIO())


def _manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_generate_for_an_unknown_email_exits_1_with_a_message_on_stderr(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "CACHE_URL", "SECRET_KEY", "EMAIL_HOST"}
    }
    env.update(DEBUG="true", DATABASE_URL=f"sqlite:///{tmp_path / 'throwaway.sqlite3'}")
    migrated = _manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stderr

    result = _manage("generate_validation_token", "nobody@example.com", env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "CommandError: No user with email 'nobody@example.com'."


# --- createsuperuser -------------------------------------------------------------------------


def test_createsuperuser_noinput_from_the_environment(api_client, db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_NAME", "Rita Root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "operator phrase 31")

    call_command("createsuperuser", interactive=False, stdout=StringIO(), stderr=StringIO())

    admin = User.objects.get()
    assert (admin.email, admin.name) == ("root@example.com", "Rita Root")
    assert admin.is_superuser and admin.is_staff and admin.is_active
    assert admin.check_password("operator phrase 31")
    assert admin.confirmed_at is not None
    login = api_client.post(
        AUTHENTICATE_PATH, {"email": "root@example.com", "password": "operator phrase 31"}, format="json"
    )
    assert login.status_code == 200


def test_createsuperuser_refuses_an_email_taken_in_another_case(user, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "ANN@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_NAME", "")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "operator phrase 31")

    with pytest.raises(CommandError, match="already taken"):
        call_command("createsuperuser", interactive=False, stdout=StringIO(), stderr=StringIO())

    assert User.objects.count() == 1
    assert not User.objects.get().is_superuser
