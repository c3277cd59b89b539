"""The admin site's pages, one module per capability.

Django's admin autodiscovery imports `accounts.admin`; importing each module registers its pages.
"""

from accounts.audit import admin as audit
from accounts.clients import admin as clients
from accounts.keys import admin as keys
from accounts.notices import admin as emails
from accounts.sessions import admin as sessions
from accounts.staff import admin_groups as groups
from accounts.staff import admin_users as users
