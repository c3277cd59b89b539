"""What the admin pages of several rooms share (model-free)."""

from django.contrib import admin


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """A page that shows rows and changes none: no add, change or delete, for anyone."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
