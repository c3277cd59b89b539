"""Shared fixtures and helpers: users in each account state, API clients, token helpers, an email
backend that fails, and copies of the project for tests that run it in a fresh process."""

import os
import shutil
import smtplib
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jwt
import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tokens import auth as tokens
from accounts.models import User
from accounts.tokens.auth import auth_token_issue

PASSWORD = "correct horse battery"
PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    """Hash with MD5 in tests; tests where hashing is the point override this."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_shared_cache():
    """Start every test with an empty Redis cache (CACHE_URL), so no earlier test's rate-limit hits count.

    Redis outlives each test; the default database cache lives in the test database and is rolled
    back with each test, and clearing it would need database access that many tests do not have.
    """
    if django_settings.CACHE_URL:
        cache.clear()


@pytest.fixture
def user_factory(db):
    """Return a function creating a user; confirmed and active unless told otherwise."""
    counter = iter(range(1, 1_000_000))

    def make(
        *,
        email: str | None = None,
        name: str = "Ann Example",
        password: str = PASSWORD,
        confirmed: bool = True,
        deactivated: bool = False,
        disabled: bool = False,
        **fields,
    ) -> User:
        now = timezone.now()
        return User.objects.create_user(
            email=email or f"user{next(counter)}@example.com",
            password=password,
            name=name,
            confirmed_at=now if confirmed else None,
            deactivated_at=now if deactivated else None,
            is_active=not disabled,
            **fields,
        )

    return make


@pytest.fixture
def user(user_factory) -> User:
    return user_factory(email="ann@example.com")


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def token_for():
    """Return a function that issues an auth token as a login would."""

    def issue(user: User, *, remember: bool = False) -> str:
        return auth_token_issue(user=user, remember=remember)

    return issue


def mint_at(user: User, when, *, remember: bool = False) -> str:
    """Return an auth token issued at `when`, as if the clock had said so."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tokens, "_now", lambda: when)
        return auth_token_issue(user=user, remember=remember)


def claims(token: str) -> dict:
    """Return the payload of an auth token, checking its HS256 signature but not its times."""
    key = django_settings.SIMPLE_JWT["SIGNING_KEY"]
    return jwt.decode(token, key, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False})


@pytest.fixture
def auth_client(user, token_for) -> APIClient:
    """An API client that sends the raw token of `user` (as the old clients do)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=token_for(user))
    client.user = user
    return client


class FailingEmailBackend(BaseEmailBackend):
    """An email backend whose SMTP server refuses every message."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPException("550 relay refused")


@pytest.fixture
def failing_mail(settings):
    """Make every email the server sends fail, as a mail server refusing it would."""
    settings.EMAIL_BACKEND = "tests.conftest.FailingEmailBackend"


# --- The project in a fresh process -----------------------------------------------------------

# Every variable the server reads, plus those that steer Django or Python itself.
CONFIG_VARIABLES = {
    "DJANGO_SETTINGS_MODULE",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "CONN_MAX_AGE",
    "CACHE_URL",
    "LOG_LEVEL",
    "CLIENT_ORIGIN",
    "CONFIRMATION_URL",
    "RECOVER_URL",
    "MAIL_SENDER",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_USERNAME",
    "EMAIL_PASSWORD",
    "EMAIL_TIMEOUT",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "TOKEN_LIFETIME",
    "TOKEN_REFRESH_LIFETIME",
    "TOKEN_REMEMBER_LIFETIME",
    "CONFIRMATION_MAX_AGE",
    "RECOVERY_MAX_AGE",
    "LOGIN_RATE",
    "SIGNUP_RATE",
    "EMAIL_RATE",
    "FLASK_PASSWORD_SALT",
    "PYTHONPATH",
    "PYTHONSTARTUP",
}


def clean_env(**variables: str) -> dict[str, str]:
    """Return the current environment without any configuration, plus `variables`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in CONFIG_VARIABLES and not name.startswith(("EMAIL_", "TOKEN_", "DJANGO_"))
    }
    env.update(variables)
    return env


def run(cwd: Path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    """Run this Python with `args` in `cwd`, with a clean environment plus `variables`."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=clean_env(**variables),
        capture_output=True,
        text=True,
        timeout=120,  # a safety net only
    )


def copy_project(destination: Path) -> Path:
    """Copy the project to `destination`, without .git, databases, caches or a developer's `.env`."""
    shutil.copytree(
        PROJECT,
        destination,
        ignore=shutil.ignore_patterns(
            ".git", ".env", "db.sqlite3*", "__pycache__", ".pytest_cache", "venv", ".venv", "staticfiles"
        ),
    )
    (destination / "staticfiles").mkdir()
    return destination


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    """A copy of the project, shared by the tests that write nothing into it.

    Subprocesses run there so that a `.env` in the working tree neither changes what they read
    nor is ever written by a test.
    """
    return copy_project(tmp_path_factory.mktemp("project") / "project")


def wait_for_server(process: subprocess.Popen, base: str, log: Path, timeout: float = 60) -> None:
    """Wait until a server started as `process` answers GET /status with 200, or fail the test
    with the end of its log (`timeout` is a safety net, not a measure)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/status", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
