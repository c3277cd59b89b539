"""System check: passkeys need a domain to belong to (browsers refuse an IP address as RP ID) and at
least one origin to run on. With the defaults taken from an IP-address TOKEN_ISSUER they would fail
in every browser: warn (the server runs, passwords work), saying what to set."""

import ipaddress

from django.conf import settings
from django.core import checks


@checks.register()
def passkeys_have_a_domain(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    rp_id = getattr(settings, "WEBAUTHN_RP_ID", "")
    try:
        ipaddress.ip_address(rp_id)
    except ValueError:
        pass
    else:
        return [
            checks.Warning(
                f"WEBAUTHN_RP_ID is {rp_id!r}, an IP address (TOKEN_ISSUER's host): browsers refuse it, so "
                "passkeys will not work.",
                hint="Set WEBAUTHN_RP_ID to the domain users reach (e.g. example.com), or TOKEN_ISSUER to a URL with one.",
                id="accounts.W002",
            )
        ]
    if not getattr(settings, "WEBAUTHN_ORIGINS", []):
        return [
            checks.Warning(
                f"No origin of CLIENT_ORIGIN, CORS_ALLOWED_ORIGINS or TOKEN_ISSUER is on WEBAUTHN_RP_ID's domain "
                f"({rp_id!r}): passkeys will not work on any page.",
                hint="Set WEBAUTHN_ORIGINS to the origins of the pages that run passkey ceremonies.",
                id="accounts.W003",
            )
        ]
    return []
