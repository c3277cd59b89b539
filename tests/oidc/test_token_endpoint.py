"""POST /oauth/token's refresh and client_credentials grants, as an app uses them: what each costs
the database (the statements pinned, so that a gain stays), and the rules the fast path keeps:
rotation on every use, a retry of the immediate parent within the grace window (its client
authenticated) gets the same answer, any other reuse revokes the family and is audited, a refresh
after the session ended is refused, the answer kept for a retry is readable only with the parent
token."""

import base64
import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.audit.models import AuthEvent
from accounts.clients.services import client_create, resource_server_create
from accounts.oidc.models import AccessToken, IDToken, RefreshToken
from core import vault
from tests.oidc.test_refresh_tokens import REDIRECT_URI, basic, tokens_of

SCOPE = "openid profile email offline_access"
# Transaction control is not a statement of the request's own (the test's transaction makes the
# view's a savepoint).
CONTROL = re.compile(r"^\s*(BEGIN|SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK|COMMIT)\b", re.IGNORECASE)


@pytest.fixture
def app(db):
    app, app.secret = client_create(name="Notes", redirect_uris=[REDIRECT_URI], first_party=True, scopes=SCOPE)
    return app


def refresh(app, refresh_token: str, *, secret: str | None = None):
    return Client().post(
        "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
        HTTP_AUTHORIZATION=basic(app.client_id, secret or app.secret),
    )


def statements(context) -> list[str]:
    return [query["sql"] for query in context.captured_queries if not CONTROL.match(query["sql"])]


def verb(sql: str) -> str:
    return sql.split(None, 1)[0].upper()


# --- what a grant costs ----------------------------------------------------------------------------


def test_a_refresh_is_one_select_and_four_writes(user, app, django_assert_max_num_queries):
    first = tokens_of(user, app, SCOPE)
    second = refresh(app, first["refresh_token"]).json()  # the first refresh of a family is not special

    with django_assert_max_num_queries(7) as context:  # the five, and the rotation's transaction
        response = refresh(app, second["refresh_token"])

    assert response.status_code == 200, response.content
    assert [verb(sql) for sql in statements(context)] == ["SELECT", "UPDATE", "DELETE", "INSERT", "INSERT"]
    # The one SELECT reads the token with its client, user, session and access token.
    select = statements(context)[0]
    for table in ("accounts_client", "accounts_user", "accounts_session", "accounts_accesstoken"):
        assert table in select
    answer = response.json()
    assert sorted(answer) == ["access_token", "expires_in", "id_token", "refresh_token", "scope", "token_type"]
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1
    # The previous access token is gone (rotation revokes it); the new one is the only one left.
    assert AccessToken.objects.count() == 1
    # The code exchange recorded the ID token the session signed in with; refreshes add no rows.
    assert IDToken.objects.count() == 1


def test_client_credentials_is_one_select_and_one_insert(db, django_assert_max_num_queries):
    service, secret = resource_server_create(name="reports")

    def exchange():
        return Client().post(
            "/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(service.client_id, secret)
        )

    assert exchange().status_code == 200  # the first also reads the signing keys, once per process
    with django_assert_max_num_queries(2) as context:
        response = exchange()

    assert response.status_code == 200, response.content
    assert [verb(sql) for sql in statements(context)] == ["SELECT", "INSERT"]
    # Its row stays: revocation (RFC 7009) and introspection read it.
    assert AccessToken.objects.filter(application=service).count() == 2


# --- the rules -------------------------------------------------------------------------------------


def test_a_retry_within_the_grace_window_gets_the_same_answer_once_the_client_authenticates(user, app):
    first = tokens_of(user, app, SCOPE)
    second = refresh(app, first["refresh_token"])

    refused = refresh(app, first["refresh_token"], secret="wrong" + app.secret)
    retried = refresh(app, first["refresh_token"])

    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert retried.status_code == 200, retried.content
    assert retried.json() == second.json()
    assert retried["Cache-Control"] == "no-store"
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1  # the same child, no other
    assert not AuthEvent.objects.filter(type=AuthEvent.Type.REFRESH_REUSED).exists()


def test_only_the_immediate_parent_is_retried_a_reuse_revokes_the_family_in_one_statement(user, app):
    first = tokens_of(user, app, SCOPE)
    second = refresh(app, first["refresh_token"]).json()
    third = refresh(app, second["refresh_token"]).json()

    with CaptureQueriesContext(connection) as context:
        response = refresh(app, first["refresh_token"])  # its child is spent: a reuse

    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    revocations = [sql for sql in statements(context) if verb(sql) == "UPDATE" and '"revoked"' in sql]
    assert len(revocations) == 1 and '"token_family"' in revocations[0]  # the family at once, not row by row
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 0
    assert AccessToken.objects.count() == 0
    event = AuthEvent.objects.get(type=AuthEvent.Type.REFRESH_REUSED)
    assert event.user == user and event.detail == "Notes: its family revoked"
    assert refresh(app, third["refresh_token"]).json()["error"] == "invalid_grant"  # revoked with it


