"""Every answer is JSON in the contract's error envelope, whatever goes wrong and wherever.

Covers what no endpoint file owns: unknown paths (404), unmapped verbs (405), unsupported content
types (415), bodies that are not JSON objects or are too large, disallowed Host headers, unhandled
exceptions (500, never an HTML page), and the rule that an error carries only `status`, `message`
and, on field 400s, `errors`. Also with DEBUG on, an unknown path answers JSON.
"""

import json
import logging
import re
from urllib.parse import urlencode

import pytest
from django.test import Client

from accounts.account import profile as account_services
from accounts.signin import services as login_services
from accounts.account import registration as registration_services
from accounts.users.models import User
from tests.conftest import PASSWORD, SESSIONS_INLINE, admin_login
from tests.support.contract import INVALID_CREDENTIALS, INVALID_TOKEN, LOGIN_REQUIRED, TOKEN_INVALID

ENVELOPE_KEYS = {"status", "message"}
FIELD_ERROR_KEYS = {"status", "message", "errors"}


def assert_envelope(response, status: int) -> dict:
    """Check that the response is a JSON error envelope with this status and return the body."""
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert isinstance(body, dict)
    assert body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    allowed = FIELD_ERROR_KEYS if status == 400 else ENVELOPE_KEYS
    assert set(body) <= allowed, f"unexpected keys {set(body) - allowed}"
    assert ENVELOPE_KEYS <= set(body)
    if "errors" in body:
        assert isinstance(body["errors"], dict) and body["errors"]
        for messages in body["errors"].values():
            assert isinstance(messages, list) and all(isinstance(text, str) for text in messages)
    return body


def registration(**overrides) -> dict:
    data = {"email": "new@example.com", "name": "New Person", "password": PASSWORD, "confirm": PASSWORD}
    data.update(overrides)
    return data


# --- 404 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/nope/",
        "/api",
        "/api/",
        "/api/nope",
        "/api/nope/",
        "/api/user/extra",
        "/api/validate",
        "/api/validate/other",
        "/api/authenticated",
        "/status/extra",
    ],
)
def test_unknown_path_is_json_404(client, path):
    response = client.get(path)

    assert_envelope(response, 404)
    assert json.loads(response.content) == {"status": 404, "message": "Not found"}


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_unknown_path_is_json_404_for_every_verb(client, method):
    response = client.generic(method.upper(), "/api/nope", "{}", content_type="application/json")

    assert json.loads(response.content) == {"status": 404, "message": "Not found"}
    assert_envelope(response, 404)


def test_unknown_path_does_not_redirect(client):
    response = client.get("/api/nope", follow=False)

    assert response.status_code == 404
    assert "Location" not in response


@pytest.mark.parametrize("path", ["/nope", "/api/nope", "/api/user/extra"])
def test_unknown_path_is_json_with_debug_on(client, settings, path):
    settings.DEBUG = True

    response = client.get(path)

    assert json.loads(response.content) == {"status": 404, "message": "Not found"}
    assert_envelope(response, 404)


# --- CSRF ----------------------------------------------------------------------------------------
# A browser-like client: Django's test client skips CSRF checks unless told to enforce them.

CSRF_FAILED = {"status": 403, "message": "CSRF verification failed"}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/nope/", "/nope", "/api/nope", "/api/user/extra"])
def test_unknown_path_is_json_404_for_every_verb_with_csrf_checks(db, method, path):
    response = Client(enforce_csrf_checks=True).generic(
        method, path, "email=a%40example.com", content_type="application/x-www-form-urlencoded"
    )

    assert json.loads(response.content) == {"status": 404, "message": "Not found"}
    assert_envelope(response, 404)


@pytest.fixture
def staff_csrf_client(user_factory) -> Client:
    """A signed-in superuser's browser, with CSRF checks on."""
    client = Client(enforce_csrf_checks=True)
    admin_login(client, user_factory(email="admin@example.com", is_staff=True, is_superuser=True))
    return client


def test_admin_form_post_without_csrf_token_is_json_403(staff_csrf_client, user_factory):
    target = user_factory(email="ann@example.com", name="Ann")

    response = staff_csrf_client.post(
        f"/admin/accounts/user/{target.pk}/change/", {"email": "evil@example.com", "name": "Evil"}
    )

    assert json.loads(response.content) == CSRF_FAILED
    assert_envelope(response, 403)
    target.refresh_from_db()
    assert (target.email, target.name) == ("ann@example.com", "Ann")


