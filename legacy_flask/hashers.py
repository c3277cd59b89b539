"""The Flask server's password hashes (python manage.py import_flask_users), checked until the
first login rehashes them with Argon2id.

The one module of ours that calls bcrypt and libpass (the `passlib` package).
"""

import base64
import functools
import hashlib
import hmac
import logging
import re
import secrets
import time

import bcrypt
from django.conf import settings
from django.contrib.auth.hashers import BasePasswordHasher, mask_hash
from passlib.context import CryptContext

_FLASK_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
# The schemes libpass checks for us: Flask-Security's list (bcrypt aside, which bcrypt checks) and
# the other salted schemes a Flask app could add to SECURITY_PASSWORD_SCHEMES, each told by its own
# `$...$` prefix. Left out: plaintext, des_crypt and unsalted digests, which have no prefix (any
# text of the right length passes for one; des_crypt reads 8 characters of the password).
FLASK_LIBPASS_SCHEMES = (
    "sha512_crypt",
    "sha256_crypt",
    "pbkdf2_sha512",
    "pbkdf2_sha256",
    "pbkdf2_sha1",
    "argon2",
    "bcrypt_sha256",
    "scrypt",
    "sha1_crypt",
    "md5_crypt",
)
# bcrypt reads 72 bytes of a password; the signed password has 88. The old passlib (with bcrypt
# before 5.0) dropped the rest silently; bcrypt 5 raises instead, so the cut is made here.
BCRYPT_MAX_BYTES = 72

# The costs a hash may name to be imported and checked here. A check costs what its hash says,
# so a hash of absurd costs (bcrypt 31, PBKDF2 at 4 billion rounds, argon2 at 1 GiB) would cost
# each login of its account minutes, or all the worker's memory. The bounds cover the defaults
# of passlib and Flask-Security (bcrypt 12, pbkdf2_sha512 25,000 rounds, sha512_crypt 656,000,
# scrypt ln=16 r=8 p=1, argon2 64 MiB t=3 p=4) with room to spare; a hash beyond them is imported
# without a usable password (a recovery email sets one).
BCRYPT_MAX_COST = 16  # bcrypt and bcrypt_sha256: 2**16 rounds, ~4 s a check at most
ROUNDS_MAX = {
    "pbkdf2_sha512": 2_000_000,
    "pbkdf2_sha256": 2_000_000,
    "pbkdf2_sha1": 2_000_000,
    "sha512_crypt": 1_000_000,
    "sha256_crypt": 1_000_000,
    "sha1_crypt": 1_000_000,
}
SCRYPT_MAX_LN = 20  # N = 2**ln
SCRYPT_MAX_R = 32
SCRYPT_MAX_P = 16
SCRYPT_MAX_MEMORY = 256 * 1024 * 1024  # bytes, 128 * r * N
SCRYPT_MAX_WORK = 1024 * 1024 * 1024  # 128 * r * N * p
ARGON2_MAX_MEMORY = 256 * 1024  # KiB
ARGON2_MAX_TIME = 16
ARGON2_MAX_PARALLELISM = 16
ARGON2_MAX_WORK = 1024 * 1024  # KiB times passes: 1 GiB, ~2 s a check
# At import, a random wrong password is checked against each hash: it must answer False, without
# an error, within this time (the bounds above keep a check well under it).
PROBE_MAX_SECONDS = 10.0

logger = logging.getLogger(__name__)


@functools.cache
def _libpass_context() -> CryptContext:
    return CryptContext(schemes=FLASK_LIBPASS_SCHEMES)


