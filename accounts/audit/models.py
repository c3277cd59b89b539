"""The audit trail's rows: one per authentication event."""

from django.db import models
from django.utils import timezone

from accounts.users.models import User


class AuthEvent(models.Model):
    """One entry of the audit trail. The email is kept as text, so the entry outlives the user."""

    class Type(models.TextChoices):
        LOGIN = "login", "Login"
        LOGIN_FAILED = "login_failed", "Login failed"
        REFRESH_REFUSED = "refresh_refused", "Token refresh refused"
        REGISTER = "register", "Registration"
        CONFIRM = "confirm", "Confirmation"
        PASSWORD_CHANGE = "password_change", "Password change"
        RECOVERY_REQUEST = "recovery_request", "Recovery requested"
        RECOVERY_COMPLETE = "recovery_complete", "Recovery completed"
        EMAIL_CHANGE = "email_change", "Email change"
        DEACTIVATE = "deactivate", "Deactivation"
        REACTIVATE = "reactivate", "Reactivation"
        DELETE = "delete", "Deletion"
        STAFF_ACTION = "staff_action", "Staff action"
        PASSWORD_CHECK_FAILED = "password_check_failed", "Password check failed"
        SESSION_REVOKED = "session_revoked", "Session revoked"
        KEYS_ROTATED = "keys_rotated", "Signing keys rotated"
        KEY_RETIRED = "key_retired", "Signing key retired"
        RESOURCE_SERVER_CREATED = "resource_server_created", "Resource server registered"
        MFA_ENABLED = "mfa_enabled", "Two-factor enabled"
        MFA_DISABLED = "mfa_disabled", "Two-factor disabled"
        MFA_FAILED = "mfa_failed", "Two-factor code refused"
        MFA_RECOVERY_CODE_USED = "mfa_recovery_code_used", "Recovery code used"
        MFA_RECOVERY_CODES_REGENERATED = "mfa_recovery_codes_regenerated", "Recovery codes regenerated"
        MFA_RESET = "mfa_reset", "Two-factor reset by staff"
        CLIENT_CREATED = "client_created", "Client registered"
        CLIENT_SECRET_RESET = "client_secret_reset", "Client secret replaced"
        AUTHORIZED = "authorized", "App authorized (a code issued)"
        AUTHORIZATION_REFUSED = "authorization_refused", "Authorization refused"
        CONSENT_GIVEN = "consent_given", "Consent given"
        CONSENT_REFUSED = "consent_refused", "Consent refused"
        CONSENT_WITHDRAWN = "consent_withdrawn", "Consent withdrawn"
        GRANT_REVOKED = "grant_revoked", "App's tokens revoked by staff"
        CODE_REUSED = "code_reused", "Authorization code used twice"
        REFRESH_REUSED = "refresh_reused", "Refresh token reused"
        OIDC_LOGOUT = "oidc_logout", "Signed out by an app (RP-initiated)"
        BACKCHANNEL_LOGOUT = "backchannel_logout", "Back-channel logout sent"
        BACKCHANNEL_LOGOUT_FAILED = "backchannel_logout_failed", "Back-channel logout not delivered"
        PASSKEY_ADDED = "passkey_added", "Passkey added"
        PASSKEY_REMOVED = "passkey_removed", "Passkey removed"
        PASSKEY_FAILED = "passkey_failed", "Passkey refused"
        PASSKEY_CLONED = "passkey_cloned", "Passkey's counter went backwards (cloned?)"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    type = models.CharField(max_length=32, choices=Type.choices, db_index=True)
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    email = models.CharField(max_length=254, blank=True, db_index=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "authentication event"

    def __str__(self):
        return f"{self.get_type_display()} {self.email}"
