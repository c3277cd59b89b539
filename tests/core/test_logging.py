"""Logs and metrics as deployed: gunicorn with gunicorn.conf.py, 2 workers, LOG_FORMAT=json.

One module-scoped server walks a user through everything that handles a secret (registration,
confirmation and recovery links over a real SMTP server, login, refresh, a wrong password, a
password change, two-factor enrollment and sign-in, introspection with a resource server's
secret, a /metrics scrape), with LOG_LEVEL=DEBUG. Then:
- every line gunicorn and the server wrote, on stdout and stderr, is one JSON object, and the
  request lines carry request id, path, status, duration and client address;
- no line holds any of the secrets the walk used or received;
- /metrics counted every login whichever of the two workers served it.
And, in this process, the formatter and the redaction on their own.
"""

import json
import logging
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.logs import REDACTED, JSONFormatter, RequestContextFilter, redact, request_context
from tests.support.smtp import Collector, body_text, smtp_sink
from tests.support.servers import gunicorn, production_environment

BASE_DIR = Path(__file__).resolve().parents[2]
SECRET_KEY = "logging-test-" + "k7Qz" * 15
METRICS_TOKEN = "metrics-token-logging-test-5Yh2"
PASSWORD = "first secret passphrase 1"
WRONG_PASSWORD = "wrong guess passphrase 2"
NEW_PASSWORD = "second secret passphrase 3"
RESET_PASSWORD = "third secret passphrase 4"
EMAIL = "logs@example.com"


