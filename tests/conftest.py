"""Shared fixtures and helpers: users in each account state, API clients, token helpers, an email
backend that fails, a pinned clock for two-factor codes, and copies of the project for tests that
run it in a fresh process."""

import contextlib
import os
import secrets
import shutil
import smtplib
import subprocess
import sys
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import pyotp
import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.mfa import totp
from accounts.users.models import User
from accounts.passwords.credentials import timing_hashes_forget
from accounts.sessions.services import session_open
from accounts.sessions.tokens import auth_token_issue, token_backend
from accounts.keys.keyring import keyring
from accounts.webhooks.events import subscriptions

from tests.support.api import PASSWORD  # noqa: E402 (one definition, re-exported here)
PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    """Hash with MD5 in tests; tests where hashing is the point override this."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Forget what this process remembers of the database between tests (each test's database
    is rolled back): the signing keys, the tokens already verified, the hashes used for timing."""
    keyring.forget()
    token_backend().forget()
    timing_hashes_forget(everywhere=False)
    subscriptions.forget()
    yield
    keyring.forget()
    token_backend().forget()


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
            email_verified_at=now if confirmed else None,
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


def sign_in(user: User, *, remember: bool = False, amr=("pwd",), when=None, user_agent: str = "pytest", ip: str = "127.0.0.1"):
    """Open a session for the user as a login would, at `when` (default now); return it."""
    return session_open(
        user=user, remember=remember, amr=list(amr), user_agent=user_agent, client_address=ip, now=when
    )


@pytest.fixture
def token_for():
    """Return a function that signs the user in (a new session) and returns its auth token."""

    def issue(user: User, *, remember: bool = False) -> str:
        session = sign_in(user, remember=remember)
        return auth_token_issue(session=session, user=user, now=session.created_at)

    return issue


def mint_at(user: User, when, *, remember: bool = False) -> str:
    """Return an auth token of a session opened at `when`, as if the clock had said so."""
    session = sign_in(user, remember=remember, when=when)
    return auth_token_issue(session=session, user=user, now=when)


def session_of(token: str):
    """Return the session of an auth token."""
    from accounts.sessions.models import Session

    return Session.objects.get(public_id=claims(token)["sid"])


def claims(token: str) -> dict:
    """Return the payload of an auth token, verified with the published keys (PyJWT, as a
    resource server would) but not its times."""
    keys = {key["kid"]: key for key in keyring.keyset().jwks}
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWK(keys[header["kid"]])
    return jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        audience=django_settings.TOKEN_AUDIENCE,
        options={"verify_exp": False, "verify_iat": False},
    )


# --- Two-factor sign-in: the user's authenticator app, at a pinned clock -------------------------

# 10 s into a time step (12:00:00 UTC starts one).
TOTP_START = datetime(2026, 12, 1, 12, 0, 10, tzinfo=dt_timezone.utc)


class TOTPClock:
    """The clock of accounts.mfa.totp, moved by the test in whole time steps."""

    def __init__(self):
        self.now = TOTP_START

    def tick(self, steps: int = 1) -> None:
        self.now += timedelta(seconds=totp.INTERVAL * steps)


@pytest.fixture
def totp_clock(monkeypatch) -> TOTPClock:
    """Pin the clock of accounts.mfa.totp to TOTP_START; the test moves it with `tick()`."""
    pinned = TOTPClock()
    monkeypatch.setattr(totp, "_now", lambda: pinned.now)
    return pinned


def totp_code(secret: str, when: datetime, steps: int = 0) -> str:
    """Return the code an authenticator app shows at `when`, `steps` steps later (pyotp)."""
    return pyotp.TOTP(secret).at(when + timedelta(seconds=totp.INTERVAL * steps))


# The management forms of the read-only inlines (open sessions, passkeys), which every post of the
# admin's change form for a user carries (a browser sends them from the page).
SESSIONS_INLINE = {
    **{
        f"{prefix}-{field}": value
        for prefix in ("auth_sessions", "passkeys")
        for field, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"), ("MIN_NUM_FORMS", "0"), ("MAX_NUM_FORMS", "1000"))
    }
}


def admin_login(client, user: User):
    """Log `client` into the admin site as `user`, as the admin's login form would: a Django session
    and the server session it opens (accounts.staff.site). Return the server session."""
    from accounts.staff.site import SESSION_ID_KEY

    client.force_login(user)
    session = sign_in(user, user_agent="admin test client")
    django_session = client.session
    django_session[SESSION_ID_KEY] = session.public_id
    django_session.save()
    return session


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
    "LOG_FORMAT",
    "METRICS_TOKEN",
    "PROMETHEUS_MULTIPROC_DIR",
    "CLIENT_ORIGIN",
    "CONFIRMATION_URL",
    "RECOVER_URL",
    "MAIL_SENDER",
    "EMAIL_BACKEND",
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
    "TRUSTED_PROXIES",
    "SECURE_HSTS_PRELOAD",
    "FLASK_PASSWORD_SALT",
    "SECRET_KEY_FALLBACKS",
    "LOGIN_ACCOUNT_RATE",
    "LOGIN_ADDRESS_RATE",
    "EMAIL_REQUEST_RATE",
    "TOKEN_ISSUER",
    "TOKEN_AUDIENCE",
    "TOKEN_ALGORITHM",
    "JWKS_MAX_AGE",
    "MFA_ISSUER",
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


@contextlib.contextmanager
def postgresql_database_of_its_own(prefix: str):
    """Create a PostgreSQL database next to DATABASE_URL's (the same server and user), yield its
    URL, and drop it afterwards: for tests that run the server in processes of their own."""
    import psycopg
    from psycopg import sql

    base = os.environ["DATABASE_URL"]
    name = f"{prefix}_{secrets.token_hex(6)}"
    maintenance = urlsplit(base)._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlsplit(base)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(maintenance, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def module_database_url(request):
    """A fresh PostgreSQL database next to DATABASE_URL's for the test module (named after it),
    dropped after the module."""
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with postgresql_database_of_its_own(f"authserver_{module}") as url:
        yield url
