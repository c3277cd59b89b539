"""Sending one delivery over HTTP(S), and the checks that make an endpoint safe to point anywhere.

The standard library's http.client, with what a webhook sender needs and nothing more: a timeout
(WEBHOOK_TIMEOUT, 10 s) on the whole attempt, connecting, TLS and reading the answer together, no redirect followed (a 3xx is an answer
like any other, and not a success), and only the first KB of the answer kept.

Unless DEBUG is on or WEBHOOK_ALLOW_PRIVATE is set, a URL must be https, and the host must resolve
only to public addresses: no loopback, private, link-local (169.254.169.254, the cloud's metadata
service), shared, multicast or reserved address, nor an IPv6 address carrying one (IPv4-mapped,
6to4) or an IPv6 site-local one. That is checked when an endpoint is registered
(`url_problem`) and again at each attempt, against the very address connected to: the host is
resolved once, every address it resolves to is checked, and the connection goes to that address
(TLS verified against the hostname, sent as SNI and Host), so a DNS answer that changes between the
check and the connection (DNS rebinding) cannot reach an internal address.
"""

import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPException
from urllib.parse import urlsplit

from django.conf import settings

EXCERPT_BYTES = 1024

# What a request line may carry as its target: printable ASCII, no space.
_SENDABLE_PATH = re.compile(r"[\x21-\x7e]+")


class Refused(Exception):
    """The URL may not be called (its scheme, or an address it resolves to)."""


@dataclass(frozen=True)
class Answer:
    status: int
    excerpt: str
    seconds: float


def _checked() -> bool:
    return not (settings.DEBUG or settings.WEBHOOK_ALLOW_PRIVATE)


def address_refused(address: str) -> bool:
    """Whether an address is one a webhook may not reach: anything but a global unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return True
        # An IPv4 address carried inside an IPv6 one (mapped, or 6to4 through a relay) is the
        # address reached: checked as such.
        wrapped = ip.ipv4_mapped or ip.sixtofour
        if wrapped is not None:
            ip = wrapped
    return not ip.is_global or ip.is_multicast or ip.is_reserved


def _target(url: str) -> tuple[str, str, int, str]:
    """Return (scheme, host, port, path with query) of a URL, or raise Refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Refused("the URL must be http(s)://host/...")
    if parts.scheme != "https" and _checked():
        raise Refused("the URL must be https (set WEBHOOK_ALLOW_PRIVATE to allow http)")
    if parts.username or parts.password:
        raise Refused("the URL may not carry a user or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise Refused("the URL's port is not a number") from exc
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not _SENDABLE_PATH.fullmatch(path):
        # http.client would raise ValueError on it at every attempt (a space or control character
        # would also split the request line).
        raise Refused("the URL's path and query must be printable ASCII (percent-encode the rest)")
    return parts.scheme, parts.hostname, port, path


def _resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to, checked (unless the checks are off); raise Refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, ValueError) as exc:  # ValueError: a NUL, or a label IDNA refuses
        raise Refused(f"{host} does not resolve") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if _checked():
        refused = [address for address in addresses if address_refused(address)]
        if refused:
            raise Refused(
                f"{host} resolves to {refused[0]}, a loopback, private, link-local or reserved address "
                "(set WEBHOOK_ALLOW_PRIVATE to allow it)"
            )
    return addresses


def url_problem(url: str) -> str | None:
    """Why the URL cannot be an endpoint, or None: registration's early check."""
    try:
        _scheme, host, port, _path = _target(url)
        _resolve(host, port)
    except Refused as exc:
        return str(exc)
    return None


class _PinnedConnection(HTTPConnection):
    """An HTTP(S) connection to one address chosen beforehand, for a hostname (Host, SNI, TLS),
    that `cut()` ends from another thread whatever it is doing (connecting, TLS, a read)."""

    def __init__(self, host: str, port: int, *, address: str, tls: bool, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address, self._tls = address, tls
        # The Host header names the port only when it is not the scheme's own.
        self.default_port = 443 if tls else 80
        self._lock = threading.Lock()
        self.cut_short = False

    def _hold(self, sock) -> None:
        with self._lock:
            if self.cut_short:
                sock.close()
                raise TimeoutError("cut short")
            self.sock = sock

    def connect(self):
        sock = socket.create_connection((self._address, self.port), timeout=self.timeout)
        self._hold(sock)
        if self._tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host, do_handshake_on_connect=False)
            self._hold(sock)
            sock.do_handshake()

    def cut(self) -> None:
        with self._lock:
            self.cut_short = True
            if self.sock is not None:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def post(url: str, *, body: bytes, headers: dict[str, str]) -> Answer:
    """POST the body to the URL; return the answer, or raise Refused or OSError (not reached,
    timed out, TLS refused) or HTTPException (not HTTP).

    WEBHOOK_TIMEOUT bounds the whole attempt from the connection on, not each read: a server that
    drips its answer a byte at a time is cut at that time (the attempt stays within its lease)."""
    scheme, host, port, path = _target(url)
    address = _resolve(host, port)[0]
    started = time.monotonic()
    timeout = settings.WEBHOOK_TIMEOUT
    connection = _PinnedConnection(host, port, address=address, tls=scheme == "https", timeout=timeout)
    timer = threading.Timer(timeout, connection.cut)
    timer.daemon = True
    timer.start()
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        excerpt = response.read(EXCERPT_BYTES)
    except (OSError, HTTPException) as exc:
        if connection.cut_short:
            raise TimeoutError(f"timed out: no answer within {timeout:g} s") from exc
        raise
    finally:
        timer.cancel()
        connection.close()
    return Answer(
        status=response.status,
        # A NUL cannot be stored in PostgreSQL's text: it would break the outcome's UPDATE.
        excerpt=excerpt.decode("utf-8", "replace").replace("\x00", "\ufffd"),
        seconds=time.monotonic() - started,
    )


__all__ = ["Answer", "HTTPException", "Refused", "address_refused", "post", "url_problem"]