def test_without_a_grace_window_a_retry_is_a_reuse(user, app, settings):
    settings.OIDC_REFRESH_REUSE_GRACE = 0
    first = tokens_of(user, app, SCOPE)
    second = refresh(app, first["refresh_token"]).json()

    response = refresh(app, first["refresh_token"])

    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert refresh(app, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert RefreshToken.objects.filter(grace_answer="").count() == RefreshToken.objects.count()  # nothing kept


def test_the_answer_kept_for_a_retry_is_readable_only_with_the_parent_token(user, app):
    first = tokens_of(user, app, SCOPE)
    second = refresh(app, first["refresh_token"]).json()

    kept = RefreshToken.objects.get(revoked__isnull=True).grace_answer
    assert kept and second["refresh_token"] not in kept and second["access_token"] not in kept
    with pytest.raises(vault.SecretUnreadable):
        vault.decrypt(kept)  # SECRET_KEY alone does not open it
    with pytest.raises(vault.SecretUnreadable):
        vault.unseal(kept, secret=second["refresh_token"])
    assert json.loads(vault.unseal(kept, secret=first["refresh_token"])) == second

    assert refresh(app, second["refresh_token"]).status_code == 200  # spent in turn: its copy is dropped
    assert list(RefreshToken.objects.exclude(revoked__isnull=True).exclude(grace_answer="")) == []


def test_a_refresh_after_the_session_was_revoked_is_invalid_grant(user, app, token_for):
    first = tokens_of(user, app, SCOPE)
    sid = RefreshToken.objects.get().session.public_id
    auth = token_for(user)

    response = Client().delete(f"/api/sessions/{sid}", HTTP_AUTHORIZATION=f"Bearer {auth}")
    assert response.status_code == 200, response.content

    response = refresh(app, first["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert RefreshToken.objects.count() == 1 and AccessToken.objects.count() == 1  # nothing issued


def test_another_clients_refresh_token_is_invalid_grant(user, app):
    first = tokens_of(user, app, SCOPE)
    other, other.secret = client_create(name="Other", redirect_uris=[REDIRECT_URI], first_party=True, scopes=SCOPE)

    response = refresh(other, first["refresh_token"])

    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert refresh(app, first["refresh_token"]).status_code == 200  # still the app's, unspent


@pytest.mark.parametrize(
    "authorization",
    [
        "wrong secret",
        "unknown client",
        "Basic !!not base64!!",
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Basic " + base64.b64encode(b"no colon").decode(),
    ],
)
def test_client_credentials_refuses_a_client_that_does_not_authenticate(db, authorization):
    service, secret = resource_server_create(name="reports")
    header = {
        "wrong secret": basic(service.client_id, "x" + secret),
        "unknown client": basic("nobody", secret),
    }.get(authorization, authorization)

    response = Client().post("/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=header)

    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert AccessToken.objects.count() == 0


def test_a_disabled_client_gets_no_token_by_any_grant(user, app):
    first = tokens_of(user, app, SCOPE)
    service, secret = resource_server_create(name="reports")
    type(app).objects.filter(pk__in=[app.pk, service.pk]).update(is_active=False)

    refreshed = refresh(app, first["refresh_token"])
    exchanged = Client().post(
        "/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(service.client_id, secret)
    )

    assert refreshed.status_code == 401 and refreshed.json()["error"] == "invalid_client"
    assert exchanged.status_code == 401 and exchanged.json()["error"] == "invalid_client"
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1  # the refresh token unspent


def concurrently(app, refresh_token: str, other: dict):
    """Refresh, with a second refresh of the same token made (and committed) just before the
    first spends it: the interleaving of two requests that both read the token live."""
    state = {"done": False}

    def wrapper(execute, sql, params, many, context):
        if not state["done"] and sql.startswith("UPDATE") and '"revoked" IS NULL' in sql:
            state["done"] = True
            other["response"] = refresh(app, refresh_token)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        response = refresh(app, refresh_token)
    assert state["done"]
    return response


def test_concurrent_refreshes_of_one_token_yield_one_live_child_and_the_same_answer(user, app):
    first = tokens_of(user, app, SCOPE)
    other = {}

    response = concurrently(app, first["refresh_token"], other)

    assert other["response"].status_code == 200 and response.status_code == 200, response.content
    assert response.json() == other["response"].json()  # the winner's answer, the same child
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1
    assert AccessToken.objects.count() == 1
    assert not AuthEvent.objects.filter(type=AuthEvent.Type.REFRESH_REUSED).exists()


def test_without_a_grace_window_the_refresh_that_loses_the_race_is_a_reuse(user, app, settings):
    settings.OIDC_REFRESH_REUSE_GRACE = 0
    first = tokens_of(user, app, SCOPE)
    other = {}

    response = concurrently(app, first["refresh_token"], other)

    assert other["response"].status_code == 200
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 0  # the family revoked
    assert AuthEvent.objects.filter(type=AuthEvent.Type.REFRESH_REUSED).count() == 1
