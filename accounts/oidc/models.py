"""What the OpenID provider keeps: codes, access, refresh and ID tokens (django-oauth-toolkit's
models, swapped for these), each bound to the server session the user authorized in, and the
consents users gave.

A grant's tokens live while their session is open: the checks read the session's row (as the auth
token's do), so every way a session ends kills them at once on every node. A code, and the tokens
first issued for it, share a `token_family` with the refresh tokens that follow: a code used twice
or a refresh token replayed revokes the family in one statement per table.
"""

import uuid

from django.db import models
from django.utils import timezone
from oauth2_provider.models import AbstractAccessToken, AbstractGrant, AbstractIDToken, AbstractRefreshToken

from accounts.clients.models import Client
from accounts.sessions.models import Session
from accounts.users.models import User


class Grant(AbstractGrant):
    """An authorization code (a minute to live, one use)."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="+")
    token_family = models.UUIDField(default=uuid.uuid4, editable=False)
    # Set by the first exchange; a second exchange finds it and revokes what the first issued.
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractGrant.Meta):
        swappable = "OAUTH2_PROVIDER_GRANT_MODEL"


class AccessToken(AbstractAccessToken):
    session = models.ForeignKey(Session, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    token_family = models.UUIDField(null=True, blank=True, editable=False, db_index=True)

    class Meta(AbstractAccessToken.Meta):
        swappable = "OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL"


class RefreshToken(AbstractRefreshToken):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="+")
    # The token answer that brought this row, sealed under its parent's raw refresh token (which
    # the server never keeps): a retry of the parent within OIDC_REFRESH_REUSE_GRACE reads it back
    # and gets the same answer. Emptied when this token is spent in turn.
    grace_answer = models.TextField(blank=True, default="", editable=False)

    class Meta(AbstractRefreshToken.Meta):
        swappable = "OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL"


class IDToken(AbstractIDToken):
    session = models.ForeignKey(Session, null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    class Meta(AbstractIDToken.Meta):
        swappable = "OAUTH2_PROVIDER_ID_TOKEN_MODEL"


class Consent(models.Model):
    """A user's consent to a client for a set of scopes, remembered until withdrawn."""

    public_id = models.UUIDField("id", default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="consents")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="consents")
    scope = models.TextField(help_text="The scopes consented to, space-separated.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [models.UniqueConstraint(fields=["user", "client"], name="consent_one_per_client")]

    def __str__(self):
        return f"{self.user} → {self.client}"

    def covers(self, scopes) -> bool:
        return set(scopes) <= set(self.scope.split())
