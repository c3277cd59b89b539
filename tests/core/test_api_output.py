"""Each action's answer is its output serializer's shape, the one its schema is generated from.

Most actions render through their output serializer. The hot paths (GET /api/user, GET
/api/authenticate, POST /api/introspect) build the same shape as a literal, a serializer costing
some 15 to 150 µs a request: here their answers are held to the serializer's fields and to what
the serializer would render.
"""

import base64

import pytest
from django.urls import get_resolver

from accounts.account.api import ProfileOutput, UserOutput
from accounts.oidc.introspection_serializers import IntrospectionOutput
from accounts.clients.services import resource_server_create
from accounts.signin.api import TokenOutput
from core.api import ContractViewSet


def routed_viewsets() -> set[type[ContractViewSet]]:
    found = set()

    def walk(patterns):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns)
            else:
                view = getattr(pattern.callback, "cls", None)
                if view is not None and issubclass(view, ContractViewSet):
                    found.add(view)

    walk(get_resolver().url_patterns)
    return found


def test_every_action_names_the_output_serializer_it_is_described_by():
    viewsets = routed_viewsets()
    assert len(viewsets) >= 9
    for viewset in viewsets:
        for action in viewset.actions.values():
            output = getattr(getattr(viewset, action), "output", None)
            assert output is not None, f"{viewset.__name__}.{action} has no @action_schema(output=...)"


def fields(serializer_class) -> set[str]:
    return set(serializer_class().fields)


@pytest.mark.django_db
def test_the_profile_answer_is_user_output(api_client, user_factory, token_for):
    user = user_factory(name="Ann")

    answer = api_client.get("/api/user", HTTP_AUTHORIZATION=token_for(user)).json()

    assert set(answer) == fields(UserOutput)
    assert set(answer["profile"]) == fields(ProfileOutput)
    assert UserOutput(answer).data == answer


@pytest.mark.django_db
def test_the_refresh_answer_is_token_output(api_client, user_factory, token_for):
    answer = api_client.get("/api/authenticate", HTTP_AUTHORIZATION=token_for(user_factory())).json()

    assert set(answer) == fields(TokenOutput)
    assert TokenOutput(answer).data == answer


@pytest.mark.django_db
def test_the_introspection_answers_are_introspection_output(api_client, user_factory, token_for):
    server, secret = resource_server_create(name="output")
    authorization = "Basic " + base64.b64encode(f"{server.client_id}:{secret}".encode()).decode()

    def introspect(token: str) -> dict:
        response = api_client.post("/api/introspect", {"token": token}, format="json", HTTP_AUTHORIZATION=authorization)
        assert response.status_code == 200
        return response.json()

    active = introspect(token_for(user_factory()))
    inactive = introspect("not a token")

    # An active token: every claim the services pass on, each one a field of the answer's shape
    # (scope and client_id are an OAuth token's, tests/oidc/test_introspection.py).
    assert set(active) == fields(IntrospectionOutput) - {"scope", "client_id"}
    assert IntrospectionOutput(active).data == active
    # An inactive one: `active` alone, the shape's one required field.
    assert inactive == {"active": False}
    assert {name for name, field in IntrospectionOutput().fields.items() if field.required} == {"active"}