def test_admin_action_post_without_csrf_token_is_json_403(staff_csrf_client, user_factory):
    target = user_factory(email="ann@example.com")

    response = staff_csrf_client.post(
        "/admin/accounts/user/", {"action": "disable", "_selected_action": [target.pk], "index": 0}
    )

    assert json.loads(response.content) == CSRF_FAILED
    target.refresh_from_db()
    assert target.is_active


def test_admin_login_post_without_csrf_token_is_json_403(db):
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "a@example.com", "password": "x"})

    assert json.loads(response.content) == CSRF_FAILED
    assert_envelope(response, 403)


def test_admin_form_post_with_the_csrf_token_is_served(staff_csrf_client, user_factory):
    """The check refuses forged posts only: the admin's own form, with its token, still saves."""
    target = user_factory(email="ann@example.com", name="Ann")
    url = f"/admin/accounts/user/{target.pk}/change/"
    form = staff_csrf_client.get(url)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.content.decode()).group(1)

    response = staff_csrf_client.post(
        url, {"csrfmiddlewaretoken": token, "email": "ann@example.com", "name": "Ann B", **SESSIONS_INLINE}
    )

    assert response.status_code == 302
    target.refresh_from_db()
    assert target.name == "Ann B"


def test_api_posts_need_no_csrf_token(db):
    """The API authenticates with the Authorization header, never a cookie: CSRF does not apply."""
    response = Client(enforce_csrf_checks=True).post(
        "/api/authenticate", {"email": "nobody@example.com", "password": "x"}
    )

    assert json.loads(response.content) == INVALID_CREDENTIALS


# --- 405 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/validate/confirmation"),
        ("delete", "/api/validate/confirmation/"),
        ("get", "/api/validate/recovery"),
        ("patch", "/api/validate/recovery/"),
        ("put", "/api/validate/recovery"),
        ("post", "/status"),
        ("delete", "/status/"),
    ],
)
def test_unmapped_verb_is_json_405(client, method, path):
    response = client.generic(method.upper(), path, "{}", content_type="application/json")

    body = assert_envelope(response, 405)
    assert method.upper() in body["message"]


def test_unmapped_verb_is_405_not_401_with_a_bad_token(client):
    """The verb is checked for existence before any token: a bad token does not turn 405 into 401."""
    response = client.get("/api/validate/recovery", HTTP_AUTHORIZATION="garbage")

    assert_envelope(response, 405)


@pytest.mark.parametrize("method", ["trace", "connect"])
def test_exotic_verb_on_api_path_is_json(client, method):
    response = client.generic(method.upper(), "/api/user")

    assert_envelope(response, 405)


# --- Accept ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "image/png;q=1, */*;q=0", "garbage"])
def test_any_accept_header_gets_json(db, client, user_factory, accept):
    """The API answers JSON whatever Accept asks for, as the Flask server did: never a 406."""
    member = user_factory(email="ann@example.com")
    login = client.post(
        "/api/authenticate",
        data=json.dumps({"email": "ann@example.com", "password": PASSWORD}),
        content_type="application/json",
        HTTP_ACCEPT=accept,
    )
    assert login.status_code == 200
    assert login["Content-Type"] == "application/json"

    profile = client.get("/api/user", HTTP_AUTHORIZATION=login.json()["token"], HTTP_ACCEPT=accept)
    assert profile.status_code == 200
    assert profile.json() == {"email": member.email, "profile": {"name": member.name}}

    assert assert_envelope(client.get("/api/user", HTTP_ACCEPT=accept), 401) == LOGIN_REQUIRED


# --- 415 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("post", "/api/user"),
        ("post", "/api/authenticate"),
        ("patch", "/api/authenticate/"),
        ("put", "/api/validate/confirmation"),
        ("post", "/api/validate/recovery"),
    ],
)
@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/octet-stream"])
def test_unsupported_content_type_with_a_body_is_json_415(db, client, method, path, content_type):
    response = getattr(client, method)(path, data="email=a@example.com", content_type=content_type)

    body = assert_envelope(response, 415)
    assert content_type in body["message"]


def test_unsupported_content_type_creates_nothing(db, client):
    response = client.post("/api/user", data=json.dumps(registration()), content_type="text/plain")

    assert_envelope(response, 415)
    assert not User.objects.exists()


