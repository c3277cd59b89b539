"""Webhooks' rules: endpoints (add, list, disable, enable, rotate the secret) and delivery (fan the
outbox out, claim, attempt, retry, give up), for the command, the admin and the worker alike.

Delivery is at least once: an attempt is made by one worker at a time (a lease on the row), its
outcome is written after the answer, and a worker that died before writing it leaves the lease to
run out (WEBHOOK_LEASE seconds), after which any worker attempts it again. Every attempt of an
event to an endpoint carries the event's `webhook-id`, so the receiver drops what it already has.
"""

import json
import logging
import secrets as secrets_module
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone
from standardwebhooks import Webhook

from accounts.webhooks import transport
from accounts.webhooks.events import EVENT_TYPES, subscriptions
from accounts.webhooks.models import Attempt, Delivery, Endpoint, Event, secret_new
from core import metrics, vault

logger = logging.getLogger(__name__)

# How long the previous secret keeps signing beside the new one after a rotation.
ROTATION_OVERLAP = timedelta(hours=24)


class EndpointRefused(ValueError):
    """An endpoint cannot be registered or changed as asked; the message says why."""


class EndpointNotFound(LookupError):
    pass


@dataclass(frozen=True)
class NewSecret:
    endpoint: Endpoint
    secret: str


# --- endpoints -----------------------------------------------------------------------------------


def event_types_check(types: list[str] | None) -> list[str]:
    """Return the types as stored ([] for every type), or raise EndpointRefused naming the unknown ones."""
    wanted = list(dict.fromkeys(name.strip() for name in (types or []) if name.strip()))
    unknown = [name for name in wanted if name not in EVENT_TYPES]
    if unknown:
        raise EndpointRefused(f"unknown event types: {', '.join(unknown)} (known: {', '.join(EVENT_TYPES)})")
    return wanted


def endpoint_url_check(url: str) -> str:
    """Return the URL, or raise EndpointRefused with why it cannot be an endpoint."""
    longest = Endpoint._meta.get_field("url").max_length
    if len(url.strip()) > longest:
        raise EndpointRefused(f"the URL is longer than {longest} characters")
    problem = transport.url_problem(url.strip())
    if problem:
        raise EndpointRefused(f"{url}: {problem}")
    return url.strip()


def endpoint_add(*, url: str, event_types: list[str] | None = None, description: str = "") -> NewSecret:
    """Register an endpoint; return it with its secret, which is shown this once."""
    types = event_types_check(event_types)
    url = endpoint_url_check(url)
    secret = secret_new()
    endpoint = Endpoint.objects.create(
        url=url, event_types=types, description=description, secret_encrypted=vault.encrypt(secret.encode("ascii"))
    )
    subscriptions.forget()
    return NewSecret(endpoint=endpoint, secret=secret)


def endpoints_list() -> list[Endpoint]:
    return list(Endpoint.objects.order_by("pk"))


def _endpoint(endpoint_id: int) -> Endpoint:
    endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise EndpointNotFound(f"no webhook endpoint has id {endpoint_id}")
    return endpoint


def endpoint_disable(*, endpoint_id: int, reason: str = "") -> Endpoint:
    """Stop delivering to an endpoint (its pending deliveries wait until it is enabled again)."""
    endpoint = _endpoint(endpoint_id)
    Endpoint.objects.filter(pk=endpoint.pk).update(is_active=False, disabled_at=timezone.now(), disabled_reason=reason[:255])
    subscriptions.forget()
    endpoint.refresh_from_db()
    return endpoint


def endpoint_enable(*, endpoint_id: int) -> Endpoint:
    """Deliver to an endpoint again; its health starts afresh."""
    endpoint = _endpoint(endpoint_id)
    Endpoint.objects.filter(pk=endpoint.pk).update(is_active=True, disabled_at=None, disabled_reason="", failing_since=None)
    subscriptions.forget()
    endpoint.refresh_from_db()
    return endpoint


def endpoint_secret_rotate(*, endpoint_id: int) -> NewSecret:
    """Give the endpoint a new secret (returned, shown once); the old one keeps signing beside it
    for ROTATION_OVERLAP, so receivers can switch without losing a delivery."""
    secret = secret_new()
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().filter(pk=endpoint_id).first()
        if endpoint is None:
            raise EndpointNotFound(f"no webhook endpoint has id {endpoint_id}")
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_until = timezone.now() + ROTATION_OVERLAP
        endpoint.secret_encrypted = vault.encrypt(secret.encode("ascii"))
        endpoint.save(update_fields=["previous_secret_encrypted", "previous_secret_until", "secret_encrypted"])
    return NewSecret(endpoint=endpoint, secret=secret)


# --- the delivery log's actions ------------------------------------------------------------------


def deliveries_retry(*, delivery_ids: list[int]) -> int:
    """Attempt the given pending or failed deliveries at the next round, not at their scheduled time."""
    return Delivery.objects.filter(pk__in=delivery_ids, state__in=[Delivery.State.PENDING, Delivery.State.FAILED]).update(
        state=Delivery.State.PENDING, next_attempt_at=timezone.now()
    )


