"""The admin site's pages: each room's admin module, imported so that it registers its pages.

Django's admin autodiscovery imports `accounts.admin`.
"""

from accounts.audit import admin as audit  # noqa: F401
from accounts.clients import admin as clients  # noqa: F401
from accounts.keys import admin as keys  # noqa: F401
from accounts.notices import admin as notices  # noqa: F401
from accounts.sessions import admin as sessions  # noqa: F401
from accounts.staff import admin_groups, admin_users  # noqa: F401
