"""Secrets at rest (signing keys' private parts, TOTP secrets): the one place that encrypts them.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) under a key derived from SECRET_KEY
with HKDF and a label of its own, so the key that encrypts secrets is never the key that signs
sessions or email links. Values encrypted under an older SECRET_KEY still decrypt while that key
is listed in SECRET_KEY_FALLBACKS (Django's setting for rotating SECRET_KEY); `reencrypt` moves a
value to the current key.
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_LABEL = b"authserver secrets at rest v1"


class SecretUnreadable(Exception):
    """The value was not encrypted under SECRET_KEY or any of SECRET_KEY_FALLBACKS."""


@functools.lru_cache(maxsize=8)
def _derive(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LABEL).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _fernet(secret_key: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_derive(key) for key in (secret_key, *fallbacks)])


def _current() -> MultiFernet:
    # Read at each call (settings can change in tests); the derivation itself is cached.
    return _fernet(settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))


def encrypt(plaintext: bytes) -> str:
    """Return the plaintext encrypted under the current SECRET_KEY, as ASCII text."""
    return _current().encrypt(plaintext).decode("ascii")


def decrypt(ciphertext: str) -> bytes:
    """Return the plaintext of `encrypt`'s output, or raise SecretUnreadable."""
    try:
        return _current().decrypt(ciphertext.encode("ascii"))
    except (InvalidToken, UnicodeError) as exc:
        raise SecretUnreadable("encrypted under a key that is neither SECRET_KEY nor a fallback") from exc


def is_current(ciphertext: str) -> bool:
    """Return whether the value is encrypted under the current SECRET_KEY (not a fallback)."""
    try:
        _derive(settings.SECRET_KEY).decrypt(ciphertext.encode("ascii"))
    except (InvalidToken, UnicodeError):
        return False
    return True


def reencrypt(ciphertext: str) -> str:
    """Return the same plaintext encrypted under the current SECRET_KEY."""
    try:
        return _current().rotate(ciphertext.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as exc:
        raise SecretUnreadable("encrypted under a key that is neither SECRET_KEY nor a fallback") from exc


_SEALED_LABEL = b"authserver sealed under a bearer secret v1"


def _sealing(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=settings.SECRET_KEY.encode(), info=_SEALED_LABEL).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def seal(plaintext: bytes, *, secret: str) -> str:
    """Return the plaintext encrypted under a key derived from `secret` (and SECRET_KEY).

    For a value only the holder of a secret the server does not keep (a raw token, of which only
    a checksum is stored) may read back: neither the database nor SECRET_KEY alone opens it."""
    return _sealing(secret).encrypt(plaintext).decode("ascii")


def unseal(ciphertext: str, *, secret: str) -> bytes:
    """Return the plaintext of `seal`'s output under the same secret, or raise SecretUnreadable."""
    try:
        return _sealing(secret).decrypt(ciphertext.encode("ascii"))
    except (InvalidToken, UnicodeError) as exc:
        raise SecretUnreadable("sealed under another secret") from exc
