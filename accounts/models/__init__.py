"""The app's models, one module per capability.

Django finds an app's models by importing `accounts.models`, so each model module is imported
here; callers may import a model from here or from its own module.
"""

from accounts.audit.models import AuthEvent
from accounts.clients.models import Client
from accounts.keys.models import SigningKey
from accounts.mfa.models import RecoveryCode, TOTPDevice
from accounts.notices.models import QueuedEmail
from accounts.oidc.models import AccessToken, Consent, Grant, IDToken, RefreshToken
from accounts.passkeys.models import Passkey
from accounts.sessions.models import Session

# UserManager is named by migration 0001 as accounts.models.UserManager.
from accounts.users.models import User, UserManager
from accounts.webhooks.models import Attempt, Delivery, Endpoint, Event

__all__ = [
    "AccessToken",
    "Attempt",
    "AuthEvent",
    "Client",
    "Consent",
    "Delivery",
    "Endpoint",
    "Event",
    "Grant",
    "IDToken",
    "Passkey",
    "RefreshToken",
    "QueuedEmail",
    "RecoveryCode",
    "Session",
    "SigningKey",
    "TOTPDevice",
    "User",
    "UserManager",
]