def _cost_problem(scheme: str, parsed) -> str | None:
    """Return why the costs of a parsed hash are out of bounds, or None."""
    if scheme in ("bcrypt", "bcrypt_sha256"):
        if parsed.rounds > BCRYPT_MAX_COST:
            return f"{scheme} cost {parsed.rounds} is above {BCRYPT_MAX_COST}"
    elif scheme in ROUNDS_MAX:
        if parsed.rounds > ROUNDS_MAX[scheme]:
            return f"{scheme} rounds {parsed.rounds} are above {ROUNDS_MAX[scheme]}"
    elif scheme == "scrypt":
        ln, r, p = parsed.rounds, parsed.block_size, parsed.parallelism
        memory = 128 * r * 2**ln
        if ln > SCRYPT_MAX_LN or r > SCRYPT_MAX_R or p > SCRYPT_MAX_P or memory > SCRYPT_MAX_MEMORY or memory * p > SCRYPT_MAX_WORK:
            return (
                f"scrypt ln={ln},r={r},p={p} is above the bounds (ln<={SCRYPT_MAX_LN}, r<={SCRYPT_MAX_R}, "
                f"p<={SCRYPT_MAX_P}, 128*r*2**ln<={SCRYPT_MAX_MEMORY // 2**20} MiB, times p<={SCRYPT_MAX_WORK // 2**20} MiB)"
            )
    elif scheme == "argon2":
        m, t, p = parsed.memory_cost, parsed.rounds, parsed.parallelism
        if m > ARGON2_MAX_MEMORY or t > ARGON2_MAX_TIME or p > ARGON2_MAX_PARALLELISM or m * t > ARGON2_MAX_WORK:
            return (
                f"argon2 m={m},t={t},p={p} is above the bounds (m<={ARGON2_MAX_MEMORY} KiB, t<={ARGON2_MAX_TIME}, "
                f"p<={ARGON2_MAX_PARALLELISM}, m*t<={ARGON2_MAX_WORK})"
            )
    return None


class _BcryptCost:
    def __init__(self, flask_hash: str):
        self.rounds = int(flask_hash[4:6])


def _examine(flask_hash: str) -> tuple[str | None, str | None]:
    """Return (the scheme of a Flask-Security hash this server checks, None), or (None, why not)."""
    if _FLASK_BCRYPT.fullmatch(flask_hash):
        scheme, parsed = "bcrypt", _BcryptCost(flask_hash)
    else:
        context = _libpass_context()
        try:
            scheme = context.identify(flask_hash)
            parsed = context.handler(scheme).from_string(flask_hash) if scheme is not None else None
        except (ValueError, TypeError):
            scheme = parsed = None
        if scheme is None or parsed is None or not parsed.checksum:
            return None, "its hash is not one this server can check"
    problem = _cost_problem(scheme, parsed)
    if problem is not None:
        return None, f"its hash costs too much to check: {problem}"
    return scheme, None


def flask_hash_scheme(flask_hash: str) -> str | None:
    """Return the scheme of a Flask-Security hash if this server can check it, else None.

    The hash must be well formed, not only carry a known prefix (a truncated hash, or settings
    without a checksum, is none), and its costs within the bounds above.
    """
    return _examine(flask_hash)[0]


def flask_hash_refusal(flask_hash: str) -> str | None:
    """Return why a Flask-Security hash is not imported as a usable password, or None.

    Refused: a hash of no scheme checked here, of costs beyond the bounds, or one that fails the
    probe (a random wrong password checked against it must give False, without an error, within
    PROBE_MAX_SECONDS): a bcrypt salt with bad padding passes the parsing and fails only there.
    """
    scheme, problem = _examine(flask_hash)
    if scheme is None:
        return problem
    started = time.monotonic()
    try:
        matched = flask_hash_check(secrets.token_urlsafe(16), flask_hash, salt=secrets.token_urlsafe(16))
    except Exception as exc:  # any error of bcrypt or libpass: the hash cannot be checked
        return f"its hash fails a check ({type(exc).__name__}: {exc})"
    seconds = time.monotonic() - started
    if matched:
        return "its hash accepts a random password"
    if seconds > PROBE_MAX_SECONDS:
        return f"its hash takes {seconds:.1f} s to check (more than {PROBE_MAX_SECONDS:.0f} s)"
    return None