def deliveries_resend(*, delivery_ids: list[int]) -> int:
    """Send the given deliveries again, delivered ones included (same `webhook-id`: a receiver that
    has it drops it)."""
    return Delivery.objects.filter(pk__in=delivery_ids).update(
        state=Delivery.State.PENDING, next_attempt_at=timezone.now(), delivered_at=None
    )


# --- the worker ----------------------------------------------------------------------------------


def _skip_locked(queryset):
    """Lock the rows read, skipping those another worker holds (PostgreSQL); SQLite locks the
    whole database on write, and the compare-and-set claim below is what holds there."""
    if connection.features.has_select_for_update_skip_locked:
        # Only the queried table's rows: not the endpoint a delivery's filter joins.
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset


def outbox_fan_out(*, limit: int = 200) -> int:
    """Make the deliveries of events not yet fanned out, one per enabled endpoint subscribed now;
    return how many events. Safe in several workers at once (the unique pair absorbs a repeat)."""
    with transaction.atomic():
        events = list(_skip_locked(Event.objects.filter(fanned_out_at__isnull=True).order_by("pk"))[:limit])
        if not events:
            return 0
        endpoints = list(Endpoint.objects.filter(is_active=True))
        now = timezone.now()
        Delivery.objects.bulk_create(
            [
                Delivery(event=event, endpoint=endpoint, next_attempt_at=now)
                for event in events
                for endpoint in endpoints
                if endpoint.subscribes(event.type)
            ],
            ignore_conflicts=True,
        )
        Event.objects.filter(pk__in=[event.pk for event in events]).update(fanned_out_at=now)
    return len(events)


def _due(now: datetime) -> Q:
    return (
        Q(state=Delivery.State.PENDING, endpoint__is_active=True, next_attempt_at__lte=now)
        & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    )


def deliveries_claim(*, limit: int = 20) -> list[Delivery]:
    """Claim up to `limit` due deliveries for this worker for WEBHOOK_LEASE seconds; return them.

    Each row is taken by a compare-and-set UPDATE (due and unclaimed, or its lease run out), so of
    two workers one gets it; on PostgreSQL the rows are first read with SKIP LOCKED, so workers
    take different rows instead of waiting on each other.
    """
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOK_LEASE)
    claimed = []
    with transaction.atomic():
        due = _skip_locked(Delivery.objects.filter(_due(now)).order_by("next_attempt_at", "pk"))
        candidates = list(due.values_list("pk", flat=True)[:limit])
        for pk in candidates:
            token = secrets_module.token_hex(16)
            if Delivery.objects.filter(_due(now), pk=pk).update(claimed_until=lease, claim_token=token):
                claimed.append(pk)
    ours = Delivery.objects.filter(pk__in=claimed).select_related("event", "endpoint")
    return list(ours.order_by("next_attempt_at", "pk"))


def lease_renew(*, delivery: Delivery) -> bool:
    """Hold a claimed delivery for WEBHOOK_LEASE seconds from now, just before its attempt (the
    attempts of a batch run one after the other); False if the claim was lost meanwhile."""
    lease = timezone.now() + timedelta(seconds=settings.WEBHOOK_LEASE)
    return bool(
        Delivery.objects.filter(pk=delivery.pk, claim_token=delivery.claim_token, state=Delivery.State.PENDING).update(
            claimed_until=lease
        )
    )


def payload(event: Event) -> bytes:
    """The body of every attempt of an event: {"type", "timestamp" (ISO 8601, when it happened), "data"}."""
    return json.dumps(
        {"type": event.type, "timestamp": event.created_at.astimezone(dt_timezone.utc).isoformat(), "data": event.data},
        separators=(",", ":"),
    ).encode()


