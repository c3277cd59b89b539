"""Two nodes behind nginx: what one node does, the other honours, and only the proxy names clients.

Two gunicorn servers (2 workers each, DEBUG off) share one PostgreSQL database of their own and
the Redis of CACHE_URL; an nginx process of the test's own, with the proxy headers of
deploy/nginx.conf, balances them round robin. Clients act through nginx; checks that must reach a
given node (or every worker of it) go to the node's own port:

- the login limits count the real client, across both nodes (LOGIN_ADDRESS_RATE is low here), and
  a client at a node's own port cannot name its address;
- a session revoked through nginx (one node) is refused by the other node at once;
- a key rotation reaches every worker of both nodes, and so does the retirement of the old key;
- /status answers through nginx, and still does with one node stopped (passive failover).

Who may name the client: nginx connects to the nodes from 127.0.0.2 (`proxy_bind`), and the nodes
trust that address alone (TRUSTED_PROXIES=127.0.0.2). A test client connects from an address of
its own in 127.0.0.0/8 (Linux answers on all of them on the loopback) and always sends an
X-Forwarded-For of its own making: through nginx, which appends the client's real address, the
nodes read the real one; directly at a node, from an address that is not the proxy's, the header is
dropped. A client's own header never helps it, so distinct clients are distinct addresses.

Which node and which worker answered: every request carries a unique `X-Probe` header, which
nginx passes on and each node's access log records with the worker's pid.

Needs PostgreSQL and Redis (DATABASE_URL, CACHE_URL: CI's second run), and nginx. Times in this
file are safety nets, never measures.
"""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path

import jwt
import pytest

from tests.conftest import PROJECT, copy_project
from tests.support.servers import answers, free_port, production_environment, start_gunicorn, wait_until_ready

DATABASE_URL = os.environ.get("DATABASE_URL", "")
CACHE_URL = os.environ.get("CACHE_URL", "")
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DATABASE_URL.startswith(("postgres://", "postgresql://")) and CACHE_URL.startswith("redis://")),
        reason="needs PostgreSQL and Redis: set DATABASE_URL=postgres://... and CACHE_URL=redis://... "
        "(as .ci/run does in its second run)",
    ),
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx; .ci/run installs it)"),
]

PASSWORD = "correct horse battery"
# The address nginx connects to the nodes from, and the only one they trust.
PROXY = "127.0.0.2"
# Failed logins per client address (over all emails) before every login from it is refused.
ADDRESS_LIMIT = 6
USERS = ["ann@example.com", "bob@example.com", "cid@example.com"]


# --- HTTP from a chosen client address ----------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: dict | None
    probe: str


def call(port: int, method: str, path: str, *, source: str, token: str | None = None, data: dict | None = None, forwarded_for: str | None = None) -> Answer:
    """Send one request to 127.0.0.1:`port` from the address `source` (a new connection)."""
    probe = uuid.uuid4().hex
    headers = {"X-Probe": probe, "Connection": "close"}
    body = None
    if data is not None:
        body = json.dumps(data).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    connection = HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        return Answer(response.status, json.loads(raw) if raw else None, probe)
    finally:
        connection.close()


def ok(answer: Answer) -> bool:
    return answer.status == 200


def token_invalid(answer: Answer) -> bool:
    return (answer.status, answer.body) == (401, {"status": 401, "message": "Invalid or expired token"})


def kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def sid(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["sid"]


# --- The processes ----------------------------------------------------------------------------


@dataclass
class Logged:
    pid: str
    status: str
    request: str
    forwarded_for: str


class Node:
    """One gunicorn server of the project, 2 workers; its access log names each request's probe."""

    def __init__(self, name: str, project: Path, workdir: Path, env: dict):
        self.name = name
        self.access_log = workdir / f"{name}-access.log"
        self.error_log = workdir / f"{name}-error.log"
        self.access_log.touch()
        # Started without waiting: the fixture waits for both nodes once both are starting.
        self.server = start_gunicorn(
            "authserver.wsgi:application",
            "--workers", "2",
            "--access-logfile", str(self.access_log),
            # pid, status, request, probe, and the X-Forwarded-For as it arrived (last: it has spaces)
            "--access-logformat", "%(p)s %(s)s %(m)s_%(U)s %({x-probe}i)s %({x-forwarded-for}i)s",
            cwd=project,
            env=env,
            log=self.error_log,
            stdout=subprocess.DEVNULL,
            ready=lambda server: True,
        )
        self.process, self.port, self.base = self.server.process, self.server.port, self.server.base

    def logged(self, probe: str) -> Logged | None:
        for line in self.access_log.read_text().splitlines():
            fields = line.split(" ", 4)
            if len(fields) == 5 and fields[3] == probe:
                return Logged(pid=fields[0], status=fields[1], request=fields[2].replace("_", " ", 1), forwarded_for=fields[4])
        return None

    def call(self, method: str, path: str, **options) -> Answer:
        return call(self.port, method, path, **options)

    def stop(self) -> int | None:
        """Stop gracefully (SIGTERM, as docker stop does); return the exit status."""
        return self.server.stop()


def proxy_headers() -> list[str]:
    """The proxy_set_header lines of deploy/nginx.conf, as the nodes behind it get them."""
    text = (PROJECT / "deploy" / "nginx.conf").read_text()
    return re.findall(r"^\s*(proxy_set_header\s[^;]+;)", text, re.MULTILINE)


NGINX_CONF = """\
# The test's own nginx: in the foreground (`daemon off`, a child process the test stops with a
# signal), on an unprivileged port, with its pid file, logs and temporary files in its directory.
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;

events {{
    worker_connections 64;
}}

http {{
    log_format probe '$remote_addr "$request" $status upstream=$upstream_addr probe=$http_x_probe';
    access_log {dir}/access.log probe;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # Keep bodies and answers in memory: when the test runs as root, nginx's workers run as
    # nobody, who may not write into the test's directory.
    client_body_buffer_size 64k;
    proxy_max_temp_file_size 0;

    upstream authserver {{
        # Passive health checks only (open-source nginx): a node that refuses the connection
        # once (max_fails) is left out for fail_timeout, and the request goes to the other node
        # (proxy_next_upstream). The test shows it by stopping one node.
        server 127.0.0.1:{port_a} max_fails=1 fail_timeout=10s;
        server 127.0.0.1:{port_b} max_fails=1 fail_timeout=10s;
    }}

    server {{
        listen 127.0.0.1:{port};

        location / {{
            proxy_pass http://authserver;
            # The one address the nodes trust as their proxy (TRUSTED_PROXIES).
            proxy_bind {proxy};
            # As deploy/nginx.conf sets them:
            {headers}
            proxy_next_upstream error timeout;
            proxy_connect_timeout 5s;
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, workdir: Path, nodes: list[Node]):
        self.dir = workdir / "nginx"
        self.dir.mkdir()
        self.port = free_port()
        self.error_log = self.dir / "error.log"
        config = self.dir / "nginx.conf"
        config.write_text(
            NGINX_CONF.format(
                dir=self.dir,
                port=self.port,
                port_a=nodes[0].port,
                port_b=nodes[1].port,
                proxy=PROXY,
                headers="\n            ".join(proxy_headers()),
            )
        )
        # -p: the prefix for relative paths; -e: the error log before the configuration is read.
        command = [NGINX, "-p", str(self.dir), "-e", str(self.error_log), "-c", str(config)]
        checked = subprocess.run([*command, "-t"], check=False, capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def call(self, method: str, path: str, **options) -> Answer:
        return call(self.port, method, path, **options)

    def stop(self) -> int | None:
        """Stop gracefully (SIGQUIT: finish the requests in flight); return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        return self.process.returncode


class Cluster:
    def __init__(self, project: Path, env: dict, nodes: list[Node], nginx: Nginx):
        self.project, self.env, self.nodes, self.nginx = project, env, nodes, nginx

    def manage(self, *args: str) -> str:
        """Run a manage.py command against the shared database (an operator's process of its own)."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args], check=False, cwd=self.project, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def served_by(self, answer: Answer) -> tuple[Node, Logged]:
        """Return the node that answered a request, and its access log's line (written just after
        it answers: wait for it, 10 s being a safety net)."""
        deadline = time.monotonic() + 10
        while True:
            for node in self.nodes:
                logged = node.logged(answer.probe)
                if logged:
                    return node, logged
            assert time.monotonic() < deadline, f"no node logged the request {answer}"
            time.sleep(0.05)

    def login(self, email: str, *, source: str, at: Node | Nginx | None = None) -> str:
        answer = (at or self.nginx).call("POST", "/api/authenticate", source=source, data={"email": email, "password": PASSWORD})
        assert answer.status == 200, answer
        return answer.body["token"]

    def every_worker(self, node: Node, send, check, what: str) -> None:
        """Send requests to `node`, 4 at a time, until both its workers have answered; every answer
        must pass `check`."""
        pids = set()
        with ThreadPoolExecutor(max_workers=4) as pool:
            for _ in range(30):
                answers = list(pool.map(lambda _: send(node), range(4)))
                for answer in answers:
                    assert check(answer), (what, node.name, answer)
                pids |= {self.served_by(answer)[1].pid for answer in answers}
                if len(pids) >= 2:
                    return
        pytest.fail(f"{what}: the requests never reached both workers of node {node.name}")

    def until_every_worker(self, send, check, what: str, deadline: float) -> None:
        """Send requests to each node, 4 at a time, a round a second, until each worker of each node
        has answered one that passes `check` (what a worker does after reloading, it goes on
        doing); `deadline` is a safety net."""
        passed = {node.name: set() for node in self.nodes}
        with ThreadPoolExecutor(max_workers=4) as pool:
            while True:
                for node in self.nodes:
                    for answer in pool.map(lambda _, node=node: send(node), range(4)):
                        if check(answer):
                            passed[node.name].add(self.served_by(answer)[1].pid)
                if all(len(pids) >= 2 for pids in passed.values()):
                    return
                assert time.monotonic() < deadline, f"{what}: workers that did, by node: {passed}"
                time.sleep(1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, module_database_url):
    workdir = tmp_path_factory.mktemp("two-nodes")
    project = copy_project(workdir / "project")
    env = production_environment(
        DJANGO_SETTINGS_MODULE="authserver.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        EMAIL_BACKEND="console",
        DATABASE_URL=module_database_url,
        CACHE_URL=CACHE_URL,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        TRUSTED_PROXIES=PROXY,
        LOGIN_ADDRESS_RATE=f"{ADDRESS_LIMIT}/hour",
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
        cwd=project, env=env, check=True, timeout=180,
    )
    # Confirmed users, made in one process (each manage.py costs a Django start).
    make_users = (
        "from django.utils import timezone; from accounts.models import User; now = timezone.now()\n"
        f"for email in {USERS!r}:\n"
        f"    User.objects.create_user(email=email, password={PASSWORD!r}, name='Node Test', confirmed_at=now, email_verified_at=now)"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", make_users], cwd=project, env=env, check=True, timeout=120)

    nodes = [Node("a", project, workdir, env), Node("b", project, workdir, env)]
    nginx = None
    try:
        for node in nodes:
            wait_until_ready(node.process, lambda: answers(f"{node.base}/status"), node.error_log, timeout=60)
        nginx = Nginx(workdir, nodes)
        wait_until_ready(nginx.process, lambda: answers(f"http://127.0.0.1:{nginx.port}/status"), nginx.error_log, timeout=30)
        yield Cluster(project, env, nodes, nginx)
    finally:
        if nginx:
            nginx.stop()
        for node in nodes:
            node.stop()


# --- The tests --------------------------------------------------------------------------------


def test_login_limits_count_the_real_client_across_both_nodes(cluster):
    """Failed logins through nginx alternate between the nodes; the shared count (Redis) of the
    client's real address trips the limit, though neither node alone saw that many. The client's
    own X-Forwarded-For, different each time, changes nothing; another client is unaffected."""
    client, other = "127.0.0.10", "127.0.0.11"

    def guess(n: int, source: str) -> Answer:
        data = {"email": f"nobody{n}@example.com", "password": "guess"}
        return cluster.nginx.call("POST", "/api/authenticate", source=source, data=data, forwarded_for=f"198.51.100.{n}")

    answers = [guess(n, client) for n in range(ADDRESS_LIMIT + 1)]

    assert [answer.status for answer in answers] == [401] * ADDRESS_LIMIT + [429]
    assert answers[-1].body == {"status": 429, "message": "Too many requests"}
    served = [cluster.served_by(answer) for answer in answers]
    per_node = Counter(node.name for node, _ in served[:ADDRESS_LIMIT])
    assert set(per_node) == {"a", "b"} and max(per_node.values()) < ADDRESS_LIMIT, per_node
    # What the nodes got: the client's own header, with the address nginx saw appended.
    assert [logged.forwarded_for for _, logged in served] == [f"198.51.100.{n}, {client}" for n in range(ADDRESS_LIMIT + 1)]
    # At the limit even the right password is refused, on either node.
    refused = [
        cluster.nginx.call("POST", "/api/authenticate", source=client, data={"email": USERS[0], "password": PASSWORD})
        for _ in range(2)
    ]
    assert [answer.status for answer in refused] == [429, 429]
    assert {cluster.served_by(answer)[0].name for answer in refused} == {"a", "b"}

    # Another client (another address) is not counted with the first.
    assert guess(99, other).status == 401
    token = cluster.login(USERS[0], source=other)
    sessions = cluster.nginx.call("GET", "/api/sessions", source=other, token=token).body["sessions"]
    current = next(session for session in sessions if session["current"])
    assert current["ip"] == other  # the session records the real client, not what it wrote


def test_a_client_at_a_node_itself_cannot_name_its_address(cluster):
    """Straight to the nodes, from an address that is not the proxy's: X-Forwarded-For is dropped,
    so a client that writes a new address in it each time is still one client, on both nodes."""
    client = "127.0.0.66"
    node_a, node_b = cluster.nodes

    token = cluster.login(USERS[1], source=client, at=node_a)
    sessions = node_b.call("GET", "/api/sessions", source=client, token=token, forwarded_for="203.0.113.7").body["sessions"]
    assert next(session for session in sessions if session["current"])["ip"] == client

    answers = [
        cluster.nodes[n % 2].call(
            "POST", "/api/authenticate", source=client, forwarded_for=f"203.0.113.{n}",
            data={"email": f"someone{n}@example.com", "password": "guess"},
        )
        for n in range(ADDRESS_LIMIT + 1)
    ]

    assert [answer.status for answer in answers] == [401] * ADDRESS_LIMIT + [429]
    # The header did arrive; the nodes did not believe it.
    assert [cluster.served_by(answer)[1].forwarded_for for answer in answers] == [f"203.0.113.{n}" for n in range(ADDRESS_LIMIT + 1)]
    # The proxy's clients are counted apart: a client through nginx logs in.
    assert cluster.login(USERS[1], source="127.0.0.12")


def read_with(token: str):
    """A request of the token's user, straight to a node (for every_worker)."""
    return lambda node: node.call("GET", "/api/user", source="127.0.0.1", token=token)