def flask_hash_encode(flask_hash: str) -> str | None:
    """Return a Flask-Security hash as Django stores it, under FlaskSecurityPasswordHasher's
    algorithm; None if it is refused (flask_hash_refusal)."""
    if flask_hash_refusal(flask_hash) is not None:
        return None
    return f"{FlaskSecurityPasswordHasher.algorithm}${flask_hash}"


def flask_password_sign(password: str, *, salt: str) -> bytes:
    """Return Flask-Security's signed password: base64 of HMAC-SHA512 keyed with its salt."""
    digest = hmac.new(salt.encode("utf-8"), password.encode("utf-8"), hashlib.sha512).digest()
    return base64.b64encode(digest)


def flask_hash_check(password: str, flask_hash: str, *, salt: str) -> bool:
    """Return True if `password` is the one Flask-Security hashed as `flask_hash` with `salt`."""
    scheme = flask_hash_scheme(flask_hash)
    if scheme is None:
        return False
    try:
        signed = flask_password_sign(password, salt=salt)
    except UnicodeEncodeError:  # a lone surrogate: no password Flask could have hashed
        return False
    if scheme == "bcrypt":
        return bcrypt.checkpw(signed[:BCRYPT_MAX_BYTES], flask_hash.encode("ascii"))
    return _libpass_context().handler(scheme).verify(signed, flask_hash)


@functools.cache
def _log_missing_flask_salt() -> None:
    """Log, once per process, that imported passwords cannot be checked."""
    logger.error(
        "FLASK_PASSWORD_SALT is not set: passwords imported from the Flask server never verify. "
        "Set it to the Flask app's SECURITY_PASSWORD_SALT."
    )


class FlaskSecurityPasswordHasher(BasePasswordHasher):
    """Check the hashes imported from the Flask server.

    Stored as `flask_security$<the Flask hash>`. Flask-Security signed the password (HMAC-SHA512
    keyed with its PASSWORD_SALT, read here from FLASK_PASSWORD_SALT, then base64), then hashed
    the signed password with the passlib scheme the hash names. `must_update` is always true:
    Django rehashes with the first hasher of PASSWORD_HASHERS (Argon2id) at the first successful
    login.

    It makes hashes only as Flask-Security's default did (bcrypt, at FLASK_PASSWORD_BCRYPT_ROUNDS),
    for the equal timing of failed logins (accounts.passwords.credentials): no account keeps one.
    """

    algorithm = "flask_security"

    def salt(self) -> str:
        return bcrypt.gensalt(settings.FLASK_PASSWORD_BCRYPT_ROUNDS).decode("ascii")

    def encode(self, password: str, salt: str) -> str:
        # Without FLASK_PASSWORD_SALT, nothing verifies (verify); any key makes the same work.
        key = settings.FLASK_PASSWORD_SALT or secrets.token_urlsafe(16)
        signed = flask_password_sign(password, salt=key)
        hashed = bcrypt.hashpw(signed[:BCRYPT_MAX_BYTES], salt.encode("ascii")).decode("ascii")
        return f"{self.algorithm}${hashed}"

    def decode(self, encoded: str) -> dict:
        algorithm, flask_hash = encoded.split("$", 1)
        assert algorithm == self.algorithm
        return {"algorithm": algorithm, "hash": flask_hash, "scheme": flask_hash_scheme(flask_hash)}

    def verify(self, password: str, encoded: str) -> bool:
        salt = settings.FLASK_PASSWORD_SALT
        if not salt:
            _log_missing_flask_salt()
            return False
        algorithm, flask_hash = encoded.split("$", 1)
        assert algorithm == self.algorithm
        return flask_hash_check(password, flask_hash, salt=salt)

    def safe_summary(self, encoded: str) -> dict:
        decoded = self.decode(encoded)
        return {
            "algorithm": decoded["algorithm"],
            "scheme": decoded["scheme"] or "unknown",
            "hash": mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded: str) -> bool:
        return True

    def harden_runtime(self, password, encoded):
        # Django calls it only when the hasher is the preferred one, which this one never is.
        pass
