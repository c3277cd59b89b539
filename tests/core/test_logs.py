"""core/logs.py: one JSON line per record whatever the path, and redaction of gunicorn's own lines
in text format. The deployed walk over every secret is in tests/core/test_logging.py."""

import json
import logging
import socket
import subprocess
import sys

import pytest
from rest_framework.test import APIClient

from core.logs import JSONFormatter, RequestContextFilter, redact
from tests.conftest import copy_project
from tests.deploy.test_settings import KEY
from tests.support.servers import gunicorn, production_environment


METRICS_TOKEN = "metrics-token-for-the-review-0123456789"


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


@pytest.mark.slow
def test_gunicorn_text_logs_are_redacted(tmp_path):
    """LOG_FORMAT=text under gunicorn: a malformed Authorization line (gunicorn's error log) and a
    password in a query string (its access log) reach no line."""
    project = copy_project(tmp_path / "project")
    env = production_environment(
        tmp_path,
        PYTHONUNBUFFERED="1",
        SECRET_KEY=KEY,
        EMAIL_BACKEND="console",
        LOG_FORMAT="text",
        LOG_LEVEL="DEBUG",
        METRICS_TOKEN=METRICS_TOKEN,
        WEB_CONCURRENCY="1",
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=project, env=env, capture_output=True, timeout=120, check=True)
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with gunicorn("-c", "gunicorn.conf.py", cwd=project, env=env, log=stderr, stdout=stdout) as server:
        port = server.port
        head = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for secret in (JWT, METRICS_TOKEN):
            answer = raw_request(port, head + b"Authorization Bearer " + secret.encode() + b"\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 400")
        answer = raw_request(port, f"GET /status?password={QUERY_PASSWORD} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 200")
    logs = stdout.read_text() + stderr.read_text()

    assert "Invalid HTTP Header" in logs and "GET /status HTTP/1.1" in logs  # the lines are there...
    for secret in (JWT, METRICS_TOKEN, QUERY_PASSWORD):
        assert secret not in logs  # ...without the secrets


def test_why_the_bearer_characters_the_redaction_stops_at_the_first_other_one():
    assert "metrics!token!with!bangs" in redact("Invalid HTTP Header: 'Authorization Bearer metrics!token!with!bangs'")
