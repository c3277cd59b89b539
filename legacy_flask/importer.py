"""Moving users over from the Flask server: python manage.py import_flask_users.

The Flask server's database is read through a plain connection of its own (sqlite3 or psycopg,
read-only), never through Django's DATABASES, in batches of users in id order. Each batch is
written here in one transaction, each user in a savepoint of it, so that one bad row fails alone.
An email already here (in any case) is skipped, which makes a second run import nothing.
"""

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import psycopg
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.passwords.credentials import timing_hashes_forget
from accounts.users.models import User, email_normalize
from legacy_flask.hashers import FlaskSecurityPasswordHasher, flask_hash_refusal

# What is read of the Flask server's schema (Flask-Security's SQLAlchemy models). `user` is a
# reserved word in PostgreSQL, so every name is quoted.
FLASK_TABLES = {
    "user": ("id", "email", "password_hash", "active", "confirmed_at", "profile_id"),
    "profile": ("id", "name"),
    "role": ("id", "name", "description"),
    "roles_users": ("user_id", "role_id"),
}
DEFAULT_BATCH_SIZE = 500


class FlaskImportError(Exception):
    """The Flask server's database cannot be read: a bad URL, no connection, a missing table."""


@dataclass
class FlaskUser:
    """One row of the Flask server's `user` table, with its profile's name and its roles."""

    id: int
    email: str | None
    password_hash: str | None
    active: bool | None
    confirmed_at: datetime | str | None
    name: str | None
    roles: list[str] = field(default_factory=list)


@dataclass
class FlaskImportReport:
    imported: int = 0
    skipped: int = 0
    failed: int = 0
    # Emails imported without a usable password (no hash, or one refused: flask_hash_refusal).
    unusable: list[str] = field(default_factory=list)
    groups_created: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return f"imported {self.imported}, skipped {self.skipped}, failed {self.failed}"


# --- Reading the Flask server's database ------------------------------------------------------


