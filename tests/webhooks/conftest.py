"""Fixtures of the webhooks' tests: a receiver on 127.0.0.1 that verifies every delivery with the
`standardwebhooks` library (nobody here wrote it), an endpoint registered for it, the outbox's
events, and the worker's rounds run in the test's process."""

import pytest

from accounts.webhooks import services as webhooks
from accounts.webhooks.models import Event
from tests.support.webhooks import Receiver


@pytest.fixture(autouse=True)
def _private_allowed(settings):
    """The receiver listens on 127.0.0.1, over http: the address checks are tested apart."""
    settings.WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def receiver():
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hook(db, receiver):
    """An endpoint for every event type at the receiver, which knows its secret."""
    new = webhooks.endpoint_add(url=receiver.url)
    receiver.secrets = [new.secret]
    return new.endpoint


def emitted() -> list[tuple[str, dict]]:
    """The outbox's events, oldest first, as (type, data)."""
    return [(event.type, event.data) for event in Event.objects.order_by("pk")]


def deliver() -> int:
    """Run the worker's rounds until nothing is due; return the attempts made."""
    attempts = 0
    while made := webhooks.deliveries_round():
        attempts += made
    return attempts
