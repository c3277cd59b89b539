"""POST /api/introspect: what a hostile body or Authorization header cannot do (credentials
checked first, no 500, nothing unchecked reaches the database). The endpoint's own tests are in
tests/test_introspection.py until it moves here."""

import base64
from contextlib import contextmanager

from django.db import connection
from rest_framework.test import APIClient

from accounts.clients.services import resource_server_create


@contextmanager
def sql_parameters():
    """Collect every parameter the request sends to the database (raw, before any quoting)."""
    seen: list = []

    def wrapper(execute, sql, params, many, context):
        rows = params if many else [params]
        for row in rows or []:
            seen.extend(row.values() if isinstance(row, dict) else (row or []))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield seen


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
