"""POST /api/introspect (RFC 7662) for registered resource servers, and how they are registered."""

import base64
import json
import hashlib
from datetime import timedelta
from io import StringIO

import jwt
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.clients.models import Client as ClientRow
from accounts.users.models import User
from accounts.clients.services import resource_server_create
from accounts.keys.services import key_retire, keys_rotate
from accounts.sessions.services import sessions_end
from tests.conftest import admin_login, claims, mint_at

INTROSPECT = "/api/introspect"
INVALID_CLIENT = {"status": 401, "message": "Invalid client credentials"}


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.fixture
def server(db):
    server, secret = resource_server_create(name="reports")
    server.secret = secret
    return server


def introspect(server, token, *, body="json", authorization=None):
    client = APIClient()
    header = authorization if authorization is not None else basic(server.client_id, server.secret)
    data = {} if token is None else {"token": token}
    if body == "form":
        return client.post(INTROSPECT, data, HTTP_AUTHORIZATION=header)
    return client.post(INTROSPECT, data, format=body, HTTP_AUTHORIZATION=header)


# --- Client credentials -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("Bearer abc", id="other-scheme"),
        pytest.param("Basic not base64 !", id="not-base64"),
        pytest.param("Basic " + base64.b64encode(b"no-colon").decode(), id="no-colon"),
        pytest.param("unknown", id="unknown-client"),
        pytest.param("wrong", id="wrong-secret"),
        pytest.param("empty", id="empty-secret"),
        pytest.param("inactive", id="inactive-server"),
    ],
)
def test_bad_client_credentials_are_refused(server, user, token_for, authorization):
    token = token_for(user)
    if authorization == "unknown":
        authorization = basic("nobody", server.secret)
    elif authorization == "wrong":
        authorization = basic(server.client_id, server.secret + "x")
    elif authorization == "empty":
        authorization = basic(server.client_id, "")
    elif authorization == "inactive":
        ClientRow.objects.filter(pk=server.pk).update(is_active=False)
        authorization = basic(server.client_id, server.secret)
    client = APIClient()
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}

    response = client.post(INTROSPECT, {"token": token}, format="json", **headers)

    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT
    assert response["WWW-Authenticate"].startswith("Basic")


def test_the_credentials_are_checked_before_the_body(server):
    response = introspect(server, None, authorization=basic(server.client_id, "wrong"))

    assert response.json() == INVALID_CLIENT


@pytest.mark.parametrize(
    ("body", "content_type"),
    [('{"token": ', "application/json"), ("token=x", "text/plain"), ('["token"]', "application/json")],
    ids=["malformed-json", "unsupported-type", "not-an-object"],
)
def test_a_bad_body_is_refused_after_the_credentials(server, body, content_type):
    client = APIClient()

    refused = client.post(INTROSPECT, body, content_type=content_type, HTTP_AUTHORIZATION=basic(server.client_id, "wrong"))
    answered = client.post(INTROSPECT, body, content_type=content_type, HTTP_AUTHORIZATION=basic(server.client_id, server.secret))

    assert refused.json() == INVALID_CLIENT
    assert answered.status_code in (400, 415)
    assert answered.json()["status"] == answered.status_code


def test_no_token_field_is_400(server):
    response = introspect(server, None)

    assert response.status_code == 400
    assert response.json()["errors"] == {"token": ["This field is required."]}


def test_a_token_with_a_lone_surrogate_is_400(server):
    client = APIClient()
    body = json.dumps({"token": "eyJ\ud83d.x.y"})
    response = client.post(INTROSPECT, body, content_type="application/json", HTTP_AUTHORIZATION=basic(server.client_id, server.secret))

    assert response.status_code == 400
    assert response.json()["errors"] == {"token": ["Surrogate characters are not allowed: U+D83D."]}


def test_the_secret_is_stored_as_a_digest(server):
    stored = ClientRow.objects.get(pk=server.pk)
    assert stored.client_secret == "sha256$" + hashlib.sha256(server.secret.encode()).hexdigest()
    assert server.secret not in (stored.client_secret, stored.client_id)
    # 256 random bits, URL-safe.
    assert len(server.secret) >= 43


# --- Active and inactive tokens ---------------------------------------------------------------


@pytest.mark.parametrize("body", ["json", "form", "multipart"])
def test_an_accepted_token_is_active_with_its_claims(server, user, token_for, body):
    token = token_for(user)

    response = introspect(server, token, body=body)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    answer = response.json()
    expected = claims(token)
    assert answer["active"] is True
    for name in ("sub", "sid", "exp", "iat", "iss", "aud", "email", "groups", "amr"):
        assert answer[name] == expected[name], name
    assert answer["sub"] == str(user.public_id)


def _expired(user, token_for):
    return mint_at(user, timezone.now() - timedelta(hours=2))


def _revoked(user, token_for):
    token = token_for(user)
    sessions_end(user=user, reason="staff")
    return token