def _redacted(url: str) -> str:
    """Return the URL without its password, fit for a message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class FlaskDatabase:
    """A read-only connection to the Flask server's database (SQLite or PostgreSQL)."""

    def __init__(self, url: str):
        try:
            config = dj_database_url.parse(url)
        except ValueError as exc:  # dj-database-url's UnknownSchemeError among others
            raise FlaskImportError(
                f"Cannot read the database URL {_redacted(url)!r}: use postgres://user:password@host:port/name "
                "or sqlite:////absolute/path/to/file.db"
            ) from exc
        engine = config["ENGINE"]
        try:
            if engine == "django.db.backends.sqlite3":
                self.placeholder = "?"
                self.connection = self._sqlite(config["NAME"])
            elif engine == "django.db.backends.postgresql":
                self.placeholder = "%s"
                self.connection = self._postgresql(config)
            else:
                raise FlaskImportError(
                    f"The Flask database must be PostgreSQL or SQLite, not {urlsplit(url).scheme}:// "
                    f"({_redacted(url)})"
                )
        except (sqlite3.Error, psycopg.Error) as exc:
            raise FlaskImportError(f"Cannot connect to the Flask database {_redacted(url)}: {exc}") from exc
        self.url = url

    @staticmethod
    def _sqlite(name: str) -> sqlite3.Connection:
        if not name or name == ":memory:":
            raise FlaskImportError("The SQLite URL names no file: sqlite:////absolute/path/to/file.db")
        path = Path(name).expanduser().resolve()
        if not path.is_file():
            raise FlaskImportError(f"No SQLite file at {path}")
        # Read-only: this connection never writes, and never creates a file.
        return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)

    @staticmethod
    def _postgresql(config: dict) -> psycopg.Connection:
        parameters = {
            "dbname": config["NAME"],
            "user": config["USER"],
            "password": config["PASSWORD"],
            "host": config["HOST"],
            "port": config["PORT"],
            "connect_timeout": 10,
            **config.get("OPTIONS", {}),
        }
        # Read-only: this connection never writes.
        parameters["options"] = f"{parameters.get('options', '')} -c default_transaction_read_only=on".strip()
        return psycopg.connect(
            **{name: value for name, value in parameters.items() if value not in ("", None)}, autocommit=True
        )

    def rows(self, query: str, parameters: tuple = ()) -> list[tuple]:
        """Run one query (placeholders written `{}`) and return its rows."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(query.replace("{}", self.placeholder), parameters)
            return cursor.fetchall()
        finally:
            cursor.close()

    def check_schema(self) -> None:
        """Raise FlaskImportError naming the first table or column of FLASK_TABLES missing."""
        for table, columns in FLASK_TABLES.items():
            # Qualified names: SQLite reads an unknown bare "name" as a string, not as an error.
            names = ", ".join(f't."{column}"' for column in columns)
            try:
                self.rows(f'SELECT {names} FROM "{table}" t WHERE 1 = 0')
            except (sqlite3.Error, psycopg.Error) as exc:
                raise FlaskImportError(
                    f'Cannot read table "{table}" ({", ".join(columns)}) of the Flask database '
                    f"{_redacted(self.url)}: {str(exc).strip()}"
                ) from exc

    def user_count(self) -> int:
        return self.rows('SELECT COUNT(*) FROM "user"')[0][0]

    def user_batches(self, batch_size: int) -> Iterator[list[FlaskUser]]:
        """Yield the users in id order, `batch_size` at a time, each with its roles."""
        last_id = None
        while True:
            where = 'WHERE u."id" > {}' if last_id is not None else ""
            rows = self.rows(
                'SELECT u."id", u."email", u."password_hash", u."active", u."confirmed_at", p."name" '
                f'FROM "user" u LEFT JOIN "profile" p ON p."id" = u."profile_id" {where} '
                'ORDER BY u."id" LIMIT {}',
                (last_id, batch_size) if last_id is not None else (batch_size,),
            )
            if not rows:
                return
            users = {row[0]: FlaskUser(*row) for row in rows}
            first_id, last_id = rows[0][0], rows[-1][0]
            for user_id, role in self.rows(
                'SELECT ru."user_id", r."name" FROM "roles_users" ru JOIN "role" r ON r."id" = ru."role_id" '
                'WHERE ru."user_id" >= {} AND ru."user_id" <= {} ORDER BY ru."user_id", r."name"',
                (first_id, last_id),
            ):
                if user_id in users and role is not None:
                    users[user_id].roles.append(role)
            yield list(users.values())

    def close(self) -> None:
        self.connection.close()


# --- Mapping a Flask user to one here ---------------------------------------------------------


class _Failure(Exception):
    """A row that cannot be imported, with the reason."""


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return str(value).strip()


def _aware(value: datetime | str | None) -> datetime | None:
    """Return the Flask timestamp as an aware datetime; SQLAlchemy stored UTC without a zone."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise _Failure(f"confirmed_at {value!r} is not a date and time") from exc
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


def _password_from(flask_hash: str | None) -> tuple[str | None, str]:
    """Return the password field for a Flask hash, or (None, why it is refused).

    Refused: no hash, a hash the server cannot check, or whose costs are out of bounds, or that
    fails a probe check (legacy_flask.hashers.flask_hash_refusal), or one too long to store.
    """
    if not flask_hash:
        return None, "it has no password hash"
    refusal = flask_hash_refusal(flask_hash)
    if refusal is not None:
        return None, refusal
    password = f"{FlaskSecurityPasswordHasher.algorithm}${flask_hash}"
    if len(password) > User._meta.get_field("password").max_length:
        return None, "its hash is longer than the password column holds"
    return password, ""


def _user_from(row: FlaskUser, *, now: datetime) -> tuple[User, str]:
    """Return the unsaved user for a Flask row, and why it has no usable password ("" if it has
    one); raise _Failure if it cannot be one."""
    if row.email is None or not _text(row.email):
        raise _Failure("no email")
    password, refusal = _password_from(_text(row.password_hash) if row.password_hash else None)
    user = User(
        email=_text(row.email),
        name=_text(row.name) if row.name is not None else "",
        confirmed_at=_aware(row.confirmed_at),
        # The Flask server confirmed the address it still holds.
        email_verified_at=_aware(row.confirmed_at),
        # Flask-Security refused a login for any false `active`, NULL included.
        deactivated_at=None if row.active else now,
        date_joined=now,
    )
    user.email_normalized = email_normalize(user.email)
    if password is None:
        user.set_unusable_password()
    else:
        user.password = password
    try:
        user.clean_fields(exclude=["password", "last_login"])
    except ValidationError as exc:
        raise _Failure(
            "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items())
        ) from exc
    too_long = [role for role in row.roles if len(role) > Group._meta.get_field("name").max_length]
    if too_long:
        raise _Failure(f"role name too long for a group: {too_long[0]!r}")
    return user, refusal


