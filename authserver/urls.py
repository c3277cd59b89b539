"""Root URLs: an index at /, the API under /api/, the admin, /status, /metrics, the keys and the
provider's metadata under /.well-known/, the OpenID provider under /oauth/ and its pages
(/signin, /signout); anything else is a JSON 404."""

from django.contrib import admin
from django.urls import include, path, re_path

from accounts.keys.api import JWKSView
from accounts.oidc import pages
from accounts.oidc.api import AuthorizationServerMetadataView, ProviderMetadataView
from accounts.oidc.views import AuthorizeView, EndSessionView, OIDCRevokeView, OIDCTokenView, UserInfoView
from core import errors
from core.operations import IndexView, MetricsView
from core.status import StatusView

urlpatterns = [
    path("", IndexView.as_view(), name="index"),
    path("api/", include("accounts.urls")),
    re_path(r"^status/?$", StatusView.as_view(), name="status"),
    re_path(r"^metrics/?$", MetricsView.as_view(), name="metrics"),
    re_path(r"^\.well-known/jwks\.json/?$", JWKSView.as_view(), name="jwks"),
    re_path(r"^\.well-known/openid-configuration/?$", ProviderMetadataView.as_view(), name="metadata"),
    re_path(r"^\.well-known/oauth-authorization-server/?$", AuthorizationServerMetadataView.as_view(), name="metadata-rfc8414"),
    # The OpenID provider (accounts.oidc) and its hosted pages.
    path("oauth/authorize", AuthorizeView.as_view(), name="oidc-authorize"),
    path("oauth/token", OIDCTokenView.as_view(), name="oidc-token"),
    path("oauth/revoke", OIDCRevokeView.as_view(), name="oidc-revoke"),
    path("oauth/userinfo", UserInfoView.as_view(), name="oidc-userinfo"),
    path("oauth/logout", EndSessionView.as_view(), name="oidc-end-session"),
    path("signin", pages.SignInView.as_view(), name="oidc-signin"),
    path("signin/two-factor", pages.OTPView.as_view(), name="oidc-signin-otp"),
    path("signin/passkey", pages.PasskeySignInView.as_view(), name="oidc-signin-passkey"),
    path("signin/done", pages.SignedInView.as_view(), name="oidc-signed-in"),
    path("signout", pages.SignOutView.as_view(), name="oidc-signout"),
    path("admin/", admin.site.urls),
    # Also with DEBUG on, an unknown path answers in the envelope, not with an HTML page.
    re_path(r"^", errors.page_not_found),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
