"""Property-based fuzzing of every operation of the OpenAPI schema, in process.

The schema is read from GET /api/schema of the WSGI application (authserver.wsgi) and each of its
operations is called with generated requests:

- `test_fuzz_anonymous` (schemathesis): valid and invalid data (examples, coverage and fuzzing
  phases, positive and negative modes) as generated; token-protected operations get whatever
  `Authorization` header the fuzzer makes up, or none.
- `test_fuzz_signed_in` (schemathesis): the same, but every request carries a valid token (raw or
  `Bearer`) of a real user in one of the account states, and generated fields are at times
  replaced by that user's email, password or validation tokens, so that the fuzzer gets past the
  token and credential checks into the services.
- `test_fuzz_raw_bodies` (hypothesis): bodies no schema describes (any bytes, any JSON value,
  deep nesting, forms and multipart in any charset Python knows), signed in.

Every response must be JSON and never a 5xx (the contract's one 500, CouldNotSendEmail, cannot
happen with the test email backend); every error must be exactly the contract's envelope; and
for the schemathesis tests the status code, content type and body must be ones the schema
documents for the operation.

Each example starts from a database holding one user only, so that an example's outcome depends
on its own data, never on the examples before it.

Bounded for CI (the suite runs twice, on SQLite and PostgreSQL): MAX_EXAMPLES generated cases per
operation and schemathesis test on top of the schema's coverage cases, RAW_EXAMPLES per operation
for the raw bodies; derandomized and with no example database, so every run sends the same
requests.
"""

import encodings
import json
import logging
import pkgutil
import re
from urllib.parse import quote

import hypothesis.strategies as st
import pytest
import schemathesis
from django.core import mail
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, note, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.test import Client

from accounts.users.models import User
from accounts.users.links import Purpose, validation_token_make
from authserver.wsgi import application
from tests.conftest import PASSWORD

# Starts real servers or runs long: left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

# Generated cases per operation and schemathesis test, besides the coverage phase's cases.
MAX_EXAMPLES = 75
# Generated raw bodies per operation.
RAW_EXAMPLES = 100

CONFIG = schemathesis.Config.from_dict(
    {
        "suppress-health-check": ["all"],
        "generation": {
            "mode": "all",  # positive and negative data
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "phases": {"stateful": {"enabled": False}},
    }
)

schema = schemathesis.openapi.from_wsgi("/api/schema", application, config=CONFIG)

# The operations of the contract (and /status): each must be in the schema, so that it is fuzzed.
CONTRACT_OPERATIONS = {
    ("GET", "/api/authenticate"),
    ("POST", "/api/authenticate"),
    ("PUT", "/api/authenticate"),
    ("PATCH", "/api/authenticate"),
    ("DELETE", "/api/authenticate"),
    ("GET", "/api/user"),
    ("POST", "/api/user"),
    ("PUT", "/api/user"),
    ("PATCH", "/api/user"),
    ("DELETE", "/api/user"),
    ("POST", "/api/validate/confirmation"),
    ("PUT", "/api/validate/confirmation"),
    ("POST", "/api/validate/recovery"),
    ("GET", "/status"),
}
OPERATIONS = sorted(
    (operation.method.upper(), operation.path)
    for operation in (result.ok() for result in schema.get_all_operations())
)

# The user every example starts with, and the placeholders a steered case carries for the values
# that only exist once that user does (they are filled in just before the call).
USER_EMAIL = "fuzz.user@example.com"
USER_NAME = "Fuzz User"
OTHER_EMAIL = "someone.else@example.com"
NEW_PASSWORD = "another staple of horses"
# The contract's account states; "active" twice, as the state that gets furthest.
STATES = ("active", "active", "unconfirmed", "deactivated", "disabled")
TOKEN_PLACEHOLDER = re.compile(r"<token of the (?P<state>\w+) user>")
VALIDATION_PLACEHOLDERS = {
    "<confirmation token>": Purpose.CONFIRMATION,
    "<recovery token>": Purpose.RECOVERY,
}

ENVELOPE_KEYS = {"status", "message"}
FIELD_ERROR_KEYS = {"status", "message", "errors"}


# --- checks ----------------------------------------------------------------------------------------


def assert_json_envelope(status: int, content_type: str, content: bytes) -> None:
    """Assert a JSON body, no 5xx, and for an error exactly {status, message} (+ `errors` on a 400)."""
    assert content_type.split(";")[0].strip() == "application/json", f"Content-Type {content_type!r}, not JSON"
    try:
        body = json.loads(content)
    except ValueError as exc:
        raise AssertionError(f"Body is not JSON: {content[:200]!r}") from exc
    assert status < 500, f"Server error {status}: {body!r}"
    if status < 400:
        return
    assert isinstance(body, dict), f"Error body is not an object: {body!r}"
    allowed = FIELD_ERROR_KEYS if status == 400 else ENVELOPE_KEYS
    assert ENVELOPE_KEYS <= set(body) <= allowed, f"Error keys {sorted(body)}, expected {sorted(allowed)}"
    assert type(body["status"]) is int and body["status"] == status, (
        f"Envelope status {body['status']!r}, HTTP status {status}"
    )
    message = body["message"]
    assert isinstance(message, str) and message.strip(), f"Envelope message {message!r}"
    if "errors" in body:
        errors = body["errors"]
        assert isinstance(errors, dict) and errors, f"`errors` is not a non-empty object: {errors!r}"
        for field, messages in errors.items():
            assert isinstance(messages, list) and messages, f"`errors.{field}` is not a non-empty list"
            assert all(isinstance(text, str) and text for text in messages), f"`errors.{field}`: {messages!r}"


def json_error_envelope(ctx, response, case) -> None:
    """Schemathesis check: the response is JSON, and an error is the contract's envelope."""
    content_type = response.headers.get("content-type", [""])[0]
    assert_json_envelope(response.status_code, content_type, response.content)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    json_error_envelope,
]