def signed_headers(*, message_id: str, body: bytes, secrets: list[str], now: datetime) -> dict[str, str]:
    """Standard Webhooks' headers: one `v1,` signature per secret (two during a rotation)."""
    at = now.astimezone(dt_timezone.utc).replace(microsecond=0)
    signatures = [Webhook(secret).sign(message_id, at, body.decode()) for secret in secrets]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def _retry_after(attempts: int) -> timedelta | None:
    """The wait before the next attempt after `attempts` failed ones, or None: give up."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    return timedelta(seconds=schedule[attempts - 1]) if attempts <= len(schedule) else None


def delivery_attempt(*, delivery: Delivery) -> str:
    """Make one attempt of a claimed delivery and write its outcome; return it: "delivered",
    "retry" or "failed" (no retry left), or "lost_claim" (the lease ran out and another worker
    took it: this attempt's outcome is not written over theirs)."""
    endpoint, event = delivery.endpoint, delivery.event
    now = timezone.now()
    body = payload(event)
    status, excerpt, error, seconds = None, "", "", 0.0
    try:
        headers = signed_headers(message_id=event.message_id, body=body, secrets=endpoint.secrets(now=now), now=now)
        answer = transport.post(endpoint.url, body=body, headers=headers)
        status, excerpt, seconds = answer.status, answer.excerpt, answer.seconds
        if not 200 <= status < 300:
            error = f"answered {status}"
    except transport.Refused as exc:
        error = f"refused: {exc}"
    except (OSError, transport.HTTPException) as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except vault.SecretUnreadable:
        error = "the endpoint's secret cannot be read (SECRET_KEY changed): rotate it"
    except Exception as exc:
        # A bug, or an answer http.client chokes on in a way not foreseen: a failed attempt all
        # the same, counted and retried on schedule; uncaught, it broke the round and left the
        # delivery to come back every lease for ever, never counted, never failed.
        logger.exception("Webhook attempt %s to endpoint %s raised", event.message_id, endpoint.pk)
        error = f"unexpected {type(exc).__name__}"
    error = error.replace("\x00", "\ufffd")  # a server's words may hold a NUL, which PostgreSQL refuses
    attempts = delivery.attempts + 1
    fields = {
        "attempts": attempts,
        "last_attempt_at": now,
        "last_status_code": status,
        "last_error": error[:255],
        "last_response": excerpt,
        "last_duration_ms": int(seconds * 1000),
        "claimed_until": None,
        "claim_token": "",
    }
    if not error:
        outcome = "delivered"
        fields.update(state=Delivery.State.SUCCEEDED, delivered_at=timezone.now(), next_attempt_at=None)
    elif (wait := _retry_after(attempts)) is not None:
        outcome = "retry"
        fields.update(next_attempt_at=timezone.now() + wait)
    else:
        outcome = "failed"
        fields.update(state=Delivery.State.FAILED, next_attempt_at=None)
    with transaction.atomic():
        if not Delivery.objects.filter(pk=delivery.pk, claim_token=delivery.claim_token).update(**fields):
            return "lost_claim"
        Attempt.objects.create(
            delivery=delivery, at=now, status_code=status, error=error[:255], duration_ms=int(seconds * 1000)
        )
        _endpoint_health(endpoint=endpoint, delivered=not error, now=now)
    metrics.webhook_attempt_counted(outcome)
    log = logger.info if not error else logger.warning
    log("Webhook %s %s to endpoint %s: %s", event.type, event.message_id, endpoint.pk, error or f"delivered ({status})")
    return outcome


def _endpoint_health(*, endpoint: Endpoint, delivered: bool, now: datetime) -> None:
    """Note a success, or a failure; disable the endpoint once it has failed for WEBHOOK_DISABLE_AFTER."""
    if delivered:
        Endpoint.objects.filter(pk=endpoint.pk).update(last_success_at=now, failing_since=None)
        return
    Endpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    since = Endpoint.objects.filter(pk=endpoint.pk).values_list("failing_since", flat=True).first()
    if since is not None and now - since >= timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER):
        reason = f"every delivery failed since {since.isoformat(timespec='seconds')}"
        if Endpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
            is_active=False, disabled_at=now, disabled_reason=reason
        ):
            logger.error("Webhook endpoint %s (%s) disabled: %s", endpoint.pk, endpoint.url, reason)
            subscriptions.forget()


def deliveries_round(*, limit: int = 20, stopping=lambda: False) -> int:
    """One round of the worker: fan the outbox out, then attempt what is due; return how many
    attempts. Once `stopping()` is true, the claims not yet attempted are given back."""
    outbox_fan_out()
    claimed = deliveries_claim(limit=limit)
    for done, delivery in enumerate(claimed):
        if stopping():
            Delivery.objects.filter(
                pk__in=[left.pk for left in claimed[done:]], claim_token__in=[left.claim_token for left in claimed[done:]]
            ).update(claimed_until=None, claim_token="")
            return done
        if lease_renew(delivery=delivery):
            delivery_attempt(delivery=delivery)
    return len(claimed)


def events_prune(*, older_than_days: int, dry_run: bool = False) -> int:
    """Delete the events older than the given days whose every delivery is done (delivered or
    failed), with their deliveries and attempts; return how many events (`dry_run`: count only).
    An event with a delivery still pending is kept, however old."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    done = Event.objects.filter(created_at__lt=cutoff, fanned_out_at__isnull=False).exclude(
        deliveries__state=Delivery.State.PENDING
    )
    if dry_run:
        return done.count()
    with transaction.atomic():
        pks = list(done.values_list("pk", flat=True))
        Event.objects.filter(pk__in=pks).delete()
    return len(pks)


def queue_stats() -> dict:
    """What /metrics shows of the queue: deliveries by state, how many wait (pending deliveries
    and events not yet fanned out), and the age in seconds of the oldest waiting event."""
    by_state = {state: 0 for state in Delivery.State.values}
    for state, count in _count_by_state():
        by_state[state] = count
    oldest = Event.objects.filter(Q(fanned_out_at__isnull=True) | Q(deliveries__state=Delivery.State.PENDING)).aggregate(
        oldest=Min("created_at")
    )["oldest"]
    waiting = by_state[Delivery.State.PENDING] + Event.objects.filter(fanned_out_at__isnull=True).count()
    return {
        "by_state": by_state,
        "depth": waiting,
        "oldest_seconds": (timezone.now() - oldest).total_seconds() if oldest else 0.0,
    }


def _count_by_state():
    return Delivery.objects.values_list("state").annotate(n=Count("pk")).order_by()
