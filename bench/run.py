"""Benchmark the auth server under gunicorn against two ceilings, and print the numbers.

    python -m bench.run --quick                      # 1,000 users, SQLite, about 4 minutes
    python -m bench.run --users 1000 1000000         # the README's table (seeding 1M: see below)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/authserver_bench python -m bench.run ...

For each user count it seeds a database (bench/seed.py; SQLite files under bench/results/, or
the PostgreSQL database of DATABASE_URL with the count appended to its name; a database already
holding that count is reused) and starts the server as production would: gunicorn with 3
workers of the model gunicorn.conf.py chooses (threaded, gthread), DEBUG off, persistent connections (CONN_MAX_AGE) with health checks, and only the rate
limits turned off (LOGIN_RATE, SIGNUP_RATE, EMAIL_RATE = none) so that the load is not refused.
Next to it, on the same database, with the same gunicorn configuration and worker count, runs a
bare Django project (bench/bare/: startproject's settings and middleware, nothing of ours).
wrk (Debian: `apt-get install -y wrk`) then drives, on the loopback, in rounds that interleave
the scenarios and the user counts, so that a noisy machine hits them all alike:

    bare        GET /api/bench/ceiling/<id> on the bare project: one primary-key lookup of a
                user row and a JsonResponse, Django alone (the ceiling of anything built on it)
    ceiling     the same view inside the server: the same gunicorn, settings and middleware
                (bench/urls.py), no DRF, no token (what our stack costs before the API's code)
    read        GET /api/user with a token (raw and Bearer alternately)
    refresh     GET /api/authenticate with a token
    introspect  POST /api/introspect with a registered resource server's HTTP Basic credentials
                and a valid token
    login       POST /api/authenticate (email, password): one Argon2id check per request
    client_credentials
                POST /oauth/token grant_type=client_credentials with the same resource server's
                HTTP Basic credentials: a new access token (RFC 9068 JWT) per request
    userinfo    GET /oauth/userinfo with `Authorization: Bearer <access token>`, the access tokens
                of every other sampled user, got through the real flow by bench/seed.py
                (/oauth/authorize with PKCE, /oauth/token) for a first-party app
    refresh_token
                POST /oauth/token grant_type=refresh_token with that app's HTTP Basic credentials,
                rotating: each refresh token is spent once (a reuse would revoke its family), so
                this one runs bench/refresh.lua, whose thread keeps a queue of the other sampled
                users' refresh tokens, takes one per request and queues the one each answer
                brings; the tokens left are written back for the next run, and those in flight when
                wrk stops are lost (one per connection at most, so the seed gets enough for every
                run twice over). OIDC_REFRESH_REUSE_GRACE keeps its default, as in production.

The users each scenario touches are a random sample spread over the whole table. Per scenario it
prints requests per second, p50 and p99 latency (medians over the rounds), the server's CPU time
per request (the gunicorn workers' user + system time from /proc, before and after each round;
PostgreSQL's backends of the bench shown apart), the workers' resident memory, and the ratios to
both ceilings, each measured in the same rounds: of requests per second (the median of the
per-round ratios, with their range) and of CPU time per request (which other programs on a
shared machine disturb less). Before the load, one request of each scenario must get the answer a
client expects. Last, it times one offline verification of an auth token and of an OAuth access
token by the resource server example's verifier (bench/verify.py: in-process, timeit). It measures
how much CPU other programs took during each run, and leaves the runs they disturbed (over 10%
of the machine, --max-other-load) out of the medians, saying how many. With several user counts
it adds the ratios of each count's p50 and req/s to the first's. Raw numbers go to
bench/results/run-<time>.json.

This is a measuring tool, not a test: it prints numbers and judges nothing.
"""

import argparse
import base64
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from bench.seed import secret_key
from bench.verify import describe as describe_verification
from tests.support.servers import ServerDidNotStart, answers, free_port, production_environment, start_gunicorn

BENCH_DIR = Path(__file__).resolve().parent
BASE_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
GUNICORN_CONF = BASE_DIR / "gunicorn.conf.py"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

SCENARIOS = {
    "bare": "bare Django project, 1 PK query",
    "ceiling": "Django view in our stack, 1 PK query",
    "read": "GET /api/user",
    "refresh": "GET /api/authenticate",
    "introspect": "POST /api/introspect",
    "login": "POST /api/authenticate",
    "client_credentials": "POST /oauth/token (client_credentials)",
    "userinfo": "GET /oauth/userinfo",
    "refresh_token": "POST /oauth/token (refresh_token, rotated)",
}
# What each scenario is compared with; "bare" is served by the bare project, the rest by the server.
CEILINGS = ("ceiling", "bare")


