"""Resource servers in the admin: register one (its secret is shown once), reset a secret, turn off."""

from django.contrib import admin, messages

from accounts.models import ResourceServer
from accounts.services import clients


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
        obj.pk, obj.client_id = server.pk, server.client_id
        self._show_secret(request, server, secret)

    def _show_secret(self, request, server, secret):
        self.message_user(
            request,
            f"{server.name}: client_id={server.client_id} client_secret={secret} "
            "(copy the secret now: it is stored hashed and shown this once only).",
            messages.WARNING,
        )

    @admin.action(description="Give the selected resource servers a new secret", permissions=["change"])
    def reset_secret(self, request, queryset):
        for server in queryset:
            self._show_secret(request, server, clients.resource_server_secret_reset(server=server))
