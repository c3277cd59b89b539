"""One list of configuration variables, checked every way it is written down, and the deployment files.

`.env.example` is the list. The server (authserver/settings.py, and gunicorn.conf.py for PORT and
WEB_CONCURRENCY) reads exactly those variables: found in the source, and recorded while the
settings load in a fresh process. docs/configuration.md's table names the same ones.
docker-compose.yml gives the app what the settings need, on two nodes behind nginx
(deploy/nginx.conf); the Dockerfile, the Procfile and docker-compose.yml start the server the same way.
"""

import ast
import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.conftest import PROJECT, clean_env

SOURCES = [PROJECT / "authserver" / "settings.py", PROJECT / "gunicorn.conf.py"]


def documented() -> set[str]:
    """Return the variables of .env.example: `NAME=value` lines, also commented out (`# NAME=`)."""
    text = (PROJECT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))


def environment(**variables: str) -> dict[str, str]:
    """Return the current environment without any documented variable, plus `variables`."""
    configuration = documented()
    env = {name: value for name, value in clean_env().items() if name not in configuration}
    env.update(variables)
    return env


# --- What the source reads --------------------------------------------------------------------------


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def reads_in_source(path: Path) -> dict[str, int]:
    """Return {variable: line} for each environment read in `path`.

    The forms used: env.<type>("NAME", ...), env("NAME"), _rate("NAME", ...), _duration("NAME", ...),
    dj_database_url.config(...) (DATABASE_URL unless env= says otherwise), os.environ["NAME"],
    os.environ.get("NAME") and os.getenv("NAME").
    """
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        name = None
        if isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            first = _string(node.args[0]) if node.args else None
            if re.fullmatch(r"env(\.\w+)?|_rate|_duration|os\.environ\.get|os\.getenv", func):
                name = first
            elif func == "dj_database_url.config":
                keywords = {keyword.arg: _string(keyword.value) for keyword in node.keywords}
                name = keywords.get("env", "DATABASE_URL")
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            name = _string(node.slice)
        if name:
            found.setdefault(name, node.lineno)
    return found


def read_by_source() -> set[str]:
    return {name for path in SOURCES for name in reads_in_source(path)}


# Load the settings and gunicorn.conf.py with os.environ recording every name looked up.
RECORD_READS = """
import json, os, runpy, sys

class Recording(type(os.environ)):
    names = set()

    def __getitem__(self, key):
        Recording.names.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        Recording.names.add(key)
        return super().__contains__(key)

os.environ.__class__ = Recording
import dj_database_url, environ, django.core.exceptions, authserver.env  # their own reads do not count
Recording.names.clear()
import authserver.settings
settings_reads = sorted(Recording.names)
Recording.names.clear()
runpy.run_path("gunicorn.conf.py")
print(json.dumps({"settings": settings_reads, "gunicorn": sorted(Recording.names)}))
"""


@pytest.fixture(scope="module")
def recorded_reads(project) -> dict[str, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", RECORD_READS],
        cwd=project,
        env=environment(SECRET_KEY=secrets.token_urlsafe(50), EMAIL_HOST="smtp.example.com"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return {key: set(names) for key, names in json.loads(result.stdout.strip().splitlines()[-1]).items()}


def test_env_example_lists_every_variable_the_server_reads():
    undocumented = {
        f"{path.relative_to(PROJECT)}:{line} {name}"
        for path in SOURCES
        for name, line in reads_in_source(path).items()
        if name not in documented()
    }
    assert undocumented == set(), "read but missing from .env.example"


def test_the_server_reads_every_variable_of_env_example():
    assert documented() - read_by_source() == set(), "in .env.example but read nowhere"


def test_the_source_reading_misses_no_read(recorded_reads):
    """What the settings really look up at start is what the source shows: no read escapes the list."""
    assert recorded_reads["settings"] | recorded_reads["gunicorn"] == read_by_source()
    assert recorded_reads["gunicorn"] == {"PORT", "WEB_CONCURRENCY", "LOG_FORMAT", "PROMETHEUS_MULTIPROC_DIR"}


def readme_configuration_table() -> set[str]:
    """Return the variables of the table in docs/configuration.md."""
    section = (PROJECT / "docs" / "configuration.md").read_text()
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1])}


def test_readme_configuration_table_lists_the_same_variables():
    table = readme_configuration_table()
    assert documented() - table == set(), "in .env.example, missing from docs/configuration.md's table"
    assert table - documented() == set(), "in docs/configuration.md's table, missing from .env.example"


