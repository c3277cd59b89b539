"""The Flask server's side, for the import tests: its schema, its rows, its password hashes.

Hashes are made here as Flask-Security made them, without the code under test: base64 of
HMAC-SHA512 of the password keyed with SECURITY_PASSWORD_SALT, then passlib's scheme (libpass),
at low costs so that the tests stay fast.
"""

import base64
import hashlib
import hmac
import sqlite3
from datetime import datetime

import passlib.hash
import psycopg

FLASK_SALT = "the Flask app's SECURITY_PASSWORD_SALT"

# Low costs: only the scheme matters here.
LOW_COSTS = {
    "bcrypt": {"rounds": 4},
    "sha512_crypt": {"rounds": 1000},
    "sha256_crypt": {"rounds": 1000},
    "pbkdf2_sha512": {"rounds": 1000},
    "pbkdf2_sha256": {"rounds": 1000},
    "pbkdf2_sha1": {"rounds": 1000},
    "argon2": {"rounds": 1, "memory_cost": 1024, "parallelism": 1},
    "bcrypt_sha256": {"rounds": 4},
    "scrypt": {"rounds": 4},
    "sha1_crypt": {"rounds": 1000},
    "md5_crypt": {},
}


def flask_signed(password: str, salt: str = FLASK_SALT) -> str:
    """Return Flask-Security's get_hmac(password): always 88 characters."""
    return base64.b64encode(hmac.new(salt.encode(), password.encode(), hashlib.sha512).digest()).decode("ascii")


def flask_hash(password: str, scheme: str = "bcrypt", *, salt: str = FLASK_SALT) -> str:
    """Return the hash Flask-Security's hash_password(password) stored with this scheme."""
    signed = flask_signed(password, salt)
    handler = getattr(passlib.hash, scheme).using(**LOW_COSTS[scheme])
    if scheme == "bcrypt":
        # The old passlib (with bcrypt before 5.0) cut the 88 characters to bcrypt's 72 bytes
        # silently; libpass with bcrypt 5 refuses them, so the cut is made as it was then.
        return handler.hash(signed[:72])
    return handler.hash(signed)


def unusable_hashes() -> dict[str, str]:
    """Hashes that parse as Flask-Security's but that no login may check: each name says why."""
    bcrypt_hash = flask_hash("correct horse battery", "bcrypt")
    return {
        # Well formed: 2**31 rounds, a worker busy for days at each check.
        "bcrypt cost 31": bcrypt_hash.replace("$04$", "$31$", 1),
        # The salt's last character leaves padding bits set: bcrypt raises "Invalid salt".
        "bcrypt salt padding": bcrypt_hash[:28] + "/" + bcrypt_hash[29:],
        "bcrypt_sha256 cost 31": flask_hash("pw", "bcrypt_sha256").replace(",r=4$", ",r=31$", 1),
        # hashlib raises OverflowError.
        "pbkdf2_sha512 4e9 rounds": flask_hash("pw", "pbkdf2_sha512").replace("$1000$", "$4000000000$", 1),
        "pbkdf2_sha256 1e8 rounds": flask_hash("pw", "pbkdf2_sha256").replace("$1000$", "$100000000$", 1),
        # hashlib.scrypt raises ValueError (maxmem).
        "scrypt ln=30": flask_hash("pw", "scrypt").replace("ln=4,", "ln=30,", 1),
        "scrypt 512 MiB": flask_hash("pw", "scrypt").replace("ln=4,r=8,", "ln=19,r=8,", 1),
        # 6.4 s and 1 GiB a check.
        "argon2 m=1 GiB": flask_hash("pw", "argon2").replace("m=1024,", "m=1048576,", 1),
        "argon2 t=1000": flask_hash("pw", "argon2").replace(",t=1,", ",t=1000,", 1),
        "sha512_crypt 999999999 rounds": flask_hash("pw", "sha512_crypt").replace("rounds=1000$", "rounds=999999999$", 1),
    }

