"""The audit trail in the admin, read-only."""

from django.contrib import admin

from accounts.audit.models import AuthEvent


@admin.register(AuthEvent)
class AuthEventAdmin(admin.ModelAdmin):
    """The audit trail, read-only."""

    list_display = ("created_at", "type", "email", "client_address", "detail")
    list_filter = ("type", "created_at")
    search_fields = ("email", "client_address", "detail", "user_agent")
    date_hierarchy = "created_at"
    list_select_related = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