# --- docker-compose.yml -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT / "docker-compose.yml").read_text())


# The services that run the app: the migrations (the Procfile's release), then two nodes (its web).
APP_SERVICES = ("migrate", "app1", "app2")
NODES = ("app1", "app2")


def app_environment(compose) -> dict[str, str]:
    return {name: str(value) for name, value in compose["services"]["app1"]["environment"].items()}


def test_compose_runs_every_app_service_with_one_environment(compose):
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert {name: str(value) for name, value in service["environment"].items()} == app_environment(compose), name
        assert (service["build"], service["image"]) == (".", "authserver:staging"), name


# `${NAME}` and `${NAME:?message}` (required), the interpolation docker compose applies to the file.
# ${NAME}, ${NAME:?message} (required), ${NAME:-default}.
INTERPOLATION = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def interpolated(environment: dict[str, str], variables: dict[str, str]) -> dict[str, str]:
    """Return the app's environment as compose gives it, with `variables` as the `.env` file."""

    def fill(match: re.Match) -> str:
        name, kind, text = match.groups()
        if not variables.get(name) and kind == "?":
            raise LookupError(f"{name}: {text}")
        return variables.get(name) or (text if kind == "-" else "")

    return {name: INTERPOLATION.sub(fill, value) for name, value in environment.items()}


def test_compose_passes_only_documented_variables(compose):
    assert app_environment(compose).keys() - documented() == set()


def test_compose_gives_the_app_what_production_settings_need(compose):
    env = app_environment(compose)
    services = compose["services"]
    db = services["db"]["environment"]

    assert env["DEBUG"] == "false"
    # Taken from `.env`, and required: compose refuses to start the stack without it.
    assert INTERPOLATION.fullmatch(env["SECRET_KEY"]).groups()[0] == "SECRET_KEY"
    assert INTERPOLATION.fullmatch(env["SECRET_KEY"]).group(2) == "?" and ".env" in INTERPOLATION.fullmatch(env["SECRET_KEY"]).group(3)
    with pytest.raises(LookupError, match="SECRET_KEY"):
        interpolated(env, {})
    assert "localhost" in env["ALLOWED_HOSTS"].split(",")
    assert env["CLIENT_ORIGIN"] == "http://localhost:3000"
    database = urlsplit(env["DATABASE_URL"])
    assert database.scheme in {"postgres", "postgresql"}
    assert (database.hostname, database.port) == ("db", 5432)
    assert (database.username, database.password, database.path) == (
        db["POSTGRES_USER"], db["POSTGRES_PASSWORD"], "/" + db["POSTGRES_DB"]
    )
    cache = urlsplit(env["CACHE_URL"])
    assert (cache.scheme, cache.hostname) == ("redis", "cache")
    assert env["EMAIL_HOST"] == "mail" and env["EMAIL_PORT"] == "1025"
    assert "mailpit" in services["mail"]["image"]
    for name in NODES:
        assert services[name]["depends_on"]["db"] == {"condition": "service_healthy"}
        assert services[name]["depends_on"]["cache"] == {"condition": "service_healthy"}
        # Reached through nginx only (which publishes 127.0.0.1:8000).
        assert "ports" not in services[name]
    assert services["migrate"]["depends_on"]["db"] == {"condition": "service_healthy"}


def test_compose_publishes_ports_on_the_loopback_only(compose):
    """A staging stack (Mailpit shows every email, links included) must not be reachable from the network."""
    published = {name: service.get("ports", []) for name, service in compose["services"].items()}

    assert published["nginx"] == ["127.0.0.1:8000:80"] and published["mail"]
    assert not any(published[name] for name in APP_SERVICES)
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:") and str(port).count(":") == 2, (name, port)


def test_the_settings_load_with_the_compose_environment(compose, project):
    """The app's variables give the production settings: PostgreSQL, Redis, SMTP to the catcher."""
    script = (
        "import json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'authserver.settings'; import django; "
        "django.setup(); from django.conf import settings as s; print(json.dumps([s.DEBUG, "
        "s.DATABASES['default']['ENGINE'], s.CACHES['default']['BACKEND'], s.EMAIL_BACKEND, s.CORS_ALLOWED_ORIGINS, "
        "s.TRUSTED_PROXIES, s.CSRF_TRUSTED_ORIGINS]))"
    )
    app = interpolated(app_environment(compose), {"SECRET_KEY": secrets.token_urlsafe(50)})
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=project, env=environment(**app),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        False,
        "django.db.backends.postgresql",
        "django.core.cache.backends.redis.RedisCache",
        "django.core.mail.backends.smtp.EmailBackend",
        ["http://localhost:3000"],
        [nginx_address(compose)],
        ["http://localhost:8000", "http://127.0.0.1:8000"],
    ]


