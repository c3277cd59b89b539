"""Seed a benchmark database with N confirmed users, fast, and describe it for bench/run.py.

    DJANGO_SETTINGS_MODULE=bench.settings DEBUG=false SECRET_KEY=... EMAIL_BACKEND=console DATABASE_URL=... \
        python -m bench.seed --users 1000000 [--sample 1000] [--out sample.json]

The database in DATABASE_URL is created if missing (PostgreSQL), migrated and filled with users
`user0000001@bench.example` ... all sharing one password hashed once (Argon2id with the
configured ARGON2_* costs): PostgreSQL's COPY, or one SQLite transaction of plain inserts, so a
million users take seconds rather than the hours a million hashes would. A marker table
(`bench_seed`) remembers what was seeded, so that a later run with the same size reuses the
database. The benchmark wipes its database: its name must contain "bench".

It then prints (or writes to --out) a JSON description: a random sample of users spread over the
whole table, each with an open session and its auth token (as a login would make them), the
password, the credentials of a resource server registered for the introspection and
client_credentials scenarios (`bench`, given a new secret on every run, since a secret is shown
only once), and the query plans of the login's lookup by email and of the token check's lookup of
the session and its user.

For the OpenID provider's scenarios it registers a first-party confidential app (`bench-app`,
client_create, anew on every run: its former grants and tokens go with it) and signs each sampled
user's session in to a browser (Django's test Client, signed in by browser_sign_in as the hosted
sign-in page does once the password is checked: a password hash per user would cost a minute per
thousand). Each browser then goes through the real flow, /oauth/authorize (code + PKCE S256, no
consent for a first-party app) and /oauth/token: every other sampled user for an access token of
`openid profile email` (the userinfo scenario; OIDC_ACCESS_TOKEN_LIFETIME is set to a day in the
seeder's environment by bench/run.py), the others, several times over if --refresh-tokens asks
for more, for a refresh token (`offline_access`; the refresh_token scenario spends each once).
"""

import argparse
import base64
import hashlib
import json
import os
import random
import secrets
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import dj_database_url
import django

PASSWORD = "bench horse battery staple"
COLUMNS = (
    "id",
    "password",
    "last_login",
    "is_superuser",
    "email",
    "email_normalized",
    "public_id",
    "name",
    "is_staff",
    "is_active",
    "date_joined",
    "confirmed_at",
    "deactivated_at",
)
RESOURCE_SERVER = "bench"
APP = "bench-app"
APP_REDIRECT_URI = "http://127.0.0.1/bench/callback"
USERINFO_SCOPE = "openid profile email"
REFRESH_SCOPE = "openid profile email offline_access"


def secret_key() -> str:
    """Return the benchmark's SECRET_KEY, made once and kept in bench/results/secret_key.

    The signing keys' private parts are stored encrypted under SECRET_KEY, so every process that
    uses a benchmark database (the seeder, the server, bench/profile.py) needs the same one, run
    after run, or a reused database's keys could not be read.
    """
    path = Path(__file__).resolve().parent / "results" / "secret_key"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


def email_of(number: int) -> str:
    return f"user{number:07d}@bench.example"


def database_prepare() -> dict:
    """Check that the database is a benchmark one; create it (PostgreSQL) if it does not exist."""
    config = dj_database_url.parse(os.environ["DATABASE_URL"])
    name = str(config["NAME"])
    if "bench" not in os.path.basename(name):
        sys.exit(
            f"bench.seed: refusing to use database {name!r}: its name must contain 'bench' (it is wiped)."
        )
    if config["ENGINE"] == "django.db.backends.postgresql":
        import psycopg

        with psycopg.connect(
            dbname="postgres",
            user=config.get("USER") or None,
            password=config.get("PASSWORD") or None,
            host=config.get("HOST") or None,
            port=config.get("PORT") or None,
            autocommit=True,
        ) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
    return config


def seeded_users(connection) -> int | None:
    """Return the size the marker table records, or None if the database was never seeded."""
    with connection.cursor() as cursor:
        if "bench_seed" not in connection.introspection.table_names(cursor):
            return None
        cursor.execute("SELECT users FROM bench_seed")
        row = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM accounts_user")
        (count,) = cursor.fetchone()
    return row[0] if row and row[0] == count else None


