"""The signing keys as this worker process knows them.

Loaded from the database (accounts.keys.models) and kept in memory: re-read when older than
RELOAD_SECONDS, so every worker and node signs with a new current key, and stops accepting a
retired one, within that time of a rotation; and re-read at once when a token names a key id this
worker does not know (a key published by a rotation elsewhere), but at most once every
UNKNOWN_KID_RELOAD_SECONDS, so a flood of made-up key ids costs the database one query a second
per worker, not one per request. The first keys are made here, on first use.
"""

import functools
import logging
import math
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.keys import jose
from accounts.keys.models import SigningKey
from core import vault

logger = logging.getLogger(__name__)

RELOAD_SECONDS = 30.0
UNKNOWN_KID_RELOAD_SECONDS = 1.0


@dataclass(frozen=True)
class VerifyingKey:
    kid: str
    algorithm: str
    public_key: object


@dataclass(frozen=True)
class KeySet:
    """The published keys (next, current, previous) and the one that signs.

    The signing key's private part is decrypted when first needed: verifying and publishing use
    public keys only, so they work even when the private part cannot be read.
    """

    verifying: dict[str, VerifyingKey]
    jwks: list[dict]
    signing_kid: str
    signing_algorithm: str
    signing_row: SigningKey = field(repr=False)
    # The current key of each algorithm (auth tokens sign with TOKEN_ALGORITHM's, ID tokens with
    # the one their client registered).
    current_rows: dict[str, SigningKey] = field(repr=False, default_factory=dict)
    _private_keys: dict = field(repr=False, default_factory=dict, compare=False)

    @functools.cached_property
    def private_key(self):
        return self.signing_row.private_key()

    def signer(self, algorithm: str) -> tuple[str, object]:
        """Return the key id and private key that sign in this algorithm now."""
        row = self.current_rows[algorithm]
        if row.kid == self.signing_kid:
            return row.kid, self.private_key
        key = self._private_keys.get(row.kid)
        if key is None:
            key = self._private_keys[row.kid] = row.private_key()
        return row.kid, key


class Keyring:
    def __init__(self):
        self._keyset: KeySet | None = None
        self._loaded_at = -math.inf
        self._unknown_reload_at = -math.inf
        self._lock = threading.Lock()
        # Called with the set of key ids that left the published set (retired), after a reload.
        self.on_unpublished = []

    def keyset(self) -> KeySet:
        """Return the keys, re-read if older than RELOAD_SECONDS."""
        keyset = self._keyset
        if keyset is None or time.monotonic() - self._loaded_at > RELOAD_SECONDS:
            keyset = self.reload()
        return keyset

    def verifying_key(self, kid: str) -> VerifyingKey | None:
        """Return the published key with this id, or None (unknown, or retired)."""
        key = self.keyset().verifying.get(kid)
        if key is None:
            now = time.monotonic()
            with self._lock:
                due = now - self._unknown_reload_at >= UNKNOWN_KID_RELOAD_SECONDS
                if due:
                    self._unknown_reload_at = now
            if due:
                key = self.reload().verifying.get(kid)
        return key

    def reload(self) -> KeySet:
        """Read the keys from the database (making the first ones if there are none)."""
        rows = list(SigningKey.objects.filter(state__in=SigningKey.PUBLISHED))
        if {row.algorithm for row in rows if row.state == SigningKey.State.CURRENT} != set(jose.ALGORITHMS):
            _first_keys_make()
            rows = list(SigningKey.objects.filter(state__in=SigningKey.PUBLISHED))
        current_rows = {row.algorithm: row for row in rows if row.state == SigningKey.State.CURRENT}
        current = current_rows.get(settings.TOKEN_ALGORITHM) or next(iter(current_rows.values()))
        order = {SigningKey.State.CURRENT: 0, SigningKey.State.NEXT: 1, SigningKey.State.PREVIOUS: 2}
        # Current keys first (TOKEN_ALGORITHM's before the other), then next, then previous.
        rows.sort(key=lambda row: (order[row.state], row.algorithm != current.algorithm, -row.created_at.timestamp()))
        keyset = KeySet(
            verifying={
                row.kid: VerifyingKey(
                    kid=row.kid,
                    algorithm=row.algorithm,
                    public_key=jose.public_key_from_jwk(row.public_jwk, algorithm=row.algorithm),
                )
                for row in rows
            },
            jwks=[row.public_jwk for row in rows],
            signing_kid=current.kid,
            signing_algorithm=current.algorithm,
            signing_row=current,
            current_rows=current_rows,
        )
        _reencrypt(rows)
        with self._lock:
            previous, self._keyset, self._loaded_at = self._keyset, keyset, time.monotonic()
        if previous is not None:
            gone = previous.verifying.keys() - keyset.verifying.keys()
            if gone:
                for callback in self.on_unpublished:
                    callback(gone)
        return keyset

    def forget(self) -> None:
        """Drop what is loaded (tests; a rotation made by this process)."""
        with self._lock:
            self._keyset, self._loaded_at, self._unknown_reload_at = None, -math.inf, -math.inf


def _first_keys_make() -> None:
    """Make a current and a next key of each algorithm that has none; if another process made
    them first, keep theirs."""
    for algorithm in jose.ALGORITHMS:
        try:
            with transaction.atomic():
                if not SigningKey.objects.filter(state=SigningKey.State.CURRENT, algorithm=algorithm).exists():
                    SigningKey.objects.generate(algorithm=algorithm, state=SigningKey.State.CURRENT)
                    SigningKey.objects.generate(algorithm=algorithm, state=SigningKey.State.NEXT)
        except IntegrityError:
            # A concurrent first use won the unique index on the current (or next) state.
            pass


def _reencrypt(rows: list[SigningKey]) -> None:
    """Move the private parts still encrypted under a former SECRET_KEY (SECRET_KEY_FALLBACKS) to
    the current one, so that the fallback can be dropped once every worker has reloaded."""
    for row in rows:
        if vault.is_current(row.private_key_encrypted):
            continue
        try:
            fresh = vault.reencrypt(row.private_key_encrypted)
        except vault.SecretUnreadable:
            logger.error(
                "Signing key %s was encrypted under a SECRET_KEY that is no longer in SECRET_KEY_FALLBACKS: "
                "it still verifies, but cannot sign; rotate the keys (python manage.py signing_keys --rotate).",
                row.kid,
            )
            continue
        # Compare-and-set: another worker may have done it already.
        SigningKey.objects.filter(pk=row.pk, private_key_encrypted=row.private_key_encrypted).update(
            private_key_encrypted=fresh
        )
        row.private_key_encrypted = fresh


# One per process: every request of this worker shares it.
keyring = Keyring()
