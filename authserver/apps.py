"""The project's configuration of Django's admin app."""

from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """Django's admin, on the site of accounts.staff.site (sign-in through the services)."""

    default_site = "accounts.staff.site.AdminSite"
