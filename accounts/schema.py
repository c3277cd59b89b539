"""The OpenAPI 3 description of the API (drf-spectacular), served at /api/schema.

The contract's responses, success and error alike, are written here once per action, so that the
viewsets stay thin and schema-driven tools (Swagger UI, schemathesis) see every answer the
server can give.
"""

from collections import defaultdict

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from accounts.account import errors as account_errors
from accounts.clients import errors as clients_errors
from accounts.mfa import errors as mfa_errors
from accounts.notices import errors as notices_errors
from core import errors
from accounts import serializers as s
from accounts.signin.api import AuthenticateViewSet
from core.api import ContractViewSet
from accounts.clients.api import IntrospectionViewSet
from accounts.mfa.api import RecoveryCodesViewSet, TOTPViewSet, TwoFactorViewSet
from core.operations import IndexView, MetricsView
from accounts.sessions.api import SessionsViewSet, SessionViewSet
from core.status import StatusView
from accounts.account.api import UserViewSet
from accounts.account.api import ConfirmationViewSet
from accounts.passwords.api import RecoveryViewSet
from accounts.keys.api import AuthorizationServerMetadataView, JWKSView

# --- generator hooks (first: the decorators below load DEFAULT_SCHEMA_CLASS from here) ------


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


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.sessions.authentication.TokenAuthentication"
    name = "token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "The auth token, raw (`Authorization: <token>`) or as `Bearer <token>`.",
        }


def preprocess_endpoints(endpoints):
    """Leave out /api/auth: an alias of /api/authenticate, described there."""
    return [endpoint for endpoint in endpoints if not endpoint[0].startswith("/api/auth/")]


# --- response shapes ---------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status, repeated.")
    message = serializers.CharField()


class FieldErrorSerializer(ErrorSerializer):
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages per field (field validation errors only).",
    )


def _shape(component: str, /, **fields) -> serializers.Serializer:
    return inline_serializer(name=component, fields=fields)


MESSAGE = _shape("Message", message=serializers.CharField())
TOKEN = _shape("Token", token=serializers.CharField())
PROFILE = _shape("Profile", name=serializers.CharField())

# Errors every token-protected action can answer (the contract's token checks).
TOKEN_ERRORS = (errors.LoginRequired, errors.TokenInvalid, errors.AccountDisabled, errors.AccountNotActive)
# Errors of any request with a body, besides the action's own.
BODY_ERRORS = ("field", "media_type")


def _responses(success: serializers.Serializer, *catalogue) -> dict:
    """Build the responses of one action: 200 with `success`, and each error by status.

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
    responses = {200: success}
    for status, examples in sorted(by_status.items()):
        shape = FieldErrorSerializer if status == 400 and any(name == "Field validation" for name, _ in examples) else ErrorSerializer
        responses[status] = OpenApiResponse(
            shape,
            description=" / ".join(body["message"] for _, body in examples),
            examples=[OpenApiExample(name, value=body, response_only=True, status_codes=[str(status)]) for name, body in examples],
        )
    return responses


def _doc(summary: str, *, public: bool = False, request=None, responses: dict) -> dict:
    return {"summary": summary, "request": request, "auth": [] if public else None, "responses": responses}


# --- the actions -------------------------------------------------------------------------------


def _describe(viewset: type[ContractViewSet], tag: str, **docs: dict) -> None:
    """Attach each action's description to its method (custom action names, so not extend_schema_view)."""
    for action, doc in docs.items():
        extend_schema(operation_id=action, tags=[tag], **doc)(getattr(viewset, action))


_describe(
    AuthenticateViewSet,
    "authenticate",
    login=_doc(
        "Log in (with `otp` too, for a user with two-factor on)",
        public=True,
        request=s.LoginSerializer,
        responses=_responses(
            TOKEN, *BODY_ERRORS, errors.InvalidCredentials, errors.UserConfirmationRequired, errors.AccountDisabled,
            mfa_errors.TwoFactorRequired, mfa_errors.InvalidTwoFactorCode, errors.Throttled,
        ),
    ),
    refresh=_doc("Refresh the token", responses=_responses(TOKEN, *TOKEN_ERRORS)),
    change_password=_doc(
        "Change the password (every other token of the user stops working)",
        request=s.PasswordChangeSerializer,
        responses=_responses(
            _shape("PasswordUpdated", message=serializers.CharField(), token=serializers.CharField()),
            *TOKEN_ERRORS, *BODY_ERRORS, errors.PasswordConfirmationInvalid, errors.InvalidCredentials,
        ),
    ),
    recover=_doc(
        "Send a password recovery email",
        public=True,
        request=s.EmailSerializer,
        responses=_responses(
            MESSAGE, *BODY_ERRORS, errors.InvalidCredentials, errors.UserConfirmationRequired, errors.AccountDisabled,
            notices_errors.CouldNotSendEmail, errors.Throttled,
        ),
    ),
    delete_account=_doc(
        "Delete the account and everything of it",
        request=s.PasswordSerializer,
        responses=_responses(
            _shape("AccountRemoved", message=serializers.CharField(), Message=serializers.CharField()),
            *TOKEN_ERRORS, *BODY_ERRORS, errors.InvalidCredentials,
        ),
    ),
)

