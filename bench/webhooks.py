"""What a subscribed webhook endpoint costs registration (POST /api/user), in process.

    python -m bench.webhooks                            # SQLite in a temporary directory
    python -m bench.webhooks --requests 300 --rounds 5 --argon2
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/authserver_bench_webhooks python -m bench.webhooks

It migrates a fresh database (SQLite in a temporary directory, or DATABASE_URL's, which must be
a database of its own: the run deletes its users and endpoints), then registers users through the
API with DRF's test client, in rounds that alternate between no endpoint and one endpoint
subscribed to every type (what a round costs is measured on the same warm process), and prints
per scenario the registrations per second (median of the rounds), the time per registration, and
its database statements (INSERTs apart). The email goes to Django's in-memory backend and the
rate limits are off. Passwords are hashed with MD5 unless --argon2: Argon2id's ~35 ms would hide
the few hundred microseconds an event costs (a real registration pays both).

This is a measuring tool, not a test: the suite holds the statement count
(tests/webhooks/test_events.py); this shows the time.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def _setup(database_url: str | None, workdir: Path, argon2: bool) -> None:
    from authserver.env import use_development_defaults

    use_development_defaults()
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{workdir / 'db.sqlite3'}"
    os.environ.update(SIGNUP_RATE="none", EMAIL_RATE="none", LOG_LEVEL="WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")
    import django
    from django.conf import settings

    django.setup()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ALLOWED_HOSTS = ["testserver"]
    if not argon2:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _round(client, prefix: str, count: int) -> tuple[float, int, int]:
    """Register `count` users; return (seconds, statements, INSERTs) for all of them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    password = "correct horse battery"
    statements = inserts = 0
    started = time.perf_counter()
    for n in range(count):
        with CaptureQueriesContext(connection) as queries:
            response = client.post(
                "/api/user",
                {"email": f"{prefix}{n}@example.com", "name": "Bench", "password": password, "confirm": password},
                format="json",
            )
        assert response.status_code == 200, response.content
        statements += len(queries.captured_queries)
        inserts += sum(1 for query in queries.captured_queries if query["sql"].lstrip().upper().startswith("INSERT"))
    return time.perf_counter() - started, statements, inserts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="registrations per scenario and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--argon2", action="store_true", help="hash with Argon2id, as production does")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        _setup(os.environ.get("DATABASE_URL"), Path(workdir), options.argon2)
        from django.core import mail
        from rest_framework.test import APIClient

        from accounts.users.models import User
        from accounts.webhooks import services as webhooks
        from accounts.webhooks.models import Endpoint, Event
        from accounts.webhooks.events import subscriptions

        User.objects.all().delete()
        Endpoint.objects.all().delete()
        client = APIClient()
        results: dict[str, list[tuple[float, int, int]]] = {"no endpoint": [], "one endpoint": []}
        _round(client, "warm", 20)
        for number in range(options.rounds):
            for scenario in results:
                Endpoint.objects.all().delete()
                if scenario == "one endpoint":
                    webhooks.endpoint_add(url="http://127.0.0.1:9/bench")
                subscriptions.forget()
                results[scenario].append(_round(client, f"r{number}{scenario[0]}", options.requests))
                mail.outbox.clear()
        print(f"{options.requests} registrations x {options.rounds} rounds, {'Argon2id' if options.argon2 else 'MD5'}, "
              f"{os.environ['DATABASE_URL'].split(':')[0]}; {Event.objects.count()} events written")
        print(f"{'scenario':<14} {'req/s':>8} {'ms/req':>8} {'statements':>11} {'INSERTs':>8}")
        for scenario, rounds in results.items():
            rate = statistics.median(options.requests / seconds for seconds, _s, _i in rounds)
            statements = rounds[0][1] / options.requests
            inserts = rounds[0][2] / options.requests
            print(f"{scenario:<14} {rate:>8.0f} {1000 / rate:>8.2f} {statements:>11.1f} {inserts:>8.1f}")
        User.objects.all().delete()
        Endpoint.objects.all().delete()


if __name__ == "__main__":
    main()
