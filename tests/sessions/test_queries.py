"""The hot paths' SQL: an authenticated read is one query (the session joined with its user, by
the session's public id); a refresh adds one, the user's groups for the new token's claim."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.sessions.models import Session
from tests.conftest import session_of


def _session_join(sql: str) -> bool:
    return (
        sql.startswith("SELECT")
        and 'FROM "accounts_session" INNER JOIN "accounts_user"' in sql
        and '"accounts_session"."public_id" =' in sql
    )


@pytest.mark.parametrize("path", ["/api/user", "/api/user/", "/api/sessions"])
@pytest.mark.parametrize("scheme", ["", "Bearer "], ids=["raw", "bearer"])
def test_an_authenticated_read_makes_one_query(api_client, user, token_for, django_assert_num_queries, path, scheme):
    api_client.credentials(HTTP_AUTHORIZATION=scheme + token_for(user))
    if path == "/api/sessions":
        # Listing the sessions is a second query by its nature, the apps they signed in to (OpenID
        # clients, one query for all the sessions) a third; the authentication is still one.
        with django_assert_num_queries(3) as captured:
            response = api_client.get(path)
    else:
        with django_assert_num_queries(1) as captured:
            response = api_client.get(path)

    assert response.status_code == 200
    assert _session_join(captured.captured_queries[0]["sql"])


@pytest.mark.parametrize("path", ["/api/authenticate", "/api/auth", "/api/authenticate/"])
@pytest.mark.parametrize("scheme", ["", "Bearer "], ids=["raw", "bearer"])
def test_a_refresh_makes_two_queries(api_client, user, token_for, django_assert_num_queries, path, scheme):
    api_client.credentials(HTTP_AUTHORIZATION=scheme + token_for(user))

    with django_assert_num_queries(2) as captured:
        response = api_client.get(path)

    assert response.status_code == 200
    session_query, groups_query = (query["sql"] for query in captured.captured_queries)
    assert _session_join(session_query)
    assert '"auth_group"' in groups_query


def test_last_seen_is_written_at_most_once_a_minute(api_client, user, token_for, django_assert_num_queries):
    token = token_for(user)
    session = session_of(token)
    api_client.credentials(HTTP_AUTHORIZATION=token)
    long_ago = timezone.now() - timedelta(minutes=5)
    Session.objects.filter(pk=session.pk).update(last_seen_at=long_ago)

    # The first request after a minute writes last_seen_at (one UPDATE more) ...
    with django_assert_num_queries(2) as captured:
        assert api_client.get("/api/user").status_code == 200
    assert captured.captured_queries[1]["sql"].startswith("UPDATE")
    seen = Session.objects.get(pk=session.pk).last_seen_at
    assert seen > long_ago

    # ... and the next ones, within the minute, read only: refreshes included.
    for path in ["/api/user", "/api/authenticate", "/api/user", "/api/authenticate"]:
        with django_assert_num_queries(1 if path == "/api/user" else 2) as captured:
            assert api_client.get(path).status_code == 200
        assert not any(query["sql"].startswith("UPDATE") for query in captured.captured_queries)
    assert Session.objects.get(pk=session.pk).last_seen_at == seen
