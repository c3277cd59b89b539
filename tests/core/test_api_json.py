"""api.json, the Insomnia collection (export format 4): it matches the contract both ways, and each
of its requests, sent as Insomnia would send it with its example values, succeeds.

The routes are written out here (the old contract's, then the sessions, introspection and
two-factor routes this server adds), not read from the app or from api.json, so that a route
missing on either side fails.
"""

import base64
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import pyotp
import pytest
from django.urls import Resolver404, resolve

from accounts.mfa import totp
from accounts.mfa import services as mfa
from accounts.users.links import Purpose, validation_token_make
from accounts.clients.services import resource_server_create
from tests.conftest import PASSWORD, claims
from tests.support.contract import AUTHENTICATE_PATH, CONFIRMATION_PATH, RECOVERY_PATH, USER_PATH

API_JSON = Path(__file__).resolve().parents[2] / "api.json"
BASE_URL = "http://127.0.0.1:8000/api"

# Every route and verb of the contract: (path, verb) → (needs a token, body fields).
CONTRACT = {
    (AUTHENTICATE_PATH, "POST"): (False, {"email", "password", "remember"}),
    (AUTHENTICATE_PATH, "GET"): (True, set()),
    (AUTHENTICATE_PATH, "PUT"): (True, {"password", "new_password", "confirm"}),
    (AUTHENTICATE_PATH, "PATCH"): (False, {"email"}),
    (AUTHENTICATE_PATH, "DELETE"): (True, {"password"}),
    (USER_PATH, "GET"): (True, set()),
    (USER_PATH, "POST"): (False, {"email", "name", "password", "confirm"}),
    (USER_PATH, "PUT"): (True, {"name"}),
    (USER_PATH, "PATCH"): (True, {"new_email", "password"}),
    (USER_PATH, "DELETE"): (True, set()),
    (CONFIRMATION_PATH, "POST"): (False, {"token"}),
    (CONFIRMATION_PATH, "PUT"): (False, {"email"}),
    (RECOVERY_PATH, "POST"): (False, {"token", "new_password", "confirm"}),
    # Beyond the old contract: sessions and introspection (the latter with HTTP Basic).
    ("/api/sessions", "GET"): (True, set()),
    ("/api/sessions", "DELETE"): (True, set()),
    ("/api/sessions/{{ session_id }}", "DELETE"): (True, set()),
    ("/api/introspect", "POST"): (False, {"token"}),
    # Two-factor sign-in.
    ("/api/mfa", "GET"): (True, set()),
    ("/api/mfa/totp", "POST"): (True, {"password"}),
    ("/api/mfa/totp", "PUT"): (True, {"code"}),
    ("/api/mfa/totp", "DELETE"): (True, {"password", "code"}),
    ("/api/mfa/recovery-codes", "POST"): (True, {"code"}),
}
# Requests that authenticate as a resource server (Insomnia's Basic authentication).
CLIENT_AUTHENTICATED = {("/api/introspect", "POST")}

TEMPLATE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def load() -> dict:
    return json.loads(API_JSON.read_text())


def resources(kind: str) -> list[dict]:
    return [resource for resource in load()["resources"] if resource["_type"] == kind]


def requests_() -> list[dict]:
    return resources("request")


def route(request: dict) -> tuple[str, str]:
    """Return (path, verb) of an Insomnia request whose URL starts with {{ base_url }}."""
    url = request["url"]
    assert url.startswith("{{ base_url }}/"), f"{request['name']}: {url} does not start with {{{{ base_url }}}}/"
    return "/api" + url.removeprefix("{{ base_url }}"), request["method"]


def header(request: dict, name: str) -> str | None:
    values = [h["value"] for h in request["headers"] if h["name"].lower() == name.lower() and not h.get("disabled")]
    assert len(values) <= 1
    return values[0] if values else None


def form(request: dict) -> dict[str, str]:
    body = request["body"]
    if not body:
        return {}
    assert body["mimeType"] == "application/x-www-form-urlencoded"
    return {param["name"]: param["value"] for param in body["params"] if not param.get("disabled")}


# --- The file -------------------------------------------------------------------------------------


def test_is_an_insomnia_v4_export():
    export = load()
    assert export["_type"] == "export"
    assert export["__export_format"] == 4
    ids = [resource["_id"] for resource in export["resources"]]
    assert len(ids) == len(set(ids)), "resource ids are unique"
    prefixes = {"workspace": "wrk_", "environment": "env_", "request_group": "fld_", "request": "req_"}
    for resource in export["resources"]:
        assert resource["_id"].startswith(prefixes[resource["_type"]])
    # Every parent exists: the import rebuilds the tree from parentId.
    (workspace,) = [resource for resource in export["resources"] if resource["_type"] == "workspace"]
    assert workspace["parentId"] is None
    for resource in export["resources"]:
        if resource is not workspace:
            assert resource["parentId"] in ids, resource["_id"]


def environments() -> dict[str, dict]:
    """Return each sub-environment's variables, merged over the base environment's."""
    (base,) = [env for env in resources("environment") if env["parentId"].startswith("wrk_")]
    subs = [env for env in resources("environment") if env["parentId"] == base["_id"]]
    return {env["name"]: {**base["data"], **env["data"]} for env in subs}


def test_has_the_development_and_testing_environments():
    envs = environments()
    assert set(envs) == {"Development", "Testing"}
    for variables in envs.values():
        assert variables["base_url"] == BASE_URL


def test_every_template_variable_is_defined_in_both_environments():
    used = set()
    for request in requests_():
        text = json.dumps([request["url"], request["headers"], request["body"], request["authentication"]])
        used |= set(TEMPLATE.findall(text))
    assert used == {
        "base_url", "auth_token", "confirmation_token", "recovery_token", "session_id", "client_id", "client_secret",
        "otp_code",
    }
    for name, variables in environments().items():
        assert used <= variables.keys(), name


