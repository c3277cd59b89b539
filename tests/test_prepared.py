"""core.prepared: a query compiled once returns what its queryset returns, call after call."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Subquery
from django.utils import timezone

from accounts.clients.models import ResourceServer
from accounts.sessions.models import Session
from accounts.users.models import User
from core.prepared import PreparedQuery
from accounts.clients import services as clients
from accounts.sessions.services import _session_with_user
from accounts.sessions.tokens import _group_names
from tests.conftest import sign_in

FIELDS_OF = {
    Session: [field.attname for field in Session._meta.concrete_fields],
    User: [field.attname for field in User._meta.concrete_fields],
}


def _same(model, left, right):
    return {name: getattr(left, name) for name in FIELDS_OF[model]} == {
        name: getattr(right, name) for name in FIELDS_OF[model]
    }


@pytest.fixture
def sessions(user_factory):
    """Two users' sessions, with every kind of column filled: times, JSON, an address, an end."""
    ann = user_factory(email="ann@example.com", name="Ann", last_login=timezone.now() - timedelta(days=3))
    bob = user_factory(email="Bob@Example.com", name="Bob", deactivated=True)
    first = sign_in(ann, remember=True, amr=("pwd", "otp"), ip="2001:db8::1")
    second = sign_in(bob)
    Session.objects.filter(pk=second.pk).update(ended_at=timezone.now(), end_reason="revoked")
    return [first, second]


def test_the_session_query_returns_what_the_queryset_returns(sessions, django_assert_num_queries):
    for session in sessions:
        expected = Session.objects.select_related("user").get(public_id=session.public_id)
        for _ in range(3):  # compiled at the first call, reused after
            with django_assert_num_queries(1) as captured:
                (found,) = _session_with_user(session.public_id)
                # The user came with the same query (select_related).
                user = found.user

            assert "ORDER BY" not in captured.captured_queries[0]["sql"]  # one row: get() has none either

            assert _same(Session, found, expected)
            assert _same(User, user, expected.user)
            assert found.amr == expected.amr and found.expires_at.tzinfo is not None
            assert found._state.db == "default" and not found._state.adding


def test_the_session_query_finds_nothing_for_an_unknown_id(sessions):
    assert _session_with_user("no-such-session") == []
    assert _session_with_user("") == []


def test_a_prepared_query_takes_its_value_as_a_parameter_never_as_sql(sessions):
    hostile = f"{sessions[0].public_id}' OR '1'='1"

    assert _session_with_user(hostile) == []
    assert len(_session_with_user(sessions[0].public_id)) == 1


def test_the_group_names_are_the_users_groups(user_factory, django_assert_num_queries):
    ann, bob = user_factory(), user_factory()
    ann.groups.add(Group.objects.create(name="reporters"), Group.objects.create(name="admins"))
    bob.groups.add(Group.objects.get(name="admins"))

    with django_assert_num_queries(1):
        names = sorted(_group_names(ann.pk))

    assert names == sorted(ann.groups.values_list("name", flat=True)) == ["admins", "reporters"]
    assert _group_names(bob.pk) == ["admins"]
    assert _group_names(user_factory().pk) == []


def test_the_resource_server_query_finds_active_servers_only(db):
    server, secret = clients.resource_server_create(name="reports")
    assert clients.resource_server_authenticate(client_id=server.client_id, client_secret=secret) == server

    ResourceServer.objects.filter(pk=server.pk).update(is_active=False)

    with pytest.raises(clients.InvalidClientCredentials):
        clients.resource_server_authenticate(client_id=server.client_id, client_secret=secret)


def test_an_annotation_lands_on_the_instance_as_the_queryset_sets_it(sessions):
    server, _ = clients.resource_server_create(name="reports")
    query = PreparedQuery(
        lambda public_id, client_id: Session.objects.select_related("user")
        .filter(public_id=public_id)
        .annotate(digest=Subquery(ResourceServer.objects.filter(client_id=client_id).values("secret_digest")[:1])),
        str,
        str,
    )

    (found,) = query(sessions[0].public_id, server.client_id)
    (expected,) = Session.objects.select_related("user").filter(public_id=sessions[0].public_id).annotate(
        digest=Subquery(ResourceServer.objects.filter(client_id=server.client_id).values("secret_digest")[:1])
    )

    assert found.digest == expected.digest == server.secret_digest
    assert found.user == expected.user and found.user.email == expected.user.email
    assert query(sessions[0].public_id, "nobody")[0].digest is None


def test_values_must_have_the_declared_type(sessions):
    with pytest.raises(TypeError):
        _session_with_user(123)
    with pytest.raises(TypeError):
        _group_names("1")


def test_each_connection_compiles_its_own(sessions):
    query = PreparedQuery(lambda public_id: Session.objects.filter(public_id=public_id), str)
    query(sessions[0].public_id)

    assert list(query._compiled.keys()) == [connection]
    query.forget()
    assert len(query(sessions[1].public_id)) == 1


@pytest.mark.parametrize(
    "build",
    [
        lambda value: Session.objects.filter(public_id=value).prefetch_related("user"),
        lambda value: Session.objects.filter(public_id=value).values("pk"),
        lambda value: Session.objects.filter(public_id=value).values_list("pk", "public_id", flat=False),
        # The value is not one parameter of the SQL.
        lambda value: Session.objects.all(),
    ],
    ids=["prefetch", "values", "values_list", "no parameter"],
)
def test_what_it_cannot_do_is_refused_at_the_first_call(db, build):
    with pytest.raises(ValueError):
        PreparedQuery(build, str)("x")
