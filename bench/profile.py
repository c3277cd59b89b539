"""Profile one scenario of the benchmark in-process: the WSGI application, no gunicorn, no network.

    DATABASE_URL=sqlite:///bench/results/bench_1000.sqlite3 python -m bench.profile read [--requests 5000]

Seed the database first (python -m bench.run --quick does). It calls the same WSGI application
gunicorn serves (bench settings, DEBUG off) with the requests bench/run.py sends, prints the
CPU time per request of each scenario (ceiling, read, refresh, login), then a cProfile of the
named scenario: where the time goes beyond the ceiling's.
"""

import argparse
import cProfile
import io
import os
import pstats
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["ceiling", "read", "refresh", "login"])
    parser.add_argument("--requests", type=int, default=5000, help="requests per scenario (login: a tenth)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (the best counts)")
    parser.add_argument("--top", type=int, default=30, help="lines of the profile to print")
    args = parser.parse_args()

    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    from accounts.models import User
    from accounts.services.sessions import session_open
    from accounts.tokens.auth import auth_token_issue
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

    def make(scenario: str, index: int) -> dict:
        pk, email = users[index % len(users)]
        token = tokens[index % len(users)]
        if scenario == "ceiling":
            return environ("GET", f"/api/bench/ceiling/{pk}")
        if scenario == "read":
            return environ("GET", "/api/user", token)
        if scenario == "refresh":
            return environ("GET", "/api/authenticate", f"Bearer {token}")
        body = urllib.parse.urlencode({"email": email, "password": PASSWORD}).encode()
        return environ("POST", "/api/authenticate", body=body)

    def serve(scenario: str, count: int) -> None:
        statuses = []
        for index in range(count):
            response = application(
                make(scenario, index), lambda status, headers, exc_info=None: statuses.append(status)
            )
            b"".join(response)
            response.close()
        if any(not status.startswith("200") for status in statuses):
            raise SystemExit(f"{scenario}: {sorted(set(statuses))}")

    scenarios = ("ceiling", "read", "refresh", "login")
    for scenario in scenarios:
        serve(scenario, min(args.requests // 10 if scenario == "login" else args.requests, 200))  # warm up
    # Interleaved rounds; the fastest round of each scenario is the least disturbed by the machine.
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for scenario in scenarios:
            count = args.requests // 10 if scenario == "login" else args.requests
            started = time.process_time()
            serve(scenario, count)
            per_request = 1000 * (time.process_time() - started) / count
            best[scenario] = min(best.get(scenario, per_request), per_request)
    for scenario in scenarios:
        ratio = best["ceiling"] / best[scenario]
        print(f"{scenario:8} {best[scenario]:.3f} ms CPU per request (in-process), {ratio:.2f} of the ceiling")

    profiler = cProfile.Profile()
    count = args.requests // 10 if args.scenario == "login" else args.requests
    profiler.enable()
    serve(args.scenario, count)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
