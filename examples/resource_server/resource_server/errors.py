"""Every error as `{"status": <int>, "message": "<text>"}`: DRF's, and Django's own pages."""

from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from resource_server.authentication import CHALLENGE


def _message(detail) -> str:
    if isinstance(detail, dict):
        detail = next(iter(detail.values()), "")
    if isinstance(detail, list):
        detail = detail[0] if detail else ""
    return str(detail)


def exception_handler(exc, context):
    """Answer DRF's errors as `{"status", "message"}`, keeping their headers (WWW-Authenticate)."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API error: Django's 500 (handler500)
    if isinstance(exc, exceptions.NotAuthenticated):
        message = "Login required"
    else:
        message = _message(getattr(exc, "detail", "")) or "Error"
    if isinstance(exc, exceptions.AuthenticationFailed):
        # RFC 6750, section 3.1: say that the token itself was refused.
        response["WWW-Authenticate"] = f'{CHALLENGE}, error="invalid_token"'
    response.data = {"status": response.status_code, "message": message}
    return response


def json_error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"status": status, "message": message}, status=status)


# Django's error views (urls.py's handler400, handler404, handler500).
def bad_request(request, exception=None):
    return json_error(400, "Bad request")


def not_found(request, exception=None):
    return json_error(404, "Not found")


def server_error(request):
    return json_error(500, "Internal server error")
