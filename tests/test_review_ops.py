"""Review of /metrics, GET / and the logs (branch review2): each test failed before its fix.

- /metrics answered OPTIONS with DRF's metadata (200, the view's docstring) while METRICS_TOKEN
  was unset, and without the token while it was set; POST told the path apart too (405).
- The JSON lines held U+0085, U+2028 and U+2029 raw, where str.splitlines cuts a line.
- In text format (the default), gunicorn's own lines were not redacted: its error log quoted a
  malformed Authorization line whole (a token, the metrics token), its access log the query string.
- A METRICS_TOKEN with characters outside a bearer token's (a "!", a space, "é") was taken; it
  either never matches (a WSGI server reads headers as Latin-1) or escapes the "Bearer <token>"
  redaction.
"""

import json
import logging
import signal
import socket
import subprocess
import sys

import pytest
from rest_framework.test import APIClient

from core.logs import JSONFormatter, RequestContextFilter, redact
from tests.conftest import copy_project, production_environment, run, wait_for_server
from tests.deploy.test_settings import KEY, SETUP_ONLY
from tests.support.servers import free_port

METRICS_TOKEN = "metrics-token-for-the-review-0123456789"
NOT_FOUND = {"status": 404, "message": "Not found"}
INVALID_METRICS_TOKEN = {"status": 401, "message": "Invalid metrics token"}


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


# --- JSON lines: one line for every reader -------------------------------------------------------


@pytest.mark.parametrize("path", ["/x%C2%85y", "/x%E2%80%A8y", "/x%E2%80%A9y"])
def test_a_json_line_stays_one_line_whatever_the_path(db, path):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("authserver.requests")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # as with LOG_FORMAT=json
    try:
        APIClient().get(path)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

    [record] = records
    line = JSONFormatter().format(record)
    assert len(line.splitlines()) == 1
    assert json.loads(line)["path"] == record.path


# --- text format: gunicorn's own lines redacted too ----------------------------------------------

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJyZXZpZXcifQ.c2lnbmF0dXJlLXJldmlldy0x"
QUERY_PASSWORD = "query-string-password-7Hq2"


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_gunicorn_text_logs_are_redacted(tmp_path):
    """LOG_FORMAT=text under gunicorn: a malformed Authorization line (gunicorn's error log) and a
    password in a query string (its access log) reach no line."""
    project = copy_project(tmp_path / "project")
    port = free_port()
    env = production_environment(
        tmp_path,
        SECRET_KEY=KEY,
        EMAIL_BACKEND="console",
        LOG_FORMAT="text",
        LOG_LEVEL="DEBUG",
        METRICS_TOKEN=METRICS_TOKEN,
        WEB_CONCURRENCY="1",
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=project, env=env, capture_output=True, timeout=120, check=True)
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with open(stdout, "w") as out, open(stderr, "w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"],
            cwd=project,
            env=env,
            stdout=out,
            stderr=err,
        )
        try:
            wait_for_server(process, f"http://127.0.0.1:{port}", stderr)
            head = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            for secret in (JWT, METRICS_TOKEN):
                answer = raw_request(port, head + b"Authorization Bearer " + secret.encode() + b"\r\n\r\n")
                assert answer.startswith(b"HTTP/1.1 400")
            answer = raw_request(port, f"GET /status?password={QUERY_PASSWORD} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            assert answer.startswith(b"HTTP/1.1 200")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    logs = stdout.read_text() + stderr.read_text()

    assert "Invalid HTTP Header" in logs and "/status?password=" in logs  # the lines are there...
    for secret in (JWT, METRICS_TOKEN, QUERY_PASSWORD):
        assert secret not in logs  # ...without the secrets


# --- METRICS_TOKEN: a bearer token's characters only ---------------------------------------------


@pytest.mark.parametrize("token", ["metrics!token!with!bangs", "metrics token with spaces", "métrics-token-0123456789"])
def test_a_metrics_token_outside_the_bearer_characters_is_refused_at_start(tmp_path, token):
    project = copy_project(tmp_path / "project")

    result = run(project, "-c", SETUP_ONLY, SECRET_KEY=KEY, EMAIL_BACKEND="console", METRICS_TOKEN=token)

    assert result.returncode != 0
    assert "ImproperlyConfigured: METRICS_TOKEN may hold letters, digits and . _ ~ + / = - only" in result.stderr


def test_why_the_bearer_characters_the_redaction_stops_at_the_first_other_one():
    assert "metrics!token!with!bangs" in redact("Invalid HTTP Header: 'Authorization Bearer metrics!token!with!bangs'")
