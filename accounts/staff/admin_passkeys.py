"""Users' passkeys in the admin: listed (on their own page, and on each user's page), never changed;
staff remove them with an action (a lost device, a passkey flagged as cloned), which calls the same
service as the API, is audited and emails the user. Staff who may not act on an account (the
privilege rules) cannot remove its passkeys."""

from django.contrib import admin, messages
from django.utils.translation import ngettext

from accounts.passkeys.models import Passkey
from accounts.staff import services as staff
from core.admin import ActionsOnlyModelAdmin
from core.errors import AuthError

# Flagged first after the name: the column staff look for, in view on a laptop's screen.
COLUMNS = ("name", "flagged", "created_at", "last_used_at", "backed_up")


@admin.display(description="flagged (counter went backwards)", boolean=True)
def flagged(passkey: Passkey) -> bool:
    return passkey.cloned_at is not None


class FlaggedFilter(admin.SimpleListFilter):
    title = "flagged"
    parameter_name = "flagged"

    def lookups(self, request, model_admin):
        return [("yes", "Flagged (cloned?)"), ("no", "Not flagged")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(cloned_at__isnull=self.value() == "no")
        return queryset


@admin.register(Passkey)
class PasskeyAdmin(ActionsOnlyModelAdmin):
    list_display = ("user", *COLUMNS)
    list_filter = (FlaggedFilter, "backed_up")
    search_fields = ("user__email", "name")
    list_select_related = ("user",)
    fields = ("user", "name", "created_at", "last_used_at", "sign_count", "backed_up", "backup_eligible", "transports", "aaguid", "cloned_at")
    readonly_fields = fields
    flagged = staticmethod(flagged)
    actions = ["remove"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting goes through the action: audited, and the user is emailed.
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Remove the selected passkeys (the users are emailed)", permissions=["change"])
    def remove(self, request, queryset):
        removed, refused = 0, {}
        for passkey in queryset.select_related("user"):
            try:
                staff.passkey_remove(passkey=passkey, actor=request.user)
            except AuthError as exc:
                refused[exc.message] = refused.get(exc.message, 0) + 1
                continue
            removed += 1
        self.message_user(request, ngettext("%d passkey removed.", "%d passkeys removed.", removed) % removed)
        for message, count in refused.items():
            self.message_user(
                request, ngettext("%(n)d passkey skipped: %(why)s.", "%(n)d passkeys skipped: %(why)s.", count)
                % {"n": count, "why": message}, messages.WARNING,
            )


class PasskeyInline(admin.TabularInline):
    """The user's passkeys on their page, read-only; remove them from the passkeys' page."""

    model = Passkey
    fields = COLUMNS
    readonly_fields = COLUMNS
    flagged = staticmethod(flagged)
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "passkeys"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