SCHEMA = {
    "sqlite": """
        CREATE TABLE role (id INTEGER PRIMARY KEY, name VARCHAR(80) UNIQUE, description VARCHAR(255));
        CREATE TABLE profile (id INTEGER PRIMARY KEY, name VARCHAR(255));
        CREATE TABLE "user" (
            id INTEGER PRIMARY KEY, email VARCHAR(255) UNIQUE, password_hash VARCHAR(255),
            active BOOLEAN, confirmed_at DATETIME, profile_id INTEGER REFERENCES profile (id)
        );
        CREATE TABLE roles_users (
            user_id INTEGER REFERENCES "user" (id), role_id INTEGER REFERENCES role (id)
        );
    """,
    "postgresql": """
        CREATE TABLE role (id SERIAL PRIMARY KEY, name VARCHAR(80) UNIQUE, description VARCHAR(255));
        CREATE TABLE profile (id SERIAL PRIMARY KEY, name VARCHAR(255));
        CREATE TABLE "user" (
            id SERIAL PRIMARY KEY, email VARCHAR(255) UNIQUE, password_hash VARCHAR(255),
            active BOOLEAN, confirmed_at TIMESTAMP WITHOUT TIME ZONE,
            profile_id INTEGER REFERENCES profile (id)
        );
        CREATE TABLE roles_users (
            user_id INTEGER REFERENCES "user" (id), role_id INTEGER REFERENCES role (id)
        );
    """,
}
DROP = 'DROP TABLE IF EXISTS roles_users; DROP TABLE IF EXISTS "user"; DROP TABLE IF EXISTS profile; DROP TABLE IF EXISTS role;'

CONFIRMED_AT = datetime(2023, 4, 5, 6, 7, 8, 901234)  # naive UTC, as SQLAlchemy stored it


class FlaskServerDatabase:
    """The Flask server's database, in SQLite (`path`) or PostgreSQL (`conninfo`)."""

    def __init__(self, *, url: str, sqlite_path: str | None = None, conninfo: str | None = None):
        self.url = url
        self.kind = "sqlite" if sqlite_path else "postgresql"
        if sqlite_path:
            self.connection = sqlite3.connect(sqlite_path)
            self.placeholder = "?"
        else:
            self.connection = psycopg.connect(conninfo, autocommit=True)
            self.placeholder = "%s"
        self.roles: dict[str, int] = {}

    def execute(self, query: str, parameters: tuple = ()):
        cursor = self.connection.cursor()
        cursor.execute(query.replace("{}", self.placeholder), parameters)
        row = cursor.fetchone() if cursor.description else None
        if self.kind == "sqlite":
            self.connection.commit()
        return row

    def script(self, text: str) -> None:
        for statement in filter(str.strip, text.split(";")):
            self.execute(statement)

    def create_schema(self) -> None:
        self.script(DROP)
        self.script(SCHEMA[self.kind])

    def add_role(self, name: str, description: str = "") -> int:
        if name not in self.roles:
            self.roles[name] = self.execute(
                "INSERT INTO role (name, description) VALUES ({}, {}) RETURNING id", (name, description)
            )[0]
        return self.roles[name]

    def add_user(
        self,
        email: str | None,
        password: str | None = "correct horse battery",
        *,
        scheme: str = "bcrypt",
        password_hash: str | None = None,
        active: bool | None = True,
        confirmed_at: datetime | str | None = CONFIRMED_AT,
        name: str | None = "Flask User",
        roles: tuple[str, ...] = (),
    ) -> int:
        """Insert a user as the Flask server had it; return its id."""
        if password_hash is None and password is not None:
            password_hash = flask_hash(password, scheme)
        profile_id = None
        if name is not None:
            profile_id = self.execute("INSERT INTO profile (name) VALUES ({}) RETURNING id", (name,))[0]
        if self.kind == "sqlite" and isinstance(confirmed_at, datetime):
            confirmed_at = confirmed_at.isoformat(" ")  # SQLAlchemy's text form in SQLite
        user_id = self.execute(
            'INSERT INTO "user" (email, password_hash, active, confirmed_at, profile_id) '
            "VALUES ({}, {}, {}, {}, {}) RETURNING id",
            (email, password_hash, active, confirmed_at, profile_id),
        )[0]
        for role in roles:
            self.execute(
                "INSERT INTO roles_users (user_id, role_id) VALUES ({}, {})", (user_id, self.add_role(role))
            )
        return user_id

    def close(self) -> None:
        self.connection.close()
