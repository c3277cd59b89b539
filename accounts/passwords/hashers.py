"""Argon2id password hashing with the cost parameters of the settings (ARGON2_*).

Django's Argon2PasswordHasher fixes its costs in class attributes (100 MiB, 2 iterations,
8 lanes). This subclass reads ARGON2_MEMORY_COST (KiB), ARGON2_TIME_COST and ARGON2_PARALLELISM
from the settings each time it hashes or checks a hash, never at import, so a change of the
environment or an `override_settings` takes effect at once. It keeps the algorithm name
"argon2", so hashes made by Django's hasher are read as before; a hash whose parameters differ
from the configured ones makes `must_update` true, and Django then rehashes the password with
the configured parameters at the next successful login.

`argon2_calibrate()` (python manage.py calibrate_hasher) finds the costs that meet a time per
hash on the machine it runs on.

`FlaskSecurityPasswordHasher` checks the password hashes imported from the Flask server
(python manage.py import_flask_users) with bcrypt and libpass, called from here only.
"""

import base64
import functools
import hashlib
import hmac
import logging
import os
import re
import time
from dataclasses import dataclass

import argon2
import bcrypt
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher as DjangoArgon2PasswordHasher
from django.contrib.auth.hashers import BasePasswordHasher, mask_hash
from passlib.context import CryptContext


class Argon2PasswordHasher(DjangoArgon2PasswordHasher):
    """Argon2id; costs from the settings (defaults: OWASP's 19 MiB, 2 iterations, 1 lane)."""

    @property
    def memory_cost(self) -> int:
        return settings.ARGON2_MEMORY_COST

    @property
    def time_cost(self) -> int:
        return settings.ARGON2_TIME_COST

    @property
    def parallelism(self) -> int:
        return settings.ARGON2_PARALLELISM


# --- Calibration (python manage.py calibrate_hasher) -------------------------------------------

# OWASP's Password Storage Cheat Sheet: Argon2id configurations of equal strength, the memory
# (KiB) for each iteration count; 19 MiB and 2 iterations is the one it recommends first.
OWASP_MINIMUM_MEMORY = {1: 47104, 2: 19456, 3: 12288, 4: 9216, 5: 7168}


@dataclass(frozen=True)
class Argon2Cost:
    memory_cost: int  # KiB
    time_cost: int
    parallelism: int
    milliseconds: float  # time of one hash on this machine

    @property
    def below_owasp(self) -> bool:
        """Return True if weaker than OWASP's minimum for this iteration count (one lane)."""
        return self.memory_cost < OWASP_MINIMUM_MEMORY.get(self.time_cost, OWASP_MINIMUM_MEMORY[5])


def argon2_time(*, memory_cost: int, time_cost: int, parallelism: int, samples: int = 5) -> float:
    """Return the wall-clock time of one Argon2id hash with these costs, in milliseconds.

    The fastest of `samples` hashes: the machine's own speed, as little disturbed as can be by
    whatever else runs on it at the time.
    """
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        argon2.low_level.hash_secret(
            b"calibration password",
            os.urandom(16),
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=argon2.DEFAULT_HASH_LENGTH,
            type=argon2.low_level.Type.ID,
        )
        times.append(1000 * (time.perf_counter() - started))
    return min(times)


def argon2_calibrate(
    *,
    target_ms: float,
    time_cost: int = 2,
    parallelism: int = 1,
    max_memory: int = 1024 * 1024,
    samples: int = 5,
) -> Argon2Cost:
    """Return the costs whose hash takes at most `target_ms` here, with as much memory as fits.

    Memory is what makes guessing on GPUs and ASICs expensive, so it grows first, in whole MiB,
    at `time_cost` iterations; past `max_memory` (KiB) the iterations grow instead. Below 1 MiB
    nothing is tried: the result is then the fastest tried, slower than the target.
    """
    step = 1024
    measure = functools.partial(argon2_time, parallelism=parallelism, samples=samples)
    # A hash's time grows about linearly with memory x iterations: guess from one probe, then
    # narrow the bracket between the most memory that met the target and the least that did not.
    probe = max(step, min(OWASP_MINIMUM_MEMORY[2], max_memory))
    guess = probe * target_ms / measure(memory_cost=probe, time_cost=time_cost)
    if guess > max_memory:
        # The memory is capped: more iterations fill the rest of the target.
        time_cost = max(
            time_cost, int(time_cost * target_ms / measure(memory_cost=max_memory, time_cost=time_cost))
        )
    met, met_ms = 0, 0.0  # most memory that met the target
    missed, missed_ms = max_memory + step, float("inf")  # least memory that did not
    memory = max(step, min(max_memory, int(guess) // step * step))
    for _ in range(12):
        elapsed = measure(memory_cost=memory, time_cost=time_cost)
        if elapsed <= target_ms:
            met, met_ms = memory, elapsed
        else:
            missed, missed_ms = memory, elapsed
        guess = int(memory * target_ms / elapsed) // step * step
        memory = max(met + step, min(missed - step, guess))
        if memory >= missed or memory > max_memory:
            break
    if not met:
        # Not even the least memory tried meets the target: report the cheapest tried.
        return Argon2Cost(
            memory_cost=missed, time_cost=time_cost, parallelism=parallelism, milliseconds=missed_ms
        )
    return Argon2Cost(memory_cost=met, time_cost=time_cost, parallelism=parallelism, milliseconds=met_ms)


# --- Passwords imported from the Flask server (python manage.py import_flask_users) ------------
#
# The one module of ours that calls bcrypt and libpass (the `passlib` package).

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
