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
whole table with an auth token each, the password, and the query plans of the login lookup by
email and of the token check's lookup by primary key.
"""

import argparse
import json
import os
import random
import sys
import time

import dj_database_url
import django

PASSWORD = "bench horse battery staple"
COLUMNS = (
    "id",
    "password",
    "last_login",
    "is_superuser",
    "email",
    "name",
    "is_staff",
    "is_active",
    "date_joined",
    "confirmed_at",
    "deactivated_at",
    "tokens_valid_after",
)


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

    def rows():
        for number in range(1, users + 1):
            yield (
                number,
                password_hash,
                None,
                False,
                email_of(number),
                f"Bench User {number}",
                False,
                True,
                when,
                when,
                None,
                when,
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
    parser.add_argument("--reseed", action="store_true", help="seed even if the database holds this size")
    parser.add_argument("--out", help="write the JSON description here instead of stdout")
    args = parser.parse_args(argv)

    config = database_prepare()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from django.contrib.auth.hashers import check_password, get_hasher, make_password
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import User
    from accounts.tokens.auth import auth_token_issue

    call_command("migrate", verbosity=0, interactive=False)
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
    emails = dict(User.objects.filter(pk__in=ids).values_list("pk", "email"))
    sample = [[pk, emails[pk], auth_token_issue(user=User(pk=pk), remember=False)] for pk in ids]

    probe_id, probe_email = sample[len(sample) // 2][:2]
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
        "plans": {
            "login: User.objects.with_email(email).first()": explain(
                User.objects.with_email(probe_email.upper()).order_by("pk")[:1]
            ),
            "read and refresh: the token's user by primary key": explain(User.objects.filter(pk=probe_id)),
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
