"""The hot paths' SQL: an authenticated read and a refresh cost one query, the user row by key."""

import pytest

PATHS = ["/api/user", "/api/authenticate", "/api/user/", "/api/auth"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("scheme", ["", "Bearer "], ids=["raw", "bearer"])
def test_read_and_refresh_make_one_query(
    api_client, user, token_for, django_assert_num_queries, path, scheme
):
    api_client.credentials(HTTP_AUTHORIZATION=scheme + token_for(user))

    with django_assert_num_queries(1) as captured:
        response = api_client.get(path)

    assert response.status_code == 200
    (query,) = captured.captured_queries
    sql = query["sql"]
    assert sql.startswith("SELECT")
    assert 'FROM "accounts_user" WHERE "accounts_user"."id" =' in sql
