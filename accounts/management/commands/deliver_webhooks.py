"""The webhook worker: deliver the outbox's events to the endpoints, retrying on schedule."""

import logging
import signal
import threading

from django.core.management.base import BaseCommand
from django.conf import settings
from django.db import close_old_connections

from accounts.webhooks import services as webhooks
from accounts.webhooks.wakeup import Waiter

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Deliver webhooks: runs until stopped (SIGTERM or SIGINT: the attempt in flight is finished "
        "first), woken at once after each change on PostgreSQL, polling every WEBHOOK_POLL_INTERVAL "
        "seconds otherwise. Run as many as you like, on any node: no two attempt one delivery at once. "
        "--once delivers what is due now and exits."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Deliver what is due now, then exit.")

    def handle(self, *args, once, **options):
        if once:
            attempted = 0
            while made := webhooks.deliveries_round():
                attempted += made
            self.stdout.write(f"{attempted} attempts made.")
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        waiter = Waiter(stop)
        self.stdout.write("Delivering webhooks (SIGTERM stops).")
        try:
            while not stop.is_set():
                close_old_connections()
                try:
                    made = webhooks.deliveries_round(stopping=stop.is_set)
                except Exception:
                    # A database that went away: log, wait, try again; the outbox keeps everything.
                    logger.exception("Webhook round failed")
                    made = 0
                if not made and not stop.is_set():
                    waiter.wait(settings.WEBHOOK_POLL_INTERVAL)
        finally:
            waiter.close()
        self.stdout.write("Stopped.")
