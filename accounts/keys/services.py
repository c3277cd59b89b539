"""Signing keys: rotation and retirement (the `signing_keys` command and the admin).

A rotation moves next → current, current → previous and makes a new next; a retirement moves a
previous key → retired, after which its tokens are refused. Every worker and node picks the
change up within accounts.keys.keyring.RELOAD_SECONDS.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.audit import services as audit
from accounts.keys import jose
from accounts.keys.keyring import keyring
from accounts.keys.models import SigningKey
from accounts.users.models import User
from core import vault

State = SigningKey.State


class KeyStateError(ValueError):
    """The key is not in a state that allows what was asked."""


class KeyStillInUse(KeyStateError):
    """Tokens the key signed may still be alive: retiring it now refuses them (force to do it anyway)."""

    def __init__(self, kid: str, alive_until):
        super().__init__(
            f"tokens signed by {kid} may be alive until {alive_until.isoformat(timespec='seconds')} "
            "(TOKEN_LIFETIME after it stopped signing); retiring it now signs their users out"
        )
        self.alive_until = alive_until


def _by(actor: User | None) -> str:
    return actor.email if actor is not None else "an operator command"


def _readable(key: SigningKey) -> bool:
    try:
        vault.decrypt(key.private_key_encrypted)
    except vault.SecretUnreadable:
        return False
    return True


def keys_rotate(*, actor: User | None = None) -> SigningKey:
    """Rotate the keys of every algorithm; return the new current key of TOKEN_ALGORITHM (the
    auth tokens')."""
    now = timezone.now()
    rotated = {}
    with transaction.atomic():
        for algorithm in jose.ALGORITHMS:
            rotated[algorithm] = _rotate(algorithm, now)
    keyring.forget()
    audit.record(
        audit.Type.KEYS_ROTATED,
        detail=", ".join(f"{alg}: current {cur.kid}, next {nxt.kid}" for alg, (cur, nxt) in rotated.items())
        + f", by {_by(actor)}",
    )
    return rotated[settings.TOKEN_ALGORITHM][0]


def _rotate(algorithm: str, now) -> tuple[SigningKey, SigningKey]:
    keys = {
        key.state: key
        for key in SigningKey.objects.select_for_update().filter(
            algorithm=algorithm, state__in=[State.NEXT, State.CURRENT]
        )
    }
    # In this order, so that the database never holds two current or two next keys.
    if State.CURRENT in keys:
        keys[State.CURRENT].state = State.PREVIOUS
        keys[State.CURRENT].save(update_fields=["state"])
    if State.NEXT in keys and _readable(keys[State.NEXT]):
        current = keys[State.NEXT]
        current.state, current.activated_at = State.CURRENT, now
        current.save(update_fields=["state", "activated_at"])
    else:
        if State.NEXT in keys:
            # Encrypted under a SECRET_KEY that is gone: it could never sign. Published until
            # now, it stays a verifying key.
            keys[State.NEXT].state = State.PREVIOUS
            keys[State.NEXT].save(update_fields=["state"])
        current = SigningKey.objects.generate(algorithm=algorithm, state=State.CURRENT)
    upcoming = SigningKey.objects.generate(algorithm=algorithm, state=State.NEXT)
    return current, upcoming


def key_tokens_alive_until(key: SigningKey):
    """Return until when tokens a previous key signed may be alive (None if none can be by now).

    A key stops signing when the next current key of its algorithm is activated; the tokens it
    signed live the longest lifetime of a signed token after that (TOKEN_LIFETIME, or the OpenID
    provider's access and ID token lifetimes if longer).
    """
    if key.state != State.PREVIOUS or key.activated_at is None:
        # Never current (a next key that could not be read): it signed nothing.
        return None
    successor = (
        SigningKey.objects.filter(algorithm=key.algorithm, activated_at__gt=key.activated_at)
        .order_by("activated_at")
        .values_list("activated_at", flat=True)
        .first()
    )
    stopped = successor or timezone.now()
    lifetime = max(settings.TOKEN_LIFETIME, settings.OIDC_ACCESS_TOKEN_LIFETIME, settings.OIDC_ID_TOKEN_LIFETIME)
    until = stopped + timedelta(seconds=lifetime)
    return until if until > timezone.now() else None


def key_retire(*, kid: str, actor: User | None = None, refuse_if_alive: bool = False) -> SigningKey:
    """Retire a previous key: it is no longer published and its tokens are refused. With
    `refuse_if_alive` (the command, without --force), a key whose tokens may still be alive is
    left as it is (KeyStillInUse)."""
    with transaction.atomic():
        key = SigningKey.objects.select_for_update().filter(kid=kid).first()
        if key is None:
            raise KeyStateError(f"no signing key {kid!r}")
        if key.state != State.PREVIOUS:
            raise KeyStateError(f"key {kid} is {key.state}: only a previous key can be retired (rotate first)")
        alive_until = key_tokens_alive_until(key)
        if alive_until is not None and refuse_if_alive:
            raise KeyStillInUse(kid, alive_until)
        key.state, key.retired_at = State.RETIRED, timezone.now()
        key.save(update_fields=["state", "retired_at"])
    keyring.forget()
    audit.record(audit.Type.KEY_RETIRED, detail=f"{kid} by {_by(actor)}")
    return key


def keys_list() -> list[SigningKey]:
    """Return every key: current first, then next, previous and retired; within a state the auth
    tokens' algorithm (TOKEN_ALGORITHM) first, then the newest. Private parts are never read here."""
    order = {State.CURRENT: 0, State.NEXT: 1, State.PREVIOUS: 2, State.RETIRED: 3}
    keys = list(SigningKey.objects.defer("private_key_encrypted").order_by("-created_at", "-pk"))
    # Stable sort: the newest-first order stays within a state and algorithm.
    keys.sort(key=lambda key: (order.get(key.state, 4), key.algorithm != settings.TOKEN_ALGORITHM))
    return keys
