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
    "address",
    [
        "64:ff9b::a00:1",  # NAT64 wrapping 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 wrapping 169.254.169.254
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::ffff:7f00:1",  # IPv4-mapped 127.0.0.1, spelled in hex
        "fe80::1%eth0",  # link-local with a zone id
        "::",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "198.18.0.1",
    ],
)
def test_other_wrapped_or_special_addresses_are_refused(checked, db, monkeypatch, address):
    """SSRF (regression): NAT64, Teredo, IPv4-compatible and -mapped, zone ids, unspecified,
    multicast, broadcast and benchmarking addresses."""
    resolving(monkeypatch, address)

    assert transport.url_problem("https://hooks.example.com/hook").startswith(f"hooks.example.com resolves to {address}")


@pytest.mark.parametrize(
    "url",
    [
        "https://127.1/hook",
        "https://2130706433/hook",
        "https://0x7f.1/hook",
        "https://0177.0.0.1/hook",
        "https://[::]/hook",
        "https://[::ffff:127.0.0.1]:443/hook",
        "HTTPS://127.0.0.1/hook",
        "https://127.0.0.1/hook#https://hooks.example.com/",
    ],
)
def test_spellings_of_loopback_are_refused(checked, db, url):
    """SSRF (regression): short, decimal, hex and octal IPv4, [::], an
    uppercase scheme and a fragment all resolve to loopback, and the check is on what they resolve to."""
    assert "resolves to" in transport.url_problem(url)


@pytest.mark.parametrize(
    "url, why",
    [
        ("https://hooks.example.com@127.0.0.1/hook", "may not carry a user"),
        ("https://hooks.example.com\\@127.0.0.1/hook", "may not carry a user"),
        ("hTTp://hooks.example.com/hook", "must be https"),
        ("https:///hook", "must be http(s)://host/"),
        ("https://hooks.example.com:99999/hook", "port is not a number"),
    ],
)
def test_userinfo_backslash_and_scheme_tricks_are_refused(checked, db, monkeypatch, url, why):
    """SSRF (regression): userinfo before the real host, a backslash, an empty host, a mixed-case
    http scheme with DEBUG off, a port out of range."""
    resolving(monkeypatch, PUBLIC)

    assert why in (transport.url_problem(url) or "")


def test_a_name_resolving_to_a_public_and_a_private_address_is_refused_at_delivery(checked, db, monkeypatch, user):
    """DNS rebinding: public at registration; at delivery a public and a private address, the
    private one second (a sender that checked the first only would connect to either)."""
    resolving(monkeypatch, PUBLIC)
    webhooks.endpoint_add(url="https://hooks.example.com/hook")
    resolving(monkeypatch, PUBLIC, "10.0.0.7")
    connected = []
    monkeypatch.setattr(transport.socket, "create_connection", lambda *args, **kwargs: connected.append(args))
    with transaction.atomic():
        event_emit("user.updated", data=user_data(user))

    deliver()

    assert Delivery.objects.get().last_error.startswith("refused: hooks.example.com resolves to 10.0.0.7")
    assert connected == []


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


def test_a_unicode_hostname_is_sent_as_idna(checked, db, monkeypatch):
    """IDNA (regression): a Unicode host is resolved, checked and connected to like its ASCII form."""
    seen = []

    def getaddrinfo(host, port, *args, **kwargs):
        seen.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(transport.socket, "getaddrinfo", getaddrinfo)

    assert transport.url_problem("https://b\u00fccher.example/hook") == (
        "b\u00fccher.example resolves to 127.0.0.1, a loopback, private, link-local or reserved address "
        "(set WEBHOOK_ALLOW_PRIVATE to allow it)"
    )


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


def test_a_huge_answer_keeps_only_its_first_kilobyte(settings):
    """Huge response (regression): 10 MB answered; 1 KB read and kept."""

    def huge(connection):
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n")
        for _ in range(160):
            connection.sendall(b"x" * 65536)

    server = RawServer(huge)
    try:
        answer = transport.post(f"http://127.0.0.1:{server.port}/hook", body=b"{}", headers={})
    finally:
        server.close()

    assert (answer.status, answer.excerpt) == (200, "x" * 1024)


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