def refresh_with(token: str):
    return lambda node: node.call("GET", "/api/authenticate", source="127.0.0.1", token=token)


def test_a_session_revoked_through_one_node_is_refused_by_the_other_at_once(cluster):
    client = "127.0.0.20"
    phone, laptop = cluster.login(USERS[2], source=client), cluster.login(USERS[2], source=client)
    # Every worker of both nodes has verified the phone's token (and keeps what it verified).
    for node in cluster.nodes:
        cluster.every_worker(node, read_with(phone), ok, "the phone's token works")

    revoked = cluster.nginx.call("DELETE", f"/api/sessions/{sid(phone)}", source=client, token=laptop)
    assert (revoked.status, revoked.body) == (200, {"message": "Session revoked"})
    revoking, _ = cluster.served_by(revoked)
    (other,) = [node for node in cluster.nodes if node is not revoking]

    # The very next request, at the other node: refused.
    assert token_invalid(read_with(phone)(other))
    for node in (other, revoking):
        cluster.every_worker(node, read_with(phone), token_invalid, "the revoked token is refused")
        cluster.every_worker(node, refresh_with(phone), token_invalid, "the revoked token is not refreshed")
        cluster.every_worker(node, read_with(laptop), ok, "the laptop goes on")


def test_a_key_rotation_and_retirement_reach_every_worker_of_both_nodes(cluster):
    email = USERS[0]
    old = cluster.login(email, source="127.0.0.21")
    old_kid = kid(old)
    for node in cluster.nodes:
        cluster.every_worker(node, read_with(old), ok, "the old key's token works")

    # The operator rotates with the command, a process of its own on the shared database: the
    # nodes learn of it by reloading their keys (every 30 s).
    cluster.manage("signing_keys", "--rotate")
    # One line per key: kid, algorithm, state, created. The auth tokens are ES256 (an RS256 key
    # beside it signs the OpenID provider's ID tokens).
    listed = [line.split() for line in cluster.manage("signing_keys").splitlines()]
    states = {fields[0]: fields[2] for fields in listed}
    (current,) = [fields[0] for fields in listed if fields[2] == "current" and fields[1] == "ES256"]
    assert states[old_kid] == "previous" and current != old_kid

    # At once: the old key's token still works everywhere (a previous key is published).
    for node in cluster.nodes:
        cluster.every_worker(node, read_with(old), ok, "the previous key's token works")

    def sign_in(node):
        return node.call("POST", "/api/authenticate", source="127.0.0.1", data={"email": email, "password": PASSWORD})

    def signed_with_current(answer: Answer) -> bool:
        return ok(answer) and kid(answer.body["token"]) == current

    # Every worker of both nodes signs with the new key (within 30 s; 120 s is a safety net).
    cluster.until_every_worker(sign_in, signed_with_current, "tokens carry the new kid", deadline=time.monotonic() + 120)
    fresh = cluster.login(email, source="127.0.0.21")
    assert kid(fresh) == current
    for node in cluster.nodes:
        cluster.every_worker(node, sign_in, signed_with_current, "the new key signs")
        cluster.every_worker(node, read_with(old), ok, "the old key's token works until it is retired")
        cluster.every_worker(node, read_with(fresh), ok, "the new key's token works")

    cluster.manage("signing_keys", "--retire", old_kid, "--force")

    # Every worker of both nodes refuses the retired key's token (within 30 s; a safety net).
    cluster.until_every_worker(
        read_with(old), token_invalid, "the retired key's token is refused", deadline=time.monotonic() + 120
    )

    def unpublishes_the_retired_key(answer: Answer) -> bool:
        kids = {key["kid"] for key in answer.body["keys"]}
        return ok(answer) and current in kids and old_kid not in kids

    for node in cluster.nodes:
        cluster.every_worker(node, read_with(old), token_invalid, "the retired key's token stays refused")
        cluster.every_worker(node, read_with(fresh), ok, "the new key's token still works")
        cluster.every_worker(
            node, lambda node: node.call("GET", "/.well-known/jwks.json", source="127.0.0.1"), unpublishes_the_retired_key,
            "the retired key is unpublished",
        )


