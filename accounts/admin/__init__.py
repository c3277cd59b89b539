"""The admin site's pages, one module per capability.

Django's admin autodiscovery imports `accounts.admin`; importing each module registers its pages.
"""

from accounts.admin import audit, clients, emails, groups, keys, sessions, users  # noqa: F401
