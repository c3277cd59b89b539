"""Resource servers: the services that may call the introspection endpoint."""

import secrets

from django.db import models
from django.utils import timezone


def client_id_new() -> str:
    return secrets.token_urlsafe(16)


class ResourceServer(models.Model):
    """A registered resource server. Its secret is random (256 bits) and kept as a SHA-256 digest:
    a fast digest is safe for a secret nobody chose, and a password hasher would cost every
    introspection call ~20 ms."""

    name = models.CharField(max_length=100, unique=True)
    client_id = models.CharField(max_length=64, unique=True, default=client_id_new, editable=False)
    secret_digest = models.CharField(max_length=64, editable=False)
    is_active = models.BooleanField("active", default=True, help_text="Unselect to refuse its calls.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
