"""Queued security notices in the admin: what `send_queued_emails` still has to send."""

from django.contrib import admin

from accounts.notices.models import QueuedEmail


@admin.register(QueuedEmail)
class QueuedEmailAdmin(admin.ModelAdmin):
    list_display = ("kind", "to", "created_at", "attempts", "next_attempt_at", "last_error")
    list_filter = ("kind",)
    search_fields = ("to",)
    readonly_fields = ("kind", "to", "subject", "body", "created_at", "attempts", "next_attempt_at", "last_error")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # A queued notice is a user's security notice: it is sent, or given up after a day.
        return False
