"""GET / (the index) and GET /metrics: its token, its format, and every counter moving.

The counters live in this process's registry for the whole test session, so each test reads
/metrics before and after what it does and checks the difference. Across gunicorn's workers:
tests/core/test_logging.py.
"""

import re
from pathlib import Path

import pytest
from django.core import mail
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

import authserver
from accounts.clients.services import resource_server_create
from tests.conftest import PASSWORD
from tests.mfa.test_api import code, turn_on, wrong_code
from tests.support.api import client_with, login
from tests.oidc.test_introspection_api import basic

METRICS_TOKEN = "metrics-token-for-the-tests-0123456789"
NOT_FOUND = {"status": 404, "message": "Not found"}
INVALID_METRICS_TOKEN = {"status": 401, "message": "Invalid metrics token"}


# --- GET / -----------------------------------------------------------------------------------


def test_the_index_names_the_server_its_version_and_where_to_read(db, client):
    response = client.get("/")

    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["name"] == "authserver"
    assert body["version"] == authserver.__version__
    assert body["links"] == {
        "docs": "/api/docs",
        "schema": "/api/schema",
        "status": "/status",
        "jwks": "/.well-known/jwks.json",
        "metadata": "/.well-known/openid-configuration",
    }
    for path in body["links"].values():
        assert client.get(path).status_code == 200, path


def test_the_version_is_the_changelogs_latest():
    changelog = (Path(__file__).resolve().parents[2] / "CHANGELOG.md").read_text()
    # What is merged but not released yet sits above, under "## Unreleased".
    assert re.search(r"^## (?!Unreleased$)(\S+)", changelog, re.MULTILINE).group(1) == authserver.__version__


def test_the_index_takes_get_only(db, client):
    response = client.post("/", {}, content_type="application/json")

    assert response.status_code == 405
    assert response.json() == {"status": 405, "message": 'Method "POST" not allowed.'}


# --- GET /metrics: the token -------------------------------------------------------------------


def scrape(client=None, token: str = METRICS_TOKEN) -> dict[tuple[str, tuple], float]:
    """Return every sample of /metrics as {(name, sorted labels): value}."""
    response = (client or APIClient()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = METRICS_TOKEN


def test_metrics_are_not_found_without_a_token_configured(db, client, settings):
    settings.METRICS_TOKEN = ""

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")

    assert response.status_code == 404 and response.json() == NOT_FOUND


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="missing"),
        pytest.param("Bearer", id="empty"),
        pytest.param("Bearer wrong-token-of-the-same-kind-00000", id="wrong"),
        pytest.param(f"Bearer {METRICS_TOKEN}x", id="longer"),
        pytest.param(f"Bearer {METRICS_TOKEN[:-1]}", id="shorter"),
        pytest.param(f"Basic {METRICS_TOKEN}", id="other-scheme"),
        pytest.param(METRICS_TOKEN, id="no-scheme"),
        pytest.param("Bearer ünïcode", id="not-ascii"),
    ],
)
def test_metrics_need_the_token(db, metrics_on, header):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}

    response = APIClient().get("/metrics", **extra)

    assert response.status_code == 401 and response.json() == INVALID_METRICS_TOKEN
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_metrics_answer_prometheus_text_with_the_token(db, metrics_on):
    response = APIClient().get("/metrics", HTTP_AUTHORIZATION=f"bearer  {METRICS_TOKEN}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert response["Cache-Control"] == "no-store"
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "authserver_logins",
        "authserver_token_refreshes",
        "authserver_introspections",
        "authserver_emails",
        "authserver_rate_limited",
        "authserver_two_factor_checks",
        "authserver_request_duration_seconds",
    } <= names


def test_metrics_take_get_only(db, metrics_on):
    response = APIClient().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")

    assert response.status_code == 405


# --- The counters ------------------------------------------------------------------------------


def test_logins_are_counted_by_outcome(metrics_on, user, user_factory, settings):
    settings.LOGIN_RATE = "2/hour"
    user_factory(email="new@example.com", confirmed=False)
    user_factory(email="off@example.com", disabled=True)
    before = scrape()

    assert login(APIClient(), user.email).status_code == 200
    assert login(APIClient(), "new@example.com").status_code == 400
    assert login(APIClient(), "off@example.com").status_code == 403
    assert login(APIClient(), user.email, "wrong password").status_code == 401
    assert login(APIClient(), user.email, "wrong password").status_code == 401
    assert login(APIClient(), user.email).status_code == 429

    after = scrape()
    for outcome, count in {
        "success": 1,
        "user_confirmation_required": 1,
        "account_disabled": 1,
        "invalid_credentials": 2,
        "throttled": 1,
    }.items():
        delta = value(after, "authserver_logins_total", entry="api", outcome=outcome)
        delta -= value(before, "authserver_logins_total", entry="api", outcome=outcome)
        assert delta == count, outcome
    assert value(after, "authserver_rate_limited_total", limit="login") - value(
        before, "authserver_rate_limited_total", limit="login"
    ) == 1


def test_refreshes_are_counted_by_outcome(metrics_on, user, token_for):
    before = scrape()

    assert client_with(token_for(user)).get("/api/authenticate").status_code == 200
    assert client_with("not-a-token").get("/api/authenticate").status_code == 401

    after = scrape()
    for outcome in ("success", "token_invalid"):
        assert value(after, "authserver_token_refreshes_total", outcome=outcome) - value(
            before, "authserver_token_refreshes_total", outcome=outcome
        ) == 1, outcome