def test_a_redirect_to_an_internal_address_is_not_followed(hook, receiver, user, monkeypatch):
    """Redirect (regression): a 307 to the metadata service is an answer, not a success, and not followed."""

    def redirect(connection):
        connection.sendall(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://169.254.169.254/latest/meta-data/\r\n"
            b"Content-Length: 0\r\n\r\n"
        )

    server = RawServer(redirect)
    Endpoint.objects.filter(pk=hook.pk).update(url=f"http://127.0.0.1:{server.port}/hook")
    connected = []
    real = transport.socket.create_connection
    monkeypatch.setattr(
        transport.socket, "create_connection", lambda address, **kwargs: connected.append(address) or real(address, **kwargs)
    )
    with transaction.atomic():
        event_emit("user.updated", data=user_data(user))
    try:
        deliver()
    finally:
        server.close()

    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.last_status_code, delivery.last_error) == ("pending", 307, "answered 307")
    assert connected == [("127.0.0.1", server.port)]


def test_tls_is_verified_against_the_name(monkeypatch):
    """TLS for another host (regression): the context verifies the chain and the hostname."""
    contexts = []
    real = transport.ssl.create_default_context

    def spy(*args, **kwargs):
        context = real(*args, **kwargs)
        contexts.append(context)
        return context

    monkeypatch.setattr(transport.ssl, "create_default_context", spy)
    server = RawServer(lambda connection: connection.sendall(b"not TLS"))
    try:
        with pytest.raises(OSError):
            transport.post(f"https://127.0.0.1:{server.port}/hook", body=b"{}", headers={})
    finally:
        server.close()

    assert [(context.verify_mode, context.check_hostname) for context in contexts] == [(transport.ssl.CERT_REQUIRED, True)]


# --- the events ----------------------------------------------------------------------------------


def test_an_event_of_a_change_that_rolls_back_is_not_written(hook, user):
    """Rolled-back change (regression): the event goes with it, and nothing is sent."""
    with pytest.raises(RuntimeError), transaction.atomic():
        event_emit("user.updated", data=user_data(user))
        raise RuntimeError("the change fails after its event")

    assert (Event.objects.count(), deliver()) == (0, 0)


def test_an_unknown_event_type_is_refused_before_anything_is_written(hook):
    """Careless caller (regression): a type not in EVENT_TYPES is a bug, raised at once."""
    with pytest.raises(ValueError, match="user.hacked"), transaction.atomic():
        event_emit("user.hacked", data={})

    assert not Event.objects.exists()


# --- the admin and the commands ------------------------------------------------------------------


@pytest.fixture
def viewer(db, django_user_model):
    """A staff member who may view the webhooks' pages, and change nothing."""
    staff = django_user_model.objects.create_user(email="viewer@example.com", password="x" * 16, is_staff=True)
    staff.user_permissions.set(
        Permission.objects.filter(codename__in=["view_endpoint", "view_delivery", "view_event", "view_attempt"])
    )
    return staff


def test_a_view_only_staff_member_can_neither_resend_nor_rotate(client, viewer, hook, user):
    """Admin actions without the change permission (regression): "send again" and "rotate the
    secret" are refused, and no page shows the secret."""
    with transaction.atomic():
        event_emit("user.updated", data=user_data(user))
    deliver()
    delivery = Delivery.objects.get()
    secret_before = Endpoint.objects.get().secret_encrypted
    admin_login(client, viewer)

    resent = client.post(
        "/admin/accounts/delivery/", {"action": "send_again", "_selected_action": [delivery.pk]}, follow=True
    )
    rotated = client.post(
        "/admin/accounts/endpoint/", {"action": "rotate_secret", "_selected_action": [hook.pk]}, follow=True
    )
    pages = [client.get(f"/admin/accounts/endpoint/{hook.pk}/change/"), client.get(f"/admin/accounts/delivery/{delivery.pk}/change/")]

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("succeeded", 1)
    assert Endpoint.objects.get().secret_encrypted == secret_before
    assert b"whsec_" not in resent.content + rotated.content
    assert [page.status_code for page in pages] == [200, 200]
    for page in pages:
        assert b"whsec_" not in page.content and secret_before.encode() not in page.content


def test_admin_actions_need_the_csrf_token(viewer, hook, db):
    """CSRF (regression): an action posted without the token is refused (403)."""
    from django.test import Client

    viewer.is_superuser = True
    viewer.save()
    client = Client(enforce_csrf_checks=True)
    admin_login(client, viewer)

    answer = client.post("/admin/accounts/endpoint/", {"action": "rotate_secret", "_selected_action": [hook.pk]})

    assert answer.status_code == 403
    assert Endpoint.objects.get().previous_secret_encrypted == ""