# --- Processes and /proc -------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Return the pids of the direct children of a process (gunicorn's workers)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return sorted(int(child) for child in text.split())
    except OSError:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
        return sorted(found)


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """Return the user + system CPU time each process has used, in seconds (gone ones left out)."""
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)
    return found


def cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_by_pid(pids).values())


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """Return the CPU time used between two readings by the processes present in both."""
    return sum(after[pid] - before[pid] for pid in before if pid in after)


def machine_busy_seconds() -> float:
    """Return the CPU time all processes of the machine have used (all cores), in seconds."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def rss_mib(pid: int) -> float:
    try:
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return resident * PAGE / 2**20


# --- Databases -------------------------------------------------------------------------------------


def database_url(base: str | None, users: int) -> str:
    """Return the database URL for one user count: the base's name with the count appended."""
    if not base:
        return f"sqlite:///{RESULTS_DIR / f'bench_{users}.sqlite3'}"
    parsed = urllib.parse.urlsplit(base)
    if parsed.scheme.startswith("sqlite"):
        path = Path(parsed.path)
        return urllib.parse.urlunsplit(
            parsed._replace(path=str(path.with_name(f"{path.stem}_{users}{path.suffix}")))
        )
    return urllib.parse.urlunsplit(parsed._replace(path=f"{parsed.path.rstrip('/')}_{users}"))


class Postgres:
    """The PostgreSQL side of one server: its backends' CPU time and the sessions opened."""

    def __init__(self, url: str):
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.name = self.conn.info.dbname

    def backends(self) -> list[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [self.name]
        ).fetchall()
        return [pid for (pid,) in rows]

    def sessions(self) -> int:
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        (count,) = self.conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", [self.name]
        ).fetchone()
        return count

    def version(self) -> str:
        return self.conn.execute("SHOW server_version").fetchone()[0]


# --- One server per user count -------------------------------------------------------------------


class Gunicorn:
    """One gunicorn serving one WSGI application, with the project's gunicorn.conf.py."""

    def __init__(self, name: str, app: str, env: dict[str, str], workers: int, log: Path):
        self.name, self.app, self.env, self.workers, self.log = name, app, env, workers, log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, ready_path: str) -> None:
        """Start it and wait until `ready_path` answers 200 and every worker is up."""
        # The project's gunicorn.conf.py (production's, if there is one) applies, as it would
        # anyway from this directory, its worker model (class and threads) included, to the
        # server and the bare project alike; the command line sets the application, the address
        # and the worker count.
        config = ["-c", str(GUNICORN_CONF)] if GUNICORN_CONF.is_file() else []
        try:
            self.server = start_gunicorn(
                *config, self.app, "--workers", str(self.workers),
                cwd=BASE_DIR,
                env=self.env,
                log=self.log,
                port=self.port,
                ready=lambda server: answers(f"{server.base}{ready_path}") and len(children(server.process.pid)) == self.workers,
                name=f"gunicorn ({self.name}) on {self.base}{ready_path}",
            )
        except ServerDidNotStart as error:
            raise SystemExit(f"{error}\n(log: {self.log})") from None
        self.process = self.server.process

    def worker_pids(self) -> list[int]:
        return children(self.process.pid) if self.process else []

    def worker_class(self) -> str:
        """The worker class gunicorn says it uses ("Using worker: gthread" in its log)."""
        found = re.search(r"Using worker: (\S+)", self.log.read_text()) if self.log.is_file() else None
        return found.group(1) if found else "?"

    def stop(self) -> None:
        if self.process:
            self.server.stop()