def test_introspections_are_counted_by_answer(metrics_on, user, token_for):
    server, secret = resource_server_create(name="reports")
    client = APIClient()
    header = basic(server.client_id, secret)
    before = scrape()

    assert client.post("/api/introspect", {"token": token_for(user)}, format="json", HTTP_AUTHORIZATION=header).json()["active"]
    assert not client.post("/api/introspect", {"token": "x"}, format="json", HTTP_AUTHORIZATION=header).json()["active"]
    wrong = basic(server.client_id, "wrong")
    assert client.post("/api/introspect", {"token": "x"}, format="json", HTTP_AUTHORIZATION=wrong).status_code == 401

    after = scrape()
    for outcome in ("active", "inactive", "invalid_client_credentials"):
        assert value(after, "authserver_introspections_total", outcome=outcome) - value(
            before, "authserver_introspections_total", outcome=outcome
        ) == 1, outcome


def test_emails_are_counted_by_kind_and_outcome(metrics_on, user, settings):
    before = scrape()
    client = APIClient()

    assert client.patch("/api/authenticate", {"email": user.email}, format="json").status_code == 200
    settings.EMAIL_BACKEND = "tests.conftest.FailingEmailBackend"
    assert client.patch("/api/authenticate", {"email": user.email}, format="json").status_code == 500

    after = scrape()
    for outcome in ("sent", "failed"):
        assert value(after, "authserver_emails_total", kind="recovery", outcome=outcome) - value(
            before, "authserver_emails_total", kind="recovery", outcome=outcome
        ) == 1, outcome


def test_two_factor_checks_are_counted_by_outcome(metrics_on, user, token_for, totp_clock):
    secret, recovery_codes = turn_on(client_with(token_for(user)), totp_clock)
    before = scrape()

    assert login(APIClient(), user.email).status_code == 401  # no code: required
    assert login(APIClient(), user.email, otp=wrong_code(secret, totp_clock.now)).status_code == 401
    assert login(APIClient(), user.email, otp=code(secret, totp_clock.now)).status_code == 200
    assert login(APIClient(), user.email, otp=recovery_codes[0]).status_code == 200

    after = scrape()
    for outcome in ("required", "refused", "accepted", "recovery_code"):
        assert value(after, "authserver_two_factor_checks_total", outcome=outcome) - value(
            before, "authserver_two_factor_checks_total", outcome=outcome
        ) == 1, outcome
    mail.outbox = []


def test_requests_are_timed_by_route_name_never_by_path(db, metrics_on):
    client = APIClient()
    before = scrape()

    client.get("/status")
    client.get("/no/such/path/abc123")
    client.generic("BREW", "/status")

    after = scrape()

    def count(**labels):
        name = "authserver_request_duration_seconds_count"
        return value(after, name, **labels) - value(before, name, **labels)

    assert count(endpoint="status", method="GET", status="200") == 1
    assert count(endpoint="unmatched", method="GET", status="404") == 1
    assert count(endpoint="status", method="other", status="405") == 1
    assert not any("abc123" in str(labels) or "BREW" in str(labels) for _, labels in after)


def test_a_request_answers_with_its_request_id(db):
    first, second = APIClient().get("/status"), APIClient().get("/status")

    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_request_id_is_taken_from_a_trusted_proxy_only(db, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]

    from_proxy = APIClient().get("/status", HTTP_X_REQUEST_ID="abc-123", REMOTE_ADDR="10.0.0.1")
    from_client = APIClient().get("/status", HTTP_X_REQUEST_ID="abc-123", REMOTE_ADDR="203.0.113.9")
    forged = APIClient().get("/status", HTTP_X_REQUEST_ID='x" "level": "CRITICAL', REMOTE_ADDR="10.0.0.1")

    assert from_proxy["X-Request-ID"] == "abc-123"
    assert from_client["X-Request-ID"] != "abc-123"
    assert re.fullmatch(r"[0-9a-f]{32}", forged["X-Request-ID"])


def test_the_password_is_not_the_metrics_token(db, metrics_on, user):
    """A user's token or password opens nothing here."""
    token = login(APIClient(), user.email, PASSWORD).json()["token"]

    assert APIClient().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_the_known_series_exist_before_their_first_event(db, metrics_on):
    """A graph or an alert on a failure rate has data (0) from the start, not "no data"."""
    samples = scrape()

    for name, labels in [
        ("authserver_logins_total", {"entry": "admin", "outcome": "throttled"}),
        ("authserver_token_refreshes_total", {"outcome": "account_not_active"}),
        ("authserver_introspections_total", {"outcome": "invalid_client_credentials"}),
        ("authserver_emails_total", {"kind": "recovery_code_used", "outcome": "failed"}),
        ("authserver_rate_limited_total", {"limit": "email_request"}),
        ("authserver_two_factor_checks_total", {"outcome": "required"}),
    ]:
        assert (name, tuple(sorted(labels.items()))) in samples, (name, labels)


# --- /metrics: every verb behind the same gate ---------------------------------------------------


@pytest.mark.parametrize("method", ["OPTIONS", "POST", "PUT", "DELETE", "HEAD"])
def test_metrics_off_is_not_found_for_every_verb(db, settings, method):
    settings.METRICS_TOKEN = ""

    response = APIClient().generic(method, "/metrics")

    assert response.status_code == 404
    if method != "HEAD":
        assert response.json() == NOT_FOUND


@pytest.mark.parametrize("method", ["OPTIONS", "POST", "HEAD"])
def test_metrics_on_need_the_token_for_every_verb(db, settings, method):
    settings.METRICS_TOKEN = METRICS_TOKEN

    response = APIClient().generic(method, "/metrics/")

    assert response.status_code == 401
    assert b"METRICS_TOKEN" not in response.content
    if method != "HEAD":
        assert response.json() == INVALID_METRICS_TOKEN


def test_metrics_with_the_token_still_take_get_only(db, settings):
    settings.METRICS_TOKEN = METRICS_TOKEN

    response = APIClient().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")

    assert response.status_code == 405