def _disabled(user, token_for):
    token = token_for(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    return token


def _deactivated(user, token_for):
    token = token_for(user)
    User.objects.filter(pk=user.pk).update(deactivated_at=timezone.now())
    return token


def _retired_key(user, token_for):
    token = token_for(user)
    keys_rotate()
    key_retire(kid=jwt.get_unverified_header(token)["kid"])
    return token


def _deleted_user(user, token_for):
    token = token_for(user)
    user.delete()
    return token


@pytest.mark.parametrize(
    "make",
    [
        lambda user, token_for: "garbage",
        lambda user, token_for: "",
        lambda user, token_for: token_for(user) + "x",
        _expired,
        _revoked,
        _disabled,
        _deactivated,
        _retired_key,
        _deleted_user,
    ],
    ids=["garbage", "empty", "bad-signature", "expired", "revoked-session", "disabled", "deactivated", "retired-key", "deleted-user"],
)
def test_a_token_the_api_would_refuse_is_inactive(server, user, token_for, make):
    token = make(user, token_for)

    response = introspect(server, token)

    assert response.status_code == 200
    assert response.json() == {"active": False}


@pytest.mark.parametrize(
    ("make", "active", "queries"),
    [
        # The session, its user and the caller's digest come in one query...
        (lambda user, token_for: token_for(user), True, 1),
        (_revoked, False, 1),
        (_disabled, False, 1),
        (_deactivated, False, 1),
        # ... and the caller alone when the token names no session of this server.
        (lambda user, token_for: "garbage", False, 1),
        (_deleted_user, False, 2),
    ],
    # Each check reads only the columns the query selects: a deferred field would add a query.
    ids=["active", "revoked-session", "disabled", "deactivated", "garbage", "deleted-user"],
)
def test_introspection_makes_one_query_when_the_token_names_a_session(
    server, user, token_for, django_assert_num_queries, make, active, queries
):
    token = make(user, token_for)

    with django_assert_num_queries(queries):
        assert introspect(server, token).json()["active"] is active


@pytest.mark.parametrize(
    "make",
    [
        lambda user, token_for: token_for(user),
        lambda user, token_for: "garbage",
        _revoked,
        _disabled,
        _deleted_user,
    ],
    ids=["active", "garbage", "revoked-session", "disabled", "deleted-user"],
)
@pytest.mark.parametrize("credentials", ["unknown", "wrong", "inactive"])
def test_bad_client_credentials_are_refused_whatever_the_token(server, user, token_for, make, credentials):
    token = make(user, token_for)
    client_id, secret = server.client_id, server.secret
    if credentials == "unknown":
        client_id = "nobody"
    elif credentials == "wrong":
        secret += "x"
    else:
        ClientRow.objects.filter(pk=server.pk).update(is_active=False)

    response = introspect(server, token, authorization=basic(client_id, secret))

    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT


def test_another_servers_secret_is_refused(server, user, token_for):
    other, other_secret = resource_server_create(name="billing")

    response = introspect(server, token_for(user), authorization=basic(server.client_id, other_secret))

    assert response.json() == INVALID_CLIENT
    assert introspect(other, token_for(user), authorization=basic(other.client_id, other_secret)).json()["active"] is True


# --- Registering resource servers --------------------------------------------------------------


def test_the_command_prints_the_credentials_once(db):
    out = StringIO()

    call_command("create_resource_server", "billing", stdout=out)

    lines = out.getvalue().splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ["client_id", "client_secret"]
    client_id, secret = (line.split("=", 1)[1] for line in lines)
    server = ClientRow.objects.get(name="billing")
    assert server.client_id == client_id
    # A fast digest, not the password hasher: introspection costs no password hash.
    assert server.client_secret == "sha256$" + hashlib.sha256(secret.encode()).hexdigest()
    assert server.authorization_grant_type == ClientRow.GRANT_CLIENT_CREDENTIALS
    server.secret = secret
    assert introspect(server, "garbage").json() == {"active": False}


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_the_command_refuses_a_bad_name(db, name):
    with pytest.raises(CommandError):
        call_command("create_resource_server", name, stdout=StringIO())


def test_the_command_refuses_a_name_taken(server):
    with pytest.raises(CommandError, match="exists already"):
        call_command("create_resource_server", "reports", stdout=StringIO())


def test_staff_register_one_in_the_admin_and_see_the_secret_once(user_factory, user, token_for):
    staff = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    browser = Client()
    admin_login(browser, staff)

    # A service: the client-credentials grant, confidential, no redirect URI, no scope.
    response = browser.post(
        "/admin/accounts/client/add/",
        {
            "name": "search",
            "authorization_grant_type": ClientRow.GRANT_CLIENT_CREDENTIALS,
            "client_type": ClientRow.CLIENT_CONFIDENTIAL,
            "redirect_uris": "",
            "post_logout_redirect_uris": "",
            "backchannel_logout_uri": "",
            "allowed_scopes": "",
            "algorithm": "RS256",
        },
    )

    # Shown on the page that answers, not carried to another page in a cookie.
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert "Set-Cookie" not in response.headers or "messages" not in response.headers["Set-Cookie"]
    html = response.content.decode()
    server = ClientRow.objects.get(name="search")
    secret = html.split("client_secret=", 1)[1].split("<", 1)[0]
    assert f"client_id={server.client_id}" in html
    server.secret = secret
    assert introspect(server, token_for(user)).json()["active"] is True
    # Not shown again.
    assert secret not in browser.get(f"/admin/accounts/client/{server.pk}/change/").content.decode()
