"""The contract's error catalogue, and the one handler that turns every error into its envelope.

Domain errors are plain exceptions carrying a catalogue entry (status and message); services
raise them, and `exception_handler` (DRF) and the Django error views below are the only places
that build error responses: `{"status": <int>, "message": "<text>"}`, plus `errors` for 400s
that concern fields.
"""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class AuthError(Exception):
    """An error of the contract's catalogue."""

    status: int = 400
    message: str = ""
    # What a 401 answers in WWW-Authenticate (RFC 9110, section 15.5.2).
    challenge: str = 'Bearer realm="api"'
    # A wrong guess at a secret (a password, a code): a sign-in counts it as a failed attempt.
    wrong_guess: bool = False

    def __str__(self):
        return self.message


class InvalidCredentials(AuthError):
    status, message = 401, "Invalid email or password"
    wrong_guess = True


class UserConfirmationRequired(AuthError):
    status, message = 400, "Please confirm your account"


class PasswordConfirmationInvalid(AuthError):
    status, message = 401, "Passwords do not match"


class AccountNotActive(AuthError):
    status, message = 401, "Account is deactivated login to reactivate"


class InvalidToken(AuthError):
    status, message = 400, "Invalid validation token"


class LoginRequired(AuthError):
    status, message = 401, "Login required"


class TokenInvalid(AuthError):
    status, message = 401, "Invalid or expired token"


class AccountDisabled(AuthError):
    status, message = 403, "Account disabled"


class NotFound(AuthError):
    status, message = 404, "Not found"


class MetricsTokenInvalid(AuthError):
    status, message = 401, "Invalid metrics token"
    challenge = 'Bearer realm="metrics"'


class Throttled(AuthError):
    status, message = 429, "Too many requests"

    def __init__(self, wait: int, limit: str = ""):
        super().__init__()
        self.wait = max(int(wait), 1)
        # The rate limit's scope (login, login_account, ...), for metrics and the audit trail.
        self.limit = limit


def envelope(status: int, message: str, errors: dict | None = None) -> dict:
    """Return the contract's error body."""
    body = {"status": status, "message": message}
    if errors is not None:
        body["errors"] = errors
    return body


def _field_errors(detail) -> dict[str, list[str]]:
    """Flatten DRF's or Django's validation detail into {field: [message, ...]}."""
    if isinstance(detail, dict):
        return {str(field): _messages(value) for field, value in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value) -> list[str]:
    if isinstance(value, dict):
        return [f"{key}: {text}" for key, inner in value.items() for text in _messages(inner)]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _messages(item)]
    return [str(value)]


def _validation_envelope(errors: dict[str, list[str]]) -> dict:
    sentence = " ".join(
        f"{field}: {' '.join(messages)}" if field != "non_field_errors" else " ".join(messages)
        for field, messages in errors.items()
    )
    return envelope(400, f"Invalid input. {sentence}", errors)


def error_body(exc: Exception) -> tuple[dict, dict]:
    """Return the envelope and headers for any exception; an unknown one is a logged 500."""
    body, headers = _error_body(exc)
    if body["status"] == 401:
        # Every 401 tells the client how to authenticate.
        headers = {**headers, "WWW-Authenticate": getattr(exc, "challenge", AuthError.challenge)}
    return body, headers


def _error_body(exc: Exception) -> tuple[dict, dict]:
    if isinstance(exc, Throttled):
        return envelope(exc.status, exc.message), {"Retry-After": str(exc.wait)}
    if isinstance(exc, AuthError):
        return envelope(exc.status, exc.message), {}
    if isinstance(exc, drf.ValidationError):
        return _validation_envelope(_field_errors(exc.detail)), {}
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return _validation_envelope(errors), {}
    if isinstance(exc, drf.NotAuthenticated):
        return envelope(LoginRequired.status, LoginRequired.message), {}
    if isinstance(exc, drf.AuthenticationFailed):
        return envelope(TokenInvalid.status, TokenInvalid.message), {}
    if isinstance(exc, drf.Throttled):
        return error_body(Throttled(wait=exc.wait or 1))
    if isinstance(exc, drf.APIException):
        return envelope(exc.status_code, _messages(exc.detail)[0]), {}
    if isinstance(exc, Http404):
        return envelope(404, "Not found"), {}
    if isinstance(exc, PermissionDenied):
        return envelope(403, "Permission denied"), {}
    if isinstance(exc, RequestDataTooBig):
        return envelope(413, "Request body too large"), {}
    if isinstance(exc, SuspiciousOperation):
        return envelope(400, "Bad request"), {}
    logger.error("Unhandled error", exc_info=exc)
    return envelope(500, "Internal server error"), {}


def exception_handler(exc, context):
    """DRF's exception handler: every exception raised in an API view becomes the envelope."""
    body, headers = error_body(exc)
    return Response(body, status=body["status"], headers=headers)


def json_error(status: int, message: str) -> JsonResponse:
    # Never cached, as every answer of the API (core.api.ContractViewSet).
    return JsonResponse(envelope(status, message), status=status, headers={"Cache-Control": "no-store"})


# Django's error views (handler400/403/404/500): errors raised outside DRF, e.g. an unknown path
# or a disallowed Host header, also answer in the envelope.
def bad_request(request, exception=None):
    return json_error(400, "Bad request")


def permission_denied(request, exception=None):
    return json_error(403, "Permission denied")


# Also the catch-all view of every unknown path: exempt, so that a POST, PUT or DELETE there
# answers this 404 rather than the CSRF middleware's 403 (there is nothing there to protect).
@csrf_exempt
def page_not_found(request, exception=None):
    return json_error(404, "Not found")


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: a form post (the admin's) without a valid CSRF token, in the envelope.

    Django's own failure view answers an HTML page; `reason` is logged by the middleware.
    """
    return json_error(403, "CSRF verification failed")


def server_error(request):
    return json_error(500, "Internal server error")