def users_insert(connection, users: int, password_hash: str) -> None:
    """Insert users 1..N with ids 1..N, in one transaction, by COPY or by executemany."""
    from django.db import transaction
    from django.utils import timezone

    now = timezone.now()
    vendor = connection.vendor
    when = connection.ops.adapt_datetimefield_value(now) if vendor == "sqlite" else now
    rng = random.Random(users)

    def rows():
        for number in range(1, users + 1):
            public_id = uuid.UUID(bytes=rng.randbytes(16), version=4)
            yield (
                number,
                password_hash,
                None,
                False,
                email_of(number),
                email_of(number),  # already in normal form (lower case ASCII)
                public_id.hex if vendor == "sqlite" else public_id,  # Django's UUIDField on SQLite: char(32)
                f"Bench User {number}",
                False,
                True,
                when,
                when,
                None,
            )

    with transaction.atomic():
        with connection.cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute("TRUNCATE accounts_user RESTART IDENTITY CASCADE")
                raw = connection.connection.cursor()
                with raw.copy(f"COPY accounts_user ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for row in rows():
                        copy.write_row(row)
                cursor.execute("SELECT setval(pg_get_serial_sequence('accounts_user', 'id'), %s)", [users])
            else:
                cursor.execute("DELETE FROM accounts_user")
                placeholders = ", ".join("?" * len(COLUMNS))
                connection.connection.executemany(
                    f"INSERT INTO accounts_user ({', '.join(COLUMNS)}) VALUES ({placeholders})", rows()
                )
            cursor.execute("DROP TABLE IF EXISTS bench_seed")
            cursor.execute("CREATE TABLE bench_seed (users bigint NOT NULL)")
            cursor.execute("INSERT INTO bench_seed (users) VALUES (%s)", [users])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def signing_keys_check() -> None:
    """Make sure the signing keys can be read under this SECRET_KEY; if not (a database seeded
    under another one), replace them: tokens are minted afresh on every run anyway."""
    from accounts.keys.models import SigningKey
    from accounts.keys.keyring import keyring
    from core.vault import SecretUnreadable

    try:
        keyring.keyset()
    except SecretUnreadable:
        SigningKey.objects.all().delete()
        keyring.forget()
        keyring.keyset()


def basic(client_id: str, secret: str) -> str:
    """Return the HTTP Basic Authorization header of a client (client_secret_basic)."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def browser_signed_in(session):
    """Return a browser (Django's test Client) signed in with this server session, as the hosted
    sign-in page signs one in (accounts.sessions.browser.browser_sign_in) once the password is checked."""
    from importlib import import_module

    from django.conf import settings
    from django.http import HttpRequest
    from django.test import Client as Browser

    from accounts.sessions.browser import browser_sign_in

    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()
    browser_sign_in(request, session=session)
    request.session.save()
    browser = Browser(HTTP_HOST="127.0.0.1")
    browser.cookies[settings.SESSION_COOKIE_NAME] = request.session.session_key
    return browser


def code_flow(browser, *, client_id: str, authorization: str, scope: str) -> dict:
    """Run the authorization code flow with PKCE (S256) in a signed-in browser, for a first-party
    app (no consent page); return the token endpoint's answer."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(12)
    response = browser.get(
        "/oauth/authorize",
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": APP_REDIRECT_URI,
            "scope": scope,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    location = response.get("Location", "")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    if response.status_code != 302 or not location.startswith(APP_REDIRECT_URI) or query.get("state") != [state] or "code" not in query:
        sys.exit(f"bench.seed: /oauth/authorize answered {response.status_code} {location or response.content[:300]!r}")
    response = browser.post(
        "/oauth/token",
        {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": APP_REDIRECT_URI, "code_verifier": verifier},
        HTTP_AUTHORIZATION=authorization,
    )
    if response.status_code != 200:
        sys.exit(f"bench.seed: /oauth/token answered {response.status_code} {response.content[:300]!r}")
    return response.json()


def oauth_tokens(sessions: list, refresh_tokens: int) -> dict:
    """Register the benchmark's app and get, through /oauth/authorize and /oauth/token, access
    tokens for every other sampled user and `refresh_tokens` refresh tokens from the others."""
    from accounts.clients.models import Client
    from accounts.clients.services import client_create

    Client.objects.filter(name=APP).delete()
    app, secret = client_create(name=APP, redirect_uris=[APP_REDIRECT_URI], first_party=True, scopes=REFRESH_SCOPE)
    authorization = basic(app.client_id, secret)
    started = time.perf_counter()
    browsers = [(user_id, browser_signed_in(session)) for user_id, session in sessions]
    userinfo = []
    for user_id, browser in browsers[0::2]:
        answer = code_flow(browser, client_id=app.client_id, authorization=authorization, scope=USERINFO_SCOPE)
        userinfo.append([user_id, answer["access_token"]])
    refresh = []
    holders = browsers[1::2] or browsers
    while len(refresh) < refresh_tokens:
        _user_id, browser = holders[len(refresh) % len(holders)]
        answer = code_flow(browser, client_id=app.client_id, authorization=authorization, scope=REFRESH_SCOPE)
        if "refresh_token" not in answer:
            sys.exit(f"bench.seed: no refresh token for {REFRESH_SCOPE!r}: {sorted(answer)}")
        refresh.append(answer["refresh_token"])
    return {
        "client": {"client_id": app.client_id, "client_secret": secret},
        "userinfo": userinfo,
        "refresh_tokens": refresh,
        "seconds": time.perf_counter() - started,
    }


def explain(queryset) -> str:
    """Return the database's plan for the query (PostgreSQL: with actual times and buffers)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return queryset.explain(analyze=True, buffers=True)
    return queryset.explain()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, required=True, help="number of users in the table")
    parser.add_argument(
        "--sample", type=int, default=1000, help="users to sample for the load (default 1000)"
    )
    parser.add_argument(
        "--refresh-tokens",
        type=int,
        help="refresh tokens to get for the refresh_token scenario (default: one per other sampled user)",
    )
    parser.add_argument("--reseed", action="store_true", help="seed even if the database holds this size")
    parser.add_argument("--out", help="write the JSON description here instead of stdout")
    args = parser.parse_args(argv)

    config = database_prepare()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from django.contrib.auth.hashers import check_password, get_hasher, make_password
    from django.core.management import call_command
    from django.db import connection

    from accounts.clients.models import Client
    from accounts.sessions.models import Session
    from accounts.users.models import User
    from accounts.clients.services import resource_server_create
    from accounts.sessions.services import session_open
    from accounts.sessions.tokens import auth_token_issue

    call_command("migrate", verbosity=0, interactive=False)
    signing_keys_check()
    seed_seconds = None
    if args.reseed or seeded_users(connection) != args.users:
        started = time.perf_counter()
        users_insert(connection, args.users, make_password(PASSWORD))
        seed_seconds = time.perf_counter() - started
    stored = User.objects.order_by("pk").values_list("password", flat=True).first()
    if get_hasher().must_update(stored) or not check_password(PASSWORD, stored):
        # The ARGON2_* costs changed since the seeding: give every user a hash with the current
        # ones, or each login would measure a rehash.
        User.objects.update(password=make_password(PASSWORD))
        stored = User.objects.order_by("pk").values_list("password", flat=True).first()

    rng = random.Random(args.users)
    ids = sorted(rng.sample(range(1, args.users + 1), min(args.sample, args.users)))
    sample, sessions = [], []
    for user in User.objects.filter(pk__in=ids).order_by("pk"):
        session = session_open(user=user, remember=False, amr=["pwd"], user_agent="bench", client_address="127.0.0.1")
        sample.append([user.pk, user.email, auth_token_issue(session=session, user=user, now=session.created_at)])
        sessions.append((user.pk, session))
    Client.objects.filter(name=RESOURCE_SERVER).delete()
    client, client_secret = resource_server_create(name=RESOURCE_SERVER)
    refresh_tokens = args.refresh_tokens if args.refresh_tokens is not None else max(1, len(sessions) // 2)
    oauth = oauth_tokens(sessions, refresh_tokens)

    probe_id, probe_email = sample[len(sample) // 2][:2]
    probe_session = Session.objects.filter(user_id=probe_id).values_list("public_id", flat=True).last()
    description = {
        "users": args.users,
        "seed_seconds": seed_seconds,
        "vendor": connection.vendor,
        "database": str(config["NAME"]),
        "password": PASSWORD,
        "password_hash_params": stored.split("$")[3]
        if stored.startswith("argon2$")
        else stored.split("$")[0],
        "sample": sample,
        "client": {"client_id": str(client.client_id), "client_secret": client_secret},
        "oauth": oauth,
        "plans": {
            "login: User.objects.with_email(email).first()": explain(
                User.objects.with_email(probe_email.upper()).order_by("pk")[:1]
            ),
            "read, refresh and introspection: the token's session and its user": explain(
                Session.objects.select_related("user").filter(public_id=probe_session).order_by()
            ),
        },
    }
    text = json.dumps(description)
    if args.out:
        with open(args.out, "w") as file:
            file.write(text)
    else:
        print(text)
    return description


if __name__ == "__main__":
    main()
