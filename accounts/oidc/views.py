"""The OpenID provider's endpoints: authorization (with the consent page), token, revocation,
userinfo, end_session and the discovery document. Authorization and token run through
django-oauth-toolkit and oauthlib (with accounts.oidc.validator); userinfo and end_session are
ours: userinfo is one query, and end_session ends the server session, which every logout needs.
"""

import hashlib
import json
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.signals import app_authorized
from oauth2_provider.views import AuthorizationView, RevokeTokenView, TokenView
from oauthlib.common import add_params_to_uri, urldecode
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors

from accounts.clients.errors import InvalidClientCredentials
from accounts.clients.models import Client
from accounts.oidc import services, tokens
from accounts.oidc.introspection_api import basic_credentials
from accounts.oidc.models import AccessToken
from accounts.oidc.pages import Page, error_page, page_headers, page_language, render_page
from accounts.oidc.validator import GraceAnswer, authorization_request_problem, refresh_token_preloaded, refresh_token_read
from accounts.sessions.browser import browser_session, browser_sign_out
from accounts.sessions.tokens import Extra, SessionRead, _group_names, session_check
from core import metrics
from core.errors import AuthError

# --- what no endpoint hands on ------------------------------------------------------------------


def refused_input(request) -> str | None:
    """Why a request's parameters cannot go on to oauthlib or the database, or None: a query
    string oauthlib cannot parse (it raises ValueError: a 500), or a NUL in a name or value
    (PostgreSQL refuses it in text: a 500 there too)."""
    try:
        urldecode(request.META.get("QUERY_STRING", ""))
    except ValueError:
        return "The query string is malformed."
    for source in (request.GET, request.POST):
        for name, values in source.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return "A parameter holds a NUL character."
    return None


def _oauth_error(status: int, error: str, description: str) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="oauth"'
    return response


class ClientEndpoint:
    """The token and revocation endpoints' edge: refused input answers invalid_request, and an
    Authorization: Basic header that cannot be read answers invalid_client (the toolkit's own
    reading raises ValueError on a non-ASCII one: a 500)."""

    def dispatch(self, request, *args, **kwargs):
        reason = refused_input(request)
        if reason:
            return _oauth_error(400, "invalid_request", reason)
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header.strip().split(" ", 1)[0].lower() == "basic":
            try:
                basic_credentials(header)
            except InvalidClientCredentials:
                return _oauth_error(401, "invalid_client", "The client credentials cannot be read.")
        return super().dispatch(request, *args, **kwargs)


# --- authorization -------------------------------------------------------------------------------

# What the consent page says a scope lets the app do, in the page's language.
SCOPE_WORDS = {
    "openid": gettext_lazy("Sign you in with your account"),
    "profile": gettext_lazy("See your name"),
    "email": gettext_lazy("See your email address"),
    "groups": gettext_lazy("See the groups you belong to"),
    "offline_access": gettext_lazy("Keep access while you are away (until you withdraw it)"),
}

# What the error page says, in plain words, when a request cannot even go back to its app. The
# protocol's own error and description (English, for the app's developer) are shown beside it.
UNKNOWN_CLIENT = gettext_lazy("The app that sent you here is not known to this server, or it is turned off.")
UNKNOWN_RETURN = gettext_lazy("The address the app wants to send you back to is not registered for it.")
INVALID_REQUEST = gettext_lazy("The app sent a sign-in request this server cannot accept.")
FATAL_ERROR_WORDS = {
    oauth2_errors.MissingClientIdError: UNKNOWN_CLIENT,
    oauth2_errors.InvalidClientIdError: UNKNOWN_CLIENT,
    oauth2_errors.InvalidClientError: UNKNOWN_CLIENT,
    oauth2_errors.MissingRedirectURIError: UNKNOWN_RETURN,
    oauth2_errors.InvalidRedirectURIError: UNKNOWN_RETURN,
    oauth2_errors.MismatchingRedirectURIError: UNKNOWN_RETURN,
}


def _without(request, *names) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return f"{request.path}?{query.urlencode()}"


