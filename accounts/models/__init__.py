"""The app's models, one module per capability.

Django finds an app's models by importing `accounts.models`, so each model module is imported
here; callers may import a model from here or from its own module.
"""

from accounts.models.audit import AuthEvent
from accounts.models.clients import ResourceServer
from accounts.models.emails import QueuedEmail
from accounts.models.keys import SigningKey
from accounts.models.mfa import RecoveryCode, TOTPDevice
from accounts.models.sessions import Session
# UserManager is named by migration 0001 as accounts.models.UserManager.
from accounts.models.users import User, UserManager

__all__ = [
    "AuthEvent",
    "QueuedEmail",
    "RecoveryCode",
    "ResourceServer",
    "Session",
    "SigningKey",
    "TOTPDevice",
    "User",
    "UserManager",
]
