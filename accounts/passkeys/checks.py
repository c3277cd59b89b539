"""System check: passkeys need an RP ID that is a domain name and at least one origin allowed to
run a ceremony. The settings refuse a WEBAUTHN_RP_ID set by hand that is no domain; one taken from
TOKEN_ISSUER may be an IP address (a development server) or empty, which browsers (or the library)
refuse: every passkey ceremony would then fail, so the check says so."""

import ipaddress

from django.conf import settings
from django.core import checks


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@checks.register()
def passkeys_can_work(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    rp_id, origins = settings.WEBAUTHN_RP_ID, settings.WEBAUTHN_ORIGINS
    if not rp_id or _is_ip(rp_id):
        return [
            checks.Warning(
                f"WEBAUTHN_RP_ID={rp_id!r} is not a domain name: browsers refuse passkeys for it.",
                hint="Set WEBAUTHN_RP_ID (e.g. example.com), or a TOKEN_ISSUER with a domain name.",
                id="accounts.W001",
            )
        ]
    if not origins:
        return [
            checks.Warning(
                f"No origin is allowed to run a passkey ceremony: none of CLIENT_ORIGIN, CORS_ALLOWED_ORIGINS "
                f"and TOKEN_ISSUER is on {rp_id!r} or below it.",
                hint="Set WEBAUTHN_ORIGINS, or a WEBAUTHN_RP_ID that covers the pages' hosts.",
                id="accounts.W002",
            )
        ]
    return []