# --- The import -------------------------------------------------------------------------------


def flask_users_import(
    *,
    url: str,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    report_line: Callable[[str], None] = lambda line: None,
    report_progress: Callable[[str], None] = lambda line: None,
) -> FlaskImportReport:
    """Create here each user of the Flask server's database at `url` that is not here yet.

    `report_line` receives a line per skip, failure, user without a usable password and group
    created; `report_progress` a line per batch when there is more than one. With `dry_run`,
    nothing is written and the report is that of a real run.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    database = FlaskDatabase(url)
    try:
        database.check_schema()
        total = database.user_count()
        report = FlaskImportReport()
        groups: dict[str, Group | None] = {}
        seen: set[str] = set()  # normalized emails of this run, for a dry run and for duplicates
        done = 0
        for batch in database.user_batches(batch_size):
            _import_batch(batch, report=report, groups=groups, seen=seen, dry_run=dry_run, report_line=report_line)
            done += len(batch)
            if total > batch_size:
                report_progress(
                    f"{done}/{total} users read: imported {report.imported}, "
                    f"skipped {report.skipped}, failed {report.failed}"
                )
    except (sqlite3.Error, psycopg.Error) as exc:
        raise FlaskImportError(f"Reading the Flask database failed: {str(exc).strip()}") from exc
    finally:
        database.close()
    if report.imported and not dry_run:
        # Failed logins now run the Flask hasher too, in every worker (equal timing).
        timing_hashes_forget()
    return report


def _group(
    name: str,
    *,
    groups: dict[str, Group | None],
    report: FlaskImportReport,
    dry_run: bool,
    report_line: Callable[[str], None],
) -> Group | None:
    """Return the group of this name, created if missing (in a dry run: None, if it would be)."""
    if name not in groups:
        group = Group.objects.filter(name=name).first()
        if group is None:
            group = None if dry_run else Group.objects.create(name=name)
            report.groups_created.append(name)
            report_line(f"group {name!r} created")
        groups[name] = group
    return groups[name]


def _import_batch(
    batch: list[FlaskUser],
    *,
    report: FlaskImportReport,
    groups: dict[str, Group | None],
    seen: set[str],
    dry_run: bool,
    report_line: Callable[[str], None],
) -> None:
    """Import one batch in one transaction, each user in a savepoint of it (a dry run: none)."""
    now = timezone.now()
    emails = {email_normalize(_text(row.email)) for row in batch if row.email is not None}
    present = set(User.objects.filter(email_normalized__in=emails).values_list("email_normalized", flat=True))
    with nullcontext() if dry_run else transaction.atomic():
        for row in batch:
            label = f"user {row.id} ({_text(row.email) if row.email is not None else 'no email'})"
            try:
                user, refusal = _user_from(row, now=now)
            except _Failure as exc:
                report.failed += 1
                report_line(f"failed {label}: {exc}")
                continue
            email = user.email_normalized
            if email in present or email in seen:
                report.skipped += 1
                report_line(f"skipped {label}: an account with this email is already here")
                continue
            user_groups = [
                _group(name, groups=groups, report=report, dry_run=dry_run, report_line=report_line)
                for name in row.roles
            ]
            if not dry_run:
                try:
                    with transaction.atomic():
                        user.save()
                        user.groups.add(*user_groups)
                except IntegrityError as exc:
                    if User.objects.with_email(user.email).exists():
                        # Created here meanwhile: a registration during the import, in any case.
                        report.skipped += 1
                        report_line(f"skipped {label}: an account with this email is already here")
                    else:
                        report.failed += 1
                        report_line(f"failed {label}: {exc}")
                    continue
            seen.add(email)
            report.imported += 1
            if not user.has_usable_password():
                report.unusable.append(user.email)
                report_line(f"no usable password for {label}: {refusal} (a recovery email sets one)")
