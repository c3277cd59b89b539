"""Security review of introspection in one query (POST /api/introspect): each test failed on the
first version of it, and passes now.

  1. A body that Django refuses itself (too many form fields, too many multipart files: a
     SuspiciousOperation, not a DRF error) was answered 400 before the caller's credentials were
     checked; a caller without credentials must learn nothing of its body (401).
  2. A resource server whose stored digest is empty (the column's default: a row not made by
     resource_server_create, a fixture, an import) was authenticated by the secret whose digest
     stands in for "no such client"; no digest must match no secret.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.clients.models import ResourceServer
from accounts.clients import services as clients
from tests.test_introspection import INTROSPECT, INVALID_CLIENT, basic


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
    server = ResourceServer.objects.create(name="imported")
    assert server.secret_digest == ""

    with pytest.raises(clients.InvalidClientCredentials):
        clients.resource_server_authenticate(client_id=server.client_id, client_secret="no such client")


def test_the_endpoint_refuses_the_no_digest_secret_for_an_empty_digest(db, user, token_for):
    server = ResourceServer.objects.create(name="imported")
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
