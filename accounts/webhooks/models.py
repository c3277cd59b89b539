"""The webhooks' tables: endpoints, the outbox (one Event per change) and the deliveries (one per
event and endpoint, made by the worker).

An Event is written in the same transaction as the change it reports (accounts.webhooks.outbox),
so a change that rolls back leaves none and one that commits leaves one for the worker. The worker
fans each event out into Delivery rows, one per endpoint subscribed when it does, and claims each
delivery with a lease (`claimed_until`) before an attempt, so two workers never attempt it at once
and a worker that died mid-attempt leaves it to another once the lease runs out.
"""

import base64
import secrets
import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from core import vault

SECRET_PREFIX = "whsec_"


def message_id_new() -> str:
    """The `webhook-id` of an event: the same on every attempt, to every endpoint."""
    return f"msg_{uuid.uuid4().hex}"


def secret_new() -> str:
    """A signing secret in Standard Webhooks' form: whsec_ and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


class Endpoint(models.Model):
    """A URL of another service that hears of the event types it subscribes to (none listed: all)."""

    url = models.URLField("URL", max_length=2000)
    # The event types it subscribes to; empty: every type.
    event_types = models.JSONField(default=list, blank=True)
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField("enabled", default=True)
    secret_encrypted = models.TextField(editable=False)
    # During a rotation the previous secret signs beside the new one until this time.
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Since when every attempt has failed (None: the last one succeeded, or none was made yet).
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    # Set when the worker disabled it (it failed for WEBHOOK_DISABLE_AFTER), with why.
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=255, blank=True, editable=False)

    class Meta:
        ordering = ["pk"]
        verbose_name = "webhook endpoint"

    def __str__(self):
        return self.url

    def subscribes(self, type: str) -> bool:
        return not self.event_types or type in self.event_types

    def secrets(self, *, now=None) -> list[str]:
        """The secrets that sign a delivery: the current one, and the previous one during a rotation."""
        now = now or timezone.now()
        found = [vault.decrypt(self.secret_encrypted).decode("ascii")]
        if self.previous_secret_encrypted and self.previous_secret_until and self.previous_secret_until > now:
            found.append(vault.decrypt(self.previous_secret_encrypted).decode("ascii"))
        return found


class Event(models.Model):
    """One change, as the outbox keeps it until the worker has fanned it out into deliveries."""

    message_id = models.CharField(max_length=64, unique=True, default=message_id_new, editable=False)
    type = models.CharField(max_length=64, db_index=True)
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    # Set once the worker made its deliveries.
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = "webhook event"
        indexes = [models.Index(fields=["created_at"], condition=Q(fanned_out_at__isnull=True), name="webhook_event_pending")]

    def __str__(self):
        return f"{self.type} {self.message_id}"


class Delivery(models.Model):
    """An event on its way to one endpoint: its attempts so far, and the next."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Failed (no more retries)"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    # A worker attempting it holds it until then (its lease); a crashed worker's lease runs out.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    # The start of the endpoint's answer (at most 1 KB).
    last_response = models.TextField(blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(state="pending"), name="webhook_delivery_due"),
        ]

    def __str__(self):
        return f"{self.event.type} to {self.endpoint.url}"


class Attempt(models.Model):
    """One attempt of a delivery, for the delivery log (the answer's excerpt is the delivery's, of
    the last attempt)."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    duration_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["pk"]
        verbose_name = "webhook delivery attempt"

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"
