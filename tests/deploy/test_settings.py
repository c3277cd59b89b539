"""Configuration from the environment (and `.env`), checked in fresh Python processes.

Settings are read once, at import, so each case runs in a subprocess with a clean environment:
production rules when DEBUG is unset (a missing or weak SECRET_KEY, or console email not asked
for by name, stops the start with a clear message, also under WSGI), the development default of
manage.py, `.env` reading (environment wins), and the mapping of the contract's variables to
Django settings with their defaults.

The subprocesses run in a copy of the project (without .git, databases or a developer's `.env`),
so that a `.env` in the working tree neither changes the results nor is ever written by a test.
"""

import json
from pathlib import Path

import pytest

from tests.conftest import copy_project, run

# Print the named settings as JSON, after setting Django up as a WSGI server would (no manage.py).
PRINT_SETTINGS = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")
import django
django.setup()
from django.conf import settings
print(json.dumps({name: getattr(settings, name, "<unset>") for name in sys.argv[1:]}, default=str))
"""

SETUP_ONLY = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='authserver.settings'; django.setup()"

# Keys that pass Django's strength rule (at least 50 characters, 5 distinct, no django-insecure-).
KEY = "test-production-key-Zq3Xv8Lm1Rt6Wp4Kn9Bc2Hd7Fs5Gy0Jx"
DOTENV_KEY = "test-dotenv-key-Pk5Wc9Hb3Jd6Fs0Gyq8Zr4Lm2Xv7Tn1Rt6Wp"
# What production needs besides: with no EMAIL_HOST, console email must be asked for by name.
PRODUCTION = {"SECRET_KEY": KEY, "EMAIL_BACKEND": "console"}


@pytest.fixture
def own_project(tmp_path) -> Path:
    """A copy of the project that this test may write a `.env` into."""
    return copy_project(tmp_path / "project")


def read_settings(cwd: Path, names: list[str], **variables: str) -> dict:
    result = run(cwd, "-c", PRINT_SETTINGS, *names, **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- Production rules, and the development default --------------------------------------------


def test_missing_secret_key_stops_the_start_when_debug_is_unset(project):
    result = run(project, "-c", SETUP_ONLY)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize("value", ["false", "False", "0", "no", "off"])
def test_missing_secret_key_stops_the_start_when_debug_is_false(project, value):
    result = run(project, "-c", SETUP_ONLY, DEBUG=value)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_empty_secret_key_counts_as_missing(project):
    result = run(project, "-c", SETUP_ONLY, SECRET_KEY="")

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_wsgi_without_secret_key_refuses_to_start(project):
    result = run(project, "-c", "import authserver.wsgi")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_wsgi_with_secret_key_and_debug_unset_runs_in_production_mode(project):
    script = (
        "import json, authserver.wsgi; from django.conf import settings; "
        "print(json.dumps({'DEBUG': settings.DEBUG, 'SECRET_KEY': settings.SECRET_KEY}))"
    )
    result = run(project, "-c", script, **PRODUCTION)

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {"DEBUG": False, "SECRET_KEY": KEY}


@pytest.mark.parametrize(
    "weak",
    [
        "a-production-secret-key-for-the-test",  # 36 characters
        "k" * 64,  # one distinct character
        "abcd" * 20,  # four distinct characters
        "django-insecure-" + "Zq3Xv8Lm1Rt6Wp4Kn9Bc2Hd7Fs5Gy0Jx" * 2,  # what startproject generates
    ],
)
def test_a_weak_secret_key_stops_the_start_in_production(project, weak):
    result = run(project, "-c", SETUP_ONLY, DEBUG="false", SECRET_KEY=weak)

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is too weak" in result.stderr
    # The message states the rule; the key itself never reaches the log.
    assert weak not in result.stderr


@pytest.mark.parametrize("entry", [["-c", "import authserver.wsgi"], ["manage.py", "check"]])
def test_a_weak_secret_key_stops_gunicorn_and_manage_py(project, entry):
    """Under a WSGI server DEBUG is off when unset; manage.py obeys an explicit DEBUG=false."""
    result = run(project, *entry, SECRET_KEY="change-me", **({"DEBUG": "false"} if entry[0] == "manage.py" else {}))

    assert result.returncode != 0
    assert "SECRET_KEY is too weak" in result.stderr


def test_a_weak_secret_key_is_accepted_for_development(project):
    values = read_settings(project, ["DEBUG", "SECRET_KEY"], DEBUG="true", SECRET_KEY="dev")

    assert values == {"DEBUG": True, "SECRET_KEY": "dev"}


def test_the_strength_rule_is_djangos(project):
    """The rule of check --deploy (security.W009): a key it accepts starts the server, one less does not."""
    just_enough = "abcde" * 10  # 50 characters, 5 distinct

    def start(key: str) -> int:
        return run(project, "-c", SETUP_ONLY, DEBUG="false", SECRET_KEY=key, EMAIL_BACKEND="console").returncode

    assert start(just_enough) == 0
    assert start(just_enough[:-1]) != 0
    assert start("abcd" * 13) != 0


@pytest.mark.parametrize("value", ["true", "True", "1", "yes", "on"])
def test_debug_true_needs_no_secret_key(project, value):
    values = read_settings(project, ["DEBUG", "SECRET_KEY"], DEBUG=value)

    assert values["DEBUG"] is True
    assert values["SECRET_KEY"]


def test_manage_py_check_works_with_nothing_set(project):
    result = run(project, "manage.py", "check")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_manage_py_defaults_to_development(project):
    script = (
        "import json; from django.conf import settings; "
        "print(json.dumps({'DEBUG': settings.DEBUG, 'ENGINE': settings.DATABASES['default']['ENGINE'], "
        "'EMAIL_BACKEND': settings.EMAIL_BACKEND}))"
    )
    result = run(project, "manage.py", "shell", "-c", script)

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {
        "DEBUG": True,
        "ENGINE": "django.db.backends.sqlite3",
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
    }


def test_manage_py_obeys_an_explicit_debug_false(project):
    result = run(project, "manage.py", "check", DEBUG="false")

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


# --- .env ----------------------------------------------------------------------------------------


def test_dotenv_is_read(own_project):
    (own_project / ".env").write_text(
        f"SECRET_KEY={DOTENV_KEY}\nEMAIL_BACKEND=console\nCLIENT_ORIGIN=https://dotenv.example\nTOKEN_LIFETIME=120\n"
    )

    values = read_settings(own_project, ["DEBUG", "SECRET_KEY", "CLIENT_ORIGIN", "TOKEN_LIFETIME"])

    assert values == {
        "DEBUG": False,
        "SECRET_KEY": DOTENV_KEY,
        "CLIENT_ORIGIN": "https://dotenv.example",
        "TOKEN_LIFETIME": 120,
    }


def test_the_development_example_copied_as_dotenv_runs_for_development(own_project):
    (own_project / ".env").write_text((own_project / ".env.development.example").read_text())

    # Read as a WSGI server would, without manage.py's development default.
    values = read_settings(own_project, ["DEBUG", "EMAIL_BACKEND", "DATABASES", "TOKEN_ISSUER"])
    checked = run(own_project, "manage.py", "check")

    assert values["DEBUG"] is True
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    assert values["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert values["TOKEN_ISSUER"] == "http://localhost:8000"
    assert checked.returncode == 0, checked.stderr


def test_the_production_example_copied_as_it_is_refuses_to_start_until_filled_in(own_project):
    (own_project / ".env").write_text((own_project / ".env.example").read_text())

    result = run(own_project, "manage.py", "check")

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_environment_wins_over_dotenv(own_project):
    (own_project / ".env").write_text(
        f"SECRET_KEY={DOTENV_KEY}\nEMAIL_BACKEND=console\nCLIENT_ORIGIN=https://dotenv.example\n"
    )

    values = read_settings(own_project, ["SECRET_KEY", "CLIENT_ORIGIN"], CLIENT_ORIGIN="https://env.example")

    assert values == {"SECRET_KEY": DOTENV_KEY, "CLIENT_ORIGIN": "https://env.example"}


def test_dotenv_debug_false_turns_off_the_development_default_of_manage_py(own_project):
    (own_project / ".env").write_text("DEBUG=false\n")

    result = run(own_project, "manage.py", "check")

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_dotenv_secret_key_lets_wsgi_start(own_project):
    (own_project / ".env").write_text(f"SECRET_KEY={DOTENV_KEY}\nEMAIL_BACKEND=console\n")

    result = run(own_project, "-c", "import authserver.wsgi")

    assert result.returncode == 0, result.stderr


# --- The contract's variables and their defaults -----------------------------------------------


def test_defaults(project):
    names = [
        "DEBUG",
        "ALLOWED_HOSTS",
        "EMAIL_BACKEND",
        "EMAIL_HOST_USER",
        "EMAIL_HOST_PASSWORD",
        "EMAIL_PORT",
        "EMAIL_TIMEOUT",
        "EMAIL_USE_TLS",
        "EMAIL_USE_SSL",
        "MAIL_SENDER",
        "DEFAULT_FROM_EMAIL",
        "CLIENT_ORIGIN",
        "CONFIRMATION_URL",
        "RECOVER_URL",
        "TOKEN_LIFETIME",
        "TOKEN_REFRESH_LIFETIME",
        "TOKEN_REMEMBER_LIFETIME",
        "CONFIRMATION_MAX_AGE",
        "RECOVERY_MAX_AGE",
    ]
    values = read_settings(project, names, **PRODUCTION)

    assert values["DEBUG"] is False
    assert values["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1"]
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    assert values["EMAIL_HOST_USER"] == ""
    assert values["EMAIL_HOST_PASSWORD"] == ""
    assert values["EMAIL_USE_TLS"] is True
    assert values["EMAIL_USE_SSL"] is False
    # STARTTLS by default, so the submission port.
    assert values["EMAIL_PORT"] == 587
    # A hanging SMTP server must not hang a request for ever.
    assert isinstance(values["EMAIL_TIMEOUT"], (int, float)) and values["EMAIL_TIMEOUT"] > 0
    assert values["MAIL_SENDER"]
    assert values["DEFAULT_FROM_EMAIL"] == values["MAIL_SENDER"]
    assert values["CLIENT_ORIGIN"].startswith(("http://", "https://"))
    assert values["CONFIRMATION_URL"].startswith("/")
    assert values["RECOVER_URL"].startswith("/")
    assert values["CONFIRMATION_URL"] != values["RECOVER_URL"]
    assert values["TOKEN_LIFETIME"] == 3600
    assert values["TOKEN_REFRESH_LIFETIME"] == 604800
    assert values["TOKEN_REMEMBER_LIFETIME"] == 2592000
    assert values["CONFIRMATION_MAX_AGE"] == 86400
    assert values["RECOVERY_MAX_AGE"] == 3600


def test_email_variables_are_mapped(project):
    expected = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": 2525,
        "EMAIL_HOST_USER": "mailer",
        "EMAIL_HOST_PASSWORD": "mail-secret",
        "EMAIL_TIMEOUT": 7,
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
        "MAIL_SENDER": "Example <no-reply@example.com>",
        "DEFAULT_FROM_EMAIL": "Example <no-reply@example.com>",
    }

    values = read_settings(
        project,
        list(expected),  # the settings to read: those expected
        SECRET_KEY=KEY,
        EMAIL_HOST="smtp.example.com",
        EMAIL_PORT="2525",
        EMAIL_USERNAME="mailer",
        EMAIL_PASSWORD="mail-secret",
        EMAIL_TIMEOUT="7",
        EMAIL_USE_TLS="false",
        MAIL_SENDER="Example <no-reply@example.com>",
    )

    assert values == expected


def test_email_host_alone_selects_smtp_with_starttls(project):
    values = read_settings(
        project,
        ["EMAIL_BACKEND", "EMAIL_USE_TLS", "EMAIL_USE_SSL"],
        SECRET_KEY=KEY,
        EMAIL_HOST="smtp.example.com",
    )

    assert values == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
    }


def test_email_use_ssl_alone_turns_starttls_off(project):
    """Implicit TLS and STARTTLS exclude each other (Django refuses both), so SSL alone means no STARTTLS."""
    values = read_settings(
        project,
        ["EMAIL_USE_TLS", "EMAIL_USE_SSL"],
        SECRET_KEY=KEY,
        EMAIL_HOST="smtp.example.com",
        EMAIL_USE_SSL="true",
    )

    assert values == {"EMAIL_USE_TLS": False, "EMAIL_USE_SSL": True}


def test_email_use_tls_and_ssl_both_true_is_refused_at_start(project):
    result = run(
        project,
        "-c",
        SETUP_ONLY,
        SECRET_KEY=KEY,
        EMAIL_HOST="smtp.example.com",
        EMAIL_USE_TLS="true",
        EMAIL_USE_SSL="true",
    )

    assert result.returncode != 0
    assert "EMAIL_USE_TLS" in result.stderr and "EMAIL_USE_SSL" in result.stderr


# --- EMAIL_BACKEND: console email in production only when asked for by name ---------------------


def test_production_without_email_host_refuses_console_email_by_default(project):
    """Console email in production prints recovery links to the log: whoever reads it owns the accounts."""
    result = run(project, "-c", SETUP_ONLY, SECRET_KEY=KEY)

    assert result.returncode != 0
    assert "ImproperlyConfigured: EMAIL_HOST is not set, and EMAIL_BACKEND is not console" in result.stderr


def test_production_with_explicit_console_email_starts(project):
    values = read_settings(project, ["DEBUG", "EMAIL_BACKEND"], SECRET_KEY=KEY, EMAIL_BACKEND="console")

    assert values == {"DEBUG": False, "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}


@pytest.mark.parametrize("debug", ["true", "false"])
def test_smtp_without_email_host_is_refused(project, debug):
    result = run(project, "-c", SETUP_ONLY, SECRET_KEY=KEY, DEBUG=debug, EMAIL_BACKEND="smtp")

    assert result.returncode != 0
    assert "EMAIL_BACKEND" in result.stderr and "EMAIL_HOST" in result.stderr


@pytest.mark.parametrize("value", ["sendmail", "django.core.mail.backends.locmem.EmailBackend", "smtp,console"])
@pytest.mark.parametrize("debug", ["true", "false"])
def test_an_unknown_email_backend_is_refused(project, value, debug):
    result = run(project, "-c", SETUP_ONLY, SECRET_KEY=KEY, DEBUG=debug, EMAIL_HOST="smtp.example.com", EMAIL_BACKEND=value)

    assert result.returncode != 0
    assert "ImproperlyConfigured: EMAIL_BACKEND=" in result.stderr
    assert "use smtp or console" in result.stderr


@pytest.mark.parametrize(
    "variables, expected",
    [
        ({"EMAIL_HOST": "smtp.example.com"}, "smtp"),
        ({"EMAIL_HOST": "smtp.example.com", "EMAIL_BACKEND": "smtp"}, "smtp"),
        ({"EMAIL_HOST": "smtp.example.com", "EMAIL_BACKEND": "console"}, "console"),
        ({"EMAIL_HOST": "smtp.example.com", "EMAIL_BACKEND": "Console"}, "console"),
        ({"DEBUG": "true"}, "console"),
        ({"DEBUG": "true", "EMAIL_BACKEND": "console"}, "console"),
    ],
)
def test_email_backend_choice(project, variables, expected):
    values = read_settings(project, ["EMAIL_BACKEND"], SECRET_KEY=KEY, **variables)

    assert values["EMAIL_BACKEND"] == f"django.core.mail.backends.{expected}.EmailBackend"


def test_link_and_token_variables_are_mapped(project):
    expected = {
        "CLIENT_ORIGIN": "https://app.example",
        "CONFIRMATION_URL": "/account/confirm",
        "RECOVER_URL": "/account/recover",
        "TOKEN_LIFETIME": 600,
        "TOKEN_REFRESH_LIFETIME": 7200,
        "TOKEN_REMEMBER_LIFETIME": 86400,
        "CONFIRMATION_MAX_AGE": 172800,
        "RECOVERY_MAX_AGE": 900,
    }

    values = read_settings(
        project,
        list(expected),  # the settings to read: those expected
        **PRODUCTION,
        CLIENT_ORIGIN="https://app.example",
        CONFIRMATION_URL="/account/confirm",
        RECOVER_URL="/account/recover",
        TOKEN_LIFETIME="600",
        TOKEN_REFRESH_LIFETIME="7200",
        TOKEN_REMEMBER_LIFETIME="86400",
        CONFIRMATION_MAX_AGE="172800",
        RECOVERY_MAX_AGE="900",
    )

    assert values == expected


def test_the_pages_dir_templates_are_searched_first(project, tmp_path):
    (tmp_path / "templates").mkdir()
    values = read_settings(project, ["TEMPLATES"], **PRODUCTION, PAGES_DIR=str(tmp_path))
    unset = read_settings(project, ["TEMPLATES"], **PRODUCTION)

    assert [str(path) for path in values["TEMPLATES"][0]["DIRS"]] == [str(tmp_path / "templates")]
    assert unset["TEMPLATES"][0]["DIRS"] == []


def test_allowed_hosts_is_a_comma_list(project):
    values = read_settings(
        project, ["ALLOWED_HOSTS"], **PRODUCTION, ALLOWED_HOSTS="auth.example.com,api.example.com"
    )

    assert values["ALLOWED_HOSTS"] == ["auth.example.com", "api.example.com"]


def test_database_url_is_mapped(project):
    values = read_settings(
        project, ["DATABASES"], **PRODUCTION, DATABASE_URL="postgres://someone:pw@db.example:6543/authdb"
    )

    database = values["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("db.example", 6543, "authdb")
    assert (database["USER"], database["PASSWORD"]) == ("someone", "pw")


def test_without_database_url_the_database_is_sqlite_next_to_manage_py(project):
    values = read_settings(project, ["DATABASES"], **PRODUCTION)

    database = values["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert Path(database["NAME"]).parent == project


def test_cache_url_is_mapped_to_an_importable_redis_backend(project):
    script = PRINT_SETTINGS + (
        "from django.core.cache import caches\n"
        "backend = type(caches['default'])\n"
        "print(json.dumps({'class': backend.__module__ + '.' + backend.__name__}))\n"
    )
    result = run(
        project, "-c", script, "CACHES", "CACHE_URL", **PRODUCTION, CACHE_URL="redis://127.0.0.1:6379/3"
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    values, backend = json.loads(lines[-2]), json.loads(lines[-1])
    assert values["CACHE_URL"] == "redis://127.0.0.1:6379/3"
    assert "redis" in values["CACHES"]["default"]["BACKEND"].lower()
    assert "127.0.0.1:6379" in str(values["CACHES"]["default"]["LOCATION"])
    assert "redis" in backend["class"].lower()


def test_without_cache_url_the_cache_is_shared_between_processes(project):
    """The default cache must be one that every worker process of the machine sees."""
    values = read_settings(project, ["CACHES"], **PRODUCTION)

    backend = values["CACHES"]["default"]["BACKEND"]
    assert backend not in {
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    }


# Send a CORS preflight for a login from `origin` (argv[1]) and print the CORS headers of the answer.
PREFLIGHT = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")
import django
django.setup()
from django.test import Client
response = Client().options(
    "/api/authenticate",
    HTTP_HOST="localhost",
    HTTP_ORIGIN=sys.argv[1],
    HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
)
print(json.dumps({
    "allow_origin": response.headers.get("Access-Control-Allow-Origin"),
    "allow_headers": response.headers.get("Access-Control-Allow-Headers", ""),
}))
"""


