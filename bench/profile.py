"""Profile one scenario of the benchmark in-process: the WSGI application, no gunicorn, no network.

    DATABASE_URL=sqlite:///bench/results/bench_1000.sqlite3 python -m bench.profile read [--requests 5000]

Seed the database first (python -m bench.run --quick does). It calls the same WSGI application
gunicorn serves (bench settings, DEBUG off) with the requests bench/run.py sends, prints the
CPU time per request of each scenario (bare, ceiling, read, refresh, introspect, login), then a cProfile of the
named scenario: where the time goes beyond the ceiling's. The bare project (bench/bare) is
timed in a process of its own, since it has settings of its own.
"""

import argparse
import base64
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time
import urllib.parse

from bench.seed import secret_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", secret_key())
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
os.environ.setdefault("EMAIL_BACKEND", "console")
for _name in ("LOGIN_RATE", "SIGNUP_RATE", "EMAIL_RATE"):
    os.environ.setdefault(_name, "none")


def environ(method: str, path: str, auth: str | None = None, body: bytes = b"") -> dict:
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if auth:
        env["HTTP_AUTHORIZATION"] = auth
    if body:
        env["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        env["CONTENT_LENGTH"] = str(len(body))
    return env


SCENARIOS = ("bare", "ceiling", "read", "refresh", "introspect", "login")


def count_of(scenario: str, requests: int) -> int:
    return requests // 10 if scenario == "login" else requests


def timed(serve, scenarios, args) -> dict[str, float]:
    """Return each scenario's CPU ms per request: the best of interleaved rounds, after a warm-up."""
    for scenario in scenarios:
        serve(scenario, min(count_of(scenario, args.requests), 200))
    # Interleaved rounds; the fastest round of each scenario is the least disturbed by the machine.
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for scenario in scenarios:
            count = count_of(scenario, args.requests)
            started = time.process_time()
            serve(scenario, count)
            per_request = 1000 * (time.process_time() - started) / count
            best[scenario] = min(best.get(scenario, per_request), per_request)
    return best


def profiled(serve, scenario: str, args) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    serve(scenario, count_of(scenario, args.requests))
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats(args.sort)
    stats.print_stats(args.top)
    if args.callers:
        stats.print_callers(args.callers)
    return out.getvalue()


def server(application, environ_of):
    """Return a function that sends `count` requests of a scenario to the WSGI application."""

    def serve(scenario: str, count: int) -> None:
        statuses = []
        for index in range(count):
            response = application(
                environ_of(scenario, index), lambda status, headers, exc_info=None: statuses.append(status)
            )
            b"".join(response)
            response.close()
        if any(not status.startswith("200") for status in statuses):
            raise SystemExit(f"{scenario}: {sorted(set(statuses))}")

    return serve


def bare_main(args) -> None:
    """In a process of its own (bench/bare's settings): time, and profile if asked, the bare ceiling."""
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    from bench.bare.models import SeededUser

    pks = list(SeededUser.objects.order_by("pk").values_list("pk", flat=True)[:100])
    serve = server(application, lambda scenario, index: environ("GET", f"/api/bench/ceiling/{pks[index % len(pks)]}"))
    print(json.dumps(timed(serve, ["bare"], args)))
    if args.scenario == "bare":
        print(profiled(serve, "bare", args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--requests", type=int, default=5000, help="requests per scenario (login: a tenth)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (the best counts)")
    parser.add_argument("--top", type=int, default=30, help="lines of the profile to print")
    parser.add_argument("--sort", default="tottime", help="pstats order of the profile (tottime, cumulative, ...)")
    parser.add_argument("--callers", help="also print who calls the functions matching this regular expression")
    parser.add_argument("--bare-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_process:
        return bare_main(args)

    # The bare project first, in a process of its own (its own settings): its JSON line, then its
    # profile if that is the one asked for.
    bare = subprocess.run(
        [sys.executable, "-m", "bench.profile", *sys.argv[1:], "--bare-process"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "bench.bare.settings"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    bare_line, _, bare_profile = bare.partition("\n")

    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    from accounts.clients.models import Client
    from accounts.users.models import User
    from accounts.clients.services import resource_server_create
    from accounts.sessions.services import session_open
    from accounts.sessions.tokens import auth_token_issue
    from bench.seed import PASSWORD

    first = list(User.objects.order_by("pk")[:100])
    if not first:
        raise SystemExit("The database has no users: seed it first (python -m bench.seed --users 1000).")
    users = [(user.pk, user.email) for user in first]
    # One open session and its token per user, as a login makes them.
    sessions = [
        session_open(user=user, remember=False, amr=["pwd"], user_agent="bench", client_address="127.0.0.1")
        for user in first
    ]
    tokens = [auth_token_issue(session=session, user=session.user) for session in sessions]
    Client.objects.filter(name="bench-profile").delete()
    client, secret = resource_server_create(name="bench-profile")
    basic = "Basic " + base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()

    def environ_of(scenario: str, index: int) -> dict:
        pk, email = users[index % len(users)]
        token = tokens[index % len(users)]
        if scenario == "ceiling":
            return environ("GET", f"/api/bench/ceiling/{pk}")
        if scenario == "read":
            return environ("GET", "/api/user", token)
        if scenario == "refresh":
            return environ("GET", "/api/authenticate", f"Bearer {token}")
        if scenario == "introspect":
            return environ("POST", "/api/introspect", basic, urllib.parse.urlencode({"token": token}).encode())
        body = urllib.parse.urlencode({"email": email, "password": PASSWORD}).encode()
        return environ("POST", "/api/authenticate", body=body)

    serve = server(application, environ_of)
    best = {**json.loads(bare_line), **timed(serve, SCENARIOS[1:], args)}
    for scenario in SCENARIOS:
        print(
            f"{scenario:10} {best[scenario]:.3f} ms CPU per request (in-process), "
            f"{best['bare'] / best[scenario]:.2f} of the bare project, {best['ceiling'] / best[scenario]:.2f} of the ceiling"
        )
    print()
    print(bare_profile if args.scenario == "bare" else profiled(serve, args.scenario, args))


if __name__ == "__main__":
    main()
