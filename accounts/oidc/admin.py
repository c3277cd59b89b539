"""The OpenID provider in the admin: consents (withdraw) and grants (revoke). Never a token in
clear: the tables hold checksums of the tokens only, and neither page shows those."""

from django.contrib import admin
from django.utils.translation import ngettext

from accounts.oidc import services
from accounts.oidc.models import Consent, RefreshToken
from core.admin import ReadOnlyModelAdmin


@admin.register(Consent)
class ConsentAdmin(ReadOnlyModelAdmin):
    list_display = ("user", "client", "scope", "created_at", "updated_at")
    list_filter = ("client",)
    search_fields = ("user__email", "client__name", "client__client_id")
    list_select_related = ("user", "client")
    fields = ("public_id", "user", "client", "scope", "created_at", "updated_at")
    readonly_fields = fields
    # Read-only: deleting the row would leave the app's tokens alive; withdraw instead (the action).
    actions = ["withdraw"]

    @admin.action(description="Withdraw the selected consents (the apps' tokens are revoked)", permissions=["view"])
    def withdraw(self, request, queryset):
        count = 0
        for consent in queryset.select_related("user"):
            services.consent_withdraw(user=consent.user, consent_id=str(consent.public_id), actor=request.user)
            count += 1
        self.message_user(request, ngettext("%d consent withdrawn.", "%d consents withdrawn.", count) % count)


class LiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return [("yes", "Live"), ("no", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(revoked__isnull=True)
        if self.value() == "no":
            return queryset.filter(revoked__isnull=False)
        return queryset


@admin.register(RefreshToken)
class GrantAdmin(ReadOnlyModelAdmin):
    """A grant: what an app holds to act for a user (a refresh token, renewed at each use, with the
    access tokens issued beside it), inside one server session."""

    list_display = ("user", "application", "session", "created", "updated", "state")
    list_filter = (LiveFilter, "application")
    search_fields = ("user__email", "application__name", "application__client_id")
    list_select_related = ("user", "application", "session")
    fields = ("user", "application", "session", "created", "updated", "revoked")
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(description="state")
    def state(self, token):
        return "revoked" if token.revoked else "live"

    @admin.action(description="Revoke the selected grants (the apps' tokens stop working)", permissions=["view"])
    def revoke(self, request, queryset):
        count = sum(services.grant_revoke(refresh_token=token, actor=request.user) for token in queryset.select_related("user", "application"))
        self.message_user(request, ngettext("%d grant revoked.", "%d grants revoked.", count) % count)