# --- 400: bodies that are not a JSON object ----------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ['{"email": ', "{'email': 'a@example.com'}", "not json", '{"email": "a@example.com",}', "\x00\xff"],
)
@pytest.mark.parametrize("path", ["/api/user", "/api/authenticate", "/api/validate/confirmation"])
def test_malformed_json_is_400_envelope(db, client, raw, path):
    response = client.post(path, data=raw, content_type="application/json")

    assert_envelope(response, 400)


def test_malformed_json_is_400_with_a_token_protected_verb(client, auth_client):
    response = auth_client.put("/api/authenticate", data='{"password": ', content_type="application/json")

    assert_envelope(response, 400)


@pytest.mark.parametrize(
    "raw", ['["a@example.com", "x"]', "[]", '"a@example.com"', '""', "42", "true", "null"]
)
@pytest.mark.parametrize("path", ["/api/user", "/api/authenticate", "/api/validate/recovery"])
def test_json_body_that_is_not_an_object_is_400(db, client, raw, path):
    response = client.post(path, data=raw, content_type="application/json")

    assert_envelope(response, 400)
    assert not User.objects.exists()


def test_json_list_body_on_protected_verb_is_400(auth_client):
    response = auth_client.patch("/api/user", data="[1, 2]", content_type="application/json")

    assert_envelope(response, 400)


# --- 413 and friends: bodies larger than DATA_UPLOAD_MAX_MEMORY_SIZE ----------------------------


def _padding(settings) -> str:
    """Return a field value that makes any body larger than DATA_UPLOAD_MAX_MEMORY_SIZE."""
    return "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024)


@pytest.mark.parametrize(
    ("encode", "content_type"),
    [(json.dumps, "application/json"), (urlencode, "application/x-www-form-urlencoded")],
    ids=["json", "form"],
)
def test_oversized_json_or_form_body_is_refused(db, client, settings, mailoutbox, encode, content_type):
    """A valid registration padded past the limit is refused (4xx), and nothing is created."""
    body = encode(registration(padding=_padding(settings)))
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = client.post("/api/user", data=body, content_type=content_type)

    assert_envelope(response, 413)  # RequestDataTooBig
    assert not User.objects.exists()
    assert mailoutbox == []


def test_oversized_multipart_body_is_refused(db, client, settings, mailoutbox):
    response = client.post("/api/user", data=registration(padding=_padding(settings)))  # multipart

    assert_envelope(response, 413)  # RequestDataTooBig
    assert not User.objects.exists()
    assert mailoutbox == []


def test_oversized_field_in_json_is_4xx_not_500(db, client, settings):
    """A single huge field (a password far past any limit) is a client error, never a 500."""
    body = json.dumps(registration(password=_padding(settings), confirm=_padding(settings)))

    response = client.post("/api/user", data=body, content_type="application/json")

    assert_envelope(response, 413)  # RequestDataTooBig
    assert not User.objects.exists()


def test_body_just_under_the_limit_is_parsed(db, client, settings, mailoutbox):
    """The limit refuses only what is past it: a padded body that fits is an ordinary registration."""
    data = registration(padding="")
    room = settings.DATA_UPLOAD_MAX_MEMORY_SIZE - len(json.dumps(data)) - 16
    data["padding"] = "x" * room

    response = client.post("/api/user", data=json.dumps(data), content_type="application/json")

    assert response.status_code == 200
    assert json.loads(response.content) == {"user": "new@example.com"}


# --- 400: disallowed Host header ---------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [("get", "/status"), ("get", "/api/user"), ("post", "/api/authenticate"), ("get", "/nope")],
)
def test_disallowed_host_is_json_400(db, client, method, path):
    response = getattr(client, method)(path, HTTP_HOST="evil.example")

    assert json.loads(response.content) == {"status": 400, "message": "Bad request"}
    assert_envelope(response, 400)


def test_allowed_host_is_served(db, client, settings):
    """The counterpart of the test above: the same request on an allowed host is answered."""
    response = client.get("/status", HTTP_HOST=settings.ALLOWED_HOSTS[0])

    assert response.status_code == 200


# --- 500 -----------------------------------------------------------------------------------------


def _boom(**kwargs):
    raise RuntimeError("secret internal detail")


