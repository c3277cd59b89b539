"""API routes. Every path answers with and without a trailing slash, for every verb, without redirect."""

from django.urls import re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from accounts.api import schema, views  # noqa: F401 (importing schema attaches the OpenAPI docs to the viewsets)


def route(path: str, viewset: type[views.ContractViewSet], name: str):
    return re_path(rf"^{path}/?$", viewset.as_view(viewset.actions), name=name)


urlpatterns = [
    route("authenticate", views.AuthenticateViewSet, "authenticate"),
    # The old server's code and its Insomnia collection used /api/auth.
    route("auth", views.AuthenticateViewSet, "auth"),
    route("user", views.UserViewSet, "user"),
    route("validate/confirmation", views.ConfirmationViewSet, "confirmation"),
    route("validate/recovery", views.RecoveryViewSet, "recovery"),
    re_path(r"^schema/?$", SpectacularJSONAPIView.as_view(), name="schema"),
    # Swagger UI on the schema above; its files come from drf-spectacular-sidecar (no CDN).
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]
