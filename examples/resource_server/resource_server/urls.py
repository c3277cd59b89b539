"""URLs: /me and /reports, with or without a trailing slash; anything else is a JSON 404."""

from django.urls import re_path

from resource_server import errors
from resource_server.views import MeView, ReportsView

urlpatterns = [
    re_path(r"^me/?$", MeView.as_view(), name="me"),
    re_path(r"^reports/?$", ReportsView.as_view(), name="reports"),
]

handler400, handler404, handler500 = errors.bad_request, errors.not_found, errors.server_error
