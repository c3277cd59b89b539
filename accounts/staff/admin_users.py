"""Admin for accounts, modelled on django.contrib.auth.admin.

Every change of state goes through accounts.services, as the API's do: the account's state
fields are read-only in the form, and the actions below change them.

Permissions: every action needs the change permission; only superusers edit privileges (staff,
superuser, groups, permissions); and who may act on whom is privileges.staff_action_allowed, which the
actions' services check and the permission hooks below apply to the change, password and delete
views.
"""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q
from django.utils.translation import ngettext

from accounts.audit import services as audit
from accounts.mfa.models import two_factor_on
from accounts.passwords import services as passwords
from accounts.privileges import rules as privileges
from accounts.sessions.admin import OpenSessionInline
from accounts.staff.admin_passkeys import PasskeyInline
from accounts.sessions.services import EndReason, sessions_end
from accounts.staff import services as staff
from accounts.staff.site import admin_session_renew
from accounts.users.models import User
from accounts.webhooks.events import user_deleted_emit, user_event_emit
from core.errors import AuthError


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name")


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
        # Shown beside the read-only tick, where the model's "Unselect this" cannot be followed.
        help_texts = {
            "is_active": "Not ticked: staff disabled the account (login refused, tokens stop working). "
            "Change it with the list's Disable and Enable actions.",
            "user_permissions": "Permissions of this account alone. Prefer a group: give the group the "
            "permissions and add the account to it. Only the pages of this admin are listed.",
        }


class PasswordSetForm(AdminPasswordChangeForm):
    """Django's admin password form; the new password also signs the user out everywhere."""

    def save(self, commit=True):
        usable = self.cleaned_data.get("set_usable_password", True)
        # The staff action is recorded by UserAdmin.log_change, which knows who acted.
        passwords.password_set(user=self.user, password=self.cleaned_data["password1"] if usable else None)
        return self.user


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"
    lookups_by_state = {
        "unconfirmed": Q(is_active=True, confirmed_at__isnull=True),
        "active": Q(is_active=True, confirmed_at__isnull=False, deactivated_at__isnull=True),
        "deactivated": Q(is_active=True, confirmed_at__isnull=False, deactivated_at__isnull=False),
        "disabled": Q(is_active=False),
    }

    def lookups(self, request, model_admin):
        return [(state, state.capitalize()) for state in self.lookups_by_state]

    def queryset(self, request, queryset):
        if self.value() in self.lookups_by_state:
            return queryset.filter(self.lookups_by_state[self.value()])
        return queryset


class TwoFactorFilter(admin.SimpleListFilter):
    title = "two-factor"
    parameter_name = "two_factor"

    def lookups(self, request, model_admin):
        return [("on", "On"), ("off", "Off")]

    def queryset(self, request, queryset):
        if self.value() == "on":
            return queryset.filter(two_factor_on())
        if self.value() == "off":
            return queryset.filter(~two_factor_on())
        return queryset


def _bulk(modeladmin, request, queryset, service, done: str, already: str = "") -> None:
    """Apply a service to each selected account and report how many it touched (a service that
    returns False left the account as it was: `already`, by default "already <done>")."""
    touched, unchanged, refused = 0, 0, {}
    for user in queryset:
        try:
            changed = service(user=user, actor=request.user)
        except AuthError as exc:
            refused[exc.message] = refused.get(exc.message, 0) + 1
            continue
        if changed is False:
            unchanged += 1
        else:
            touched += 1
    modeladmin.message_user(
        request, ngettext("%(n)d account %(done)s.", "%(n)d accounts %(done)s.", touched) % {"n": touched, "done": done}
    )
    if unchanged:
        modeladmin.message_user(
            request, ngettext("%(n)d account skipped: %(why)s.", "%(n)d accounts skipped: %(why)s.", unchanged)
            % {"n": unchanged, "why": already or f"already {done}"}, messages.WARNING,
        )
    for message, count in refused.items():
        modeladmin.message_user(
            request, ngettext("%(n)d account skipped: %(why)s.", "%(n)d accounts skipped: %(why)s.", count)
            % {"n": count, "why": message}, messages.WARNING,
        )


def admin_permissions(admin_site):
    """The permissions that mean something here: those of the models with a page on this admin
    site (not Django's own low-level ones, such as its sessions' or content types')."""
    content_types = [
        content_type.pk
        for content_type in ContentType.objects.all()
        if content_type.model_class() is not None and admin_site.is_registered(content_type.model_class())
    ]
    return Permission.objects.filter(content_type__in=content_types).select_related("content_type")


