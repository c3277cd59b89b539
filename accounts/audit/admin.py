"""The audit trail in the admin, read-only."""

from django.contrib import admin

from accounts.audit.models import AuthEvent
from core.admin import ReadOnlyModelAdmin


@admin.register(AuthEvent)
class AuthEventAdmin(ReadOnlyModelAdmin):
    """The audit trail, read-only."""

    list_display = ("created_at", "type", "email", "client_address", "detail")
    list_filter = ("type", "created_at")
    search_fields = ("email", "client_address", "detail", "user_agent")
    date_hierarchy = "created_at"
    list_select_related = False
