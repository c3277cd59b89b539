"""Server CPU of a passkey sign-in beside a password login's, in-process.

    python -m bench.passkeys [--rounds 200] [--json]

The project's own settings (DEBUG off, the production Argon2id costs), a fresh SQLite database
in a temporary directory, and Django's test client calling the whole stack (middleware, DRF, the
services, the database) in this process. A passkey sign-in is its two requests, POST
/api/authenticate/passkey/options and POST /api/authenticate/passkey (the ES256 signature checked
by py_webauthn); a password login is POST /api/authenticate. Only the server's part is timed: the
software authenticator (tests/support/authenticator.py) signs each assertion outside the timing.
It prints the CPU time per sign-in (process time: user + system of this process, the median and
the mean over the rounds) and the ratio of the two. The rate limits are off, as in bench/run.py.

This is a measuring tool, not a test: it prints numbers and judges nothing.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


def configure(workdir: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="authserver.settings",
        DEBUG="false",
        SECRET_KEY="bench-passkeys-" + "k" * 50,
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        EMAIL_BACKEND="console",
        ALLOWED_HOSTS="testserver",
        SECURE_SSL_REDIRECT="false",
        TOKEN_ISSUER="http://localhost:8000",
        CLIENT_ORIGIN="http://localhost:3000",
        LOGIN_RATE="none",
        LOGIN_ADDRESS_RATE="none",
        LOGIN_ACCOUNT_RATE="none",
        SIGNUP_RATE="none",
        EMAIL_RATE="none",
    )
    for name in ("CACHE_URL", "WEBAUTHN_RP_ID", "WEBAUTHN_ORIGINS"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()


def timed(call) -> float:
    started = time.process_time()
    call()
    return time.process_time() - started


def measure(rounds: int) -> dict:
    from django.core import mail
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.utils import timezone

    from accounts.users.models import User
    from tests.support.authenticator import SoftPasskey

    setup_test_environment()  # the locmem email backend: no emails printed
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    now = timezone.now()
    user = User.objects.create_user(
        email="bench@example.com", password=PASSWORD, name="Bench", confirmed_at=now, email_verified_at=now
    )
    client = Client()
    token = client.post("/api/authenticate", {"email": user.email, "password": PASSWORD}, content_type="application/json").json()["token"]
    authenticator = SoftPasskey()
    options = client.post(
        "/api/passkeys/options", {"password": PASSWORD}, content_type="application/json", HTTP_AUTHORIZATION=token
    ).json()["options"]
    added = client.post(
        "/api/passkeys", {"credential": authenticator.create(options)}, content_type="application/json", HTTP_AUTHORIZATION=token
    )
    assert added.status_code == 200, added.content

    login_cpu, passkey_cpu = [], []
    for _ in range(rounds):
        answers = []
        login_cpu.append(
            timed(lambda: answers.append(client.post("/api/authenticate", {"email": user.email, "password": PASSWORD}, content_type="application/json")))
        )
        started: list = []
        first = timed(lambda: started.append(client.post("/api/authenticate/passkey/options", {}, content_type="application/json")))
        body = started[0].json()
        credential = authenticator.get(body["options"])  # the authenticator's work: not timed
        second = timed(
            lambda: answers.append(
                client.post(
                    "/api/authenticate/passkey",
                    {"ceremony": body["ceremony"], "credential": credential},
                    content_type="application/json",
                )
            )
        )
        passkey_cpu.append(first + second)
        assert all(answer.status_code == 200 for answer in answers), [answer.content for answer in answers]
        mail.outbox.clear()

    def summary(values: list[float]) -> dict:
        return {"median_ms": statistics.median(values) * 1e3, "mean_ms": statistics.fmean(values) * 1e3}

    login, passkey = summary(login_cpu), summary(passkey_cpu)
    return {
        "rounds": rounds,
        "password_login": login,
        "passkey_sign_in": passkey,
        "ratio_median": passkey["median_ms"] / login["median_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        configure(Path(workdir))
        result = measure(args.rounds)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['rounds']} rounds, server CPU per sign-in (median / mean):")
    for label, key in (("password login (Argon2id)", "password_login"), ("passkey sign-in (2 requests)", "passkey_sign_in")):
        print(f"  {label:30} {result[key]['median_ms']:7.2f} ms / {result[key]['mean_ms']:7.2f} ms")
    print(f"  passkey / password (medians): {result['ratio_median']:.2f}")


if __name__ == "__main__":
    main()