def test_exception_in_a_view_is_json_500(db, client, monkeypatch, caplog):
    monkeypatch.setattr(registration_services, "user_register", _boom)

    with caplog.at_level(logging.ERROR):
        response = client.post("/api/user", data=json.dumps(registration()), content_type="application/json")

    body = assert_envelope(response, 500)
    assert b"<html" not in response.content.lower()
    assert "secret internal detail" not in body["message"]
    # The operator still learns what happened: the exception is logged with its traceback.
    assert any(record.exc_info and record.exc_info[0] is RuntimeError for record in caplog.records)


def test_exception_in_a_form_request_is_json_500(db, client, monkeypatch):
    monkeypatch.setattr(login_services, "user_login", _boom)

    response = client.post("/api/authenticate", data={"email": "a@example.com", "password": "x"})

    assert_envelope(response, 500)


def test_exception_in_a_token_protected_view_is_json_500(auth_client, monkeypatch):
    monkeypatch.setattr(account_services, "user_deactivate", _boom)

    response = auth_client.delete("/api/user")

    assert_envelope(response, 500)


def test_exception_in_authentication_is_json_500(db, client, monkeypatch):
    monkeypatch.setattr("accounts.sessions.tokens.auth_token_decode", lambda raw: _boom())

    response = client.get("/api/user", HTTP_AUTHORIZATION="some-token")

    assert_envelope(response, 500)


def test_exception_in_a_view_is_json_500_with_debug_on(db, client, settings, monkeypatch):
    settings.DEBUG = True
    monkeypatch.setattr(registration_services, "user_register", _boom)

    response = client.post("/api/user", data=json.dumps(registration()), content_type="application/json")

    assert_envelope(response, 500)
    assert b"<html" not in response.content.lower()


def test_exception_outside_the_api_views_is_json_500(db, monkeypatch):
    """An error raised before any view (here in a middleware) reaches Django's handler500: JSON too."""
    from django.middleware.common import CommonMiddleware

    def explode(self, request):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(CommonMiddleware, "process_request", explode)
    client = Client(raise_request_exception=False)

    response = client.get("/api/user")

    body = assert_envelope(response, 500)
    assert "secret internal detail" not in body["message"]
    assert b"<html" not in response.content.lower()


# --- Only the envelope's keys, on every kind of error ------------------------------------------


@pytest.mark.parametrize(
    "method, path, kwargs, status, field_errors",
    [
        ("get", "/api/nope", {}, 404, False),
        ("get", "/api/validate/recovery", {}, 405, False),
        ("post", "/api/user", {"data": "x", "content_type": "text/plain"}, 415, False),
        ("post", "/api/user", {"data": "{", "content_type": "application/json"}, 400, False),
        ("post", "/api/user", {"data": "{}", "content_type": "application/json"}, 400, True),
        ("post", "/api/user", {"data": {"email": "not-an-email"}}, 400, True),
        ("get", "/api/user", {}, 401, False),
        ("get", "/api/user", {"HTTP_AUTHORIZATION": "Bearer garbage"}, 401, False),
        ("post", "/api/authenticate", {"data": {"email": "x@example.com", "password": "y"}}, 401, False),
        ("post", "/api/validate/confirmation", {"data": {"token": "bad"}}, 400, False),
        ("get", "/status", {"HTTP_HOST": "evil.example"}, 400, False),
    ],
)
def test_errors_carry_only_the_envelope_keys(db, client, method, path, kwargs, status, field_errors):
    response = getattr(client, method)(path, **kwargs)

    body = assert_envelope(response, status)
    # `errors` appears on field validation errors, and only there.
    assert ("errors" in body) is field_errors


def test_field_errors_name_each_field(db, client):
    response = client.post("/api/user", data="{}", content_type="application/json")

    body = assert_envelope(response, 400)
    assert set(body["errors"]) == {"email", "name", "password", "confirm"}


@pytest.mark.parametrize(
    "path, data, message",
    [
        ("/api/authenticate", {"email": "nobody@example.com", "password": "x"}, INVALID_CREDENTIALS["message"]),
        ("/api/validate/confirmation", {"token": "bad"}, INVALID_TOKEN["message"]),
    ],
)
def test_catalogue_errors_have_no_errors_key(db, client, path, data, message):
    response = client.post(path, data=data)

    body = json.loads(response.content)
    assert body == {"status": response.status_code, "message": message}


def test_login_required_and_token_invalid_are_exact_envelopes(db, client):
    missing = client.get("/api/user")
    garbage = client.get("/api/user", HTTP_AUTHORIZATION="garbage")

    assert json.loads(missing.content) == LOGIN_REQUIRED
    assert json.loads(garbage.content) == TOKEN_INVALID
