"""Queued security notices in the admin: what `send_queued_emails` still has to send."""

from django.contrib import admin

from accounts.notices.models import QueuedEmail
from core.admin import ReadOnlyModelAdmin


@admin.register(QueuedEmail)
class QueuedEmailAdmin(ReadOnlyModelAdmin):
    # Not even deleted: a queued notice is a user's security notice, sent or given up after a day.
    list_display = ("kind", "to", "created_at", "attempts", "next_attempt_at", "last_error")
    list_filter = ("kind",)
    search_fields = ("to",)
    readonly_fields = ("kind", "to", "subject", "body", "created_at", "attempts", "next_attempt_at", "last_error")
