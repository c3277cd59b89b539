"""Move every secret at rest to the current SECRET_KEY (after rotating it)."""

from django.core.management.base import BaseCommand, CommandError

from accounts.staff.vault import secrets_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt the secrets at rest (signing keys' private parts, TOTP secrets) that were "
        "encrypted under a former SECRET_KEY still listed in SECRET_KEY_FALLBACKS, so that the "
        "fallback can then be dropped. Exits 1 if some secret can be read with no key at all."
    )

    def handle(self, *args, **options):
        report = secrets_reencrypt()
        self.stdout.write(f"re-encrypted {report.reencrypted}, already current {report.current}, unreadable {len(report.unreadable)}")
        if report.unreadable:
            raise CommandError(
                "Encrypted under a key that is neither SECRET_KEY nor in SECRET_KEY_FALLBACKS: "
                + "; ".join(report.unreadable)
                + ". Put the former key back in SECRET_KEY_FALLBACKS, or rotate the signing keys and reset those users' two-factor."
            )
