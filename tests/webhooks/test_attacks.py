"""Attacks on the webhooks: what an endpoint's URL, its DNS, its server's answers, a staff member
without the right permission, or a careless caller can make the sender do. Each test names the
attack; those that were refused from the start are kept as regression tests (the address checks
already covered by test_transport.py are not repeated here)."""

import socket
import threading
import time

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import transaction

from accounts.webhooks import services as webhooks
from accounts.webhooks import transport
from accounts.webhooks.events import event_emit, user_data
from accounts.webhooks.models import Delivery, Endpoint, Event
from tests.conftest import admin_login
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


class RawServer:
    """A TCP server on 127.0.0.1 that reads the request, then runs `answer(connection)`."""

    def __init__(self, answer):
        self._answer = answer
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        try:
            connection, _ = self._socket.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(10)
            try:
                connection.recv(65536)
                self._answer(connection)
            except OSError:
                pass  # the sender gave up

    def close(self):
        self._socket.close()


# --- the URL -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::",  # 6to4 wrapping 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 wrapping 169.254.169.254, the metadata service
        "2002:a00:1::",  # 6to4 wrapping 10.0.0.1
        "fec0::1",  # site-local (deprecated, still routed as private by some networks)
    ],
)
def test_an_ipv6_address_wrapping_or_naming_a_private_network_is_refused(checked, db, monkeypatch, address):
    """SSRF: a name whose AAAA record is a 6to4 address carrying a private IPv4 address (reached
    through a 6to4 relay), or an IPv6 site-local address."""
    resolving(monkeypatch, address)

    with pytest.raises(webhooks.EndpointRefused, match=f"hooks.example.com resolves to {address}, a loopback"):
        webhooks.endpoint_add(url="https://hooks.example.com/hook")


# --- the answer ----------------------------------------------------------------------------------


# --- the events ----------------------------------------------------------------------------------


# --- the admin and the commands ------------------------------------------------------------------


@pytest.fixture
def viewer(db, django_user_model):
    """A staff member who may view the webhooks' pages, and change nothing."""
    staff = django_user_model.objects.create_user(email="viewer@example.com", password="x" * 16, is_staff=True)
    staff.user_permissions.set(
        Permission.objects.filter(codename__in=["view_endpoint", "view_delivery", "view_event", "view_attempt"])
    )
    return staff


