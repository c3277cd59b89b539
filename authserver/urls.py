"""Root URLs: an index at /, the API under /api/, the admin, /status, /metrics, the keys under
/.well-known/; anything else is a JSON 404."""

from django.contrib import admin
from django.urls import include, path, re_path

from accounts.keys.api import AuthorizationServerMetadataView, JWKSView
from core import errors
from core.operations import IndexView, MetricsView
from core.status import StatusView

urlpatterns = [
    path("", IndexView.as_view(), name="index"),
    path("api/", include("accounts.urls")),
    re_path(r"^status/?$", StatusView.as_view(), name="status"),
    re_path(r"^metrics/?$", MetricsView.as_view(), name="metrics"),
    re_path(r"^\.well-known/jwks\.json/?$", JWKSView.as_view(), name="jwks"),
    re_path(r"^\.well-known/openid-configuration/?$", AuthorizationServerMetadataView.as_view(), name="metadata"),
    path("admin/", admin.site.urls),
    # Also with DEBUG on, an unknown path answers in the envelope, not with an HTML page.
    re_path(r"^", errors.page_not_found),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
