"""Sessions in the admin: a list with filters and a revoke action, and an inline on each user."""

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import ngettext

from accounts.privileges.errors import StaffActionForbidden
from accounts.privileges.rules import staff_action_allowed, staff_action_record
from accounts.sessions import services as sessions
from accounts.sessions.models import Session

SESSION_FIELDS = ("public_id", "created_at", "last_seen_at", "expires_at", "user_agent", "ip", "amr", "ended_at", "end_reason")


class OpenFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Open"), ("no", "Ended or expired")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(pk__in=Session.objects.open().values("pk"))
        if self.value() == "no":
            return queryset.exclude(pk__in=Session.objects.open().values("pk"))
        return queryset


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ("user", "created_at", "last_seen_at", "expires_at", "ip", "user_agent", "state", "end_reason")
    list_filter = (OpenFilter, "end_reason", "created_at")
    search_fields = ("user__email", "ip", "user_agent")
    list_select_related = ("user",)
    readonly_fields = ("user", *SESSION_FIELDS, "remember", "apps")
    date_hierarchy = "created_at"
    actions = ["revoke"]

    @admin.display(description="apps signed in")
    def apps(self, session):
        return ", ".join(sessions.session_apps([session.pk]).get(session.pk, [])) or "-"

    @admin.display(description="state")
    def state(self, session):
        return "open" if session.is_open() else "ended"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting an open session signs its user out without the staff rules; revoke instead
        # (the action), and leave deleting ended ones to `prune_sessions`.
        return False

    @admin.action(description="Revoke the selected sessions (their tokens stop working)", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = skipped = 0
        for session in queryset.filter(pk__in=Session.objects.open().values("pk")).select_related("user"):
            if not staff_action_allowed(actor=request.user, user=session.user):
                skipped += 1
                continue
            if sessions.session_end(session_id=session.public_id, reason=Session.EndReason.STAFF):
                staff_action_record(user=session.user, actor=request.user, action=f"revoked session {session.public_id[:8]}…")
                revoked += 1
        self.message_user(request, ngettext("%d session revoked.", "%d sessions revoked.", revoked) % revoked)
        if skipped:
            self.message_user(
                request,
                ngettext("%d session skipped: %s.", "%d sessions skipped: %s.", skipped) % (skipped, StaffActionForbidden.message),
                messages.WARNING,
            )


class OpenSessionInline(admin.TabularInline):
    """The user's open sessions, read-only (revoke them from the sessions list or sign out everywhere)."""

    model = Session
    fields = ("created_at", "last_seen_at", "expires_at", "user_agent", "ip", "amr")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "open sessions"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(ended_at__isnull=True, expires_at__gt=timezone.now())

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