class Server:
    """The server and the bare project for one user count, on one database."""

    def __init__(self, users: int, url: str, env: dict[str, str], workers: int, workdir: Path):
        self.users, self.url, self.workers, self.workdir = users, url, workers, workdir
        self.env = {**env, "DATABASE_URL": url}
        self.app = Gunicorn("server", "authserver.wsgi:application", self.env, workers, workdir / f"gunicorn-{users}.log")
        self.bare = Gunicorn(
            "bare",
            "bench.bare.wsgi:application",
            {**self.env, "DJANGO_SETTINGS_MODULE": "bench.bare.settings"},
            workers,
            workdir / f"gunicorn-bare-{users}.log",
        )
        self.postgres: Postgres | None = None
        self.description: dict = {}
        self.request_files: dict[str, Path] = {}

    def target(self, scenario: str) -> Gunicorn:
        return self.bare if scenario == "bare" else self.app

    def seed(self, sample: int, refresh_tokens: int, reseed: bool) -> None:
        out = self.workdir / f"seed-{self.users}.json"
        command = [sys.executable, "-m", "bench.seed", "--users", str(self.users), "--sample", str(sample)]
        command += ["--out", str(out)] + (["--reseed"] if reseed else [])
        command += ["--refresh-tokens", str(refresh_tokens)]
        # Tokens minted for the load live a day, so that no long run sees them expire (auth tokens
        # and the OpenID provider's access tokens; refresh tokens live 30 days by default).
        env = {**self.env, "TOKEN_LIFETIME": "86400", "OIDC_ACCESS_TOKEN_LIFETIME": "86400"}
        subprocess.run(command, cwd=BASE_DIR, env=env, check=True)
        self.description = json.loads(out.read_text())
        self.write_requests()

    def basic_credentials(self, client: dict | None = None) -> str:
        """Return the Authorization header (HTTP Basic) of a seeded client: the resource server
        (introspection, client_credentials) unless another is given."""
        client = client or self.description["client"]
        pair = f"{client['client_id']}:{client['client_secret']}"
        return "Basic " + base64.b64encode(pair.encode()).decode()

    def app_credentials(self) -> str:
        """Return the Authorization header of the seeded first-party app (refresh_token)."""
        return self.basic_credentials(self.description["oauth"]["client"])

    def write_requests(self) -> None:
        sample = self.description["sample"]
        password = self.description["password"]
        basic = self.basic_credentials()
        lines: dict[str, list[str]] = {name: [] for name in SCENARIOS if name != "refresh_token"}
        for index, (pk, email, token) in enumerate(sample):
            auth = token if index % 2 == 0 else f"Bearer {token}"
            body = urllib.parse.urlencode({"email": email, "password": password})
            lines["bare"].append(f"GET\t/api/bench/ceiling/{pk}\t\t")
            lines["ceiling"].append(f"GET\t/api/bench/ceiling/{pk}\t\t")
            lines["read"].append(f"GET\t/api/user\t{auth}\t")
            lines["refresh"].append(f"GET\t/api/authenticate\t{auth}\t")
            lines["introspect"].append(f"POST\t/api/introspect\t{basic}\t{urllib.parse.urlencode({'token': token})}")
            lines["login"].append(f"POST\t/api/authenticate\t\t{body}")
        lines["client_credentials"].append(f"POST\t/oauth/token\t{basic}\tgrant_type=client_credentials")
        for _pk, access_token in self.description["oauth"]["userinfo"]:
            lines["userinfo"].append(f"GET\t/oauth/userinfo\tBearer {access_token}\t")
        for name, content in lines.items():
            path = self.workdir / f"requests-{self.users}-{name}.tsv"
            path.write_text("\n".join(content) + "\n")
            self.request_files[name] = path
        # refresh_token: a queue of tokens, each spent once, that bench/refresh.lua rewrites after each run.
        path = self.workdir / f"refresh-tokens-{self.users}.txt"
        path.write_text("\n".join(self.description["oauth"]["refresh_tokens"]) + "\n")
        self.request_files["refresh_token"] = path

    def refresh_tokens_left(self) -> list[str]:
        return [line for line in self.request_files["refresh_token"].read_text().splitlines() if line]

    def start(self) -> None:
        self.app.start("/status")
        self.bare.start(f"/api/bench/ceiling/{self.description['sample'][0][0]}")
        if self.description["vendor"] == "postgresql":
            self.postgres = Postgres(self.url)

    def check(self) -> None:
        """Send one request of each scenario and insist on the answer a client expects (the
        refresh_token scenario's token is spent: its successor takes its place in the queue)."""
        pk, email, token = self.description["sample"][0]
        refresh_tokens = self.refresh_tokens_left()
        expected = {
            "bare": (f"/api/bench/ceiling/{pk}", None, None, "email"),
            "ceiling": (f"/api/bench/ceiling/{pk}", None, None, "email"),
            "read": ("/api/user", token, None, "email"),
            "refresh": ("/api/authenticate", f"Bearer {token}", None, "token"),
            "introspect": ("/api/introspect", self.basic_credentials(), {"token": token}, "sub"),
            "login": (
                "/api/authenticate",
                None,
                {"email": email, "password": self.description["password"]},
                "token",
            ),
            "client_credentials": ("/oauth/token", self.basic_credentials(), {"grant_type": "client_credentials"}, "access_token"),
            "userinfo": ("/oauth/userinfo", f"Bearer {self.description['oauth']['userinfo'][0][1]}", None, "email"),
            "refresh_token": (
                "/oauth/token",
                self.app_credentials(),
                {"grant_type": "refresh_token", "refresh_token": refresh_tokens[0]},
                "refresh_token",
            ),
        }
        for name, (path, auth, form, key) in expected.items():
            data = urllib.parse.urlencode(form).encode() if form else None
            request = urllib.request.Request(
                self.target(name).base + path, data=data, headers={"Authorization": auth} if auth else {}
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    body = json.loads(response.read())
            except urllib.error.HTTPError as error:
                raise SystemExit(f"{name}: {path} answered {error.code} {error.read()[:300]!r}") from error
            if key not in body:
                raise SystemExit(f"{name}: {path} answered {body!r}")
            if name == "refresh_token":
                refresh_tokens[0] = body["refresh_token"]
                self.request_files[name].write_text("\n".join(refresh_tokens) + "\n")

    def stop(self) -> None:
        self.app.stop()
        self.bare.stop()
        if self.postgres:
            self.postgres.conn.close()


# --- Load ----------------------------------------------------------------------------------------


WRK_THREADS = 1


def wrk(server: Server, scenario: str, seconds: float, connections: int) -> dict:
    if scenario == "refresh_token":
        # Each refresh token works once: bench/refresh.lua spends the queue and writes back what is left.
        left = len(server.refresh_tokens_left())
        if left <= connections:
            raise SystemExit(
                f"refresh_token: {left} refresh tokens left for {connections} connections; "
                "seed more (--sample, or fewer --rounds)"
            )
        script = [str(BENCH_DIR / "refresh.lua"), server.target(scenario).base, "--"]
        script += [str(server.request_files[scenario]), str(WRK_THREADS), server.app_credentials()]
    else:
        script = [str(BENCH_DIR / "requests.lua"), server.target(scenario).base, "--", str(server.request_files[scenario])]
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", *script]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"wrk printed no summary:\n{output}")
    return json.loads(lines[-1])


def settle(pids: list[int], quiet: float = 0.3, limit: float = 10.0) -> None:
    """Wait until the processes stop using CPU: requests left in the backlog are served first."""
    deadline = time.monotonic() + limit
    before = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        after = cpu_seconds(pids)
        if after - before < 1.5 / TICKS:
            return
        before = after


def measure(server: Server, scenario: str, seconds: float, connections: int) -> dict:
    workers = server.target(scenario).worker_pids()
    backends = server.postgres.backends() if server.postgres else []
    settle(workers + backends)
    cpu_before, db_before = cpu_by_pid(workers), cpu_by_pid(backends)
    busy_before, children_before = machine_busy_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    result = wrk(server, scenario, seconds, connections)
    # Read at once: requests still queued when wrk stops are served after this and not counted.
    cpu_after, db_after = cpu_by_pid(workers), cpu_by_pid(backends)
    busy_after, children_after = machine_busy_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    # A PostgreSQL backend replaced during the round (CONN_MAX_AGE) takes its CPU time along:
    # the database's figure may then be a little low, never negative.
    server_cpu, db_cpu = cpu_used(cpu_before, cpu_after), cpu_used(db_before, db_after)
    wrk_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    if server.target(scenario).worker_pids() != workers:
        print(
            f"  warning: gunicorn workers changed during {scenario} ({server.users} users)", file=sys.stderr
        )
    errors = sum(
        result[key] for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    if errors:
        print(f"  warning: {scenario} ({server.users} users): {errors} errors {result}", file=sys.stderr)
    result.update(
        scenario=scenario,
        users=server.users,
        rps=result["requests"] / (result["duration_us"] / 1e6),
        cpu_s=server_cpu,
        db_cpu_s=db_cpu,
        wrk_cpu_s=wrk_cpu,
        # CPU time of everything else on the machine (other programs, the kernel's own work).
        other_cpu_s=max(0.0, (busy_after - busy_before) - server_cpu - db_cpu - wrk_cpu),
        rss_mib=[round(rss_mib(pid), 1) for pid in workers],
    )
    return result


# --- Report --------------------------------------------------------------------------------------


def other_share(run: dict) -> float:
    """Return the share of the machine's CPU that other programs took during one run."""
    return run["other_cpu_s"] / (run["duration_us"] / 1e6 * (os.cpu_count() or 1))


def summarize(results: list[dict], users: int, max_other: float) -> dict[str, dict]:
    """Return each scenario's figures over the rounds, leaving out the runs that other programs
    disturbed (more than `max_other` of the CPU), unless that would leave none."""
    rounds = {}
    for result in results:
        if result["users"] == users:
            rounds.setdefault(result["round"], {})[result["scenario"]] = result
    def disturbed(run: dict) -> bool:
        return other_share(run) > max_other

    summary = {}
    for scenario in SCENARIOS:
        every = [by_scenario[scenario] for by_scenario in rounds.values()]
        runs = [run for run in every if not disturbed(run)] or every
        requests = sum(run["requests"] for run in runs)
        row = {
            "rps": statistics.median(run["rps"] for run in runs),
            "p50_ms": statistics.median(run["p50_us"] for run in runs) / 1000,
            "p99_ms": statistics.median(run["p99_us"] for run in runs) / 1000,
            "cpu_ms": 1000 * sum(run["cpu_s"] for run in runs) / requests,
            "db_cpu_ms": 1000 * sum(run["db_cpu_s"] for run in runs) / requests,
            "rss_mib": max(max(run["rss_mib"]) for run in runs),
            "requests": sum(run["requests"] for run in every),
            "runs": len(runs),
            "rounds": len(every),
            "errors": sum(run["status_errors"] + run["connect_errors"] + run["timeouts"] for run in every),
            "other_cpu_share": statistics.mean(other_share(run) for run in every),
        }
        for ceiling in CEILINGS:
            # A round's ratio counts when neither the scenario's run nor the ceiling's was disturbed.
            pairs = [
                (by_scenario[scenario], by_scenario[ceiling])
                for by_scenario in rounds.values()
                if not disturbed(by_scenario[scenario]) and not disturbed(by_scenario[ceiling])
            ] or [(by_scenario[scenario], by_scenario[ceiling]) for by_scenario in rounds.values()]
            ratios = [run["rps"] / reference["rps"] for run, reference in pairs]
            row[f"ratio_{ceiling}"] = statistics.median(ratios)
            row[f"ratio_{ceiling}_min"], row[f"ratio_{ceiling}_max"] = min(ratios), max(ratios)
            row[f"ratio_{ceiling}_rounds"] = [round(ratio, 3) for ratio in ratios]
        summary[scenario] = row
    for scenario in SCENARIOS:
        for ceiling in CEILINGS:
            summary[scenario][f"cpu_ratio_{ceiling}"] = summary[ceiling]["cpu_ms"] / summary[scenario]["cpu_ms"]
    return summary


def table(summary: dict[str, dict], postgres: bool, max_other: float) -> str:
    db = " DB CPU ms/req |" if postgres else ""
    lines = [
        f"| scenario | req/s | p50 ms | p99 ms | server CPU ms/req |{db} RSS MiB/worker "
        "| req/s vs bare (min–max) | req/s vs ceiling (min–max) | CPU vs bare | CPU vs ceiling |",
        "| --- | ---: | ---: | ---: | ---: |" + (" ---: |" if postgres else "") + " ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario, label in SCENARIOS.items():
        row = summary[scenario]
        cells = []
        for kind in ("ratio", "cpu_ratio"):
            for ceiling in ("bare", "ceiling"):
                if scenario == ceiling:
                    cells.append("1")
                elif kind == "ratio":
                    low, high = row[f"ratio_{ceiling}_min"], row[f"ratio_{ceiling}_max"]
                    cells.append(f"{row[f'ratio_{ceiling}']:.2f} ({low:.2f}–{high:.2f})")
                else:
                    cells.append(f"{row[f'cpu_ratio_{ceiling}']:.2f}")
        db_cell = f" {row['db_cpu_ms']:.2f} |" if postgres else ""
        lines.append(
            f"| {scenario}: {label} | {row['rps']:,.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} "
            f"| {row['cpu_ms']:.2f} |{db_cell} {row['rss_mib']:.0f} | {' | '.join(cells)} |"
        )
    other = statistics.mean(row["other_cpu_share"] for row in summary.values())
    kept = sum(row["runs"] for row in summary.values())
    total = sum(row["rounds"] for row in summary.values())
    lines.append(
        f"\nOther programs took {other:.0%} of the machine's CPU during these rounds; "
        f"{kept} of {total} runs count (a run where they took more than {max_other:.0%} is left out)."
    )
    errors = sum(row["errors"] for row in summary.values())
    if errors:
        lines.append(
            f"{errors} requests failed (connection errors, timeouts or non-2xx answers): see stderr."
        )
    return "\n".join(lines)


def environment(servers: list[Server], args) -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, gunicorn, rest_framework, argon2; print(django.get_version(), "
            "gunicorn.__version__, rest_framework.__version__, argon2.__version__)",
        ],
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
    ).stdout.split()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("[")[0].strip()
    first = servers[0]
    config = " (gunicorn.conf.py)" if GUNICORN_CONF.is_file() else ""
    database = first.description["vendor"]
    if first.postgres:
        database = f"PostgreSQL {first.postgres.version()}"
    elif database == "sqlite":
        import sqlite3

        database = f"SQLite {sqlite3.sqlite_version}"
    return [
        f"machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}",
        f"software: Python {platform.python_version()}, Django {versions[0]}, gunicorn {versions[1]}, "
        f"DRF {versions[2]}, argon2-cffi {versions[3]}, {wrk_version}, {database}",
        f"server: gunicorn {args.workers} {first.app.worker_class()} workers{config}, "
        f"DEBUG off, CONN_MAX_AGE={first.env.get('CONN_MAX_AGE', '60')} with health checks, rate limits off; "
        f"Argon2id {first.description['password_hash_params']}",
        f"bare: bench/bare (startproject's settings and middleware, one ORM lookup by primary key, JsonResponse) "
        f"under the same gunicorn configuration and {args.workers} {first.bare.worker_class()} workers, on the same database",
        f"load: wrk 1 thread, {args.connections} connections, {args.rounds} rounds x {args.duration} s per "
        f"scenario and user count, interleaved (after {args.warmup} s of warm-up each)",
    ]


def verify_offline(server: Server) -> dict:
    """Time the resource server example's offline verification of the server's tokens, an auth
    token and an OAuth access token (bench/verify.py, in a process of its own), its keys fetched
    from the server's JWKS."""
    token = server.description["sample"][0][2]
    access_token = server.description["oauth"]["userinfo"][0][1]
    issuer = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["iss"]
    command = [
        sys.executable, "-m", "bench.verify", "--json", "--token", token, "--access-token", access_token,
        "--issuer", issuer, "--jwks-url", f"{server.app.base}/.well-known/jwks.json",
    ]  # fmt: skip
    output = subprocess.run(command, cwd=BASE_DIR, capture_output=True, text=True, check=True).stdout
    return json.loads(output)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See the module docstring.")
    parser.add_argument(
        "--users", type=int, nargs="+", default=[1000], help="user counts to compare (default 1000)"
    )
    parser.add_argument("--rounds", type=int, default=8, help="rounds of every scenario (default 8)")
    parser.add_argument(
        "--duration", type=int, default=5, help="seconds of load per scenario and round (default 5)"
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="seconds of warm-up load per scenario (default 3)"
    )
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (default 3)")
    parser.add_argument(
        "--sample", type=int, default=1000, help="users the load is spread over (default 1000)"
    )
    parser.add_argument(
        "--max-other-load",
        type=float,
        default=10,
        help="leave out of the medians a run during which other programs took more than this percentage "
        "of the CPU (default 10; 100 keeps every run)",
    )
    parser.add_argument(
        "--reseed", action="store_true", help="seed again even when a database of that size exists"
    )
    parser.add_argument(
        "--quick", action="store_true", help="4 rounds of 4 s, 2 s of warm-up (about 4 minutes at 1k users)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 4, 4, 2
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk (Debian/Ubuntu)")

    started = time.monotonic()
    RESULTS_DIR.mkdir(exist_ok=True)
    # CONN_MAX_AGE stays a knob of the benchmark (its description reports it); each server gets its DATABASE_URL.
    env = production_environment(
        keep=["CONN_MAX_AGE", "CACHE_URL"],
        DJANGO_SETTINGS_MODULE="bench.settings",
        SECRET_KEY=secret_key(),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOGIN_RATE="none",
        SIGNUP_RATE="none",
        EMAIL_RATE="none",
        EMAIL_HOST="",
        # The benchmark's logins and reads send no email; production settings want the choice named.
        EMAIL_BACKEND="console",
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    servers = [
        Server(users, database_url(os.environ.get("DATABASE_URL"), users), env, args.workers, workdir)
        for users in args.users
    ]
    # Each wrk run of the refresh_token scenario loses up to one token per connection (those in
    # flight when it stops): enough for every run (the warm-up and the rounds) twice over, and at
    # least one per other sampled user.
    refresh_tokens = max(args.sample // 2, 2 * (args.rounds + 1) * args.connections)
    try:
        for server in servers:
            seeding = time.monotonic()
            server.seed(args.sample, refresh_tokens, args.reseed)
            seeded = server.description["seed_seconds"]
            how = f"seeded in {seeded:.1f} s" if seeded is not None else "reused"
            print(
                f"{server.users:,} users: {server.description['database']} ({how}; "
                f"ready in {time.monotonic() - seeding:.1f} s)",
                flush=True,
            )
            server.start()
            server.check()
        for server in servers:
            for scenario in SCENARIOS:
                wrk(server, scenario, args.warmup, args.connections)
        sessions_before = {server.users: server.postgres.sessions() for server in servers if server.postgres}
        results = []
        for round_number in range(args.rounds):
            # Rotate the order each round, so that no scenario always follows the same one.
            shift = round_number % len(SCENARIOS)
            order = list(SCENARIOS)[shift:] + list(SCENARIOS)[:shift]
            for server in servers if round_number % 2 == 0 else reversed(servers):
                for scenario in order:
                    result = measure(server, scenario, args.duration, args.connections)
                    result["round"] = round_number
                    results.append(result)
            print(
                f"round {round_number + 1}/{args.rounds} done ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
        sessions = {
            users: server.postgres.sessions() - sessions_before[users]
            for server in servers
            if server.postgres
            for users in [server.users]
        }
        described = environment(servers, args)
        verification = verify_offline(servers[0])
    finally:
        for server in servers:
            server.stop()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"run-{stamp}.json"
    out.write_text(
        json.dumps(
            {"args": vars(args), "environment": described, "results": results, "verification": verification},
            indent=1,
        )
    )

    print()
    for line in described:
        print(line)
    summaries = {}
    for server in servers:
        summary = summaries[server.users] = summarize(results, server.users, args.max_other_load / 100)
        print()
        print(f"{server.users:,} users ({server.description['vendor']}):")
        print(table(summary, server.postgres is not None, args.max_other_load / 100))
        if server.users in sessions:
            served = sum(row["requests"] for row in summary.values())
            print(
                f"PostgreSQL sessions opened during the measured rounds: {sessions[server.users]}, for "
                f"{served:,} requests (persistent connections; CONN_MAX_AGE renews each worker's in time)"
            )
    if len(servers) > 1:
        first = summaries[servers[0].users]
        print()
        print(f"Scale: each user count against {servers[0].users:,} (p50 and req/s: medians of the rounds)")
        print()
        header = "".join(f" p50 ms at {server.users:,} | ratio | req/s ratio |" for server in servers[1:])
        print(f"| scenario | p50 ms at {servers[0].users:,} |{header}")
        print("| --- | ---: |" + " ---: | ---: | ---: |" * (len(servers) - 1))
        for scenario in SCENARIOS:
            cells = "".join(
                f" {summaries[server.users][scenario]['p50_ms']:.1f} "
                f"| {summaries[server.users][scenario]['p50_ms'] / first[scenario]['p50_ms']:.2f} "
                f"| {summaries[server.users][scenario]['rps'] / first[scenario]['rps']:.2f} |"
                for server in servers[1:]
            )
            print(f"| {scenario} | {first[scenario]['p50_ms']:.1f} |{cells}")
    print()
    print(describe_verification(verification))
    print()
    for server in servers:
        for name, plan in server.description["plans"].items():
            print(f"query plan, {server.users:,} users, {name}:")
            print("    " + plan.replace("\n", "\n    "))
    print(f"\nraw results: {out.relative_to(BASE_DIR)}; total time {time.monotonic() - started:.0f} s")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