def test_status_through_nginx_and_failover_when_a_node_stops(cluster):
    """Last: stops everything. /status answers through nginx, from both nodes; with one node
    stopped, nginx still answers: its try at the stopped node fails to connect, it passes the
    request to the other, and leaves the stopped one out (passive check, max_fails)."""
    healthy = {"status": 200, "message": "OK: database, cache"}
    answers = [cluster.nginx.call("GET", "/status", source="127.0.0.30") for _ in range(4)]
    assert [(answer.status, answer.body) for answer in answers] == [(200, healthy)] * 4
    assert {cluster.served_by(answer)[0].name for answer in answers} == {"a", "b"}

    stopped, remaining = cluster.nodes
    assert stopped.stop() == 0

    answers = [cluster.nginx.call("GET", "/status", source="127.0.0.30") for _ in range(6)]
    assert [(answer.status, answer.body) for answer in answers] == [(200, healthy)] * 6
    assert {cluster.served_by(answer)[0].name for answer in answers} == {remaining.name}
    # nginx's log of its try at the stopped node, which the client never saw, and of leaving the
    # node out after that one failure (max_fails=1).
    upstream = f'upstream: "http://127.0.0.1:{stopped.port}/status"'
    errors = cluster.nginx.error_log.read_text().splitlines()
    assert any("(111: Connection refused) while connecting to upstream" in line and upstream in line for line in errors), errors
    assert any("upstream server temporarily disabled" in line and upstream in line for line in errors), errors
    # A login (not idempotent) is sent to the node that answers, too.
    assert cluster.login(USERS[1], source="127.0.0.31")

    assert cluster.nginx.stop() == 0
    assert remaining.stop() == 0
