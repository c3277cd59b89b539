"""What /metrics shows, counted through prometheus_client: the one module that knows that library.

Every name starts with `authserver_`. Labels take values from fixed sets only (an outcome, a
limit's scope, an email's kind, a route's name), never from what a client sent, so that no client
can grow the number of series.

Under gunicorn, every worker counts in files of PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py makes
that directory at start and removes it at exit) and `exposition()` sums all the workers' files,
those of workers that have since exited included (prometheus_client's multiprocess mode). Without
that variable (runserver, a management command, the tests) a process shows its own counts.

The webhooks' queue is no count of a process: a collector reads it from the database at each
scrape, through the function the app registers (webhook_queue_read), so this module imports no model.
"""

import os
import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

LOGINS = Counter(
    "authserver_logins",
    "Sign-ins by entry point (api, admin) and outcome (success, or the refusal: invalid_credentials, "
    "throttled, two_factor_required, invalid_two_factor_code, ...)",
    ["entry", "outcome"],
)
REFRESHES = Counter("authserver_token_refreshes", "Token refreshes (GET /api/authenticate) by outcome", ["outcome"])
INTROSPECTIONS = Counter(
    "authserver_introspections",
    "Introspections (POST /api/introspect) by answer: active, inactive, or invalid_client_credentials",
    ["outcome"],
)
EMAILS = Counter("authserver_emails", "Emails handed to the mail server, by kind and outcome (sent, failed)", ["kind", "outcome"])
RATE_LIMITED = Counter("authserver_rate_limited", "Attempts refused by a rate limit, by the limit's scope", ["limit"])
TWO_FACTOR = Counter(
    "authserver_two_factor_checks",
    "Two-factor code checks (sign-in, enrollment, disable, new recovery codes) by outcome: accepted, "
    "recovery_code (accepted), refused, or required (a sign-in without a code)",
    ["outcome"],
)
OIDC = Counter(
    "authserver_oidc_events",
    "The OpenID provider's events: tokens issued per grant type (token_authorization_code, "
    "token_refresh_token, token_client_credentials), authorization, consent_given, consent_refused, "
    "code_reused, refresh_reused, logout (RP-initiated), backchannel_sent, backchannel_failed",
    ["event"],
)
REQUESTS = Histogram(
    "authserver_request_duration_seconds",
    "Time to answer a request, by endpoint (the route's name), method and status",
    ["endpoint", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

WEBHOOK_ATTEMPTS = Counter(
    "authserver_webhook_attempts",
    "Webhook delivery attempts made by this process (the worker, deliver_webhooks) by outcome: "
    "delivered, retry (failed, another attempt scheduled), failed (failed, no retry left)",
    ["outcome"],
)
WEBHOOK_OUTCOMES = ("delivered", "retry", "failed")

# Verbs outside this set are counted as "other": the method is the client's to choose.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# The series that exist from the start, at 0, so that a graph or an alert on them has data before
# the first event (a rate of failures is 0, not "no data"). Other values still count when they come.
_LOGIN_OUTCOMES = (
    "success",
    "invalid_credentials",
    "throttled",
    "user_confirmation_required",
    "account_disabled",
    "two_factor_required",
    "invalid_two_factor_code",
    "invalid_passkey",
)
for _entry in ("api", "admin", "page"):
    for _outcome in _LOGIN_OUTCOMES:
        LOGINS.labels(_entry, _outcome)
for _outcome in ("success", "token_invalid", "login_required", "account_not_active", "account_disabled"):
    REFRESHES.labels(_outcome)
for _outcome in ("active", "inactive", "invalid_client_credentials"):
    INTROSPECTIONS.labels(_outcome)
for _kind in ("confirmation", "recovery", "email_verification", "email_changed", "password_changed",
              "two_factor_enabled", "two_factor_disabled", "recovery_code_used"):
    for _outcome in ("sent", "failed"):
        EMAILS.labels(_kind, _outcome)
for _scope in ("login", "login_address", "login_account", "login_account_two_factor", "signup", "email", "email_request"):
    RATE_LIMITED.labels(_scope)
for _outcome in ("accepted", "recovery_code", "refused", "required"):
    TWO_FACTOR.labels(_outcome)
OIDC_EVENTS = (
    "token_authorization_code", "token_refresh_token", "token_client_credentials", "authorization",
    "consent_given", "consent_refused", "code_reused", "refresh_reused", "logout", "backchannel_sent",
    "backchannel_failed",
)
for _event in OIDC_EVENTS:
    OIDC.labels(_event)
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOK_ATTEMPTS.labels(_outcome)


class _WebhookQueue:
    """The webhooks' queue as the database holds it, read at each scrape (so that every node's
    /metrics shows it, whichever process delivers): deliveries by state, the queue's depth, and
    the age of its oldest event. The app registers the function that reads it (webhook_queue_read),
    so this module stays model-free."""

    read = None

    def describe(self):
        return []

    def collect(self):
        if _WebhookQueue.read is None:
            return
        try:
            stats = _WebhookQueue.read()
        except Exception:  # no database at hand (a scrape must still show the rest)
            return
        by_state = GaugeMetricFamily(
            "authserver_webhook_deliveries",
            "Webhook deliveries by state: pending, succeeded, failed (no retry left)",
            labels=["state"],
        )
        for state, count in sorted(stats["by_state"].items()):
            by_state.add_metric([state], count)
        yield by_state
        yield GaugeMetricFamily(
            "authserver_webhook_queue_depth",
            "Webhook deliveries waiting (pending), and events not yet given to the endpoints",
            value=stats["depth"],
        )
        yield GaugeMetricFamily(
            "authserver_webhook_oldest_pending_seconds",
            "Age of the oldest webhook event not delivered everywhere yet (0: none waits)",
            value=stats["oldest_seconds"],
        )


_WEBHOOK_QUEUE = _WebhookQueue()
REGISTRY.register(_WEBHOOK_QUEUE)


def webhook_queue_read(read) -> None:
    """Register the function that returns the webhooks' queue (accounts.webhooks.services.queue_stats)."""
    _WebhookQueue.read = read


def webhook_attempt_counted(outcome: str) -> None:
    WEBHOOK_ATTEMPTS.labels(outcome).inc()


def outcome_of(exc: Exception) -> str:
    """Return an error's outcome label: its class name in snake case (InvalidCredentials →
    invalid_credentials); the errors are the project's own classes, a fixed set."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def login_counted(*, entry: str, exc: Exception | None = None) -> None:
    """Count one sign-in at `entry` ("api" or "admin"): a success, or refused with `exc`."""
    LOGINS.labels(entry, "success" if exc is None else outcome_of(exc)).inc()


def refresh_counted(*, exc: Exception | None = None) -> None:
    REFRESHES.labels("success" if exc is None else outcome_of(exc)).inc()


def introspection_counted(outcome: str) -> None:
    INTROSPECTIONS.labels(outcome).inc()


def email_counted(*, kind: str, sent: bool) -> None:
    EMAILS.labels(kind, "sent" if sent else "failed").inc()


def rate_limited(scope: str) -> None:
    RATE_LIMITED.labels(scope).inc()


def two_factor_counted(outcome: str) -> None:
    TWO_FACTOR.labels(outcome).inc()


def oidc_counted(event: str) -> None:
    """Count one of the OpenID provider's events (OIDC_EVENTS; anything else is a bug)."""
    if event not in OIDC_EVENTS:
        raise ValueError(f"unknown OpenID provider event {event!r}")
    OIDC.labels(event).inc()


def request_observed(*, endpoint: str, method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(endpoint, method if method in _METHODS else "other", str(status)).observe(seconds)


def exposition() -> tuple[bytes, str]:
    """Return the metrics in Prometheus' text format, and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(_WEBHOOK_QUEUE)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