def test_compose_secrets_are_used_nowhere_else(compose):
    """The database password written in the file serves it only (SECRET_KEY is not written there)."""
    password = compose["services"]["db"]["environment"]["POSTGRES_PASSWORD"]
    skipped = {".git", ".venv", "venv", "staticfiles", "__pycache__", ".pytest_cache", ".hypothesis"}
    for path in PROJECT.rglob("*"):
        if path.is_file() and path.name != "docker-compose.yml" and not skipped & set(path.parts):
            text = path.read_text(errors="ignore")
            assert password not in text, f"{path.relative_to(PROJECT)} reuses a secret of docker-compose.yml"


def test_compose_migrates_then_starts_as_the_procfile_does(compose):
    """The release command once (two nodes migrating together would race), then both nodes."""
    procfile = procfile_commands()
    services = compose["services"]
    assert services["migrate"]["command"] == shlex.split(procfile["release"])
    assert services["migrate"]["restart"] == "no"
    for name in NODES:
        assert services[name]["command"] == shlex.split(procfile["web"])
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    for name in ("db", "cache"):
        assert services[name]["healthcheck"]["test"]


# --- nginx in front of the nodes (docker-compose.yml, deploy/nginx.conf) ------------------------------

NGINX_CONF = PROJECT / "deploy" / "nginx.conf"


def nginx_address(compose) -> str:
    return compose["services"]["nginx"]["networks"]["default"]["ipv4_address"]


def nginx_directives(text: str) -> list[str]:
    """Return the directives of an nginx configuration, comments removed, spaces collapsed."""
    text = re.sub(r"#[^\n]*", "", text)
    return [" ".join(part.split()) for part in re.split(r"[;{}]", text) if part.strip()]


def test_compose_puts_nginx_in_front_of_both_nodes(compose):
    nginx = compose["services"]["nginx"]
    assert nginx["image"].startswith("nginx:")
    assert nginx["volumes"] == ["./deploy/nginx.conf:/etc/nginx/nginx.conf:ro"]
    assert nginx["depends_on"] == {name: {"condition": "service_healthy"} for name in NODES}
    directives = nginx_directives(NGINX_CONF.read_text())
    # Round robin over both nodes on gunicorn's port, left out for a while after a failure
    # (passive checks), failing over to the other node.
    assert [d for d in directives if d.startswith("server ")] == [
        f"server {name}:8000 max_fails=1 fail_timeout=10s" for name in NODES
    ]
    assert "proxy_next_upstream error timeout" in directives
    # It listens on the port compose publishes.
    assert f"listen {nginx['ports'][0].rsplit(':', 1)[1]}" in directives
    assert {
        "proxy_pass http://authserver",
        "proxy_set_header Host $host",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for",
        "proxy_set_header X-Forwarded-Proto $scheme",
        "proxy_set_header X-Request-ID $request_id",
    } <= set(directives)


def test_compose_trusts_nginx_alone(compose):
    """TRUSTED_PROXIES is nginx's fixed address on the stack's network: one address, not the
    subnet (which holds Docker's gateway and every other container)."""
    (subnet,) = [entry["subnet"] for entry in compose["networks"]["default"]["ipam"]["config"]]
    address = nginx_address(compose)
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    assert app_environment(compose)["TRUSTED_PROXIES"] == address


