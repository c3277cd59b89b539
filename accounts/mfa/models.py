"""Two-factor sign-in: a user's TOTP authenticator and recovery codes.

The TOTP secret is stored encrypted (core.vault); recovery codes only as keyed digests, so a
copy of the database gives neither. The rules (enrollment, code checks, replay) are in
accounts.mfa.services.
"""

from django.db import models
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.users.models import User
from core import vault


class TOTPDevice(models.Model):
    """The user's authenticator: being enrolled while `confirmed_at` is None, then on."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="totp_device")
    secret_encrypted = models.TextField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # The time step of the last code accepted: that code, and every older one, is refused.
    last_used_step = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "TOTP authenticator"

    def __str__(self):
        return f"{self.user} ({'on' if self.is_confirmed else 'enrolling'})"

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None

    @staticmethod
    def secret_encrypt(secret: str) -> str:
        """Return the base32 secret encrypted, as `secret_encrypted` holds it."""
        return vault.encrypt(secret.encode("ascii"))

    def secret(self) -> str:
        """Return the base32 secret, decrypted."""
        return vault.decrypt(self.secret_encrypted).decode("ascii")


class RecoveryCode(models.Model):
    """One single-use recovery code of a user, as a keyed digest (HMAC-SHA256 under SECRET_KEY)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    # Set when the code is spent; a user holds the ten codes of the last generation at most.
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"recovery code of {self.user}{' (used)' if self.used_at else ''}"


def two_factor_on() -> Exists:
    """Return a condition on users (their pk as OuterRef): TOTP is on, i.e. confirmed."""
    return Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed_at__isnull=False))
