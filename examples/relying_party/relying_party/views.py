"""The app's pages: sign in with the auth server, see who you are, call the resource server with
the access token, sign out.

Authlib's Django client does the OpenID Connect work: discovery, the authorization request with
PKCE (S256), state and nonce, the code exchange, and the ID token's checks (its signature against
the auth server's JWKS; iss, aud, exp, nonce, at_hash). The tokens stay in the server-side session.
"""

import json

import requests
from authlib.integrations.django_client import OAuth, OAuthError
from django.conf import settings
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

TIMEOUT = 10  # seconds, for every call to the auth server and the resource server

oauth = OAuth()
oauth.register(
    "authserver",
    client_id=settings.OIDC_CLIENT_ID,
    client_secret=settings.OIDC_CLIENT_SECRET,
    server_metadata_url=f"{settings.OIDC_ISSUER}/.well-known/openid-configuration",
    client_kwargs={"scope": settings.OIDC_SCOPES, "code_challenge_method": "S256", "default_timeout": TIMEOUT},
)

SIGNED_IN = "signed_in"  # the session's key for the tokens and the ID token's claims


def _page(request, **context):
    return render(request, "relying_party/home.html", {"signed_in": request.session.get(SIGNED_IN), **context})


@require_GET
def home(request):
    return _page(request)


@require_GET
def sign_in(request):
    """Send the browser to the auth server's authorization endpoint (state, nonce and the PKCE
    verifier are kept in the session)."""
    return oauth.authserver.authorize_redirect(request, f"{settings.APP_URL}/callback")


@require_GET
def callback(request):
    """Where the auth server sends the browser back: exchange the code, check the ID token."""
    try:
        token = oauth.authserver.authorize_access_token(
            request,
            claims_options={
                "iss": {"essential": True, "value": settings.OIDC_ISSUER},
                "aud": {"essential": True, "value": settings.OIDC_CLIENT_ID},
            },
        )
    except OAuthError as error:  # the user denied, or the answer did not check out
        return _page(request, error=f"{error.error}: {error.description or ''}".strip(": "))
    request.session.cycle_key()  # a new session id for the signed-in user (no fixation)
    request.session[SIGNED_IN] = {
        "claims": dict(token["userinfo"]),  # the ID token's claims, checked
        "id_token": token["id_token"],
        "access_token": token["access_token"],
    }
    return redirect("home")


@require_GET
def call_resource_server(request):
    """Call the resource server's GET /me with the access token; show its answer."""
    signed_in = request.session.get(SIGNED_IN)
    if not signed_in:
        return redirect("home")
    try:
        response = requests.get(
            f"{settings.RESOURCE_SERVER_URL}/me",
            headers={"Authorization": f"Bearer {signed_in['access_token']}"},
            timeout=TIMEOUT,
        )
    except requests.RequestException as exc:
        return _page(request, error=f"The resource server cannot be reached: {exc}")
    try:
        body = json.dumps(response.json(), indent=2)
    except ValueError:
        body = response.text
    return _page(request, resource={"status": response.status_code, "body": body})


@require_POST
def sign_out(request):
    """Forget the tokens here, and sign out at the auth server too (RP-Initiated Logout): the
    browser goes there with the ID token, and comes back to /signed-out with the state."""
    signed_in = request.session.get(SIGNED_IN)
    request.session.flush()
    if not signed_in:
        return redirect("home")
    return oauth.authserver.logout_redirect(
        request, post_logout_redirect_uri=f"{settings.APP_URL}/signed-out", id_token_hint=signed_in["id_token"]
    )


@require_GET
def signed_out(request):
    """Where the auth server sends the browser back after signing out (the state checked)."""
    try:
        oauth.authserver.validate_logout_response(request)
    except OAuthError as error:
        return _page(request, error=f"Sign-out: {error.description}")
    return _page(request, message="You are signed out, here and on the auth server.")