@pytest.mark.parametrize(
    "args, why",
    [
        (["--disable", "abc"], "invalid int value"),
        (["--disable", "999"], "no webhook endpoint has id 999"),
        (["--rotate-secret", "-1"], "no webhook endpoint has id -1"),
        (["--add", "http://127.0.0.1:9/", "--events", "user.created,user.hacked"], "unknown event types: user.hacked"),
        (["--list", "--disable", "1"], "not allowed with argument"),
    ],
)
def test_webhook_endpoints_refuses_bad_input_with_a_message(db, args, why):
    """Command input (regression): bad ids, unknown event types, contradictory flags."""
    with pytest.raises(CommandError, match=why):
        call_command("webhook_endpoints", *args)
    assert not Endpoint.objects.exists()


def test_prune_dry_run_deletes_nothing(hook, user):
    """prune_webhooks --dry-run (regression): counts, deletes nothing."""
    with transaction.atomic():
        event_emit("user.updated", data=user_data(user))
    deliver()
    Event.objects.update(created_at=Event.objects.get().created_at.replace(year=2000))

    call_command("prune_webhooks", "--older-than", "1", "--dry-run")

    assert (Event.objects.count(), Delivery.objects.count()) == (1, 1)


def test_saving_an_endpoint_in_the_admin_writes_only_its_form_fields(db, rf):
    """Lost update: the admin's change form saved the whole row as it read it, so a secret rotated
    (or the endpoint disabled by the worker) between that read and the save was written back over:
    the new secret, already shown and deployed, was gone. Only the form's fields are written."""
    from django.contrib import admin as django_admin

    from accounts.webhooks.admin import EndpointAdmin

    new = webhooks.endpoint_add(url="http://127.0.0.1:9/hook")
    stale = Endpoint.objects.get(pk=new.endpoint.pk)
    rotated = webhooks.endpoint_secret_rotate(endpoint_id=new.endpoint.pk)
    webhooks.endpoint_disable(endpoint_id=new.endpoint.pk, reason="every delivery failed")
    stale.description = "CRM"
    stale.event_types = ["user.created"]

    EndpointAdmin(Endpoint, django_admin.site).save_model(rf.post("/"), stale, form=None, change=True)

    endpoint = Endpoint.objects.get()
    assert (endpoint.description, endpoint.event_types, endpoint.is_active) == ("CRM", ["user.created"], False)
    assert endpoint.secrets()[0] == rotated.secret


def test_an_unforeseen_exception_in_an_attempt_is_a_failed_attempt(hook, user, settings, monkeypatch, caplog):
    """Poison delivery: any exception the attempt did not foresee (here a KeyError from the
    transport) broke the worker's round; the delivery was never counted and came back every lease
    for ever, and the deliveries claimed after it in the batch waited a lease. It is now a failed
    attempt, logged with its traceback, retried on schedule, then failed."""
    settings.WEBHOOK_RETRY_SCHEDULE = [0]

    def post(url, **kwargs):
        raise KeyError("unforeseen")

    monkeypatch.setattr(transport, "post", post)
    with transaction.atomic():
        event_emit("user.updated", data=user_data(user))

    assert deliver() == 2

    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("failed", 2, "unexpected KeyError")
    assert [record.levelname for record in caplog.records if "raised" in record.getMessage()] == ["ERROR", "ERROR"]


@pytest.mark.parametrize("days", ["1000000", "999999999", "1000000000"])
def test_prune_with_too_many_days_is_refused_with_a_message(db, days):
    """Command input: --older-than past the calendar's start was an OverflowError's traceback."""
    with pytest.raises(CommandError, match="--older-than reaches before the year 1"):
        call_command("prune_webhooks", "--older-than", days)


def test_a_slow_drip_tls_handshake_is_cut_at_the_timeout(settings):
    """Slow drip in TLS: a server that sends its handshake record a byte every 0.2 s is cut at
    WEBHOOK_TIMEOUT too (the handshake runs after the deadline's timer holds the socket)."""
    settings.WEBHOOK_TIMEOUT = 0.5

    def drip(connection):
        for byte in b"\x16\x03\x03\x40\x00" + b"\x02" * 100:
            connection.sendall(bytes([byte]))
            time.sleep(0.2)

    server = RawServer(drip)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match="timed out: no answer within 0.5 s"):
            transport.post(f"https://127.0.0.1:{server.port}/hook", body=b"{}", headers={})
    finally:
        server.close()

    assert time.monotonic() - started < 1.5
