"""The event types, and `event_emit`: what the other rooms call, inside the transaction of the
change they report.

An event is one INSERT into the outbox (Event), in the caller's transaction: a change that rolls
back sends nothing, one that commits is delivered even if the process dies the next instant (the
worker reads the outbox). It is written only when an enabled endpoint subscribes to its type, so a
server without endpoints pays nothing: the subscriptions are read once per process and kept for
SUBSCRIPTIONS_TTL seconds (an endpoint added or changed elsewhere is heard of by every process
within that time; at once in the process that changed it).

`data` carries the user's public id (`sub`, as in the tokens), the email and what changed; never
a password, token, code or secret.
"""

import logging
import threading
import time

from django.db import transaction

from accounts.users.models import User

# Every type an endpoint may subscribe to. Adding one is one line here.
EVENT_TYPES: list[str] = [
    "user.created",
    "user.confirmed",
    "user.updated",
    "user.email_changed",
    "user.password_changed",
    "user.deactivated",
    "user.reactivated",
    "user.disabled",
    "user.enabled",
    "user.deleted",
    "user.groups_changed",
    "two_factor.enabled",
    "two_factor.disabled",
    "consent.granted",
    "consent.revoked",
    # Passkeys (WebAuthn, built apart): known here, emitted by the passkeys' own flows.
    "passkey.added", "passkey.removed",
]

SUBSCRIPTIONS_TTL = 5.0

logger = logging.getLogger(__name__)


class UnknownEventType(ValueError):
    """A name that is not in EVENT_TYPES."""


class _Subscriptions:
    """The enabled endpoints' event types ([] for every type), read at most every SUBSCRIPTIONS_TTL s."""

    def __init__(self):
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._types: list[list[str]] = []

    def forget(self) -> None:
        with self._lock:
            self._read_at = float("-inf")

    def wanted(self, type: str) -> bool:
        now = time.monotonic()
        if now - self._read_at > SUBSCRIPTIONS_TTL:
            from accounts.webhooks.models import Endpoint

            types = list(Endpoint.objects.filter(is_active=True).values_list("event_types", flat=True))
            with self._lock:
                self._types, self._read_at = types, now
        return any(not types or type in types for types in self._types)


subscriptions = _Subscriptions()


def user_data(user: User, **changes) -> dict:
    """The user part of an event's data: `sub` (the user's public id, as in tokens), the email,
    and what changed."""
    return {"sub": str(user.public_id), "email": user.email, **changes}


def event_emit(type: str, *, data: dict) -> None:
    """Write one event into the outbox, in the caller's transaction (which it must be inside), if
    an enabled endpoint subscribes to `type`; then wake the worker once the transaction commits."""
    if type not in EVENT_TYPES:
        raise UnknownEventType(type)
    if not subscriptions.wanted(type):
        return
    from accounts.webhooks import wakeup
    from accounts.webhooks.models import Event

    if not transaction.get_connection().in_atomic_block:
        # A bug of the caller: the event is still written, right after the change, but a crash
        # in between would lose it. Not raised: the change itself is done.
        logger.error("Webhook event %s emitted outside the transaction of its change", type)
    Event.objects.create(type=type, data=data)
    transaction.on_commit(wakeup.notify)


def user_event_emit(type: str, *, user: User, **changes) -> None:
    """Emit an event about a user: its data is user_data(user, **changes)."""
    event_emit(type, data=user_data(user, **changes))


def user_deleted_emit(*, user: User) -> None:
    """Emit user.deleted, before the row goes: what a service needs to erase the user's data
    (`sub` and the email), and no more."""
    event_emit("user.deleted", data={"sub": str(user.public_id), "email": user.email})
