"""Clients in the admin, one registry: apps that sign users in and services (resource servers).

Registering one shows its secret once, on the page that answers the request (never through
Django's messages, whose default storage is a cookie the browser would send back); "new secret"
does the same. The secret's digest is never shown.
"""

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.template.response import TemplateResponse

from accounts.clients import services as clients
from accounts.clients.models import SCOPES, Client

CREDENTIALS_TEMPLATE = "admin/accounts/client/credentials.html"


def _formfield(field, **kwargs):
    # A URL typed without a scheme is taken as https (Django 6's default, chosen now).
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class ClientAddForm(forms.ModelForm):
    class Meta:
        formfield_callback = _formfield
        model = Client
        fields = (
            "name", "authorization_grant_type", "client_type", "skip_authorization", "redirect_uris",
            "post_logout_redirect_uris", "backchannel_logout_uri", "allowed_scopes", "algorithm",
        )
        help_texts = {
            "redirect_uris": "Space- or newline-separated; matched exactly. None for a service.",
            "post_logout_redirect_uris": "Space- or newline-separated; matched exactly.",
        }


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("name", "client_id", "authorization_grant_type", "client_type", "skip_authorization", "is_active", "created")
    list_filter = ("is_active", "authorization_grant_type", "client_type", "skip_authorization")
    search_fields = ("name", "client_id")
    readonly_fields = ("client_id", "created", "updated")
    actions = ["reset_secret"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ClientAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ClientAddForm.Meta.fields
        return (
            "name", "client_id", "authorization_grant_type", "client_type", "is_active", "skip_authorization",
            "redirect_uris", "post_logout_redirect_uris", "backchannel_logout_uri", "allowed_scopes",
            "resources", "algorithm", "created", "updated",
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (*self.readonly_fields, "authorization_grant_type", "client_type")

    def save_model(self, request, obj, form, change):
        if change:
            unknown = [scope for scope in obj.allowed_scopes.split() if scope not in SCOPES]
            if unknown:
                messages.error(request, f"Unknown scope {unknown[0]!r} not saved: use {', '.join(SCOPES)}.")
                obj.allowed_scopes = Client.objects.get(pk=obj.pk).allowed_scopes
            super().save_model(request, obj, form, change)
            return
        client, secret = clients.client_create(
            name=obj.name,
            redirect_uris=obj.redirect_uris.split(),
            public=obj.client_type == Client.CLIENT_PUBLIC,
            first_party=obj.skip_authorization,
            scopes=obj.allowed_scopes,
            post_logout_redirect_uris=obj.post_logout_redirect_uris.split(),
            backchannel_logout_uri=obj.backchannel_logout_uri,
            service=obj.authorization_grant_type == Client.GRANT_CLIENT_CREDENTIALS,
            algorithm=obj.algorithm or "RS256",
            actor=request.user,
        )
        obj.pk, obj.client_id, obj.created = client.pk, client.client_id, client.created
        request.client_credentials = [(client, secret)]

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except clients.ClientError as exc:
            messages.error(request, str(exc))
            return TemplateResponse(request, "admin/base_site.html", {**self.admin_site.each_context(request), "title": str(exc)}, status=400)

    def response_add(self, request, obj, post_url_continue=None):
        return self._credentials(request, getattr(request, "client_credentials", []))

    def _credentials(self, request, credentials):
        context = {
            **self.admin_site.each_context(request),
            "title": "Client credentials",
            "opts": self.opts,
            "credentials": credentials,
        }
        response = TemplateResponse(request, CREDENTIALS_TEMPLATE, context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Give the selected clients a new secret", permissions=["change"])
    def reset_secret(self, request, queryset):
        confidential = queryset.filter(client_type=Client.CLIENT_CONFIDENTIAL)
        return self._credentials(
            request, [(client, clients.client_secret_reset(client=client, actor=request.user)) for client in confidential]
        )
