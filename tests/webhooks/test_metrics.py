"""Webhooks in /metrics (core/metrics.py): attempts by outcome, deliveries by state, the queue's
depth and the age of its oldest event."""

import re
from datetime import timedelta

from django.utils import timezone

from accounts.webhooks.events import event_emit, user_data
from accounts.webhooks.models import Event
from core import metrics
from tests.webhooks.conftest import deliver


def value(text: str, name: str) -> float:
    return float(re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)[1])


def test_the_queue_and_the_attempts(hook, receiver, user):
    before = metrics.WEBHOOK_ATTEMPTS.labels("delivered")._value.get()
    event_emit("user.updated", data=user_data(user))
    Event.objects.update(created_at=timezone.now() - timedelta(seconds=90))

    waiting = metrics.exposition()[0].decode()
    assert value(waiting, "authserver_webhook_queue_depth") == 1
    assert value(waiting, "authserver_webhook_oldest_pending_seconds") >= 90

    deliver()

    text = metrics.exposition()[0].decode()
    assert value(text, "authserver_webhook_queue_depth") == 0
    assert value(text, "authserver_webhook_oldest_pending_seconds") == 0
    assert value(text, 'authserver_webhook_deliveries{state="succeeded"}') == 1
    assert value(text, 'authserver_webhook_deliveries{state="pending"}') == 0
    assert value(text, 'authserver_webhook_attempts_total{outcome="delivered"}') == before + 1