def test_auth_token_is_the_last_login_answer():
    """The environment's auth_token is Insomnia's response tag on the login request's `$.token`."""
    tag = environments()["Development"]["auth_token"]
    match = re.fullmatch(r"\{% response 'body', '(req_\w+)', 'b64::([A-Za-z0-9+/=]+)::46b', 'never', 60 %\}", tag)
    assert match, tag
    login = next(request for request in requests_() if request["_id"] == match[1])
    assert route(login) == (AUTHENTICATE_PATH, "POST")
    assert base64.b64decode(match[2]).decode() == "$.token"


# --- Both ways against the contract ---------------------------------------------------------------


def test_every_contract_route_and_verb_is_in_the_collection():
    in_collection = [route(request) for request in requests_()]
    assert set(CONTRACT) <= set(in_collection), set(CONTRACT) - set(in_collection)
    assert len(in_collection) == len(set(in_collection)), "one request per route and verb"


@pytest.mark.parametrize("request_", requests_(), ids=lambda request: request["name"])
def test_every_request_resolves_to_a_route_that_accepts_its_verb(request_):
    path, verb = route(request_)
    path = path.replace("{{ session_id }}", "A" * 43)
    for candidate in (path, path + "/"):
        try:
            match = resolve(candidate)
        except Resolver404:
            pytest.fail(f"{verb} {candidate}: no such route")
        # The contract's viewsets map verbs to actions (as_view(actions)); a verb not there is a 405.
        assert verb.lower() in match.func.actions, f"{verb} {candidate} is not accepted"
    assert (route(request_)) in CONTRACT


@pytest.mark.parametrize("request_", requests_(), ids=lambda request: request["name"])
def test_every_request_sends_the_contract_fields_and_token(request_):
    needs_token, fields = CONTRACT[route(request_)]
    assert set(form(request_)) == fields
    assert header(request_, "Authorization") == ("{{ auth_token }}" if needs_token else None)
    if fields:
        assert header(request_, "Content-Type") == "application/x-www-form-urlencoded"
    if route(request_) in CLIENT_AUTHENTICATED:
        assert request_["authentication"] == {
            "type": "basic", "useISO88591": False, "disabled": False, "username": "{{ client_id }}", "password": "{{ client_secret }}"
        }
    else:
        assert request_["authentication"] == {}


# --- Each request, sent as Insomnia would ---------------------------------------------------------

# The account each request needs before it is sent: none (registration), not yet confirmed
# (confirmation and its resend), enrolling or with two-factor on, or confirmed (the rest).
PRECONDITION = {
    (USER_PATH, "POST"): "none",
    (CONFIRMATION_PATH, "POST"): "unconfirmed",
    (CONFIRMATION_PATH, "PUT"): "unconfirmed",
    ("/api/mfa/totp", "PUT"): "enrolling",
    ("/api/mfa/totp", "DELETE"): "two-factor",
    ("/api/mfa/recovery-codes", "POST"): "two-factor",
}


@pytest.mark.parametrize("request_", requests_(), ids=lambda request: request["name"])
def test_every_request_succeeds_with_its_example_values(request_, api_client, user_factory, token_for, monkeypatch):
    """Render the request's templates with the environment, send it, and expect a 200."""
    path, verb = route(request_)
    email = form(requests_by_route()[(USER_PATH, "POST")])["email"]
    state = PRECONDITION.get((path, verb), "confirmed")
    variables = dict.fromkeys(["auth_token", "confirmation_token", "recovery_token", "session_id", "otp_code"], "")
    variables["base_url"] = BASE_URL
    server, variables["client_secret"] = resource_server_create(name="insomnia")
    variables["client_id"] = server.client_id
    if state != "none":
        user = user_factory(email=email, password=PASSWORD, confirmed=state != "unconfirmed")
        variables["auth_token"] = token_for(user)
        variables["session_id"] = claims(variables["auth_token"])["sid"]
        variables["confirmation_token"] = validation_token_make(user=user, purpose=Purpose.CONFIRMATION)
        variables["recovery_token"] = validation_token_make(user=user, purpose=Purpose.RECOVERY)
    if state in ("enrolling", "two-factor"):
        # The user's app, at a pinned clock: the code of the next step, newer than the confirming one.
        now = datetime(2026, 12, 1, 12, 0, 10, tzinfo=timezone.utc)
        monkeypatch.setattr(totp, "_now", lambda: now)
        secret = mfa.totp_enrollment_start(user=user, password=PASSWORD).secret
        if state == "two-factor":
            mfa.totp_enrollment_confirm(user=user, code=pyotp.TOTP(secret).at(now))
        variables["otp_code"] = pyotp.TOTP(secret).at(now + timedelta(seconds=totp.INTERVAL))

    def render(text: str) -> str:
        return TEMPLATE.sub(lambda match: variables[match[1]], text)

    headers = {
        "HTTP_" + h["name"].upper().replace("-", "_"): render(h["value"])
        for h in request_["headers"]
        if h["name"].lower() != "content-type"
    }
    if request_["authentication"].get("type") == "basic":
        pair = f"{render(request_['authentication']['username'])}:{render(request_['authentication']['password'])}"
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(pair.encode()).decode()
    body = urlencode({name: render(value) for name, value in form(request_).items()})
    response = api_client.generic(
        verb, render(request_["url"]).removeprefix("http://127.0.0.1:8000"), body,
        content_type="application/x-www-form-urlencoded", **headers,
    )

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"


def requests_by_route() -> dict[tuple[str, str], dict]:
    return {route(request): request for request in requests_()}
