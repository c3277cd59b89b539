"""accounts/webhooks/wakeup.py: on PostgreSQL a commit that wrote an event wakes a waiting worker
at once (LISTEN/NOTIFY); elsewhere the worker's wait is a plain pause."""

import threading
import time

import pytest
from django.db import connection, transaction

from accounts.webhooks import services as webhooks
from accounts.webhooks.events import event_emit, user_data
from accounts.webhooks.wakeup import Waiter


@pytest.mark.django_db(transaction=True)
def test_a_commit_with_an_event_wakes_the_waiting_worker(user_factory):
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; on SQLite the worker polls (the next test)")
    user = user_factory()
    webhooks.endpoint_add(url="http://127.0.0.1:9/hook")
    waiter = Waiter(threading.Event())
    waiter.wait(0.01)  # listening from now on

    def change():
        time.sleep(0.5)
        with transaction.atomic():
            event_emit("user.updated", data=user_data(user))

    threading.Thread(target=change).start()
    started = time.monotonic()
    waiter.wait(20)
    waiter.close()

    assert 0.3 < time.monotonic() - started < 10


def test_without_postgresql_the_wait_is_a_pause_that_stop_ends(db):
    if connection.vendor == "postgresql":
        pytest.skip("on PostgreSQL the wait listens (the test above)")
    stop = threading.Event()
    waiter = Waiter(stop)
    started = time.monotonic()
    waiter.wait(0.2)
    assert 0.15 < time.monotonic() - started < 5
    stop.set()
    started = time.monotonic()
    waiter.wait(30)
    assert time.monotonic() - started < 1
