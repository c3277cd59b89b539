"""The admin site's pages: each room's admin module, imported so that it registers its pages.

Django's admin autodiscovery imports `accounts.admin`. django-oauth-toolkit's own admin module
(imported first: its app comes first in INSTALLED_APPS) registers pages for its swapped models,
which show tokens in clear; they are taken off, and accounts.clients and accounts.oidc register
their own.
"""

from django.contrib import admin
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

for _model in (get_application_model(), get_grant_model(), get_access_token_model(), get_refresh_token_model(), get_id_token_model()):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

from accounts.audit import admin as audit  # noqa: E402, F401
from accounts.clients import admin as clients  # noqa: E402, F401
from accounts.keys import admin as keys  # noqa: E402, F401
from accounts.notices import admin as notices  # noqa: E402, F401
from accounts.oidc import admin as oidc  # noqa: E402, F401
from accounts.sessions import admin as sessions  # noqa: E402, F401
from accounts.staff import admin_groups, admin_passkeys, admin_users  # noqa: E402, F401
from accounts.webhooks import admin as webhooks  # noqa: E402, F401