_describe(
    UserViewSet,
    "user",
    profile=_doc(
        "Read the profile",
        responses=_responses(_shape("User", email=serializers.EmailField(), profile=PROFILE), *TOKEN_ERRORS),
    ),
    register=_doc(
        "Register (a confirmation email is sent)",
        public=True,
        request=s.RegisterSerializer,
        responses=_responses(
            _shape("Registered", user=serializers.EmailField()),
            *BODY_ERRORS, account_errors.UserAlreadyExist, errors.PasswordConfirmationInvalid, notices_errors.CouldNotSendEmail, errors.Throttled,
        ),
    ),
    update_profile=_doc(
        "Update the profile",
        request=s.ProfileSerializer,
        responses=_responses(_shape("ProfileUpdated", profile=PROFILE), *TOKEN_ERRORS, *BODY_ERRORS, account_errors.NoUpdatesToMake),
    ),
    change_email=_doc(
        "Change the email (a notice goes to the old address)",
        request=s.EmailChangeSerializer,
        responses=_responses(
            _shape("EmailChanged", email=serializers.EmailField()),
            *TOKEN_ERRORS, *BODY_ERRORS, account_errors.InvalidPassword, account_errors.UserAlreadyExist,
        ),
    ),
    deactivate=_doc("Deactivate the account (logging in reactivates it)", responses=_responses(MESSAGE, *TOKEN_ERRORS)),
)

_describe(
    ConfirmationViewSet,
    "validate",
    confirm=_doc(
        "Confirm the account",
        public=True,
        request=s.ValidationTokenSerializer,
        responses=_responses(MESSAGE, *BODY_ERRORS, errors.InvalidToken),
    ),
    resend=_doc(
        "Send a new confirmation email",
        public=True,
        request=s.EmailSerializer,
        responses=_responses(
            MESSAGE, *BODY_ERRORS, errors.InvalidCredentials, account_errors.UserAlreadyConfirmed, notices_errors.CouldNotSendEmail, errors.Throttled
        ),
    ),
)

_describe(
    RecoveryViewSet,
    "validate",
    reset_password=_doc(
        "Reset the password with a recovery token",
        public=True,
        request=s.PasswordResetSerializer,
        responses=_responses(MESSAGE, *BODY_ERRORS, errors.InvalidToken, errors.PasswordConfirmationInvalid),
    ),
)

extend_schema_view(
    get=extend_schema(
        summary="Health: the database and, when CACHE_URL is set, the cache",
        operation_id="status",
        tags=["status"],
        auth=[],
        responses={200: ErrorSerializer, 503: ErrorSerializer},
    )
)(StatusView)

extend_schema_view(
    get=extend_schema(
        summary="What this server is, its version, and the paths of its docs, schema, health check and keys",
        operation_id="index",
        tags=["status"],
        auth=[],
        responses={
            200: _shape(
                "Index",
                name=serializers.CharField(),
                version=serializers.CharField(),
                links=serializers.DictField(child=serializers.CharField()),
            )
        },
    )
)(IndexView)

extend_schema_view(
    get=extend_schema(
        summary="Prometheus metrics of every worker (text format), with Authorization: Bearer <METRICS_TOKEN>",
        operation_id="metrics",
        tags=["status"],
        auth=[{"metrics": []}],
        responses={
            (200, "text/plain"): OpenApiResponse(str, description="Prometheus' text exposition format"),
            **{
                error.status: OpenApiResponse(
                    ErrorSerializer,
                    description=description,
                    examples=[
                        OpenApiExample(
                            error.__name__,
                            value=errors.envelope(error.status, error.message),
                            response_only=True,
                            status_codes=[str(error.status)],
                        )
                    ],
                )
                for error, description in (
                    (errors.MetricsTokenInvalid, "Not the right token: " + errors.MetricsTokenInvalid.message),
                    (errors.NotFound, "METRICS_TOKEN is not set: " + errors.NotFound.message),
                )
            },
        },
    )
)(MetricsView)

SESSION = _shape(
    "Session",
    id=serializers.CharField(),
    created_at=serializers.DateTimeField(),
    last_seen_at=serializers.DateTimeField(),
    expires_at=serializers.DateTimeField(),
    user_agent=serializers.CharField(),
    ip=serializers.IPAddressField(allow_null=True),
    current=serializers.BooleanField(),
)

_describe(
    SessionsViewSet,
    "sessions",
    list_sessions=_doc(
        "List the open sessions (one per sign-in), newest first",
        responses=_responses(_shape("Sessions", sessions=SESSION.__class__(many=True)), *TOKEN_ERRORS),
    ),
    revoke_others=_doc(
        "Sign out every other session",
        responses=_responses(
            _shape("SessionsRevoked", message=serializers.CharField(), revoked=serializers.IntegerField()), *TOKEN_ERRORS
        ),
    ),
)

