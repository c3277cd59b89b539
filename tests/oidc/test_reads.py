"""accounts.oidc.reads: the token endpoint's one-SELECT reads give what the querysets they replace
give (the same row first, every column converted as the ORM converts it, the relations set)."""

import pytest
from django.db.models import F
from django.test import Client
from django.utils import timezone

from accounts.clients.models import Client as OIDCClient
from accounts.clients.services import client_create
from accounts.oidc.models import RefreshToken
from accounts.oidc.reads import client_by_id, refresh_token_by_checksum
from tests.oidc.test_refresh_tokens import REDIRECT_URI, basic, tokens_of

SCOPE = "openid profile email offline_access"


def queryset_row(checksum):
    return (
        RefreshToken.objects.select_related("application", "user", "session", "access_token")
        .filter(token_checksum=checksum)
        .order_by(F("revoked").desc(nulls_first=True))
        .first()
    )


def values(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


@pytest.fixture
def family(user):
    app, app.secret = client_create(name="Notes", redirect_uris=[REDIRECT_URI], first_party=True, scopes=SCOPE)
    first = tokens_of(user, app, SCOPE)["refresh_token"]
    response = Client().post(
        "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": first},
        HTTP_AUTHORIZATION=basic(app.client_id, app.secret),
    )
    assert response.status_code == 200, response.content
    return list(RefreshToken.objects.order_by("pk"))  # the spent parent, the live child


def test_the_live_and_the_spent_token_read_as_the_queryset_reads_them(family, django_assert_num_queries):
    for row in family:
        expected = queryset_row(row.token_checksum)
        with django_assert_num_queries(1):
            got = refresh_token_by_checksum(row.token_checksum)
            assert values(got) == values(expected)
            for name in ("application", "user", "session"):
                assert values(getattr(got, name)) == values(getattr(expected, name))
            assert (got.access_token is None) == (expected.access_token is None)
            if got.access_token is not None:
                assert values(got.access_token) == values(expected.access_token)
    assert family[0].revoked is not None and refresh_token_by_checksum(family[0].token_checksum).access_token is None
    assert isinstance(refresh_token_by_checksum(family[1].token_checksum).access_token.expires, type(timezone.now()))


def test_the_live_row_comes_before_a_revoked_one_of_the_same_checksum(family):
    live = family[1]
    revoked = RefreshToken.objects.create(
        user=live.user, application=live.application, session=live.session, token_checksum=live.token_checksum,
        revoked=timezone.now(), token_family=live.token_family,
    )

    assert refresh_token_by_checksum(live.token_checksum).pk == live.pk != revoked.pk


def test_an_unknown_checksum_is_none(db):
    assert refresh_token_by_checksum("0" * 64) is None


def test_a_client_reads_as_the_queryset_reads_it(db, django_assert_num_queries):
    app, _secret = client_create(
        name="Notes", redirect_uris=[REDIRECT_URI, "http://127.0.0.1:8080/cb"], first_party=True, scopes=SCOPE,
        post_logout_redirect_uris=[REDIRECT_URI],
    )

    with django_assert_num_queries(1):
        got = client_by_id(app.client_id)

    assert values(got) == values(OIDCClient.objects.get(client_id=app.client_id))
    assert client_by_id("no such client") is None
    with pytest.raises(TypeError):
        client_by_id(None)
