"""Groups in the admin: only superusers create, change or delete them.

A group's permissions are privileges, and so are its members' memberships (the `groups` claim of
their tokens): staff who could edit a group they belong to could grant themselves every
permission. The rule is the one of the user form, where only superusers edit groups.
"""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.models import Group

from accounts.staff.admin_users import admin_permissions

admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "permissions":
            # Only the permissions of this admin's pages, not Django's own low-level ones.
            kwargs["queryset"] = admin_permissions(self.admin_site)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser
