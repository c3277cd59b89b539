"""How the API describes itself (drf-spectacular, served at /api/schema): the generator hooks,
the error envelope's shape, and the helper each view uses to describe its action next to it.

A view's action renders its answer through an output serializer, and `action_schema` describes
the action with that same class: the answer and its description cannot drift. Errors are listed
from the catalogue classes the action can raise (core.errors and the rooms' errors.py).
"""

from collections import defaultdict
from collections.abc import Callable

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers

from core import errors

# --- generator hooks ---------------------------------------------------------------------------


class ContractAutoSchema(AutoSchema):
    """Describe DELETE bodies (the contract reads them like POST) and PATCH fields as required.

    drf-spectacular documents bodies for POST, PUT and PATCH only, and PATCH bodies as partial;
    here every action's serializer is complete, whatever the verb.
    """

    def _get_request_body(self, direction="request"):
        method = self.method
        if method in ("DELETE", "PATCH") and self.view.action in getattr(self.view, "inputs", {}):
            self.method = "POST"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = method


def preprocess_endpoints(endpoints):
    """Leave out /api/auth: an alias of /api/authenticate, described there."""
    return [endpoint for endpoint in endpoints if not endpoint[0].startswith("/api/auth/")]


def paths_without_trailing_slash(result, generator, request, public):
    """List each path as clients call it, /api/user rather than /api/user/ (the URL patterns take
    both; drf-spectacular writes their optional slash as a slash)."""
    result["paths"] = {
        (path.rstrip("/") or "/"): operations for path, operations in result["paths"].items()
    }
    return result


# --- shapes shared by every room ---------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status, repeated.")
    message = serializers.CharField()


class FieldErrorSerializer(ErrorSerializer):
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages per field (field validation errors only).",
    )


@extend_schema_serializer(component_name="Message")
class MessageOutput(serializers.Serializer):
    message = serializers.CharField()


def message(text: str) -> dict:
    """Return the answer `{"message": text}`, rendered by MessageOutput."""
    return MessageOutput({"message": text}).data


# Errors every token-protected action can answer (the contract's token checks).
TOKEN_ERRORS = (errors.LoginRequired, errors.TokenInvalid, errors.AccountDisabled, errors.AccountNotActive)
# Errors of any request with a body, besides the action's own.
BODY_ERRORS = ("field", "media_type")


def error_response(status: int, examples: list[tuple[str, dict]], shape=ErrorSerializer, description: str | None = None):
    """Describe one error status: its envelope's shape, and an example per catalogue entry."""
    return OpenApiResponse(
        shape,
        description=description if description is not None else " / ".join(body["message"] for _, body in examples),
        examples=[OpenApiExample(name, value=body, response_only=True, status_codes=[str(status)]) for name, body in examples],
    )


def responses(success, *catalogue) -> dict:
    """Build the responses of one action: 200 with `success`, and each error by status.

    `catalogue` holds error classes, "field" (a field validation error) and "media_type".
    Any request can be refused for a declared body over the size limit (413).
    """
    by_status: dict[int, list] = defaultdict(list)
    for entry in (*catalogue, "too_large"):
        if entry == "field":
            by_status[400].append(("Field validation", errors.envelope(400, "Invalid input. email: Enter a valid email address.", {"email": ["Enter a valid email address."]})))
        elif entry == "too_large":
            by_status[413].append(("Body too large", errors.envelope(413, "Request body too large")))
        elif entry == "media_type":
            by_status[415].append(("Unsupported media type", errors.envelope(415, 'Unsupported media type "text/plain" in request.')))
        else:
            by_status[entry.status].append((entry.__name__, errors.envelope(entry.status, entry.message)))
    described = {200: success}
    for status, examples in sorted(by_status.items()):
        shape = FieldErrorSerializer if status == 400 and any(name == "Field validation" for name, _ in examples) else ErrorSerializer
        described[status] = error_response(status, examples, shape)
    return described


def action_schema(
    tag: str,
    summary: str,
    *,
    output,
    errors: tuple = (),
    public: bool = False,
    request: type[serializers.Serializer] | None = None,
    auth: list | None = None,
) -> Callable:
    """Describe a viewset action (its operation id is the method's name): 200 with `output`, the
    serializer class the action renders its answer with, then its `errors` (see `responses`)."""

    def decorate(method):
        # What the action answers, for tests/core/test_api_output.py.
        method.output = output
        return extend_schema(
            operation_id=method.__name__,
            tags=[tag],
            summary=summary,
            request=request,
            auth=auth if auth is not None else ([] if public else None),
            responses=responses(output, *errors),
        )(method)

    return decorate
