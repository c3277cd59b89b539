"""The server as it is deployed, over HTTP: production settings, PostgreSQL, Redis, gunicorn.

A copy of the project is prepared as the Docker image is built (collectstatic with DEBUG off),
released as the Procfile says (`release`: migrations), and served by the Procfile's `web` command
(gunicorn with gunicorn.conf.py). Then a user walks register → confirm (token from
`manage.py generate_validation_token`) → login → profile, and the Dockerfile's HEALTHCHECK runs
against it.

It needs PostgreSQL and Redis, named by DATABASE_URL and CACHE_URL (CI's second run sets both),
and uses a database of its own, created on the server's `postgres` database and dropped after:
never the test database.
"""

import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
import pytest

from tests.conftest import copy_project
from tests.deploy.test_configuration import dockerfile, procfile_commands
from tests.support.servers import free_port, gunicorn, production_environment

DATABASE_URL = os.environ.get("DATABASE_URL", "")
CACHE_URL = os.environ.get("CACHE_URL", "")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not (DATABASE_URL.startswith(("postgres://", "postgresql://")) and CACHE_URL.startswith("redis://")),
    reason="needs PostgreSQL and Redis: set DATABASE_URL=postgres://... and CACHE_URL=redis://... "
    "(as .ci/run does in its second run)",
)]

EMAIL = "smoke@example.com"
PASSWORD = "correct horse battery"


def http(url: str, data: dict | None = None, **headers: str) -> tuple[int, bytes, dict]:
    """Return status, body and headers of one request."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def api(url: str, data: dict | None = None, **headers: str) -> tuple[int, dict]:
    status, body, response_headers = http(url, data, **headers)
    assert response_headers["Content-Type"] == "application/json", body
    return status, json.loads(body)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, module_database_url):
    """Build, release and start the server; yield its URL, environment, project copy, process and logs."""
    workdir = tmp_path_factory.mktemp("smoke")
    project = copy_project(workdir / "project")
    port = free_port()
    env = production_environment(
        SECRET_KEY=secrets.token_urlsafe(50),
        # No EMAIL_HOST: the emails are printed, which production allows only when asked by name.
        EMAIL_BACKEND="console",
        DATABASE_URL=module_database_url,
        CACHE_URL=CACHE_URL,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PORT=str(port),
        WEB_CONCURRENCY="2",
        # `python` and `gunicorn` in the Procfile are this virtualenv's.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )

    def run(command: str) -> subprocess.CompletedProcess:
        result = subprocess.run(shlex.split(command), cwd=project, env=env, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        return result

    run("python manage.py collectstatic --noinput --verbosity 0")  # as the Dockerfile does
    run(procfile_commands()["release"])
    with psycopg.connect(module_database_url) as connection:  # the migrations went to this database
        assert connection.execute("SELECT count(*) FROM django_migrations WHERE app = 'accounts'").fetchone()[0] > 0

    stdout, stderr = workdir / "stdout.log", workdir / "stderr.log"
    # The Procfile's `web` command as is; it listens on PORT.
    with gunicorn(command=shlex.split(procfile_commands()["web"]), port=port, cwd=project, env=env, log=stderr, stdout=stdout) as server:
        yield {"base": server.base, "env": env, "project": project, "process": server.process, "stdout": stdout, "stderr": stderr}


def test_register_confirm_login_profile(deployment):
    base, env, project = deployment["base"], deployment["env"], deployment["project"]

    registration = {"email": EMAIL, "name": "Smoke Test", "password": PASSWORD, "confirm": PASSWORD}
    status, body = api(f"{base}/api/user", registration)
    assert (status, body) == (200, {"user": EMAIL})
    # No EMAIL_HOST: the console backend prints the email on gunicorn's standard output.
    deadline = time.monotonic() + 10
    while "Subject: Welcome, Smoke Test" not in deployment["stdout"].read_text():
        assert time.monotonic() < deadline, deployment["stdout"].read_text()[-2000:]
        time.sleep(0.1)

    status, body = api(f"{base}/api/authenticate", {"email": EMAIL, "password": PASSWORD})
    assert (status, body) == (400, {"status": 400, "message": "Please confirm your account"})

    command = [sys.executable, "manage.py", "generate_validation_token", EMAIL]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    status, body = api(f"{base}/api/validate/confirmation", {"token": token})
    assert (status, body) == (200, {"message": "Account confirmed"})

    status, body = api(f"{base}/api/authenticate", {"email": EMAIL, "password": PASSWORD})
    assert status == 200, body
    auth_token = body["token"]

    assert api(f"{base}/api/user", Authorization=auth_token) == (
        200,
        {"email": EMAIL, "profile": {"name": "Smoke Test"}},
    )
    assert api(f"{base}/api/user", Authorization=f"Bearer {auth_token}")[0] == 200


def test_production_rules_apply(deployment):
    base = deployment["base"]

    assert api(f"{base}/status") == (200, {"status": 200, "message": "OK: database, cache"})
    # DEBUG is off: an unknown path is the JSON envelope, not Django's debug page.
    assert api(f"{base}/no/such/page") == (404, {"status": 404, "message": "Not found"})
    status, _, headers = http(f"{base}/status", Host="evil.example")
    assert status == 400  # ALLOWED_HOSTS holds


def test_api_docs_and_their_files_are_served(deployment):
    base = deployment["base"]

    status, body, headers = http(f"{base}/api/docs")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    files = re.findall(r'(?:src|href)="(/static/[^"]+)"', body.decode())
    assert len(files) >= 4
    for path in files:
        status, content, _ = http(base + path)
        assert status == 200 and len(content) > 100, path


def test_access_log_goes_to_stdout(deployment):
    http(f"{deployment['base']}/status")
    deadline = time.monotonic() + 10
    while '"GET /status HTTP/1.1" 200' not in deployment["stdout"].read_text():
        assert time.monotonic() < deadline, deployment["stdout"].read_text()[-2000:]
        time.sleep(0.1)


def healthcheck_command() -> str:
    (healthcheck,) = [arg for kind, arg in dockerfile() if kind == "HEALTHCHECK"]
    return healthcheck.split(" CMD ", 1)[1]


def test_the_dockerfile_healthcheck_passes_on_a_healthy_server(deployment):
    env = deployment["env"]
    result = subprocess.run(["sh", "-c", healthcheck_command()], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_the_dockerfile_healthcheck_fails_without_a_server(deployment):
    env = {**deployment["env"], "PORT": str(free_port())}
    result = subprocess.run(["sh", "-c", healthcheck_command()], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0


def test_sigterm_stops_gracefully(deployment):
    """Last: the server stops on SIGTERM (docker stop, a Heroku restart) within the grace period."""
    process = deployment["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert "Shutting down" in deployment["stderr"].read_text()
