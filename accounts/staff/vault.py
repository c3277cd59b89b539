"""Secrets at rest after a SECRET_KEY rotation: move every encrypted value to the current key.

While the former key is in SECRET_KEY_FALLBACKS, everything still decrypts; once it is dropped,
only what was re-encrypted does. The keyring re-encrypts the signing keys by itself at each
reload; `secrets_reencrypt` does all of them at once, TOTP and webhook secrets included (`python manage.py
reencrypt_secrets`), so that the fallback can be dropped right after.
"""

from dataclasses import dataclass, field

from accounts.keys.models import SigningKey
from accounts.mfa.models import TOTPDevice
from accounts.webhooks.models import Endpoint
from core import vault


@dataclass
class ReencryptReport:
    reencrypted: int = 0
    current: int = 0
    unreadable: list[str] = field(default_factory=list)


def secrets_reencrypt() -> ReencryptReport:
    """Re-encrypt under SECRET_KEY every secret that a fallback encrypted; list the unreadable."""
    report = ReencryptReport()
    sources = [
        (SigningKey.objects.exclude(state=SigningKey.State.RETIRED), "private_key_encrypted", lambda row: f"signing key {row.kid}"),
        (TOTPDevice.objects.select_related("user"), "secret_encrypted", lambda row: f"TOTP secret of {row.user.email}"),
        (Endpoint.objects.all(), "secret_encrypted", lambda row: f"webhook secret of endpoint {row.pk}"),
        (
            Endpoint.objects.exclude(previous_secret_encrypted=""),
            "previous_secret_encrypted",
            lambda row: f"previous webhook secret of endpoint {row.pk}",
        ),
    ]
    for queryset, column, name in sources:
        for row in queryset.iterator():
            value = getattr(row, column)
            if vault.is_current(value):
                report.current += 1
                continue
            try:
                fresh = vault.reencrypt(value)
            except vault.SecretUnreadable:
                report.unreadable.append(name(row))
                continue
            # Compare-and-set: a worker's keyring may have done it meanwhile.
            type(row).objects.filter(pk=row.pk, **{column: value}).update(**{column: fresh})
            report.reencrypted += 1
    return report
