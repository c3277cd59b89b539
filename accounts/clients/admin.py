"""Resource servers in the admin: register one (its secret is shown once), reset a secret, turn off.

A new secret is shown on the page that answers the request, never through Django's messages
(whose default storage is a cookie that the browser would send back).
"""

from django.contrib import admin
from django.template.response import TemplateResponse

from accounts.clients import services as clients
from accounts.clients.models import ResourceServer

CREDENTIALS_TEMPLATE = "admin/accounts/resourceserver/credentials.html"


@admin.register(ResourceServer)
class ResourceServerAdmin(admin.ModelAdmin):
    list_display = ("name", "client_id", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "client_id")
    readonly_fields = ("client_id", "created_at")
    actions = ["reset_secret"]

    def get_fields(self, request, obj=None):
        return ("name",) if obj is None else ("name", "client_id", "is_active", "created_at")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        server, secret = clients.resource_server_create(name=obj.name, actor=request.user)
        obj.pk, obj.client_id, obj.created_at = server.pk, server.client_id, server.created_at
        request.resource_server_credentials = [(server, secret)]

    def response_add(self, request, obj, post_url_continue=None):
        return self._credentials(request, getattr(request, "resource_server_credentials", []))

    def _credentials(self, request, credentials):
        context = {
            **self.admin_site.each_context(request),
            "title": "Resource server credentials",
            "opts": self.opts,
            "credentials": credentials,
        }
        response = TemplateResponse(request, CREDENTIALS_TEMPLATE, context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Give the selected resource servers a new secret", permissions=["change"])
    def reset_secret(self, request, queryset):
        return self._credentials(
            request, [(server, clients.resource_server_secret_reset(server=server)) for server in queryset]
        )
