"""Sessions in the admin: a list with filters and a revoke action, a revoke button on each
session's page, and an inline on each user."""

from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import ngettext

from accounts.privileges.errors import StaffActionForbidden
from accounts.privileges.rules import staff_action_allowed, staff_action_record
from accounts.sessions import services as sessions
from accounts.sessions.models import Session
from core.admin import ActionsOnlyModelAdmin

SESSION_FIELDS = (
    "public_id", "created_at", "last_seen_at", "expires_at", "user_agent", "ip", "sign_in_methods", "ended_at", "end_reason",
)
# RFC 8176's method names, as staff read them.
METHOD_NAMES = {"pwd": "password", "otp": "one-time code", "mfa": "two factors"}


@admin.display(description="sign-in methods")
def sign_in_methods(session) -> str:
    return ", ".join(METHOD_NAMES.get(method, method) for method in session.amr) or "-"


def session_revoke_by_staff(request, session) -> bool | None:
    """End one session for the staff member of the request, under the staff rules: True if it
    ended now, False if it had already ended, None if this staff member may not act on its user."""
    if not staff_action_allowed(actor=request.user, user=session.user):
        return None
    if not sessions.session_end(session_id=session.public_id, reason=Session.EndReason.STAFF):
        return False
    staff_action_record(user=session.user, actor=request.user, action=f"revoked session {session.public_id[:8]}…")
    return True


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
class SessionAdmin(ActionsOnlyModelAdmin):
    list_display = ("user", "created_at", "last_seen_at", "expires_at", "ip", "user_agent", "state", "end_reason")
    list_filter = (OpenFilter, "end_reason", "created_at")
    search_fields = ("user__email", "ip", "user_agent")
    list_select_related = ("user",)
    readonly_fields = ("user", *SESSION_FIELDS, "remember", "apps")
    date_hierarchy = "created_at"
    actions = ["revoke"]
    change_form_template = "admin/accounts/session/change_form.html"
    sign_in_methods = staticmethod(sign_in_methods)

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

    def get_urls(self):
        return [
            path("<path:object_id>/revoke/", self.admin_site.admin_view(self.revoke_view), name="accounts_session_revoke"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        session = self.get_object(request, object_id)
        can_revoke = session is not None and session.is_open() and self.has_change_permission(request, session)
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "can_revoke": can_revoke})

    def revoke_view(self, request, object_id):
        """POST (the button of a session's page): revoke this one session."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        session = get_object_or_404(Session.objects.select_related("user"), pk=object_id)
        if not self.has_change_permission(request, session):
            self.message_user(request, "You may not revoke sessions.", messages.ERROR)
        else:
            outcome = session_revoke_by_staff(request, session) if session.is_open() else False
            if outcome is None:
                self.message_user(request, f"Not revoked: {StaffActionForbidden.message}.", messages.WARNING)
            elif outcome:
                self.message_user(request, "Session revoked: its tokens stop working now.")
            else:
                self.message_user(request, "This session had already ended.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:accounts_session_change", args=[session.pk]))

    @admin.action(description="Revoke the selected sessions (their tokens stop working)", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = skipped = 0
        for session in queryset.filter(pk__in=Session.objects.open().values("pk")).select_related("user"):
            outcome = session_revoke_by_staff(request, session)
            if outcome is None:
                skipped += 1
            elif outcome:
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
    fields = ("created_at", "last_seen_at", "expires_at", "user_agent", "ip", "sign_in_methods")
    readonly_fields = fields
    sign_in_methods = staticmethod(sign_in_methods)
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
