"""Signing keys of the auth tokens, with their states.

next (published, not yet signing) → current (signs) → previous (published, still verifies) →
retired (unpublished; its tokens are refused). Per algorithm (ES256 and RS256), exactly one key is
current and at most one is next, which the database enforces. The private part is stored encrypted (core.vault); the public
part as a JWK, exactly as /.well-known/jwks.json serves it.
"""

import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.keys import jose
from core import vault


def kid_new() -> str:
    """A fresh key id: 96 random bits, URL-safe, never starting with "-" (which a shell command
    line would read as an option: `signing_keys --retire -abc` fails where `--retire abc` works)."""
    while (kid := secrets.token_urlsafe(12)).startswith("-"):
        pass
    return kid


class SigningKeyManager(models.Manager):
    def generate(self, *, algorithm: str, state: str) -> "SigningKey":
        """Make a new key pair and store it in the given state."""
        private_key = jose.private_key_generate(algorithm)
        kid = kid_new()
        return self.create(
            kid=kid,
            algorithm=algorithm,
            state=state,
            public_jwk=jose.public_jwk(private_key, kid=kid, algorithm=algorithm),
            private_key_encrypted=vault.encrypt(jose.private_key_to_pem(private_key)),
            activated_at=timezone.now() if state == SigningKey.State.CURRENT else None,
        )


class SigningKey(models.Model):
    class State(models.TextChoices):
        NEXT = "next", "Next (published, not signing yet)"
        CURRENT = "current", "Current (signs new tokens)"
        PREVIOUS = "previous", "Previous (published, verifies older tokens)"
        RETIRED = "retired", "Retired (its tokens are refused)"

    PUBLISHED = (State.NEXT, State.CURRENT, State.PREVIOUS)

    kid = models.CharField("key id", max_length=64, unique=True)
    algorithm = models.CharField(max_length=8, choices=[(name, name) for name in jose.ALGORITHMS])
    state = models.CharField(max_length=8, choices=State.choices, db_index=True)
    public_jwk = models.JSONField()
    private_key_encrypted = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True, help_text="When it became current.")
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = SigningKeyManager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One current and at most one next key per algorithm: ES256 and RS256 each sign their
            # tokens (RS256 is OpenID's default for ID tokens).
            models.UniqueConstraint(
                fields=["algorithm", "state"], condition=Q(state="current"), name="signing_key_one_current_per_alg"
            ),
            models.UniqueConstraint(
                fields=["algorithm", "state"], condition=Q(state="next"), name="signing_key_one_next_per_alg"
            ),
        ]

    def __str__(self):
        return f"{self.kid} ({self.algorithm}, {self.state})"

    def private_key(self):
        """Return the private key, decrypted (only the current key's is ever needed)."""
        return jose.private_key_from_pem(vault.decrypt(self.private_key_encrypted))
