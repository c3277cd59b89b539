"""Who the client is: its address, seen through the reverse proxies the operator trusts.

TRUSTED_PROXIES lists the proxies in front of the server, as addresses or CIDR networks (IPv4 and
IPv6). `X-Forwarded-For` is read only on a connection that comes from one of them (REMOTE_ADDR):
each proxy appends the address it saw connect, so reading the header from the right, past the
trusted proxies, reaches the first address a trusted proxy saw: the client. Whatever stands left
of it is what the client chose to send. With TRUSTED_PROXIES empty, the client is REMOTE_ADDR and
the header is ignored (core.middleware also removes it, and `X-Forwarded-Proto`, from every
request that does not come from a trusted proxy).

Why not django-ipware / python-ipware (installed): their trusted-proxy list is positional (the
n-th hop from the right must match the n-th entry, and the client sits at a fixed offset), which
is not "the rightmost address outside every trusted network"; they never check that the
connection itself comes from a trusted proxy; they prefer a public address to a private one,
which can pick another hop than the one the proxies vouch for; and by default they read a dozen
headers (X-Real-IP, CF-Connecting-IP, ...) that any client can send. The rule fits in a few lines
of the standard library's `ipaddress`.

The setting is read at each call and parsed once per distinct value, so that override_settings
works in tests.
"""

import functools
import ipaddress
from collections.abc import Iterable, Mapping

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def proxy_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Parse TRUSTED_PROXIES entries; raise ValueError naming the first one that is not usable."""
    return _parse(tuple(entries))


@functools.lru_cache(maxsize=16)
def _parse(entries: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        try:
            # strict=False: "10.0.0.7/24" means the network 10.0.0.0/24, as an operator would mean it.
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(
                f"{text!r} is not an IP address or a network in CIDR form (such as 10.0.0.0/8 or 2001:db8::/32)"
            ) from None
        if network.prefixlen == 0:
            # Every connection would be a trusted proxy, and every client would choose its own address.
            raise ValueError(f"{text!r} trusts every address; name the proxies' own addresses or networks")
        networks.append(network)
    return tuple(networks)


def _without_port(value: str) -> str:
    """Return the address of "1.2.3.4:5678" or "[2001:db8::1]:443" (some proxies append the port)."""
    if value.startswith("["):
        return value[1:].partition("]")[0]
    host, colon, port = value.rpartition(":")
    if colon and host.count(":") == 0 and port.isdigit():
        return host
    return value


def _address(value: str) -> Address | None:
    try:
        address = ipaddress.ip_address(_without_port(value.strip()))
    except ValueError:
        return None
    # A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d; it is the IPv4 address.
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(value: str, networks: tuple[Network, ...]) -> bool:
    address = _address(value)
    # Membership across IP versions is False, never an error.
    return address is not None and any(address in network for network in networks)


def from_trusted_proxy(meta: Mapping) -> bool:
    """Return whether the request's connection (REMOTE_ADDR) comes from a trusted proxy."""
    networks = proxy_networks(settings.TRUSTED_PROXIES)
    return bool(networks) and _trusted(meta.get("REMOTE_ADDR") or "", networks)


def client_address(meta: Mapping) -> str:
    """Return the client's address for a request's META.

    REMOTE_ADDR, unless the connection comes from a trusted proxy: then the rightmost
    X-Forwarded-For address that is not a trusted proxy (the leftmost if all of them are, and
    REMOTE_ADDR if the header is empty).
    """
    remote = meta.get("REMOTE_ADDR") or ""
    networks = proxy_networks(settings.TRUSTED_PROXIES)
    if not networks or not _trusted(remote, networks):
        return remote
    hops = [hop.strip() for hop in (meta.get("HTTP_X_FORWARDED_FOR") or "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return _without_port(hop)
    return _without_port(hops[0]) if hops else remote


def address_group(address: str) -> str:
    """Return the block of addresses one client holds, as a rate-limit identity.

    An IPv4 address is itself. An IPv6 address stands for its /64 network ("2001:db8:1:2::/64"):
    that is what one subscriber or one host is usually given, so a client can step through
    addresses inside it for free. Anything that is not an address is returned as it is.
    """
    parsed = _address(address)
    if parsed is None:
        return address
    if parsed.version == 4:
        return str(parsed)
    return str(ipaddress.IPv6Network((int(parsed), 64), strict=False))


def address_wide_group(address: str) -> str | None:
    """Return the wider block around an IPv6 client's /64, its /48 ("2001:db8:1::/48"), or None.

    A /48 is what a site is usually given: 65,536 /64s, each of which address_group() counts as
    another client. core.ratelimit counts the /48 too, with a larger allowance
    (IPV6_48_RATE_FACTOR times the /64's). An IPv4 address, or what is not an address, has none.
    """
    parsed = _address(address)
    if parsed is None or parsed.version == 4:
        return None
    return str(ipaddress.IPv6Network((int(parsed), 48), strict=False))
