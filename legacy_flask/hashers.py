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

logger = logging.getLogger(__name__)


@functools.cache
def _libpass_context() -> CryptContext:
    return CryptContext(schemes=FLASK_LIBPASS_SCHEMES)


def flask_hash_scheme(flask_hash: str) -> str | None:
    """Return the scheme of a Flask-Security hash if this server can check it, else None.

    The hash must be well formed, not only carry a known prefix: a truncated hash, or settings
    without a checksum, is none.
    """
    if _FLASK_BCRYPT.fullmatch(flask_hash):
        return "bcrypt"
    context = _libpass_context()
    try:
        scheme = context.identify(flask_hash)
        if scheme is None or not context.handler(scheme).from_string(flask_hash).checksum:
            return None
    except (ValueError, TypeError):
        return None
    return scheme


def flask_hash_encode(flask_hash: str) -> str | None:
    """Return a Flask-Security hash as Django stores it, under FlaskSecurityPasswordHasher's
    algorithm; None if no scheme here can check it."""
    if flask_hash_scheme(flask_hash) is None:
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
    """Check the hashes imported from the Flask server; it never makes one.

    Stored as `flask_security$<the Flask hash>`. Flask-Security signed the password (HMAC-SHA512
    keyed with its PASSWORD_SALT, read here from FLASK_PASSWORD_SALT, then base64), then hashed
    the signed password with the passlib scheme the hash names. `must_update` is always true:
    Django rehashes with the first hasher of PASSWORD_HASHERS (Argon2id) at the first successful
    login.
    """

    algorithm = "flask_security"

    def salt(self) -> str:
        raise ValueError("The Flask-Security hasher only checks imported hashes; it makes none.")

    def encode(self, password, salt):
        raise ValueError("The Flask-Security hasher only checks imported hashes; it makes none.")

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
