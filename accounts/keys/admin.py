"""Signing keys in the admin: read-only, with a button to rotate (through a confirmation page) and
an action to retire.

The private parts are never shown: the list and the page hold the public JWK only.
"""

from django.contrib import admin, messages
from django.conf import settings
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.keys import services as keys
from accounts.keys.models import SigningKey
from core.admin import ActionsOnlyModelAdmin


@admin.register(SigningKey)
class SigningKeyAdmin(ActionsOnlyModelAdmin):
    list_display = ("kid", "algorithm", "state", "created_at", "activated_at", "retired_at")
    list_filter = ("state", "algorithm")
    fields = ("kid", "algorithm", "state", "public_jwk", "created_at", "activated_at", "retired_at")
    readonly_fields = fields
    change_list_template = "admin/accounts/signingkey/change_list.html"
    actions = ["retire"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("private_key_encrypted")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), "can_rotate": self.has_change_permission(request)})

    def get_urls(self):
        return [
            path("rotate/", self.admin_site.admin_view(self.rotate_view), name="accounts_signingkey_rotate"),
            *super().get_urls(),
        ]

    def rotate_view(self, request):
        """GET: the confirmation page, saying what a rotation does; POST (its button): rotate the
        keys (next → current, current → previous, a new next)."""
        if not self.has_change_permission(request):
            self.message_user(request, "You may not rotate the signing keys.", messages.ERROR)
        elif request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "title": "Rotate the signing keys?",
                "opts": self.model._meta,
                "keys": keys.keys_list(),
                "token_lifetime": settings.TOKEN_LIFETIME,
            }
            return TemplateResponse(request, "admin/accounts/signingkey/rotate_confirmation.html", context)
        else:
            current = keys.keys_rotate(actor=request.user)
            self.message_user(
                request,
                f"Keys rotated: {current.kid} signs now. Every worker signs with it within a minute; "
                "tokens of the previous key are accepted until you retire it.",
            )
        return HttpResponseRedirect(reverse("admin:accounts_signingkey_changelist"))

    @admin.action(description="Retire the selected previous keys (their tokens are refused)", permissions=["change"])
    def retire(self, request, queryset):
        for key in queryset:
            # The action's choice stands (the command asks for --force instead): retired, with a
            # warning when tokens it signed may still be alive.
            alive_until = keys.key_tokens_alive_until(key)
            try:
                keys.key_retire(kid=key.kid, actor=request.user)
            except keys.KeyStateError as exc:
                self.message_user(request, f"{key.kid} skipped: {exc}.", messages.WARNING)
            else:
                self.message_user(request, f"{key.kid} retired.")
                if alive_until is not None:
                    self.message_user(
                        request,
                        f"Tokens {key.kid} signed until {alive_until:%Y-%m-%d %H:%M:%S %Z} are refused from now on: "
                        "their users must sign in again.",
                        messages.WARNING,
                    )
