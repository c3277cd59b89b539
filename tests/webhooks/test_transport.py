"""accounts/webhooks/transport.py: with DEBUG off and WEBHOOK_ALLOW_PRIVATE unset, https only and
public addresses only, checked at registration and again at each attempt against the address
actually connected to (a name that resolves elsewhere by then is refused: DNS rebinding)."""

import socket

import pytest
from django.core.management import CommandError, call_command

from accounts.webhooks import services as webhooks
from accounts.webhooks import transport
from accounts.webhooks.events import event_emit, user_data
from accounts.webhooks.models import Delivery, Endpoint
from tests.webhooks.conftest import deliver

PUBLIC = "93.184.215.14"


@pytest.fixture
def checked(settings):
    settings.DEBUG = False
    settings.WEBHOOK_ALLOW_PRIVATE = False


def resolving(monkeypatch, *addresses: str):
    """Make every name resolve to these addresses."""

    def getaddrinfo(host, port, *args, **kwargs):
        family = lambda address: socket.AF_INET6 if ":" in address else socket.AF_INET  # noqa: E731
        return [(family(address), socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]

    monkeypatch.setattr(transport.socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    "url, why",
    [
        ("https://127.0.0.1/hook", "127.0.0.1, a loopback"),
        ("https://10.1.2.3/hook", "10.1.2.3"),
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("https://[::1]/hook", "::1"),
        ("https://[::ffff:127.0.0.1]/hook", "::ffff:127.0.0.1"),
        ("https://[fd00::1]/hook", "fd00::1"),
        ("https://100.64.0.1/hook", "100.64.0.1"),
        ("https://0.0.0.0/hook", "0.0.0.0"),
        ("http://hooks.example.com/hook", "must be https"),
        ("ftp://hooks.example.com/hook", "must be http(s)"),
        ("https://user:pw@hooks.example.com/hook", "may not carry a user"),
    ],
)
def test_registration_refuses_a_bad_url_with_a_clear_message(checked, db, monkeypatch, url, why):
    resolving(monkeypatch, PUBLIC)
    if "//" in url and url.split("//")[1][0] in "1[0":
        monkeypatch.undo()  # a literal address resolves to itself

    with pytest.raises(webhooks.EndpointRefused, match=why.replace("(", r"\(").replace(")", r"\)")):
        webhooks.endpoint_add(url=url)
    with pytest.raises(CommandError, match="cannot|must|resolves|may not"):
        call_command("webhook_endpoints", "--add", url)
    assert not Endpoint.objects.exists()


def test_a_name_resolving_to_loopback_is_refused(checked, db, monkeypatch):
    resolving(monkeypatch, PUBLIC, "127.0.0.1")

    with pytest.raises(webhooks.EndpointRefused, match="hooks.example.com resolves to 127.0.0.1"):
        webhooks.endpoint_add(url="https://hooks.example.com/hook")


def test_a_public_https_url_is_accepted(checked, db, monkeypatch):
    resolving(monkeypatch, PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c")

    assert webhooks.endpoint_add(url="https://hooks.example.com/hook").endpoint.pk


def test_a_name_that_resolves_elsewhere_at_delivery_is_refused_before_connecting(checked, db, monkeypatch, user):
    resolving(monkeypatch, PUBLIC)
    webhooks.endpoint_add(url="https://hooks.example.com/hook")
    resolving(monkeypatch, "169.254.169.254")
    connected = []
    monkeypatch.setattr(transport.socket, "create_connection", lambda *args, **kwargs: connected.append(args))
    event_emit("user.updated", data=user_data(user))

    deliver()

    delivery = Delivery.objects.get()
    assert delivery.last_error.startswith("refused: hooks.example.com resolves to 169.254.169.254")
    assert connected == []


def test_the_connection_goes_to_the_address_checked_with_the_name_for_tls(checked, db, monkeypatch):
    resolving(monkeypatch, PUBLIC)
    connected = []

    def create_connection(address, timeout=None):
        connected.append((address, timeout))
        raise ConnectionRefusedError("test: not connecting")

    monkeypatch.setattr(transport.socket, "create_connection", create_connection)

    with pytest.raises(ConnectionRefusedError):
        transport.post("https://hooks.example.com:8443/hook", body=b"{}", headers={})

    assert connected == [((PUBLIC, 8443), 10.0)]


def test_webhook_allow_private_allows_http_and_private_addresses(settings, db):
    settings.DEBUG = False
    settings.WEBHOOK_ALLOW_PRIVATE = True

    assert webhooks.endpoint_add(url="http://127.0.0.1:9/hook").endpoint.pk
    assert transport.url_problem("http://10.0.0.1/") is None


def test_a_name_that_does_not_resolve_is_refused(checked, monkeypatch):
    def getaddrinfo(*args, **kwargs):
        raise socket.gaierror("no such name")

    monkeypatch.setattr(transport.socket, "getaddrinfo", getaddrinfo)

    assert transport.url_problem("https://nowhere.invalid/") == "nowhere.invalid does not resolve"


def test_a_stalled_answer_times_out(hook, receiver, user, settings):
    settings.WEBHOOK_TIMEOUT = 0.5
    settings.WEBHOOK_RETRY_SCHEDULE = []
    receiver.answer = "stall"
    event_emit("user.updated", data=user_data(user))

    deliver()

    delivery = Delivery.objects.get()
    assert delivery.state == "failed" and "timed out" in delivery.last_error.lower()
