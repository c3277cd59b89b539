"""Passkeys: a user's WebAuthn discoverable credentials.

A passkey holds the credential's public key (a COSE key, as the authenticator gave it), never a
secret: a copy of the database signs no one in. The rules (ceremonies, counters, who may add or
remove one) are in accounts.passkeys.services; the WebAuthn library is wrapped in ceremony.py.
"""

from django.db import models
from django.utils import timezone

from accounts.users.models import User


class Passkey(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="passkeys")
    name = models.CharField(max_length=64)
    # The credential id, base64url without padding, as browsers send it back (at most 1023 bytes).
    credential_id = models.CharField(max_length=1366, unique=True)
    # The user handle the authenticator keeps with the credential (`user.id` of the options): random,
    # one per user, shared by the user's passkeys; base64url.
    user_handle = models.CharField(max_length=128, db_index=True)
    public_key = models.BinaryField()
    # The authenticator's signature counter; 0 for authenticators that keep none (synced passkeys).
    sign_count = models.PositiveBigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    aaguid = models.CharField(max_length=36, blank=True)
    backup_eligible = models.BooleanField(default=False)
    backed_up = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Set when a sign-in showed a counter that went backwards: the credential may have been cloned.
    # Such a sign-in is refused; staff decide whether to remove the passkey.
    cloned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.name} ({self.user})"
