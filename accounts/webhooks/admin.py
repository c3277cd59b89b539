"""Webhooks in the admin: endpoints (their events, health, a secret shown once on creation and on
rotation), the delivery log with "retry now" and "send again", and the outbox's events. Every
change goes through accounts.webhooks.services, as the command's do."""

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.template.response import TemplateResponse
from django.utils.translation import ngettext

from accounts.webhooks import services as webhooks
from accounts.webhooks.events import EVENT_TYPES, subscriptions
from accounts.webhooks.models import Attempt, Delivery, Endpoint, Event
from core.admin import ActionsOnlyModelAdmin, ReadOnlyModelAdmin

SECRETS_TEMPLATE = "admin/accounts/endpoint/secrets.html"


def _formfield(field, **kwargs):
    # A URL typed without a scheme is taken as https (Django 6's default, chosen now).
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class EndpointForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=[(name, name) for name in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event type, those added later included.",
    )

    class Meta:
        model = Endpoint
        fields = ("url", "event_types", "description")
        formfield_callback = _formfield

    def clean_url(self):
        try:
            return webhooks.endpoint_url_check(self.cleaned_data["url"])
        except webhooks.EndpointRefused as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("pk", "url", "events", "is_active", "health", "last_success_at", "failing_since")
    list_filter = ("is_active",)
    search_fields = ("url", "description")
    readonly_fields = (
        "is_active", "created_at", "last_success_at", "failing_since", "disabled_at", "disabled_reason",
        "previous_secret_until",
    )
    actions = ["rotate_secret", "disable", "enable"]

    @admin.display(description="events")
    def events(self, endpoint):
        return ", ".join(endpoint.event_types) or "all"

    @admin.display(description="health")
    def health(self, endpoint):
        if endpoint.disabled_reason:
            return f"DISABLED: {endpoint.disabled_reason}"
        if not endpoint.is_active:
            return "disabled"
        if endpoint.failing_since:
            return f"failing since {endpoint.failing_since:%Y-%m-%d %H:%M}"
        return "ok"

    def get_readonly_fields(self, request, obj=None):
        # The URL is what the secret was given for: a new URL is a new endpoint.
        return (*self.readonly_fields, "url") if obj is not None else ()

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("url", "event_types", "description")
        return ("url", "event_types", "description", *self.readonly_fields)

    def has_delete_permission(self, request, obj=None):
        # Disable instead: the delivery log keeps its rows.
        return False

    def save_model(self, request, obj, form, change):
        if change:
            # Only the form's fields: the row read for the form may be stale by now (a secret
            # rotated, the endpoint disabled by the worker), and is not written back over.
            obj.save(update_fields=["event_types", "description"])
            subscriptions.forget()
            return
        new = webhooks.endpoint_add(
            url=form.cleaned_data["url"], event_types=form.cleaned_data["event_types"], description=obj.description
        )
        obj.pk = new.endpoint.pk
        request.webhook_secrets = [new]

    def response_add(self, request, obj, post_url_continue=None):
        return self._secrets(request, getattr(request, "webhook_secrets", []))

    def _secrets(self, request, secrets):
        context = {**self.admin_site.each_context(request), "title": "Webhook secrets", "opts": self.opts, "secrets": secrets}
        response = TemplateResponse(request, SECRETS_TEMPLATE, context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Give the selected endpoints a new secret (the old one signs beside it for 24 h)", permissions=["change"])
    def rotate_secret(self, request, queryset):
        return self._secrets(request, [webhooks.endpoint_secret_rotate(endpoint_id=endpoint.pk) for endpoint in queryset])

    @admin.action(description="Disable the selected endpoints", permissions=["change"])
    def disable(self, request, queryset):
        for endpoint in queryset:
            webhooks.endpoint_disable(endpoint_id=endpoint.pk, reason=f"disabled by {request.user.email}")
        self.message_user(request, f"{len(queryset)} disabled.")

    @admin.action(description="Enable the selected endpoints", permissions=["change"])
    def enable(self, request, queryset):
        for endpoint in queryset:
            webhooks.endpoint_enable(endpoint_id=endpoint.pk)
        self.message_user(request, f"{len(queryset)} enabled.")


class AttemptInline(admin.TabularInline):
    """Every attempt of the delivery, read-only."""

    model = Attempt
    fields = ("at", "status_code", "error", "duration_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(ActionsOnlyModelAdmin):
    inlines = [AttemptInline]
    list_display = (
        "pk", "event_type", "message_id", "endpoint", "state", "attempts", "last_status_code", "last_duration_ms",
        "last_attempt_at", "next_attempt_at",
    )
    list_filter = ("state", "endpoint")
    list_select_related = ("event", "endpoint")
    search_fields = ("event__message_id", "event__type")
    fields = (
        "event", "endpoint", "state", "attempts", "created_at", "last_attempt_at", "last_status_code",
        "last_duration_ms", "last_error", "last_response", "next_attempt_at", "delivered_at",
    )
    readonly_fields = fields
    actions = ["retry_now", "send_again"]

    @admin.display(description="event")
    def event_type(self, delivery):
        return delivery.event.type

    @admin.display(description="webhook-id")
    def message_id(self, delivery):
        return delivery.event.message_id

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry now (pending or failed)", permissions=["change"])
    def retry_now(self, request, queryset):
        count = webhooks.deliveries_retry(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, ngettext("%d delivery queued.", "%d deliveries queued.", count) % count)

    @admin.action(description="Send again (delivered ones too, with the same webhook-id)", permissions=["change"])
    def send_again(self, request, queryset):
        count = webhooks.deliveries_resend(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, ngettext("%d delivery queued.", "%d deliveries queued.", count) % count, messages.SUCCESS)


@admin.register(Event)
class EventAdmin(ReadOnlyModelAdmin):
    list_display = ("pk", "type", "message_id", "created_at", "fanned_out_at")
    list_filter = ("type",)
    search_fields = ("message_id",)
    fields = ("type", "message_id", "data", "created_at", "fanned_out_at")
    readonly_fields = fields