PKCE_REQUIRED = 'PKCE is required, with code_challenge_method "S256".'


class AuthorizeView(AuthorizationView):
    """GET/POST /oauth/authorize: response_type=code with PKCE (S256); prompt none, login,
    consent; max_age; login_hint; ui_locales. Errors go back to the client only when its
    redirect URI is valid; otherwise they end on the error page."""

    template_name = "oidc/consent.html"

    def dispatch(self, request, *args, **kwargs):
        language = page_language(request)
        from django.utils import translation

        with translation.override(language):
            request.LANGUAGE_CODE = language
            reason = refused_input(request)
            if reason:
                response = error_page(request, title=_("This sign-in request cannot go on"), detail=f"invalid_request: {reason}")
            else:
                self.server_session = browser_session(request)
                response = super().dispatch(request, *args, **kwargs)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        response["Cache-Control"] = "no-store"
        return page_headers(response, language)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            product_name=settings.PRODUCT_NAME,
            product_logo_url=settings.PRODUCT_LOGO_URL,
            language=getattr(self.request, "LANGUAGE_CODE", "en"),
            ui_locales=self.request.GET.get("ui_locales", "") or self.request.POST.get("ui_locales", ""),
        )
        return context

    def _signin_redirect(self, next_url: str):
        query = {"next": next_url}
        for name in ("login_hint", "ui_locales"):
            if self.request.GET.get(name):
                query[name] = self.request.GET[name]
        return HttpResponseRedirect(f"{reverse('oidc-signin')}?{urlencode(query)}")

    def handle_no_permission(self):
        if self.request.method != "GET":
            return error_page(self.request, title=_("Signed out"), detail=_("Your sign-in ended. Start again from the app."), status=400)
        # The request is checked before anyone is asked to sign in: one that cannot be answered
        # (an unknown client, a redirect URI not registered) ends on the error page at once, and
        # any other error goes back to the app, not through the sign-in page first.
        checked = self._request_check(self.request)
        if not isinstance(checked, tuple):
            return checked
        _scopes, credentials, client = checked
        prompt = set(self.request.GET.get("prompt", "").split())
        if "none" in prompt:
            return self._error_redirect(credentials, client, "login_required", "The user is not signed in.")
        return self._signin_redirect(_without(self.request, "prompt", "max_age") if {"login"} & prompt else self.request.get_full_path())

    def _request_check(self, request):
        """Return (scopes, credentials, client) of a valid authorization request, or the answer
        to an invalid one: the error page, or the error redirected to the client."""
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        client = Client.objects.get(client_id=credentials["client_id"])
        if credentials.get("code_challenge_method") != "S256":
            return self._error_redirect(credentials, client, "invalid_request", PKCE_REQUIRED)
        problem = authorization_request_problem(code_challenge=credentials.get("code_challenge"), nonce=credentials.get("nonce"))
        if problem:
            return self._error_redirect(credentials, client, "invalid_request", problem)
        return scopes, credentials, client

    def _error_redirect(self, credentials, client, error: str, description: str):
        params = [("error", error), ("error_description", description)]
        if credentials.get("state"):
            params.append(("state", credentials["state"]))
        params.append(("iss", settings.TOKEN_ISSUER))
        return self.redirect(add_params_to_uri(credentials["redirect_uri"], params), client)

    def error_response(self, error, application, **kwargs):
        redirect, response = OAuthToolkitError_response(self, error, **kwargs)
        if redirect:
            # RFC 9207 (the metadata says so): the issuer in every authorization response, errors
            # too; the toolkit adds it to codes only.
            return self.redirect(add_params_to_uri(response["url"], [("iss", settings.TOKEN_ISSUER)]), application)
        oauth_error = response["error"]
        return error_page(
            self.request,
            title=_("This sign-in request cannot go on"),
            detail=FATAL_ERROR_WORDS.get(type(oauth_error), INVALID_REQUEST),
            technical=f"{oauth_error.error}: {oauth_error.description or ''}".strip(": "),
            status=oauth_error.status_code,
        )

    def get(self, request, *args, **kwargs):
        checked = self._request_check(request)
        if not isinstance(checked, tuple):
            return checked
        scopes, credentials, client = checked
        prompt = set(request.GET.get("prompt", "").split())
        session = self.server_session
        max_age = request.GET.get("max_age")
        too_old = False
        if max_age is not None:
            if not max_age.isdigit() or len(max_age) > 10:
                return self._error_redirect(credentials, client, "invalid_request", "max_age must be a number of seconds.")
            too_old = (timezone.now() - session.created_at).total_seconds() > int(max_age)
        if "login" in prompt or too_old:
            if "none" in prompt:
                return self._error_redirect(credentials, client, "login_required", "The user must sign in again.")
            return self._signin_redirect(_without(request, "prompt", "max_age"))
        user = request.user
        needs_consent = not client.skip_authorization and (
            "consent" in prompt or not services.consent_covers(user=user, client=client, scopes=scopes)
        )
        if needs_consent and "none" in prompt:
            return self._error_redirect(credentials, client, "consent_required", "The user has not allowed this app yet.")
        if not needs_consent:
            try:
                uri, _headers, _body, _status = self.create_authorization_response(
                    request=request, scopes=" ".join(scopes), credentials=credentials, allow=True
                )
            except OAuthToolkitError as error:
                return self.error_response(error, client)
            return self.redirect(uri, client)
        self.oauth2_data = {
            "client_id": credentials["client_id"],
            "redirect_uri": credentials["redirect_uri"],
            "response_type": credentials["response_type"],
            "state": credentials.get("state"),
            "scopes": scopes,
            "nonce": credentials.get("nonce"),
            "code_challenge": credentials.get("code_challenge"),
            "code_challenge_method": credentials.get("code_challenge_method"),
            "claims": json.dumps(credentials["claims"]) if credentials.get("claims") else None,
            "resource": " ".join(request.GET.getlist("resource")) or None,
        }
        form = self.get_form(self.get_form_class())
        return self.render_to_response(
            self.get_context_data(
                form=form,
                application=client,
                scope_words=[str(SCOPE_WORDS[scope]) for scope in scopes if scope in SCOPE_WORDS],
                signed_in_user=user,
            )
        )

    def create_authorization_response(self, request, scopes, credentials, allow):
        credentials = {**credentials, "server_session": self.server_session}
        return super().create_authorization_response(request=request, scopes=scopes, credentials=credentials, allow=allow)

    def form_valid(self, form):
        client = Client.objects.filter(client_id=form.cleaned_data.get("client_id")).first()
        if client is None:
            # The toolkit's form_valid would raise DoesNotExist (a 500) for a client_id made up.
            return error_page(self.request, title=_("This sign-in request cannot go on"), detail="invalid_client: Unknown client.")
        scopes = (form.cleaned_data.get("scope") or "").split()
        allow = bool(form.cleaned_data.get("allow")) and "deny" not in self.request.POST
        if not allow:
            form.cleaned_data["allow"] = False
        response = super().form_valid(form)
        if response.status_code in (301, 302):
            if allow and "code=" in response.get("Location", ""):
                services.consent_give(user=self.request.user, client=client, scopes=scopes)
            elif not allow:
                services.consent_refused(user=self.request.user, client=client, scopes=scopes)
        return response


