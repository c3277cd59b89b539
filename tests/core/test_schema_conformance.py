"""Every answer of the live server is one its schema describes.

The real server runs under gunicorn (production settings, a SQLite database of its own) on a free
loopback port; the schema is loaded from its GET /api/schema, and schemathesis calls every
operation with the response-conformance checks on: the status code, the content type, the body
and the headers must be ones the schema documents for the operation, and no answer a 5xx.

Stricter than the schema's own JSON Schema: an object the schema describes may hold no key it
does not list (drf-spectacular leaves additionalProperties open), so that a field the server
answers and the schema forgets (introspection's `email_verified`, once) fails here.

Token-protected operations carry the token of a real user (registered, confirmed, logged in over
the API; logged in again whenever a token stops working, which also reactivates a deactivated
account); /api/introspect carries a registered resource server's credentials, and every other
generated token is swapped for a real one, so that active answers are checked too.

Bounded: MAX_EXAMPLES generated cases per operation and mode (valid, invalid), derandomized,
no example database.
"""

import base64
import subprocess
import sys

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.core.test_ratelimit_gunicorn import BASE_DIR, serve
from tests.support.api import live_call

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 8
EMAIL = "conformance@example.com"
PASSWORD = "correct horse battery"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

CONFIG = schemathesis.Config.from_dict({"generation": {"deterministic": True, "database": "none"}})


def call(base: str, method: str, path: str, data: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    return live_call(base, method, path, data, {"Authorization": token} if token else None)


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def closed(node):
    """Return the schema with every described object closed to keys it does not list."""
    if isinstance(node, dict):
        node = {key: closed(value) for key, value in node.items()}
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [closed(value) for value in node]
    return node


class Server:
    """The live server, and the credentials the cases carry."""

    def __init__(self, base: str, env: dict):
        self.base, self.env = base, env
        body = {"email": EMAIL, "name": "Conformance", "password": PASSWORD, "confirm": PASSWORD}
        assert call(base, "POST", "/api/user", body)[0] == 200
        confirmation = manage(env, "generate_validation_token", EMAIL).strip()
        assert call(base, "POST", "/api/validate/confirmation", {"token": confirmation})[0] == 200
        lines = dict(line.split("=", 1) for line in manage(env, "create_resource_server", "conformance").split())
        self.basic = "Basic " + base64.b64encode(f"{lines['client_id']}:{lines['client_secret']}".encode()).decode()
        self._token = None

    def token(self) -> str:
        """A working token of the user (a new login when the last one stopped working)."""
        if self._token is None:
            status, body = call(self.base, "POST", "/api/authenticate", {"email": EMAIL, "password": PASSWORD})
            assert status == 200, body
            self._token = body["token"]
        return self._token

    def forget_token(self) -> None:
        self._token = None


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    rates = dict.fromkeys(
        ["LOGIN_RATE", "LOGIN_ACCOUNT_RATE", "LOGIN_ADDRESS_RATE", "SIGNUP_RATE", "EMAIL_RATE", "EMAIL_REQUEST_RATE"], "none"
    )
    for base, _, env in serve(tmp_path_factory.mktemp("conformance"), max_requests=0, **rates):
        yield Server(base, env)


def operations(live) -> list:
    """The operations of the live schema, its objects closed (see `closed`)."""
    schema = schemathesis.openapi.from_url(f"{live.base}/api/schema", config=CONFIG)
    closed_schema = closed(schema.raw_schema)
    schema.raw_schema.clear()
    schema.raw_schema.update(closed_schema)
    return [result.ok() for result in schema.get_all_operations()]


def prepare(case, live) -> None:
    """Give the case the credentials of the live server's user or resource server."""
    if case.operation.path.startswith("/api/introspect"):
        authorization = live.basic
        if isinstance(case.body, dict) and isinstance(case.body.get("token"), str):
            case.body = {**case.body, "token": live.token()}
    else:
        # Public operations ignore it; /metrics is off (no METRICS_TOKEN): its 404.
        authorization = live.token()
    case.headers = {**(case.headers or {}), "Authorization": authorization}


def test_every_answer_is_described(live):
    failures = []
    called = set()
    for operation in operations(live):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=MAX_EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            @given(case=operation.as_strategy(mode))
            def run(case):
                prepare(case, live)
                response = case.call_and_validate(checks=CHECKS)
                called.add((operation.method.upper(), operation.path, response.status_code))
                if response.status_code == 401:
                    live.forget_token()

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to make invalid: no parameters, no body
            except Exception as exc:  # every operation runs; the failures are listed together
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
    # Each operation was called: the checks saw its answers.
    assert {(method, path) for method, path, _ in called} == {(op.method.upper(), op.path) for op in operations(live)}


def test_the_object_closing_catches_an_undescribed_key():
    described = closed({"type": "object", "properties": {"active": {"type": "boolean"}}})
    assert described["additionalProperties"] is False