def preflight(cwd: Path, origin: str, **variables: str) -> dict:
    result = run(cwd, "-c", PREFLIGHT, origin, **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_client_origin_is_the_cors_origin(project):
    """The contract: CLIENT_ORIGIN is also the CORS origin, so the frontend may call the API."""
    answer = preflight(project, "https://app.example", **PRODUCTION, CLIENT_ORIGIN="https://app.example")

    assert answer["allow_origin"] == "https://app.example"
    # The frontends send the token in the Authorization header.
    assert "authorization" in answer["allow_headers"].lower()


def test_other_origins_are_not_allowed_by_cors(project):
    answer = preflight(project, "https://evil.example", **PRODUCTION, CLIENT_ORIGIN="https://app.example")

    assert answer["allow_origin"] is None


def test_cors_allowed_origins_lets_several_frontends_in_and_the_links_keep_client_origin(project):
    variables = {
        **PRODUCTION,
        "CLIENT_ORIGIN": "https://app.example",
        "CORS_ALLOWED_ORIGINS": "https://app.example, https://admin.example/ ,http://localhost:5173",
    }

    for origin in ("https://app.example", "https://admin.example", "http://localhost:5173"):
        assert preflight(project, origin, **variables)["allow_origin"] == origin
    assert preflight(project, "https://evil.example", **variables)["allow_origin"] is None
    values = read_settings(project, ["CLIENT_ORIGIN", "CORS_ALLOWED_ORIGINS"], **variables)
    assert values == {
        "CLIENT_ORIGIN": "https://app.example",
        "CORS_ALLOWED_ORIGINS": ["https://app.example", "https://admin.example", "http://localhost:5173"],
    }


def test_cors_allowed_origins_defaults_to_client_origin(project):
    values = read_settings(project, ["CORS_ALLOWED_ORIGINS"], **PRODUCTION, CLIENT_ORIGIN="https://app.example/")

    assert values["CORS_ALLOWED_ORIGINS"] == ["https://app.example"]


@pytest.mark.parametrize(
    "variables, message",
    [
        (
            {"CLIENT_ORIGIN": "https://a.example,https://b.example"},
            "CLIENT_ORIGIN='https://a.example,https://b.example': one origin, the frontend the links in emails open. "
            "List every frontend that calls the API from a browser in CORS_ALLOWED_ORIGINS (a comma list).",
        ),
        (
            {"CORS_ALLOWED_ORIGINS": "https://a.example,app.example"},
            "CORS_ALLOWED_ORIGINS: 'app.example' is not an origin; give scheme://host[:port], "
            "e.g. https://app.example.com, without a path.",
        ),
        (
            {"CORS_ALLOWED_ORIGINS": "https://a.example/app"},
            "CORS_ALLOWED_ORIGINS: 'https://a.example/app' is not an origin",
        ),
    ],
)
def test_a_list_where_one_origin_goes_or_a_bad_origin_stops_the_start_with_the_reason(project, variables, message):
    result = run(project, "-c", SETUP_ONLY, **PRODUCTION, **variables)

    assert result.returncode != 0
    assert "ImproperlyConfigured: " + message in result.stderr


# --- HSTS ----------------------------------------------------------------------------------------

# Print the Strict-Transport-Security header of an HTTPS request.
HSTS_HEADER = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")
import django
django.setup()
from django.test import Client
print(Client(HTTP_HOST="localhost").get("/nope", secure=True).headers.get("Strict-Transport-Security"))
"""


def hsts_header(cwd: Path, **variables: str) -> str:
    result = run(cwd, "-c", HSTS_HEADER, **variables)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_hsts_preload_is_opt_in(project):
    assert hsts_header(project, **PRODUCTION, SECURE_HSTS_SECONDS="3600") == "max-age=3600; includeSubDomains"
    assert (
        hsts_header(project, **PRODUCTION, SECURE_HSTS_SECONDS="3600", SECURE_HSTS_PRELOAD="true")
        == "max-age=3600; includeSubDomains; preload"
    )


# --- TRUSTED_PROXIES -----------------------------------------------------------------------------


def test_without_trusted_proxies_x_forwarded_proto_is_never_read(project):
    values = read_settings(project, ["TRUSTED_PROXIES", "SECURE_PROXY_SSL_HEADER"], **PRODUCTION)

    assert values == {"TRUSTED_PROXIES": [], "SECURE_PROXY_SSL_HEADER": None}


def test_trusted_proxies_is_a_comma_list_of_addresses_and_networks(project):
    values = read_settings(
        project,
        ["TRUSTED_PROXIES", "SECURE_PROXY_SSL_HEADER"],
        **PRODUCTION,
        TRUSTED_PROXIES="10.0.0.1, 172.16.0.0/12,2001:db8::/32,",
    )

    assert values == {
        "TRUSTED_PROXIES": ["10.0.0.1", "172.16.0.0/12", "2001:db8::/32"],
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


@pytest.mark.parametrize("value", ["10.0.0.300", "10.0.0.1,proxy.internal", "10.0.0.0/33", "1", "0.0.0.0/0"])
@pytest.mark.parametrize("debug", ["true", "false"])
def test_an_invalid_trusted_proxy_stops_the_start(project, value, debug):
    result = run(project, "-c", SETUP_ONLY, **PRODUCTION, DEBUG=debug, TRUSTED_PROXIES=value)

    assert result.returncode != 0
    assert "ImproperlyConfigured: TRUSTED_PROXIES: " in result.stderr


# --- Logs and metrics ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variables, message",
    [
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml': use text or json"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD': use DEBUG, INFO"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN must be at least 16 characters"),
    ],
)
def test_bad_log_or_metrics_settings_are_refused_at_start(project, variables, message):
    result = run(project, "-c", SETUP_ONLY, SECRET_KEY=KEY, EMAIL_BACKEND="console", **variables)

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {message}" in result.stderr


def test_log_settings_are_read(project):
    values = read_settings(
        project, ["LOG_FORMAT", "LOG_LEVEL"], SECRET_KEY=KEY, EMAIL_BACKEND="console", LOG_FORMAT=" JSON ", LOG_LEVEL="warning"
    )

    assert values == {"LOG_FORMAT": "json", "LOG_LEVEL": "WARNING"}


# --- METRICS_TOKEN: a bearer token's characters only ---------------------------------------------


@pytest.mark.parametrize("token", ["metrics!token!with!bangs", "metrics token with spaces", "métrics-token-0123456789"])
def test_a_metrics_token_outside_the_bearer_characters_is_refused_at_start(tmp_path, token):
    project = copy_project(tmp_path / "project")

    result = run(project, "-c", SETUP_ONLY, SECRET_KEY=KEY, EMAIL_BACKEND="console", METRICS_TOKEN=token)

    assert result.returncode != 0
    assert "ImproperlyConfigured: METRICS_TOKEN may hold letters, digits and . _ ~ + / = - only" in result.stderr


# --- The hosted pages: PAGES_DIR and PAGES_LANGUAGES ---------------------------------------------


def test_the_pages_speak_english_and_german_by_default_from_the_apps_own_files(project):
    values = read_settings(project, ["LANGUAGES", "LOCALE_PATHS", "STATICFILES_DIRS", "TEMPLATES"], **PRODUCTION)

    assert values["LANGUAGES"] == [["en", "English"], ["de", "Deutsch"]]
    assert values["LOCALE_PATHS"] == [str(project / "accounts" / "locale")]
    assert values["STATICFILES_DIRS"] == []
    assert values["TEMPLATES"][0]["DIRS"] == []


def test_pages_dir_puts_the_operators_templates_static_files_and_translations_first(project, tmp_path):
    for name in ("templates", "static", "locale"):
        (tmp_path / "pages" / name).mkdir(parents=True)

    values = read_settings(
        project,
        ["LANGUAGES", "LOCALE_PATHS", "STATICFILES_DIRS", "TEMPLATES"],
        **PRODUCTION,
        PAGES_DIR=str(tmp_path / "pages"),
        PAGES_LANGUAGES="en,de,fr,pt-br",
    )

    assert values["LANGUAGES"] == [["en", "English"], ["de", "Deutsch"], ["fr", "français"], ["pt-br", "Português Brasileiro"]]
    assert values["LOCALE_PATHS"] == [str(tmp_path / "pages" / "locale"), str(project / "accounts" / "locale")]
    assert values["STATICFILES_DIRS"] == [str(tmp_path / "pages" / "static")]
    assert values["TEMPLATES"][0]["DIRS"] == [str(tmp_path / "pages" / "templates")]


def test_pages_dir_without_some_of_its_folders_adds_those_it_has(project, tmp_path):
    (tmp_path / "pages" / "templates").mkdir(parents=True)

    values = read_settings(project, ["LOCALE_PATHS", "STATICFILES_DIRS", "TEMPLATES"], **PRODUCTION, PAGES_DIR=str(tmp_path / "pages"))

    assert values["LOCALE_PATHS"] == [str(project / "accounts" / "locale")]
    assert values["STATICFILES_DIRS"] == []
    assert values["TEMPLATES"][0]["DIRS"] == [str(tmp_path / "pages" / "templates")]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"PAGES_DIR": "/nonexistent/pages"}, "PAGES_DIR=/nonexistent/pages: no such directory."),
        ({"PAGES_LANGUAGES": "en,klingon"}, "PAGES_LANGUAGES: klingon: give language codes Django knows"),
        ({"PAGES_LANGUAGES": ""}, "PAGES_LANGUAGES: empty: give language codes Django knows"),
    ],
    ids=["missing-dir", "unknown-language", "no-language"],
)
def test_bad_pages_settings_are_refused_at_start(project, variables, message):
    result = run(project, "-c", SETUP_ONLY, **PRODUCTION, **variables)

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {message}" in result.stderr
