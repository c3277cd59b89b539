"""API routes. Every path answers with and without a trailing slash, for every verb, without redirect."""

from django.urls import re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from accounts.account.api import ConfirmationViewSet, UserViewSet
from accounts.oidc.api import AuthorizationsViewSet, AuthorizationViewSet
from accounts.oidc.introspection_api import IntrospectionViewSet
from accounts.mfa.api import RecoveryCodesViewSet, TOTPViewSet, TwoFactorViewSet
from accounts.passkeys.api import (
    PasskeyOptionsViewSet,
    PasskeySignInOptionsViewSet,
    PasskeySignInViewSet,
    PasskeysViewSet,
    PasskeyViewSet,
)
from accounts.passwords.api import RecoveryViewSet
from accounts.sessions.api import SessionsViewSet, SessionViewSet
from accounts.signin.api import AuthenticateViewSet
from core.api import ContractViewSet


def route(path: str, viewset: type[ContractViewSet], name: str):
    return re_path(rf"^{path}/?$", viewset.as_view(viewset.actions), name=name)


urlpatterns = [
    route("authenticate", AuthenticateViewSet, "authenticate"),
    # The old server's code and its Insomnia collection used /api/auth.
    route("auth", AuthenticateViewSet, "auth"),
    # Signing in with a passkey (WebAuthn).
    route("authenticate/passkey/options", PasskeySignInOptionsViewSet, "passkey-signin-options"),
    route("authenticate/passkey", PasskeySignInViewSet, "passkey-signin"),
    route("user", UserViewSet, "user"),
    route("validate/confirmation", ConfirmationViewSet, "confirmation"),
    route("validate/recovery", RecoveryViewSet, "recovery"),
    route("sessions", SessionsViewSet, "sessions"),
    # Session ids are URL-safe base64: anything else is no session, the JSON 404 of the catch-all,
    # and never reaches the database (PostgreSQL refuses a NUL in text, for one).
    route("sessions/(?P<session_id>[A-Za-z0-9_-]{1,64})", SessionViewSet, "session"),
    route("introspect", IntrospectionViewSet, "introspect"),
    # The apps the user allowed (OpenID Connect consents).
    route("authorizations", AuthorizationsViewSet, "authorizations"),
    route(
        "authorizations/(?P<authorization_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})",
        AuthorizationViewSet,
        "authorization",
    ),
    # Two-factor sign-in of the signed-in user.
    route("mfa", TwoFactorViewSet, "mfa"),
    route("mfa/totp", TOTPViewSet, "mfa-totp"),
    route("mfa/recovery-codes", RecoveryCodesViewSet, "mfa-recovery-codes"),
    # The signed-in user's passkeys.
    route("passkeys/options", PasskeyOptionsViewSet, "passkey-options"),
    route("passkeys", PasskeysViewSet, "passkeys"),
    route("passkeys/(?P<passkey_id>[0-9]{1,18})", PasskeyViewSet, "passkey"),
    re_path(r"^schema/?$", SpectacularJSONAPIView.as_view(), name="schema"),
    # Swagger UI on the schema above; its files come from drf-spectacular-sidecar (no CDN).
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]