def OAuthToolkitError_response(view, error, **kwargs):
    """The toolkit's split of an error: (redirect?, {"url"} or {"error"})."""
    from oauth2_provider.views.mixins import OAuthLibMixin

    return OAuthLibMixin.error_response(view, error, **kwargs)


# --- token ---------------------------------------------------------------------------------------


# The grant types offered; the toolkit knows others (password, device code), which it would
# answer with checks of their own: the password grant checks a user's password without the
# sign-in's limits, audit trail and two-factor.
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


@method_decorator(csrf_exempt, name="dispatch")
class OIDCTokenView(ClientEndpoint, TokenView):
    """POST /oauth/token: authorization_code, refresh_token (rotated), client_credentials.

    A refresh reads its token's row first (with its client, user, session and access token: one
    SELECT the validator reads from). The parent retried within OIDC_REFRESH_REUSE_GRACE of its
    use (the answer was lost, or a concurrent refresh of it won) gets the same answer again, once
    its client has authenticated and if the child is still live; any other reuse revokes the
    family. Concurrent refreshes of one token yield one live child: the rotation spends the
    parent with an UPDATE that only a live row matches (accounts.oidc.validator).
    """

    def post(self, request, *args, **kwargs):
        grant_type = request.POST.get("grant_type")
        if grant_type and grant_type not in GRANT_TYPES:
            return _oauth_error(400, "unsupported_grant_type", f"The grant types are {', '.join(GRANT_TYPES)}.")
        refresh = request.POST.get("refresh_token") if request.POST.get("grant_type") == "refresh_token" else None
        if not refresh:
            return super().post(request, *args, **kwargs)
        preloaded = refresh_token_preloaded.set(refresh_token_read(refresh))
        try:
            return super().post(request, *args, **kwargs)
        except GraceAnswer as retry:
            response = HttpResponse(retry.body, content_type="application/json")
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"
            return response
        finally:
            refresh_token_preloaded.reset(preloaded)

    @method_decorator(sensitive_post_parameters("password", "client_secret"))
    def authorization_flow_token_response(self, request, *args, **kwargs):
        if app_authorized.has_listeners():
            return super().authorization_flow_token_response(request, *args, **kwargs)
        # The toolkit reads the new access token's row back only to send app_authorized, which
        # nothing here listens to: a SELECT per token request saved.
        _url, headers, body, status = self.create_token_response(request)
        # Every answer is JSON, an error raised while saving the tokens too (oauthlib gives
        # those no Content-Type).
        response = HttpResponse(content=body, status=status, content_type="application/json")
        for name, value in headers.items():
            response[name] = value
        return response