@pytest.mark.skipif(
    not (shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")),
    reason="nginx is not installed (apt-get install nginx; .ci/run installs it)",
)
def test_nginx_accepts_the_committed_configuration(tmp_path):
    """`nginx -t` on deploy/nginx.conf, the nodes' names (resolved by Docker's DNS) replaced."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    config = tmp_path / "nginx.conf"
    text = NGINX_CONF.read_text()
    for port, name in enumerate(NODES, start=8001):
        text = text.replace(f"server {name}:8000", f"server 127.0.0.1:{port}")
    config.write_text(text)
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(config)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


# --- Dockerfile, Procfile, gunicorn.conf.py ---------------------------------------------------------


def procfile_commands() -> dict[str, str]:
    lines = (PROJECT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def dockerfile() -> list[tuple[str, str]]:
    """Return the Dockerfile's instructions as (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", (PROJECT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [tuple(line.split(None, 1)) for line in lines]


def test_procfile_releases_with_migrations_and_serves_with_gunicorn():
    commands = procfile_commands()
    assert commands.keys() == {"release", "web", "worker"}
    assert shlex.split(commands["release"])[:3] == ["python", "manage.py", "migrate"]
    assert shlex.split(commands["web"]) == ["gunicorn", "-c", "gunicorn.conf.py", "authserver.wsgi:application"]
    assert shlex.split(commands["worker"]) == ["python", "manage.py", "deliver_webhooks"]


def test_dockerfile_builds_in_stages_on_slim_python_of_python_version():
    instructions = dockerfile()
    version = (PROJECT / ".python-version").read_text().strip()
    args = dict(arg.split("=", 1) for kind, arg in instructions if kind == "ARG" and "=" in arg)
    image = args.get("PYTHON_IMAGE", "")
    stages = [arg.split()[0].replace("${PYTHON_IMAGE}", image) for kind, arg in instructions if kind == "FROM"]
    assert len(stages) >= 2
    assert all(stage.startswith(f"python:{version}-slim") for stage in stages), stages
    assert any(kind == "COPY" and arg.startswith("--from=") for kind, arg in instructions)


def test_dockerfile_installs_requirements_before_copying_the_code():
    instructions = dockerfile()
    position = {
        step: next(i for i, (kind, arg) in enumerate(instructions) if predicate(kind, arg))
        for step, predicate in {
            "copy requirements": lambda kind, arg: kind == "COPY" and arg.split()[0] == "requirements.txt",
            "install": lambda kind, arg: kind == "RUN" and "pip install" in arg,
            "copy code": lambda kind, arg: kind == "COPY" and arg.split()[0] == ".",
            "collectstatic": lambda kind, arg: kind == "RUN" and "collectstatic" in arg,
            "user": lambda kind, arg: kind == "USER",
        }.items()
    }
    assert position["copy requirements"] < position["install"] < position["copy code"] < position["collectstatic"]
    assert position["collectstatic"] < position["user"]


def test_dockerfile_installs_the_runtime_requirements_only():
    """The image keeps the lines of requirements.txt above "# Tests" (see its RUN sed)."""
    instructions = dockerfile()
    assert any(kind == "RUN" and "sed '/^# Tests/,$d' requirements.txt" in arg for kind, arg in instructions)
    runtime, tests = (PROJECT / "requirements.txt").read_text().split("\n# Tests", 1)

    def packages(text: str) -> set[str]:
        return {re.split(r"[=\[<>]", line)[0].lower() for line in text.splitlines() if line[:1].isalpha()}

    assert {"django", "gunicorn", "psycopg", "redis", "whitenoise", "drf-spectacular-sidecar"} <= packages(runtime)
    assert {"pytest", "schemathesis"} <= packages(tests)


def test_dockerfile_runs_gunicorn_as_a_user_with_a_healthcheck():
    instructions = dockerfile()
    users = [arg for kind, arg in instructions if kind == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert dict(instructions)["CMD"] == json.dumps(shlex.split(procfile_commands()["web"]))
    (healthcheck,) = [arg for kind, arg in instructions if kind == "HEALTHCHECK"]
    assert "/status" in healthcheck


def test_dockerignore_keeps_secrets_and_local_state_out():
    ignored = set((PROJECT / ".dockerignore").read_text().split())
    assert {".env", ".git", "db.sqlite3*"} <= ignored


GUNICORN_SETTINGS = ["bind", "workers", "accesslog", "graceful_timeout", "wsgi_app"]


def gunicorn_config(project: Path, **variables: str) -> dict:
    """Return the settings gunicorn.conf.py gives, with `variables` in a clean environment."""
    script = (
        "import json, runpy; config = runpy.run_path('gunicorn.conf.py'); "
        f"print(json.dumps({{name: config[name] for name in {GUNICORN_SETTINGS!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project,
        env=environment(**variables),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_gunicorn_config_defaults(project):
    config = gunicorn_config(project)
    assert config["bind"] == ["0.0.0.0:8000"]
    assert config["workers"] == 2 * len(os.sched_getaffinity(0)) + 1
    assert config["accesslog"] == "-"
    assert config["wsgi_app"] == "authserver.wsgi:application"
    assert 0 < config["graceful_timeout"] < 30  # Heroku kills a dyno 30 s after SIGTERM


def test_gunicorn_config_obeys_port_and_web_concurrency(project):
    config = gunicorn_config(project, PORT="5123", WEB_CONCURRENCY="3")
    assert config["bind"] == ["0.0.0.0:5123"]
    assert config["workers"] == 3
