"""Sessions: one per sign-in (per device), the one thing that makes an auth token valid.

A token carries its session's public id (`sid`); the token is accepted while its session is open:
not ended and not past `expires_at`, the end of the refresh window that began at sign-in.
Revoking is one UPDATE that sets `ended_at`, so a token minted by a refresh racing the revocation
dies with its session: validity is the row's state, not a comparison of clocks.
"""

import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.users.models import User

USER_AGENT_MAX_LENGTH = 256


def session_id_new() -> str:
    """Return a new public session id: 256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


class SessionQuerySet(models.QuerySet):
    def open(self, now=None) -> "SessionQuerySet":
        """Filter the sessions that still make tokens valid: not ended, not expired."""
        return self.filter(ended_at__isnull=True, expires_at__gt=now or timezone.now())


class Session(models.Model):
    """One sign-in of a user on one device (the API's login, or the admin site's)."""

    class EndReason(models.TextChoices):
        SIGNED_OUT = "signed_out", "Signed out"
        REVOKED = "revoked", "Revoked by the user"
        PASSWORD_CHANGE = "password_change", "Password changed"
        RECOVERY = "recovery", "Password reset by email"
        DEACTIVATION = "deactivation", "Account deactivated"
        DISABLED = "disabled", "Account disabled by staff"
        STAFF = "staff", "Revoked by staff"
        OPERATOR = "operator", "Revoked by an operator"
        TWO_FACTOR_RESET = "two_factor_reset", "Two-factor reset by staff"
        DELETED = "deleted", "Account deleted"
        EXPIRED = "expired", "Expired"

    public_id = models.CharField("id", max_length=64, unique=True, default=session_id_new, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_sessions")
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(help_text="End of the refresh window that began at sign-in.")
    user_agent = models.CharField(max_length=USER_AGENT_MAX_LENGTH, blank=True)
    ip = models.GenericIPAddressField("client address", null=True, blank=True)
    remember = models.BooleanField(default=False)
    # Authentication methods used at sign-in (RFC 8176): ["pwd"], or ["pwd", "otp"].
    amr = models.JSONField(default=list)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, choices=EndReason.choices, blank=True)

    objects = SessionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The user's open sessions (list, revoke all): a partial index holds only open rows.
            models.Index(fields=["user", "-created_at"], condition=Q(ended_at__isnull=True), name="session_user_open"),
            # Pruning ended and expired sessions.
            models.Index(fields=["ended_at"], name="session_ended_at"),
            models.Index(fields=["expires_at"], name="session_expires_at"),
        ]

    def __str__(self):
        return f"{self.user} since {self.created_at:%Y-%m-%d %H:%M}"

    def is_open(self, now=None) -> bool:
        return self.ended_at is None and self.expires_at > (now or timezone.now())