@method_decorator(csrf_exempt, name="dispatch")
class OIDCRevokeView(ClientEndpoint, RevokeTokenView):
    """POST /oauth/revoke (RFC 7009)."""


# --- userinfo ------------------------------------------------------------------------------------


def _access_token_row_sql(connection) -> str:
    quote, meta = connection.ops.quote_name, AccessToken._meta
    table = quote(meta.db_table)
    return (
        f"SELECT {table}.{quote(meta.pk.column)} FROM {table} "
        f"WHERE {table}.{quote(meta.get_field('token_checksum').column)} = %s"
    )


# The session an access token names, its user, and whether the token's row is still there
# (revocation deletes it): one query.
session_and_access_token = SessionRead(extra=Extra("access_token_id", AccessToken._meta.pk, _access_token_row_sql))


def access_token_check(raw: str):
    """Return (claims, session) of an access token a user's session stands behind and that may be
    used, or None."""
    claims = tokens.access_token_verify(raw)
    if claims is None or not isinstance(claims.get("sid"), str):
        return None
    session = session_and_access_token(claims["sid"], (hashlib.sha256(raw.encode()).hexdigest(),))
    if session is None or session.access_token_id is None or str(session.user.public_id) != claims["sub"]:
        return None
    try:
        session_check(user=session.user, session=session)
    except AuthError:
        return None
    return claims, session


def _bearer(request) -> str:
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        return request.POST.get("access_token", "")
    return ""


def _bearer_error(status: int, error: str, description: str) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["WWW-Authenticate"] = f'Bearer error="{error}", error_description="{description}"'
    response["Cache-Control"] = "no-store"
    return response


