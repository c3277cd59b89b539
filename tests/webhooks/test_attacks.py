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


@pytest.mark.parametrize(
    "path",
    ["/hook\u00e9", "/hook\u2028x", "/hook\r\nX-Injected: 1", "/a b", "/a\x00b", "/a\x7fb", "/?q=\x01"],
)
def test_a_url_http_client_cannot_send_is_refused_at_registration(db, path):
    """Header injection / poison endpoint: a URL whose path is not plain printable ASCII (a space,
    a control character, a non-ASCII letter) makes http.client raise ValueError, which no caller
    caught: the worker's round broke, the attempt was never counted and the delivery came back
    every lease for ever. It is refused when registered, and at delivery for a row already there."""
    url = f"http://127.0.0.1:9{path}"

    with pytest.raises(webhooks.EndpointRefused, match="percent-encode"):
        webhooks.endpoint_add(url=url)
    with pytest.raises(CommandError, match="percent-encode"):
        call_command("webhook_endpoints", "--add", url)


def test_an_endpoint_already_holding_an_unsendable_url_fails_its_attempts_instead_of_breaking_the_worker(db, user, settings):
    """Poison endpoint: an endpoint row written before the check (or by hand) with a non-ASCII
    path: each attempt is counted, refused, and the delivery fails once its retries are spent."""
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    Endpoint.objects.create(url="http://127.0.0.1:9/caf\u00e9", secret_encrypted=webhooks.vault.encrypt(b"whsec_QUJD"))
    webhooks.subscriptions.forget()
    with transaction.atomic():
        event_emit("user.updated", data=user_data(user))

    assert deliver() == 2

    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("failed", 2)
    assert delivery.last_error.startswith("refused: the URL's path and query must be printable ASCII")


def test_a_url_longer_than_the_column_is_refused_not_a_database_error(db):
    """Bad input: a 2,001-character URL from the command was an uncaught DataError on PostgreSQL."""
    url = "http://127.0.0.1:9/" + "a" * 1982

    assert len(url) == 2001
    with pytest.raises(CommandError, match="longer than 2000 characters"):
        call_command("webhook_endpoints", "--add", url)
    assert not Endpoint.objects.exists()


# --- the answer ----------------------------------------------------------------------------------


def test_a_slow_drip_answer_is_cut_at_the_timeout_not_after_it(settings):
    """Slow drip: a server sending its headers a byte every 0.2 s never trips a per-read timeout of
    0.5 s; the attempt ran as long as the server liked, past the lease, and another worker then
    attempted the same delivery at once. The timeout is the whole attempt's."""
    settings.WEBHOOK_TIMEOUT = 0.5

    def drip(connection):
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
            connection.sendall(bytes([byte]))
            time.sleep(0.2)

    server = RawServer(drip)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match="timed out: no answer within 0.5 s"):
            transport.post(f"http://127.0.0.1:{server.port}/hook", body=b"{}", headers={})
    finally:
        server.close()

    assert time.monotonic() - started < 1.5


def test_an_answer_holding_nul_is_stored_without_it(hook, user):
    """Poison answer: a NUL byte in the answer's excerpt cannot go into a PostgreSQL text column;
    the outcome's UPDATE failed, the round broke and the delivery came back every lease for ever."""
    server = RawServer(lambda connection: connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nok\x00\x00done"))
    Endpoint.objects.filter(pk=hook.pk).update(url=f"http://127.0.0.1:{server.port}/hook")
    with transaction.atomic():
        event_emit("user.updated", data=user_data(user))
    try:
        assert deliver() == 1
    finally:
        server.close()

    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.last_response) == ("succeeded", "ok\ufffd\ufffddone")


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


