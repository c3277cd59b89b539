"""POST /api/introspect: what a hostile body or Authorization header cannot do (credentials
checked first, no 500, nothing unchecked reaches the database). The endpoint's own tests are in
tests/clients/test_api.py."""

import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from accounts.clients import services as clients
from accounts.clients.errors import InvalidClientCredentials
from accounts.clients.models import Client as ClientRow
from accounts.clients.services import resource_server_create
from tests.oidc.test_introspection_api import INTROSPECT, INVALID_CLIENT, basic
from tests.support.database import sql_parameters


# --- 8. Hostile Basic credentials: a 500 -------------------------------------------------------


def test_a_non_ascii_basic_header_is_invalid_client_credentials_not_a_500(db):
    """Attacker (no account, any client) gains a cheap 500 with a logged traceback on every call,
    which can be used to flood logs or set off alerts. base64.b64decode raises a plain ValueError
    (not binascii.Error) for a non-ASCII str, and basic_credentials does not catch it.
    """
    response = APIClient().post("/api/introspect", {"token": "x"}, format="json", HTTP_AUTHORIZATION="Basic \xe9t\xe9")

    assert response.status_code == 401
    assert response.json() == {"status": 401, "message": "Invalid client credentials"}


def test_a_nul_in_a_basic_client_id_never_reaches_the_database(db):
    """Attacker (no account) gains a 500 on PostgreSQL at /api/introspect: the client id is
    percent-decoded (%00) and queried as it is.
    """
    resource_server_create(name="reports")
    header = "Basic " + base64.b64encode(b"%00:secret").decode()
    with sql_parameters() as parameters:
        response = APIClient().post("/api/introspect", {"token": "x"}, format="json", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert not any(isinstance(value, str) and "\x00" in value for value in parameters)


@pytest.fixture
def server(db):
    server, server.secret = clients.resource_server_create(name="reports")
    return server


# --- 1. Credentials skipped for bodies Django refuses (SuspiciousOperation) ----------------------


@pytest.mark.parametrize("who", ["wrong-secret", "unknown-client"])
def test_too_many_form_fields_without_credentials_is_401_not_400(server, who):
    authorization = basic(server.client_id, "wrong") if who == "wrong-secret" else basic("nobody", "x")
    body = "&".join(f"f{i}=1" for i in range(1200))  # > DATA_UPLOAD_MAX_NUMBER_FIELDS (1000)

    response = Client().post(
        INTROSPECT, body, content_type="application/x-www-form-urlencoded", HTTP_AUTHORIZATION=authorization
    )

    assert response.status_code == 401, response.content
    assert response.json() == INVALID_CLIENT
    assert response["WWW-Authenticate"].startswith("Basic")


def test_too_many_multipart_files_without_credentials_is_401_not_400(server):
    files = {f"f{i}": SimpleUploadedFile(f"f{i}.txt", b"x") for i in range(120)}  # > DATA_UPLOAD_MAX_NUMBER_FILES

    response = Client().post(INTROSPECT, files, HTTP_AUTHORIZATION=basic(server.client_id, "wrong"))

    assert response.status_code == 401, response.content
    assert response.json() == INVALID_CLIENT


# --- 2. An empty stored digest is authenticated by the secret "no such client" ------------------


def test_a_server_with_an_empty_digest_is_not_authenticated_by_the_no_digest_secret(db):
    # The column's default: a row not made by resource_server_create.
    server = ClientRow.objects.create(name="imported", client_type="confidential", authorization_grant_type="client-credentials")
    assert server.client_secret == ""

    with pytest.raises(InvalidClientCredentials):
        clients.client_authenticate(client_id=server.client_id, client_secret="no such client")


def test_the_endpoint_refuses_the_no_digest_secret_for_an_empty_digest(db, user, token_for):
    server = ClientRow.objects.create(name="imported", client_type="confidential", authorization_grant_type="client-credentials")
    client = Client()

    for token in (token_for(user), "garbage"):  # the one-query path and the caller-alone path
        response = client.post(
            INTROSPECT,
            {"token": token},
            content_type="application/json",
            HTTP_AUTHORIZATION=basic(server.client_id, "no such client"),
        )
        # On 62d6dfd: 200 {"active": true, ...claims} for the live token, 200 {"active": false} for garbage.
        assert response.status_code == 401, (token[:10], response.content)
        assert response.json() == INVALID_CLIENT