@method_decorator(csrf_exempt, name="dispatch")
class UserInfoView(View):
    """GET and POST /oauth/userinfo (Bearer): the claims the token's scopes allow."""

    http_method_names = ["get", "post", "options"]

    def get(self, request):
        raw = _bearer(request)
        if not raw:
            response = JsonResponse({"error": "invalid_request", "error_description": "An access token is required."}, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="userinfo"'
            response["Cache-Control"] = "no-store"
            return response
        checked = access_token_check(raw)
        if checked is None:
            return _bearer_error(401, "invalid_token", "The access token is not valid.")
        claims, session = checked
        scopes = claims.get("scope", "").split()
        if "openid" not in scopes:
            return _bearer_error(403, "insufficient_scope", "The access token lacks the openid scope.")
        user = session.user
        answer = {"sub": claims["sub"]}
        if "profile" in scopes:
            answer["name"] = user.name or ""
        if "email" in scopes:
            answer["email"] = user.email
            answer["email_verified"] = user.is_email_verified
        if "groups" in scopes:
            answer["groups"] = sorted(_group_names(user.pk))
        response = JsonResponse(answer)
        response["Cache-Control"] = "no-store"
        return response

    post = get


# --- end_session ---------------------------------------------------------------------------------


class EndSessionView(Page):
    """GET or POST /oauth/logout (RP-Initiated Logout 1.0): `id_token_hint`, `client_id`,
    `post_logout_redirect_uri` (registered, matched exactly), `state`, `ui_locales`.

    With an ID token of the browser's own session, it signs out at once; otherwise it asks first
    (a form that posts back here with `confirm`). Ending the session reaches every app signed in
    with it (back-channel logout).
    """

    def _params(self, request):
        source = request.POST if request.method == "POST" else request.GET
        return {name: source.get(name, "") for name in ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")}

    def _handle(self, request):
        if refused_input(request):
            return error_page(request, title=_("Sign-out request refused"), detail=_("The request is malformed."))
        params = self._params(request)
        client, claims = None, None
        if params["id_token_hint"]:
            claims = tokens.id_token_hint_verify(params["id_token_hint"])
            client = Client.objects.filter(client_id=claims["aud"]).first() if claims is not None else None
            # An ID token's audience is the app it was issued to: a token of this server with
            # another audience (an access token's, say) is no ID token.
            if client is None:
                return error_page(request, title=_("Sign-out request refused"), detail=_("The ID token given is not one of this server's."))
            if params["client_id"] and params["client_id"] != claims["aud"]:
                return error_page(request, title=_("Sign-out request refused"), detail=_("The ID token was not issued to this client."))
        elif params["client_id"]:
            client = Client.objects.filter(client_id=params["client_id"]).first()
            if client is None:
                return error_page(request, title=_("Sign-out request refused"), detail=_("The app that sent you here is not known to this server."))
        redirect_uri = params["post_logout_redirect_uri"]
        if redirect_uri and (client is None or not client.post_logout_redirect_uri_allowed(redirect_uri)):
            return error_page(request, title=_("Sign-out request refused"), detail=_("This address to return to is not registered for the app."))
        session = browser_session(request)
        own = session is not None and claims is not None and claims.get("sid") == session.public_id
        if session is not None and not own and not (request.method == "POST" and "confirm" in request.POST):
            return render_page(request, "oidc/signout.html", {"signed_in_user": session.user, "params": params, "action": reverse("oidc-end-session"), "client": client})
        if session is not None:
            browser_sign_out(request)
            metrics.oidc_counted("logout")
            from accounts.audit import services as audit

            audit.record(audit.Type.OIDC_LOGOUT, user=session.user, detail=client.name if client else "")
        if redirect_uri:
            target = add_params_to_uri(redirect_uri, [("state", params["state"])]) if params["state"] else redirect_uri
            return HttpResponseRedirect(target)
        return render_page(request, "oidc/signed_out.html", {})

    get = _handle
    post = _handle


# --- discovery -----------------------------------------------------------------------------------


def provider_metadata() -> dict:
    issuer = settings.TOKEN_ISSUER
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/api/introspect",
        "end_session_endpoint": f"{issuer}/oauth/logout",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email", "groups", "offline_access"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "amr", "sid", "name", "email",
            "email_verified", "groups",
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        "ui_locales_supported": [code for code, _name in settings.LANGUAGES],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "claims_parameter_supported": False,
    }
