"""LOGIN_RATE holds across worker processes: the real server under gunicorn with 2 workers.

The server runs with production settings (DEBUG off) on its own SQLite file. Its cache is the
default database cache, or Redis when CACHE_URL is set (as in CI's second run). Each worker
serves one request and is replaced (--max-requests 1), so no request is served by a process that
saw an earlier one: whatever counted the failures lives in the shared cache, nowhere else.
"""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.support.servers import gunicorn, production_environment

# Starts real servers or runs long: left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

BASE_DIR = Path(__file__).resolve().parents[2]


def request(url: str, data: dict | None = None) -> tuple[int, dict, dict]:
    """Return status, JSON body and headers of one request (a new connection each time)."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with urllib.request.urlopen(url, data=body, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def logged_pids(access_log: Path, request_line: str, expected: int) -> list[str]:
    """Return the worker pids of the logged requests (a worker logs just after it answers)."""
    deadline = time.monotonic() + 10
    while True:
        pids = [line.split()[0] for line in access_log.read_text().splitlines() if request_line in line]
        if len(pids) >= expected or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


def serve(workdir: Path, *, max_requests: int = 1, **variables: str):
    """Migrate a SQLite database in `workdir` and serve it with gunicorn, 2 workers that each
    serve `max_requests` requests (0: no limit); yield (base URL, access log, the server's
    environment), then stop it.

    `variables` add to (or override) the environment, e.g. a rate.
    """
    env = production_environment(
        workdir,
        keep=["CACHE_URL"],  # Redis when CI sets it
        DJANGO_SETTINGS_MODULE="authserver.settings",  # for `python -c` with this environment too
        SECRET_KEY="gunicorn-test-" + "k" * 50,
        EMAIL_BACKEND="console",
        **variables,
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=BASE_DIR, env=env, check=True, timeout=120
    )
    access_log = workdir / "access.log"
    with gunicorn(
        "authserver.wsgi:application",
        "--workers", "2",
        # One request per process takes sync workers: a threaded one (gunicorn.conf.py's gthread,
        # read from the project's directory) may accept another connection before it exits; and
        # gunicorn runs gthread for any worker class while threads > 1.
        "--worker-class", "sync",
        "--threads", "1",
        "--max-requests", str(max_requests),
        "--access-logfile", str(access_log),
        "--access-logformat", "%(p)s %(m)s %(U)s %(s)s",
        cwd=BASE_DIR,
        env=env,
        log=workdir / "error.log",
        stdout=subprocess.DEVNULL,
    ) as server:
        yield server.base, access_log, env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    for base, access_log, _ in serve(tmp_path_factory.mktemp("gunicorn")):
        yield base, access_log


def test_eleventh_wrong_login_is_throttled_across_workers(server):
    base, access_log = server
    email = f"victim-{uuid.uuid4().hex}@example.com"

    answers = [request(f"{base}/api/authenticate", {"email": email, "password": "guess"}) for _ in range(11)]

    assert [status for status, _, _ in answers] == [401] * 10 + [429]
    assert answers[0][1] == {"status": 401, "message": "Invalid email or password"}
    status, body, headers = answers[10]
    assert body == {"status": 429, "message": "Too many requests"}
    assert 1 <= int(headers["Retry-After"]) <= 60
    login_pids = logged_pids(access_log, "POST /api/authenticate", expected=11)
    assert len(login_pids) == 11
    assert len(set(login_pids)) == 11, "each attempt was served by a fresh worker process"
