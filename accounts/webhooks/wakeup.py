"""Waking the delivery worker soon after a commit: PostgreSQL's LISTEN/NOTIFY, else polling.

`notify()` runs after the commit of a change that wrote an event (transaction.on_commit); on
PostgreSQL it sends a NOTIFY that every listening worker hears at once. `Waiter.wait()` is the
worker's pause between rounds: it returns on a notification, or after WEBHOOK_POLL_INTERVAL
seconds anyway, so a lost notification (or SQLite, which has none) delays an event by that much
at most.
"""

import logging
import threading

from django.conf import settings
from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)

CHANNEL = "authserver_webhooks"


def notify() -> None:
    """Tell the workers an event is waiting; a failure only delays it until their next poll."""
    if connection.vendor != "postgresql":
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])
    except DatabaseError as exc:
        logger.warning("Webhook worker not woken (it polls anyway): %s", exc)


class Waiter:
    """The worker's pause: a LISTEN connection of its own on PostgreSQL, a sleep elsewhere."""

    def __init__(self, stop: threading.Event):
        self._stop = stop
        self._listener = None

    def _listen(self):
        if self._listener is None and connection.vendor == "postgresql":
            import psycopg

            params = settings.DATABASES["default"]
            try:
                self._listener = psycopg.connect(
                    dbname=params["NAME"], user=params.get("USER") or None, password=params.get("PASSWORD") or None,
                    host=params.get("HOST") or None, port=params.get("PORT") or None, autocommit=True,
                )
                self._listener.execute(f"LISTEN {CHANNEL}")
            except psycopg.Error as exc:
                logger.warning("Webhook worker polls only (LISTEN failed): %s", exc)
                self._listener = None
        return self._listener

    def wait(self, seconds: float) -> None:
        listener = self._listen()
        if listener is None:
            self._stop.wait(seconds)
            return
        try:
            for _ in listener.notifies(timeout=seconds, stop_after=1):
                pass
        except Exception as exc:  # a dropped connection: listen again next time, poll meanwhile
            logger.warning("Webhook worker's LISTEN connection lost: %s", exc)
            self.close()
            self._stop.wait(seconds)

    def close(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            finally:
                self._listener = None
