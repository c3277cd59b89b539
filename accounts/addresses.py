"""Client addresses: who is calling, as the rate limits and the audit trail see it."""

import ipaddress

from django.conf import settings


def client_address(meta: dict) -> str:
    """Return the client's address: REMOTE_ADDR, or with NUM_PROXIES trusted proxies in front,
    the address the outermost trusted proxy saw (counted from the right of X-Forwarded-For)."""
    remote = meta.get("REMOTE_ADDR", "")
    proxies = settings.NUM_PROXIES
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not proxies or not forwarded:
        return remote
    addresses = [address.strip() for address in forwarded.split(",") if address.strip()]
    if not addresses:
        return remote
    return addresses[-min(proxies, len(addresses))]


def address_group(address: str) -> str:
    """Return what rate limits count per: the address itself for IPv4, its /64 for IPv6 (one
    subscriber usually holds a whole /64, and can pick any address in it)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 4:
        return str(parsed)
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