# --- steering: real credentials in generated requests ----------------------------------------------

# A real value for each field the server checks against the user; `confirm` matches the password.
REAL_VALUES = {
    "email": st.sampled_from([USER_EMAIL, USER_EMAIL.upper(), f"  {USER_EMAIL}  ", OTHER_EMAIL]),
    "new_email": st.sampled_from([OTHER_EMAIL, USER_EMAIL.upper()]),
    "password": st.just(PASSWORD),
    "new_password": st.just(NEW_PASSWORD),
    "token": st.sampled_from(list(VALIDATION_PLACEHOLDERS)),
    "confirm": st.just(None),
}


def steer_case(context, case):
    """Draw the user's state and token form, and which generated fields take real values.

    A real value is the user's email (in capitals, padded with spaces) or a free one, the user's
    password, a valid new password, a validation token of the user, or, for `confirm`, the
    password it must match. No field, some or all are replaced; Hypothesis draws and shrinks the
    choice like any other part of the case.
    """
    authorization = st.builds(
        "{}<token of the {} user>".format, st.sampled_from(["", "Bearer "]), st.sampled_from(STATES)
    )
    fields = sorted(REAL_VALUES.keys() & case.body.keys()) if isinstance(case.body, dict) else []
    if fields:
        replaced = st.one_of(st.just(()), st.just(fields), st.lists(st.sampled_from(fields), unique=True))
    else:
        replaced = st.just(())
    reals = replaced.flatmap(lambda names: st.fixed_dictionaries({name: REAL_VALUES[name] for name in names}))

    def apply(drawn):
        header, real = drawn
        case.headers = {**(case.headers or {}), "Authorization": header}
        if real:
            body = {**case.body, **real}
            if "confirm" in real:
                body["confirm"] = body.get("new_password", body.get("password"))
            case.body = body
        return case

    return st.tuples(authorization, reals).map(apply)