_describe(
    SessionViewSet,
    "sessions",
    revoke=_doc(
        "Sign out one session (the current one: sign out)",
        responses=_responses(MESSAGE, *TOKEN_ERRORS, errors.NotFound),
    ),
)

_describe(
    IntrospectionViewSet,
    "introspection",
    introspect=_doc(
        "Introspect a token (RFC 7662), for registered resource servers",
        public=True,
        request=s.IntrospectionSerializer,
        responses=_responses(
            _shape(
                "Introspection",
                active=serializers.BooleanField(),
                sub=serializers.CharField(required=False),
                sid=serializers.CharField(required=False),
                exp=serializers.IntegerField(required=False),
                iat=serializers.IntegerField(required=False),
                iss=serializers.CharField(required=False),
                aud=serializers.JSONField(required=False),
                email=serializers.EmailField(required=False),
                groups=serializers.ListField(child=serializers.CharField(), required=False),
                amr=serializers.ListField(child=serializers.CharField(), required=False),
                jti=serializers.CharField(required=False),
                token_type=serializers.CharField(required=False),
            ),
            *BODY_ERRORS,
            clients_errors.InvalidClientCredentials,
        ),
    )
    # The "client" scheme (HTTP Basic) is declared in SPECTACULAR_SETTINGS["APPEND_COMPONENTS"].
    | {"auth": [{"client": []}]},
)

extend_schema_view(
    get=extend_schema(
        summary="The public keys that verify auth tokens (JWKS)",
        operation_id="jwks",
        tags=["keys"],
        auth=[],
        responses={200: _shape("JWKS", keys=serializers.ListField(child=serializers.DictField()))},
    )
)(JWKSView)

extend_schema_view(
    get=extend_schema(
        summary="Where the keys and the introspection endpoint are (RFC 8414)",
        operation_id="authorization_server_metadata",
        tags=["keys"],
        auth=[],
        responses={
            200: _shape(
                "AuthorizationServerMetadata",
                issuer=serializers.URLField(),
                jwks_uri=serializers.URLField(),
                introspection_endpoint=serializers.URLField(),
                introspection_endpoint_auth_methods_supported=serializers.ListField(child=serializers.CharField()),
            )
        },
    )
)(AuthorizationServerMetadataView)

# --- two-factor sign-in ------------------------------------------------------------------------

RECOVERY_CODES = serializers.ListField(
    child=serializers.CharField(), help_text="Ten single-use codes, shown this once (e.g. `7KQ2M-X9D4A`)."
)

_describe(
    TwoFactorViewSet,
    "mfa",
    two_factor_status=_doc(
        "Whether two-factor is on, and how many recovery codes are left",
        responses=_responses(
            _shape("TwoFactorStatus", totp=serializers.BooleanField(), recovery_codes_left=serializers.IntegerField()),
            *TOKEN_ERRORS,
        ),
    ),
)

_describe(
    TOTPViewSet,
    "mfa",
    totp_enroll=_doc(
        "Start (or restart) enrolling an authenticator app; two-factor is on once confirmed",
        responses=_responses(
            _shape(
                "TOTPEnrollment",
                secret=serializers.CharField(help_text="Base32, for typing into the app."),
                otpauth_uri=serializers.CharField(help_text="otpauth://totp/..., what the QR code holds."),
                qr_svg=serializers.CharField(help_text="The URI as a QR code, an SVG document."),
            ),
            *TOKEN_ERRORS, mfa_errors.TwoFactorAlreadyEnabled,
        ),
    ),
    totp_confirm=_doc(
        "Confirm the enrollment with a code of the app: two-factor is on",
        request=s.TwoFactorCodeSerializer,
        responses=_responses(
            _shape("TwoFactorEnabled", message=serializers.CharField(), recovery_codes=RECOVERY_CODES),
            *TOKEN_ERRORS, *BODY_ERRORS, mfa_errors.NoTwoFactorEnrollment, mfa_errors.InvalidTwoFactorCode, errors.Throttled,
        ),
    ),
    totp_disable=_doc(
        "Turn two-factor off (the password, and a code of the app or a recovery code)",
        request=s.TwoFactorDisableSerializer,
        responses=_responses(
            MESSAGE,
            *TOKEN_ERRORS, *BODY_ERRORS, mfa_errors.TwoFactorNotEnabled, errors.InvalidCredentials,
            mfa_errors.InvalidTwoFactorCode, errors.Throttled,
        ),
    ),
)

_describe(
    RecoveryCodesViewSet,
    "mfa",
    recovery_codes_regenerate=_doc(
        "Replace the recovery codes with ten new ones (a code of the app)",
        request=s.TwoFactorCodeSerializer,
        responses=_responses(
            _shape("RecoveryCodes", recovery_codes=RECOVERY_CODES),
            *TOKEN_ERRORS, *BODY_ERRORS, mfa_errors.TwoFactorNotEnabled, mfa_errors.InvalidTwoFactorCode, errors.Throttled,
        ),
    ),
)