# Whoever edits these grants privileges, their own included: superusers only.
PRIVILEGE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    change_password_form = PasswordSetForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name",)}),
        (
            "State (use the actions of the list to change it)",
            {"fields": ("state", "is_active", "confirmed_at", "email_verified_at", "deactivated_at")},
        ),
        ("Permissions", {"fields": ("is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "name", "usable_password", "password1", "password2")}),)
    readonly_fields = ("state", "is_active", "confirmed_at", "email_verified_at", "deactivated_at", "last_login", "date_joined")
    list_display = ("email", "name", "state", "two_factor", "is_staff", "last_login", "date_joined")
    list_filter = (StateFilter, TwoFactorFilter, "is_staff", "is_superuser")
    search_fields = ("email", "name")
    ordering = ("email",)
    actions = ["confirm", "disable", "enable", "send_confirmation", "send_recovery", "sign_out_everywhere", "reset_two_factor"]
    inlines = [OpenSessionInline, PasskeyInline]

    @admin.display(description="state")
    def state(self, user):
        return user.state

    @admin.display(description="2FA", boolean=True)
    def two_factor(self, user):
        return user.two_factor

    def get_queryset(self, request):
        # The 2FA column, for every row of the list in the list's one query.
        return super().get_queryset(request).annotate(two_factor=two_factor_on())

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        # Django keeps the staff member's own browser session after they set their password;
        # the server session behind it ended with the others, so it needs a new one.
        if request.method == "POST" and response.status_code == 302 and str(request.user.pk) == str(id):
            admin_session_renew(request)
        return response

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "user_permissions":
            kwargs["queryset"] = admin_permissions(self.admin_site)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_inlines(self, request, obj):
        # A new account has no sessions yet.
        return self.inlines if obj is not None else []

    def get_readonly_fields(self, request, obj=None):
        # A read-only field is left out of the form, so a posted value is dropped, not saved.
        if request.user.is_superuser:
            return self.readonly_fields
        return (*self.readonly_fields, *PRIVILEGE_FIELDS)

    # With an account, Django asks these before the change form, the password form and a
    # deletion (one by one or in bulk): staff may hold the permission, yet not over this account.
    def has_change_permission(self, request, obj=None):
        allowed = obj is None or privileges.staff_action_allowed(actor=request.user, user=obj)
        return allowed and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        allowed = obj is None or privileges.staff_action_allowed(actor=request.user, user=obj)
        return allowed and super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # What goes with an account is the account's own: its sessions (ended first, in
        # log_deletions), the apps' grants and consents, its two-factor devices. Their admin pages
        # refuse deleting such a row on its own (revoke or withdraw instead), which must not make
        # every account that ever signed in impossible to delete: deleting the account is governed
        # by the staff rules above (has_delete_permission, which puts the accounts staff may not
        # delete into perms_needed: those stay), not by those pages.
        perms_needed.intersection_update({self.model._meta.verbose_name})
        return deleted, counts, perms_needed, protected

    # Django's add and change views run these in one transaction, which the events join.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            user_event_emit("user.created", user=obj, name=obj.name)
            return
        if "email" in form.changed_data:
            user_event_emit(
                "user.email_changed", user=obj, previous_email=form.initial.get("email", ""),
                email_verified=obj.is_email_verified,
            )
        if "name" in form.changed_data:
            user_event_emit("user.updated", user=obj, name=obj.name)

    def save_related(self, request, form, formsets, change):
        user = form.instance
        before = set(user.groups.values_list("name", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        after = set(user.groups.values_list("name", flat=True))
        if after != before:
            user_event_emit(
                "user.groups_changed", user=user, groups=sorted(after),
                added=sorted(after - before), removed=sorted(before - after),
            )

    def delete_model(self, request, obj):
        with transaction.atomic():
            user_deleted_emit(user=obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for user in queryset:
                user_deleted_emit(user=user)
            super().delete_queryset(request, queryset)

    # Django calls these with the request after each save of the add, change and password
    # forms, and before a deletion: the one place that knows which staff member acted.
    def log_addition(self, request, obj, message):
        super().log_addition(request, obj, message)
        privileges.staff_action_record(user=obj, actor=request.user, action="created the account")

    def log_change(self, request, obj, message):
        super().log_change(request, obj, message)
        fields = [field for entry in message for field in entry.get("changed", {}).get("fields", [])]
        if fields:
            privileges.staff_action_record(user=obj, actor=request.user, action=f"changed {', '.join(fields)}")

    def log_deletions(self, request, queryset):
        super().log_deletions(request, queryset)
        for user in queryset:
            # Recorded before the row goes; the event keeps the email, its user becomes null.
            audit.record(audit.Type.DELETE, user=user, detail=f"deleted by {request.user.email}")
            # Ended before the rows go, so that the apps it signed in to hear of it (back-channel logout).
            sessions_end(user=user, reason=EndReason.DELETED)

    @admin.action(description="Confirm the selected accounts", permissions=["change"])
    def confirm(self, request, queryset):
        _bulk(self, request, queryset, staff.user_confirm, "confirmed")

    @admin.action(description="Disable the selected accounts (and sign them out)", permissions=["change"])
    def disable(self, request, queryset):
        _bulk(self, request, queryset, lambda **kw: staff.user_set_active(active=False, **kw), "disabled")

    @admin.action(description="Enable the selected accounts", permissions=["change"])
    def enable(self, request, queryset):
        _bulk(self, request, queryset, lambda **kw: staff.user_set_active(active=True, **kw), "enabled")

    @admin.action(description="Send a new confirmation email", permissions=["change"])
    def send_confirmation(self, request, queryset):
        _bulk(self, request, queryset, staff.staff_confirmation_send, "sent a confirmation email")

    @admin.action(description="Send a recovery email", permissions=["change"])
    def send_recovery(self, request, queryset):
        _bulk(self, request, queryset, staff.staff_recovery_send, "sent a recovery email")

    @admin.action(description="Sign out everywhere (end every session)", permissions=["change"])
    def sign_out_everywhere(self, request, queryset):
        _bulk(self, request, queryset, staff.tokens_revoke, "signed out everywhere")

    @admin.action(description="Reset two-factor (turn it off and sign out everywhere)", permissions=["change"])
    def reset_two_factor(self, request, queryset):
        _bulk(self, request, queryset, staff.two_factor_reset, "had two-factor reset", already="two-factor was off")