# --- the world of one example ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fuzz_settings(settings):
    """No rate limit: the fuzzer is to explore the endpoints, not the throttle.

    Django's log line for each 4xx is muted (thousands of them); errors (5xx) are still logged.
    """
    settings.LOGIN_RATE = "none"
    settings.SIGNUP_RATE = "none"
    settings.EMAIL_RATE = "none"
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture
def wsgi_in_test_transaction(db):
    """Let WSGI calls run inside the test's transaction, as Django's test client does.

    Django's WSGI handler closes the database connection at the start and end of each request
    (`close_old_connections`), which would end the transaction that `db` opened for the test.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def fresh_world(wsgi_in_test_transaction, user_factory, token_for):
    """Return a function that resets the database to one user in `state` and returns the user.

    The fixture is set up once per test, the function called once per example (all examples of a
    test share the test's transaction).
    """

    def reset(state: str = "active") -> User:
        User.objects.all().delete()
        mail.outbox = []
        return user_factory(
            email=USER_EMAIL,
            name=USER_NAME,
            confirmed=state != "unconfirmed",
            deactivated=state == "deactivated",
            disabled=state == "disabled",
        )

    reset.token_for = token_for
    return reset


def _fill_validation_tokens(case, user: User) -> None:
    token = case.body.get("token") if isinstance(case.body, dict) else None
    if isinstance(token, str) and token in VALIDATION_PLACEHOLDERS:
        case.body = {**case.body, "token": validation_token_make(user=user, purpose=VALIDATION_PLACEHOLDERS[token])}


# --- schemathesis ----------------------------------------------------------------------------------


def test_schema_lists_every_operation():
    """Every operation of the contract is in the schema, hence fuzzed below."""
    assert CONTRACT_OPERATIONS <= set(OPERATIONS)


@schema.parametrize()
def test_fuzz_anonymous(case, fresh_world):
    """Generated requests as they are: no valid token, made-up credentials."""
    fresh_world()
    case.call_and_validate(checks=CHECKS)


@schema.hooks.apply(steer_case, name="flatmap_case")
@schema.parametrize()
def test_fuzz_signed_in(case, fresh_world):
    """Generated requests from a real user: a valid token, and at times real credentials."""
    header = (case.headers or {}).get("Authorization", "")
    placeholder = TOKEN_PLACEHOLDER.search(header)
    user = fresh_world(placeholder["state"] if placeholder else "active")
    token = fresh_world.token_for(user)
    # Cases the hook did not draw (the coverage phase's) send the raw token of an active user.
    case.headers = {
        **(case.headers or {}),
        "Authorization": TOKEN_PLACEHOLDER.sub(token, header) if placeholder else token,
    }
    _fill_validation_tokens(case, user)
    case.call_and_validate(checks=CHECKS)


# --- raw bodies ------------------------------------------------------------------------------------

# Every codec Python ships (text encodings and bytes-to-bytes ones alike), as a request charset.
CHARSETS = sorted(module.name for module in pkgutil.iter_modules(encodings.__path__) if module.name != "aliases")

short_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | short_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(short_text, children, max_size=4),
    max_leaves=12,
)
form_fields = st.dictionaries(
    st.sampled_from(["email", "password", "new_password", "confirm", "name", "new_email", "token"]) | short_text,
    short_text,
    max_size=4,
)


def _media_type(base: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just(base), st.sampled_from(CHARSETS).map(f"{base}; charset={{}}".format))


def _multipart(data: dict) -> bytes:
    parts = [f'--fz\r\nContent-Disposition: form-data; name="{quote(name)}"\r\n\r\n{value}\r\n' for name, value in data.items()]
    return ("".join(parts) + "--fz--\r\n").encode()


raw_requests = st.one_of(
    st.tuples(_media_type("application/json"), json_values.map(lambda value: json.dumps(value).encode())),
    # Deep nesting, as a hostile client sends it.
    st.tuples(
        _media_type("application/json"),
        st.builds(lambda opener, depth: (opener * depth).encode(), st.sampled_from(["[", '{"email":']), st.integers(1, 5000)),
    ),
    st.tuples(
        _media_type("application/x-www-form-urlencoded"),
        form_fields.map(lambda data: "&".join(f"{quote(name)}={quote(value)}" for name, value in data.items()).encode()),
    ),
    st.tuples(_media_type("multipart/form-data; boundary=fz"), form_fields.map(_multipart)),
    st.tuples(
        st.sampled_from(["", "text/plain", "application/xml", "multipart/form-data", "application/json"])
        | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
        st.binary(max_size=300),
    ),
)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
@settings(
    max_examples=RAW_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    # The fixture is set up once per operation; `fresh_world` resets the database per example.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=raw_requests, trailing_slash=st.booleans())
def test_fuzz_raw_bodies(method, path, request, trailing_slash, fresh_world):
    """Any body in any encoding, signed in: JSON and the envelope, never a 5xx."""
    token = fresh_world.token_for(fresh_world())
    content_type, body = request
    headers = {"Authorization": token}
    if content_type:
        headers["Content-Type"] = content_type
    url = path + "/" if trailing_slash and path != "/" else path
    note(f"{method} {url} Content-Type: {content_type!r}, {len(body)} bytes: {body[:300]!r}")
    response = Client(application).open(url, method=method, data=body, headers=headers)
    assert_json_envelope(response.status_code, response.headers.get("Content-Type", ""), response.get_data())
