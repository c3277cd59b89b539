"""A client's URIs: one rule for the command, the service and the admin (uri_problem)."""

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from accounts.clients.models import Client, uri_problem
from accounts.clients.services import ClientError, client_create


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com/callback?tenant=1",
        "http://127.0.0.1:8765/callback",  # RFC 8252: a native app's loopback redirect
        "http://[::1]:8765/callback",
        "http://localhost:3000/callback",
    ],
)
def test_accepted(uri):
    assert uri_problem(uri, "Redirect URI") is None


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("http://app.example.com/callback", "must use https"),
        ("http://127.0.0.1.example.com/callback", "must use https"),
        ("https://app.example.com/callback#fragment", "fragment"),
        ("javascript:alert(1)", "not valid"),
        ("/callback", "not valid"),
        ("https://", "not valid"),
    ],
)
def test_refused_with_a_reason(uri, words, settings):
    settings.DEBUG = False
    assert words in uri_problem(uri, "Redirect URI")


def test_with_debug_on_http_is_allowed_anywhere(settings):
    settings.DEBUG = True
    assert uri_problem("http://app.example.test/callback", "Redirect URI") is None


def test_the_service_and_the_command_refuse_plain_http(db):
    with pytest.raises(ClientError, match="must use https"):
        client_create(name="shop", redirect_uris=["http://shop.example.com/cb"])
    with pytest.raises(CommandError, match="must use https"):
        call_command("create_oidc_client", "shop", "--redirect-uri", "http://shop.example.com/cb", stdout=StringIO())
    assert not Client.objects.filter(name="shop").exists()


def test_the_admin_form_refuses_plain_http_on_change(db):
    client, _ = client_create(name="shop", redirect_uris=["https://shop.example.com/cb"])
    client.redirect_uris = "https://shop.example.com/cb http://shop.example.com/cb"
    client.backchannel_logout_uri = "http://shop.example.com/logout"

    with pytest.raises(ValidationError) as refused:
        client.full_clean()

    assert set(refused.value.message_dict) == {"redirect_uris", "backchannel_logout_uri"}
