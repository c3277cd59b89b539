"""The app's models, one module per capability.

Django finds an app's models by importing `accounts.models`, so each model module is imported
here; callers may import a model from here or from its own module.
"""

from accounts.models.audit import AuthEvent
# UserManager is named by migration 0001 as accounts.models.UserManager.
from accounts.models.users import User, UserManager

__all__ = ["AuthEvent", "User", "UserManager"]
