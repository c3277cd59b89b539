"""Across worker processes: the real server under gunicorn with 2 long-lived workers.

Each worker keeps what it may keep (the signing keys it loaded, the tokens it verified), so these
tests check that none of it outlives a revocation: a revoked session's token is refused by every
worker at once; a rotation and retirement made by another process (the command) reach every
worker; the per-account and per-address login limits hold whichever worker and address a
guess comes from. The server trusts 127.0.0.1 as its proxy, so X-Forwarded-For names the client.
"""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest

from tests.support.api import live_call, live_login
from tests.support.servers import production_environment, start_gunicorn

# Starts real servers or runs long: left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

BASE_DIR = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def call(base: str, method: str, path: str, *, token: str | None = None, data: dict | None = None, client: str | None = None):
    """Return status and JSON body of one request (a new connection each time)."""
    headers = {"Content-Type": "application/json"}  # with a body or not, as before
    if token:
        headers["Authorization"] = f"Bearer {token}"
        # Which token was sent, for the access log: gunicorn's log redacts an Authorization header.
        headers["X-Token-End"] = token[-16:]
    if client:
        headers["X-Forwarded-For"] = client
    return live_call(base, method, path, data, headers)


class Server:
    def __init__(self, workdir: Path, env: dict):
        self.workdir, self.env = workdir, env
        self.access_log = workdir / "access.log"
        self.server = start_gunicorn(
            "authserver.wsgi:application",
            "--workers", "2",
            "--access-logfile", str(self.access_log),
            # pid, method, path, status, and which token (its last characters) was sent
            "--access-logformat", "%(p)s %(m)s %(U)s %(s)s %({x-token-end}i)s",
            cwd=BASE_DIR,
            env=env,
            log=workdir / "error.log",
            stdout=subprocess.DEVNULL,
        )
        self.base = self.server.base

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def user(self, email: str) -> None:
        """Register and confirm an account over HTTP."""
        body = {"email": email, "name": "Ann", "password": PASSWORD, "confirm": PASSWORD}
        assert call(self.base, "POST", "/api/user", data=body)[0] == 200
        token = self.manage("generate_validation_token", email).strip()
        assert call(self.base, "POST", "/api/validate/confirmation", data={"token": token})[0] == 200

    def login(self, email: str) -> str:
        return live_login(self.base, email)

    def pids(self, token: str, status: int) -> set[str]:
        """Return the workers that answered `status` to requests carrying this token."""
        time.sleep(0.2)  # a worker writes its access line just after it answers
        return {
            line.split()[0]
            for line in self.access_log.read_text().splitlines()
            if line.endswith(token[-16:]) and line.split()[3] == str(status)
        }

    def on_every_worker(self, method: str, path: str, token: str, expected: int, rounds: int = 30) -> None:
        """Send the request concurrently until both workers have answered it; every answer must be `expected`."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            for _ in range(rounds):
                statuses = list(pool.map(lambda _: call(self.base, method, path, token=token)[0], range(4)))
                assert statuses == [expected] * 4
                if len(self.pids(token, expected)) >= 2:
                    return
        pytest.fail("the requests never reached both workers")

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("gunicorn-sessions")
    env = production_environment(
        workdir,
        keep=["CACHE_URL"],  # Redis when CI sets it
        DJANGO_SETTINGS_MODULE="authserver.settings",
        SECRET_KEY="gunicorn-sessions-test-" + "s" * 50,
        EMAIL_BACKEND="console",
        TRUSTED_PROXIES="127.0.0.1",
        LOGIN_RATE="none",
        LOGIN_ACCOUNT_RATE="20/hour",
        LOGIN_ADDRESS_RATE="30/hour",
        SIGNUP_RATE="none",
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=BASE_DIR, env=env, check=True, timeout=120)
    running = Server(workdir, env)
    yield running
    running.stop()


def test_a_revoked_session_is_refused_by_every_worker_at_once(server):
    email = f"ann-{uuid.uuid4().hex[:8]}@example.com"
    server.user(email)
    phone, laptop = server.login(email), server.login(email)
    # Both workers have verified (and remember) the phone's token.
    server.on_every_worker("GET", "/api/user", phone, 200)

    sid = jwt.decode(phone, options={"verify_signature": False})["sid"]
    assert call(server.base, "DELETE", f"/api/sessions/{sid}", token=laptop) == (200, {"message": "Session revoked"})

    server.on_every_worker("GET", "/api/user", phone, 401)
    server.on_every_worker("GET", "/api/authenticate", phone, 401)
    assert call(server.base, "GET", "/api/user", token=laptop)[0] == 200


def test_a_rotation_and_retirement_by_another_process_reach_every_worker(server):
    email = f"bea-{uuid.uuid4().hex[:8]}@example.com"
    server.user(email)
    old = server.login(email)
    old_kid = jwt.get_unverified_header(old)["kid"]
    server.on_every_worker("GET", "/api/user", old, 200)

    # The operator's command is a process of its own: the workers learn of it by reloading.
    server.manage("signing_keys", "--rotate")
    server.manage("signing_keys", "--retire", old_kid, "--force")
    current = next(line.split()[0] for line in server.manage("signing_keys").splitlines() if " current " in line)

    # Within the reload time (30 s; 90 s is a safety net, not a measure), every worker signs with
    # the new key and refuses the retired key's token, even though it had verified it before.
    deadline = time.monotonic() + 90
    while True:
        with ThreadPoolExecutor(max_workers=4) as pool:
            kids = {jwt.get_unverified_header(token)["kid"] for token in pool.map(lambda _: server.login(email), range(4))}
            statuses = set(pool.map(lambda _: call(server.base, "GET", "/api/user", token=old)[0], range(4)))
        if kids == {current} and statuses == {401}:
            break
        assert time.monotonic() < deadline, (kids, statuses)
        time.sleep(1)
    server.on_every_worker("GET", "/api/user", old, 401)
    published = {key["kid"] for key in json.loads(urllib.request.urlopen(server.base + "/.well-known/jwks.json").read())["keys"]}
    assert current in published and old_kid not in published


def test_guesses_from_many_addresses_lock_the_account_not_the_owner_alone(server):
    """LOGIN_ACCOUNT_RATE counts an account's failures from every address and worker; at the
    limit the right password is refused too (429), until a reset."""
    email = f"cid-{uuid.uuid4().hex[:8]}@example.com"
    server.user(email)

    def guess(n: int) -> int:
        return call(server.base, "POST", "/api/authenticate", data={"email": email, "password": f"guess {n}"}, client=f"198.51.100.{n}")[0]

    # One after the other: concurrent guesses may all pass the check before any is counted,
    # which lets a few more through (the limit is a count in a shared cache, not a lock).
    statuses = [guess(n) for n in range(1, 41)]

    assert statuses.count(401) == 20 and statuses.count(429) == 20
    status, body = call(server.base, "POST", "/api/authenticate", data={"email": email, "password": PASSWORD}, client="203.0.113.99")
    assert (status, body) == (429, {"status": 429, "message": "Too many requests"})


def test_one_address_trying_every_account_is_stopped(server):
    """LOGIN_ADDRESS_RATE counts an address's failed logins over all emails; then even a right
    password from that address is refused."""
    email = f"dee-{uuid.uuid4().hex[:8]}@example.com"
    server.user(email)
    attacker = "192.0.2.77"

    statuses = [
        call(server.base, "POST", "/api/authenticate", data={"email": f"user{n}@example.com", "password": "123456"}, client=attacker)[0]
        for n in range(31)
    ]

    assert statuses[:30] == [401] * 30 and statuses[30] == 429
    right = call(server.base, "POST", "/api/authenticate", data={"email": email, "password": PASSWORD}, client=attacker)
    assert right[0] == 429
    # Another client is not affected.
    assert call(server.base, "POST", "/api/authenticate", data={"email": email, "password": PASSWORD}, client="192.0.2.78")[0] == 200