def call(base, method, path, *, data=None, token=None, headers=None):
    """Return status, JSON body and headers of one request (a new connection each time)."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(base + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw, status, answer_headers = response.read(), response.status, response.headers
    except urllib.error.HTTPError as error:
        raw, status, answer_headers = error.read(), error.code, error.headers
    return status, (json.loads(raw) if answer_headers.get("Content-Type", "").startswith("application/json") else raw.decode()), answer_headers


def link_token(collector: Collector, count_before: int) -> str:
    """Return the token at the end of the link in the newest email (waiting for it to arrive)."""
    deadline = time.monotonic() + 30
    while len(collector.messages) <= count_before:
        assert time.monotonic() < deadline, "no email arrived"
        time.sleep(0.05)
    text = body_text(collector.messages[-1][1])
    return re.search(r"https?://\S+/([^/\s]+)\s", text + "\n").group(1)


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """Run the server, walk it, stop it; return the walk's secrets, its logs and what it saw."""
    workdir = tmp_path_factory.mktemp("logging")
    secrets = {"SECRET_KEY": SECRET_KEY, "METRICS_TOKEN": METRICS_TOKEN, "password": PASSWORD,
               "wrong password": WRONG_PASSWORD, "new password": NEW_PASSWORD, "reset password": RESET_PASSWORD}
    seen = {}
    stdout, stderr = workdir / "stdout.log", workdir / "stderr.log"
    with smtp_sink() as collector:
        env = production_environment(
            workdir,
            PYTHONUNBUFFERED="1",
            SECRET_KEY=SECRET_KEY,
            EMAIL_BACKEND="smtp",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(collector.port),
            EMAIL_USE_TLS="false",
            LOG_FORMAT="json",
            LOG_LEVEL="DEBUG",
            METRICS_TOKEN=METRICS_TOKEN,
            WEB_CONCURRENCY="2",
        )

        def manage(*args: str) -> str:
            return subprocess.run(
                [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120, check=True
            ).stdout

        manage("migrate", "--noinput")
        with gunicorn("-c", "gunicorn.conf.py", env=env, cwd=BASE_DIR, log=stderr, stdout=stdout) as server:
            base = server.base
            sent = len(collector.messages)
            registration = {"email": EMAIL, "name": "Logan", "password": PASSWORD, "confirm": PASSWORD}
            assert call(base, "POST", "/api/user", data=registration)[0] == 200
            secrets["confirmation link"] = link_token(collector, sent)
            assert call(base, "POST", "/api/validate/confirmation", data={"token": secrets["confirmation link"]})[0] == 200

            status, body, _ = call(base, "POST", "/api/authenticate", data={"email": EMAIL, "password": PASSWORD})
            assert status == 200
            secrets["login token"] = body["token"]
            status, body, _ = call(base, "GET", "/api/authenticate", token=secrets["login token"])
            assert status == 200
            secrets["refreshed token"] = body["token"]
            assert call(base, "POST", "/api/authenticate", data={"email": EMAIL, "password": WRONG_PASSWORD})[0] == 401
            assert call(base, "GET", "/api/user", token="eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4eHh4In0.forged")[0] == 401

            change = {"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
            status, body, _ = call(base, "PUT", "/api/authenticate", data=change, token=secrets["refreshed token"])
            assert status == 200
            secrets["token after the change"] = body["token"]

            sent = len(collector.messages)
            assert call(base, "PATCH", "/api/authenticate", data={"email": EMAIL})[0] == 200
            secrets["recovery link"] = link_token(collector, sent)
            reset = {"token": secrets["recovery link"], "new_password": RESET_PASSWORD, "confirm": RESET_PASSWORD}
            assert call(base, "POST", "/api/validate/recovery", data=reset)[0] == 200

            status, body, _ = call(base, "POST", "/api/authenticate", data={"email": EMAIL, "password": RESET_PASSWORD})
            secrets["token before two-factor"] = token = body["token"]
            status, body, _ = call(base, "POST", "/api/mfa/totp", data={"password": RESET_PASSWORD}, token=token)
            assert status == 200
            secrets["TOTP secret"] = body["secret"]
            totp = pyotp.TOTP(body["secret"])
            status, body, _ = call(base, "PUT", "/api/mfa/totp", data={"code": totp.now()}, token=token)
            assert status == 200
            for number, code in enumerate(body["recovery_codes"]):
                secrets[f"recovery code {number}"] = code
            login = {"email": EMAIL, "password": RESET_PASSWORD, "otp": body["recovery_codes"][0]}
            status, body, _ = call(base, "POST", "/api/authenticate", data=login)
            assert status == 200
            secrets["token after two-factor"] = body["token"]

            credentials = dict(line.split("=", 1) for line in manage("create_resource_server", "reports").split())
            secrets["client secret"] = credentials["client_secret"]
            basic = "Basic " + b64encode(f"{credentials['client_id']}:{credentials['client_secret']}".encode()).decode()
            status, body, _ = call(base, "POST", "/api/introspect", data={"token": secrets["token after two-factor"]}, headers={"Authorization": basic})
            assert status == 200 and body["active"] is True

            # Logins spread over both workers: concurrent, each on a new connection.
            with ThreadPoolExecutor(max_workers=4) as pool:
                statuses = list(pool.map(lambda _: call(base, "POST", "/api/authenticate", data={"email": EMAIL, "password": RESET_PASSWORD, "otp": "000000"})[0], range(8)))
            seen["wrong codes"] = statuses.count(401)

            status, text, headers = call(base, "GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            assert status == 200, text
            seen["metrics"] = text
            seen["request id"] = headers["X-Request-ID"]
            assert call(base, "DELETE", "/api/authenticate", data={"password": RESET_PASSWORD}, token=secrets["token after two-factor"])[0] == 200
    lines = stdout.read_text().splitlines() + stderr.read_text().splitlines()
    return {"secrets": secrets, "lines": [line for line in lines if line.strip()], "seen": seen}


def entries(walk) -> list[dict]:
    return [json.loads(line) for line in walk["lines"]]


@pytest.mark.slow
def test_every_line_is_one_json_object(walk):
    assert len(walk["lines"]) > 20
    for line in walk["lines"]:
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= entry.keys(), line
        datetime.fromisoformat(entry["time"])


@pytest.mark.slow
def test_gunicorn_writes_json_too(walk):
    messages = [entry["message"] for entry in entries(walk) if entry["logger"] == "gunicorn.error"]
    assert any("Starting gunicorn" in message for message in messages)
    assert any("Booting worker" in message for message in messages)


@pytest.mark.slow
def test_each_request_is_one_line_with_its_fields(walk):
    requests = [entry for entry in entries(walk) if entry["logger"] == "authserver.requests"]
    by_id = {entry["request_id"]: entry for entry in requests}
    scrape = by_id[walk["seen"]["request id"]]
    assert scrape["path"] == "/metrics" and scrape["method"] == "GET" and scrape["status"] == 200
    assert scrape["client_address"] == "127.0.0.1"
    assert isinstance(scrape["duration_ms"], (int, float)) and scrape["duration_ms"] >= 0
    assert len(by_id) == len(requests), "request ids repeat"
    assert {(entry["method"], entry["path"], entry["status"]) for entry in requests} >= {
        ("POST", "/api/user", 200),
        ("POST", "/api/authenticate", 401),
        ("GET", "/api/user", 401),
        ("POST", "/api/introspect", 200),
    }


@pytest.mark.slow
def test_lines_written_during_a_request_carry_its_id(walk):
    failures = [entry for entry in entries(walk) if entry["logger"] == "django.request" and entry["level"] == "WARNING"]
    assert failures, "Django logs each 4xx answer as a warning"
    assert all(re.fullmatch(r"[0-9a-f]{32}", entry["request_id"]) for entry in failures)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["SECRET_KEY", "METRICS_TOKEN", "password", "wrong password", "new password", "reset password",
     "confirmation link", "recovery link", "login token", "refreshed token", "token after the change",
     "token before two-factor", "token after two-factor", "TOTP secret", "client secret"]
    + [f"recovery code {number}" for number in range(10)],
)
def test_no_line_holds_a_secret(walk, name):
    secret = walk["secrets"][name]
    pieces = {secret}
    if secret.count(".") == 2:  # a JWT: its signature alone is a secret's fingerprint too
        pieces.add(secret.rsplit(".", 1)[1])
    for line in walk["lines"]:
        for piece in pieces:
            assert piece not in line, f"{name} in {line}"


@pytest.mark.slow
def test_metrics_sum_both_workers(walk):
    lines = entries(walk)
    workers = {entry["process"] for entry in lines if entry["logger"] == "authserver.requests" and entry["path"] == "/api/authenticate"}
    assert len(workers) >= 2, "the logins never reached both workers"
    text = walk["seen"]["metrics"]
    # Before the scrape: 2 logins with the password alone, 1 with a recovery code.
    assert metric(text, "authserver_logins_total", entry="api", outcome="success") == 3
    assert metric(text, "authserver_logins_total", entry="api", outcome="invalid_credentials") == 1
    assert metric(text, "authserver_logins_total", entry="api", outcome="invalid_two_factor_code") == walk["seen"]["wrong codes"]
    assert metric(text, "authserver_token_refreshes_total", outcome="success") == 1
    assert metric(text, "authserver_introspections_total", outcome="active") == 1
    assert metric(text, "authserver_emails_total", kind="confirmation", outcome="sent") == 1
    assert metric(text, "authserver_emails_total", kind="recovery", outcome="sent") == 1
    assert metric(text, "authserver_two_factor_checks_total", outcome="recovery_code") == 1
    assert metric(text, "authserver_request_duration_seconds_count", endpoint="authenticate", method="POST", status="200") == 3


# --- In this process: the formatter and the redaction ---------------------------------------------


def record(message, *args, exc_info=None, **extra) -> logging.LogRecord:
    made = logging.LogRecord("accounts.test", logging.WARNING, __file__, 1, message, args, exc_info)
    for name, value in extra.items():
        setattr(made, name, value)
    RequestContextFilter().filter(made)
    return made


def test_the_json_formatter_writes_the_fixed_fields_only():
    class Request:
        META = {"HTTP_AUTHORIZATION": "Bearer should-never-show"}

    token = request_context.set({"request_id": "abc", "path": "/api/user", "client_address": "192.0.2.1"})
    try:
        line = JSONFormatter().format(record("Failed for %s", "ann@example.com", request=Request(), status_code=401))
    finally:
        request_context.reset(token)

    entry = json.loads(line)
    assert entry["message"] == "Failed for ann@example.com"
    assert entry["request_id"] == "abc" and entry["path"] == "/api/user" and entry["client_address"] == "192.0.2.1"
    assert entry["level"] == "WARNING" and entry["logger"] == "accounts.test"
    assert datetime.fromisoformat(entry["time"]).tzinfo == UTC
    assert "should-never-show" not in line and "request" not in entry and "status_code" not in entry


def test_the_json_formatter_keeps_the_traceback_redacted():
    try:
        raise ValueError("password=hunter2hunter2 rejected")
    except ValueError:
        line = JSONFormatter().format(record("Unhandled error", exc_info=sys.exc_info()))

    entry = json.loads(line)
    assert "ValueError" in entry["exception"] and "hunter2hunter2" not in line


@pytest.mark.parametrize(
    "text, kept",
    [
        ("Authorization: Bearer abcdefgh12345678", "Authorization:  "),
        ("sent eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4eXoifQ.c2lnbmF0dXJl to x", "sent  to x"),
        ("link http://localhost:3000/recover/MTIz-abcdefghijklmnopqrstu", "link http://localhost:3000/recover/"),
        ("link http://localhost:3000/confirm/MTIz:1vXyZ:abcdefghijklmnop", "link http://localhost:3000/confirm/"),
        ('{"client_secret": "s3cr3t-value"}', '{"client_secret": ""}'),
        ("password=hunter22&next=1", "password=&next=1"),
        ("Basic dXNlcjpwYXNzd29yZA==", "Basic "),
        # Every secret field the API takes, in a form body, a query string, JSON or a repr.
        ("new_password=hunter22&confirm=hunter22&next=1", "new_password=&confirm=&next=1"),
        ("GET /x?code=123456&otp=654321&token=abcd HTTP/1.1", "GET /x?code=&otp=&token= HTTP/1.1"),
        ('{"old_password": "a b c", "confirm": "x"}', '{"old_password": "", "confirm": ""}'),
        ("{'password': 'hunter22', 'code': '1234'}", "{'password': '', 'code': ''}"),
        ('{"recovery_codes": ["abcd-efgh", "ijkl-mnop"]}', '{"recovery_codes": []}'),
        ("recovery_code=abcd-efgh", "recovery_code="),
        ("secret: JBSWY3DPEHPK3PXP", "secret: "),
        ("otpauth_uri=otpauth://totp/x?secret=JBSWY3DPEHPK3PXP", "otpauth_uri="),
        ("client_id=c1&client_secret=s3", "client_id=c1&client_secret="),
        ("glued xyeyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4eXoifQ.c2lnbmF0dXJl.", "glued xy."),
        ("/api/validate/email/abcdefghijklmnopq/x", "/api/validate/email//x"),
        # Names written with escapes, values with escaped quotes or stray punctuation (review finding).
        ('{"pass\\u0077ord": "hunter2"}', '{"pass\\u0077ord": ""}'),
        ("pass%77ord=hunter2&next=1", "pass%77ord=&next=1"),
        ('{"password": "ab\\"cd rest-of-secret"}', '{"password": ""}'),
        ("{'password': 'it\\'s secret'}", "{'password': ''}"),
        ("password=a,b2secret", "password="),
        ('password=ab"cdsecret', "password="),
        ('{"codes": ["ab]cd", "efgh"]}', '{"codes": []}'),
    ],
)
def test_secrets_are_redacted(text, kept):
    redacted = redact(text)
    assert REDACTED in redacted
    assert redacted.replace(REDACTED, "") == kept


@pytest.mark.parametrize(
    "text",
    ["Invalid or expired token", "token refresh refused", "Password updated", "Notice 'password_changed' queued", "GET /api/user 200"],
)
def test_ordinary_messages_are_left_alone(text):
    assert redact(text) == text


def _repeats(pattern):
    """Yield (opcode, min, max) of every repetition in a compiled pattern, nested ones included."""
    from re import _constants, _parser

    def walk(items):
        for op, av in items:
            if op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT, _constants.POSSESSIVE_REPEAT):
                yield op, av[0], av[1]
                yield from walk(av[2])
            elif op in (_constants.SUBPATTERN, _constants.ATOMIC_GROUP):
                yield from walk(av[-1])
            elif op == _constants.BRANCH:
                for branch in av[1]:
                    yield from walk(branch)
            elif op in (_constants.ASSERT, _constants.ASSERT_NOT):
                yield from walk(av[1])

    yield from walk(_parser.parse(pattern.pattern, pattern.flags))


def test_redaction_cannot_backtrack():
    """Attacker-chosen text (a 404 path, a header) is redacted in linear time: no repetition in
    the redaction patterns gives characters back (each is possessive, or takes one character at
    most), so an attempt never reads a character twice."""
    from re import _constants

    from core import logs

    patterns = [value for value in vars(logs).values() if isinstance(value, re.Pattern)]
    assert len(patterns) >= 4
    for pattern in patterns:
        repeats = list(_repeats(pattern))
        assert repeats, pattern.pattern
        for op, _low, high in repeats:
            assert op == _constants.POSSESSIVE_REPEAT or high <= 1, pattern.pattern


@pytest.mark.parametrize(
    "adversarial",
    [
        "/" + "validate/" * 2000,
        "/validate" * 2000,
        "eyJ" * 4000,
        "eyJaaaaaa." * 2000,
        "bearer " * 2000,
        "password " * 2000,
        "password=" * 2000,
        "a=" * 6000,
        "ValueError: " * 2000,
        "-a" * 6000,
        "x" * 12000,
    ],
)
def test_redaction_reads_attacker_text_in_one_pass(adversarial):
    """What is judged in Python (runs that may hold a JWT, link paths, secret values) holds each
    character of the text once at most: nothing is read again."""
    from core import logs

    seen = []

    class Counted:
        """A pattern that records the length of each match it returns (values are read by match())."""

        def __init__(self, pattern):
            self.pattern = pattern

        def match(self, text, pos):
            found = self.pattern.match(text, pos)
            seen.append(found.end() - found.start())
            return found

    originals = {name: getattr(logs, name) for name in ("_jwts_redacted", "_link_tokens_redacted", "_SECRET_VALUE")}

    def counting(original):
        def call(match):
            seen.append(len(match.group()))
            return original(match)

        return call

    logs._jwts_redacted = counting(originals["_jwts_redacted"])
    logs._link_tokens_redacted = counting(originals["_link_tokens_redacted"])
    logs._SECRET_VALUE = Counted(originals["_SECRET_VALUE"])
    try:
        logs.redact(adversarial)
    finally:
        for name, original in originals.items():
            setattr(logs, name, original)
    assert sum(seen) <= len(adversarial)


# --- gunicorn's text logs (gunicorn.conf.py without LOG_FORMAT=json) ----------------------------


@pytest.fixture
def gunicorn_logger(tmp_path):
    """A RedactingLogger as gunicorn makes it (its public setup() runs in __init__), error log and
    access log to files; its handlers are taken off gunicorn's loggers afterwards."""
    from gunicorn.config import Config

    from core.gunicorn_logging import RedactingLogger

    cfg = Config()
    cfg.set("errorlog", str(tmp_path / "error.log"))
    cfg.set("accesslog", str(tmp_path / "access.log"))
    logger = RedactingLogger(cfg)
    yield logger, cfg, tmp_path
    for log in (logger.error_log, logger.access_log):
        for handler in list(log.handlers):
            if isinstance(handler, logging.FileHandler) and handler.baseFilename.startswith(str(tmp_path)):
                log.removeHandler(handler)
                handler.close()


def _flushed(logger):
    """Write out what the file handlers hold."""
    for log in (logger.error_log, logger.access_log):
        for handler in log.handlers:
            handler.flush()


def test_gunicorns_text_logs_are_redacted_in_gunicorns_format(gunicorn_logger):
    logger, cfg, directory = gunicorn_logger
    jwt_like = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4eXoifQ.c2lnbmF0dXJl"

    logger.error("Invalid header line: Authorization Bearer %s", jwt_like)
    try:
        raise ValueError(f"password=hunter2hunter2 with {jwt_like}")
    except ValueError:
        logger.exception("Error handling request")
    logger.access_log.info(f"GET /api/validate/confirm/MTIz:1vXyZ:abcdefghijklmnop?token={jwt_like}")
    _flushed(logger)

    error_lines = (directory / "error.log").read_text()
    access_lines = (directory / "access.log").read_text()
    assert jwt_like not in error_lines + access_lines and "hunter2hunter2" not in error_lines
    assert "abcdefghijklmnop" not in access_lines and REDACTED in access_lines
    # gunicorn's own format: "[date] [pid] [LEVEL] message", the traceback after it.
    first = error_lines.splitlines()[0]
    assert re.fullmatch(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[ERROR\] Invalid header line: .*", first)
    assert "Traceback" in error_lines and "ValueError" in error_lines
    assert access_lines.startswith("GET /api/validate/confirm/")


def test_a_reload_redacts_once_and_writes_each_line_once(gunicorn_logger):
    from core.gunicorn_logging import RedactedFormatter

    logger, cfg, directory = gunicorn_logger
    logger.setup(cfg)  # what a HUP does
    logger.setup(cfg)

    for log in (logger.error_log, logger.access_log):
        # gunicorn's handler, one after each reload (pytest's own capture handlers aside).
        handlers = [handler for handler in log.handlers if isinstance(handler, logging.FileHandler)]
        assert len(handlers) == 1
        assert all(isinstance(handler.formatter, RedactedFormatter) for handler in log.handlers if isinstance(handler, logging.StreamHandler))
        assert isinstance(handlers[0].formatter, RedactedFormatter)
        assert not isinstance(handlers[0].formatter.inner, RedactedFormatter)
    logger.error("once")
    _flushed(logger)
    assert (directory / "error.log").read_text().count("once") == 1


def test_every_handler_redacts_after_any_number_of_reloads():
    """A reload frees gunicorn's old handler, and the new one may take its address: no handler may
    be taken for an old one and left unredacted (review finding)."""
    from gunicorn.config import Config

    from core.gunicorn_logging import RedactedFormatter, RedactingLogger

    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("errorlog", "-")
    logger = RedactingLogger(cfg)
    try:
        for reload in range(50):
            logger.setup(cfg)
            formatters = [handler.formatter for log in (logger.error_log, logger.access_log) for handler in log.handlers]
            assert formatters and all(isinstance(formatter, RedactedFormatter) for formatter in formatters), reload
    finally:
        for log in (logger.error_log, logger.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)


def test_gunicorn_conf_uses_the_redacting_logger_with_text_logs():
    text = (BASE_DIR / "gunicorn.conf.py").read_text()
    assert "from core.gunicorn_logging import RedactingLogger" in text and "logger_class = RedactingLogger" in text
    assert "_set_handler" not in text


def test_gunicorns_access_log_leaves_query_strings_out():
    """A query string may hold anything a client sends: the access log writes the path only."""
    namespace = {}
    text = (BASE_DIR / "gunicorn.conf.py").read_text()
    [line] = [line for line in text.splitlines() if line.startswith("access_log_format")]
    exec(line, namespace)
    log_format = namespace["access_log_format"]
    assert "%(U)s" in log_format
    for atom in ("%(r)s", "%(q)s", "%({raw_uri}e)s", "%(f)s"):
        assert atom not in log_format
