"""Who the client is: accounts/addresses.py, TRUSTED_PROXIES and the middleware that drops forwarded
headers from connections that do not come from a trusted proxy (authserver/middleware.py).

The attacks: a client that connects directly sends X-Forwarded-For to pick its address (to escape
a rate limit, or to spend someone else's) and X-Forwarded-Proto to pass for HTTPS. Rate limits
and the audit trail are proven through the API in tests/core/test_ratelimit.py and tests/audit/test_services.py; here, the
rule itself, HTTPS detection through real URLs, and what the rest of the stack gets to see.
"""

import json

import pytest
from django.http import JsonResponse
from django.test import Client, RequestFactory

from core.addresses import address_group, client_address, from_trusted_proxy, proxy_networks
from core.middleware import forwarded_headers_from_trusted_proxies

# --- client_address: the rule ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        # No proxy trusted: the header is whatever the client wrote.
        ([], "203.0.113.9", None, "203.0.113.9"),
        ([], "203.0.113.9", "198.51.100.1", "203.0.113.9"),
        # A proxy is trusted, but this connection does not come from it.
        (["10.0.0.1"], "203.0.113.9", "198.51.100.1", "203.0.113.9"),
        (["10.0.0.0/8"], "11.0.0.1", "198.51.100.1", "11.0.0.1"),
        # One trusted proxy: the address it saw; what the client prepended is ignored.
        (["10.0.0.1"], "10.0.0.1", "203.0.113.7", "203.0.113.7"),
        (["10.0.0.1"], "10.0.0.1", "6.6.6.6, 203.0.113.7", "203.0.113.7"),
        (["10.0.0.1"], "10.0.0.1", "6.6.6.6,203.0.113.7", "203.0.113.7"),
        # A chain of proxies (a CDN, then a load balancer), by network.
        (["10.0.0.0/8", "198.51.100.0/24"], "10.0.0.2", "6.6.6.6, 203.0.113.7, 198.51.100.20", "203.0.113.7"),
        (["10.0.0.0/8"], "10.0.0.2", "6.6.6.6, 203.0.113.7, 10.9.9.9, 10.1.1.1", "203.0.113.7"),
        # The client wrote a trusted proxy's address: the proxies' own entries are to the right of it.
        (["10.0.0.0/8"], "10.0.0.2", "10.0.0.3, 203.0.113.7", "203.0.113.7"),
        # Every hop is a trusted proxy (a health check from inside): the leftmost.
        (["10.0.0.0/8"], "10.0.0.2", "10.0.0.5, 10.0.0.6", "10.0.0.5"),
        # A trusted proxy that forwarded nothing: the connection's address.
        (["10.0.0.1"], "10.0.0.1", None, "10.0.0.1"),
        (["10.0.0.1"], "10.0.0.1", " , ", "10.0.0.1"),
        # IPv6 proxies and clients.
        (["2001:db8:ffff::/48"], "2001:db8:ffff::2", "2001:db8:1:2::99", "2001:db8:1:2::99"),
        (["2001:db8:ffff::/48"], "2001:db8:ffff::2", "::1, 2001:db8:1:2::99, 2001:db8:ffff::1", "2001:db8:1:2::99"),
        (["10.0.0.1", "2001:db8:ffff::/48"], "10.0.0.1", "2001:db8:1:2::99, 2001:db8:ffff::7", "2001:db8:1:2::99"),
        # An IPv4 proxy seen through a dual-stack socket.
        (["10.0.0.0/8"], "::ffff:10.0.0.2", "203.0.113.7", "203.0.113.7"),
        # A connection that is not over IP (a unix socket): never a trusted proxy.
        (["10.0.0.1"], "", "203.0.113.7", ""),
    ],
)
def test_client_address(settings, trusted, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = trusted
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded

    assert client_address(meta) == expected


def test_client_address_follows_a_change_of_the_setting(settings):
    """The setting is read at each call (override_settings works): nothing is bound at import."""
    meta = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    settings.TRUSTED_PROXIES = []
    assert client_address(meta) == "10.0.0.1"
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    assert client_address(meta) == "203.0.113.7"
    settings.TRUSTED_PROXIES = ["10.0.0.2"]
    assert client_address(meta) == "10.0.0.1"


# --- TRUSTED_PROXIES entries ---------------------------------------------------------------------


def test_proxy_networks_parses_addresses_and_networks():
    networks = proxy_networks([" 10.0.0.1", "192.0.2.0/24 ", "2001:db8::/32", "2001:db8:ffff::1", "10.1.2.3/16", ""])

    assert [str(network) for network in networks] == [
        "10.0.0.1/32",
        "192.0.2.0/24",
        "2001:db8::/32",
        "2001:db8:ffff::1/128",
        "10.1.0.0/16",  # host bits set: the network they belong to
    ]


@pytest.mark.parametrize(
    "entry", ["10.0.0.300", "proxy.internal", "10.0.0.0/33", "2001:db8::/129", "10.0.0.1-10.0.0.9", "0.0.0.0/0", "::/0"]
)
def test_proxy_networks_refuses_what_is_not_a_proxy(entry):
    with pytest.raises(ValueError, match="10.0.0.300|proxy.internal|/33|/129|10.0.0.1-|trusts every address"):
        proxy_networks(["10.0.0.1", entry])


# --- address_group: the identity rate limits count ---------------------------------------------


@pytest.mark.parametrize(
    ("address", "group"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:0:0:0:1", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::1", "::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("", ""),
        ("unix:/run/gunicorn.sock", "unix:/run/gunicorn.sock"),
        ("<script>", "<script>"),
    ],
)
def test_address_group(address, group):
    assert address_group(address) == group


# --- The middleware: what the rest of the stack sees -------------------------------------------


def seen_by_the_view(**meta) -> dict:
    """Return the forwarded headers a view behind the middleware sees, for a request with `meta`."""

    def view(request):
        return JsonResponse({key: request.META.get(key) for key in ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO")})

    response = forwarded_headers_from_trusted_proxies(view)(RequestFactory().get("/", **meta))
    return json.loads(response.content)


def test_forwarded_headers_from_an_untrusted_connection_are_removed(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]

    seen = seen_by_the_view(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="1.2.3.4", HTTP_X_FORWARDED_PROTO="https")

    assert seen == {"HTTP_X_FORWARDED_FOR": None, "HTTP_X_FORWARDED_PROTO": None}


def test_forwarded_headers_are_removed_when_no_proxy_is_trusted(settings):
    settings.TRUSTED_PROXIES = []

    seen = seen_by_the_view(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4", HTTP_X_FORWARDED_PROTO="https")

    assert seen == {"HTTP_X_FORWARDED_FOR": None, "HTTP_X_FORWARDED_PROTO": None}


def test_forwarded_headers_from_a_trusted_proxy_are_kept(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]

    seen = seen_by_the_view(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4", HTTP_X_FORWARDED_PROTO="https")

    assert seen == {"HTTP_X_FORWARDED_FOR": "1.2.3.4", "HTTP_X_FORWARDED_PROTO": "https"}
    assert from_trusted_proxy({"REMOTE_ADDR": "10.0.0.1"})


def test_the_middleware_comes_first(settings):
    assert settings.MIDDLEWARE[0] == "core.middleware.forwarded_headers_from_trusted_proxies"


# --- HTTPS as the proxy says, through real URLs ------------------------------------------------


@pytest.fixture
def behind_a_proxy(settings):
    """Production settings with one trusted proxy: TRUSTED_PROXIES turns SECURE_PROXY_SSL_HEADER on
    (tests/deploy/test_settings.py checks that settings.py does so), HTTPS is required and HSTS sent."""
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    return settings


def test_a_client_claiming_https_is_not_believed(db, behind_a_proxy):
    response = Client(REMOTE_ADDR="203.0.113.9").get("/api/user", HTTP_X_FORWARDED_PROTO="https")

    # Plain HTTP, as it really is: redirected to HTTPS, and no HSTS header over HTTP.
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/api/user"
    assert "Strict-Transport-Security" not in response


def test_https_through_the_trusted_proxy_is_believed(db, behind_a_proxy):
    response = Client(REMOTE_ADDR="10.0.0.1").get("/api/user", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 401  # served: the token check answers
    assert response["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"


def test_http_through_the_trusted_proxy_is_redirected(db, behind_a_proxy):
    response = Client(REMOTE_ADDR="10.0.0.1").get("/api/user", HTTP_X_FORWARDED_PROTO="http")

    assert response.status_code == 301


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [("198.51.100.7:5678", "198.51.100.7"), ("[2001:db8::7]:443", "2001:db8::7"), ("2001:db8::7", "2001:db8::7")],
    ids=["ipv4-port", "ipv6-port", "ipv6-bare"],
)
def test_a_port_a_proxy_appends_is_not_part_of_the_client(settings, forwarded, client):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]

    assert client_address({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": forwarded}) == client
