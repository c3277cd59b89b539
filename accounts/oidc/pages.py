"""The hosted pages: sign-in (email and password, then the two-factor code for those who turned it
on; or a passkey), sign-out, and the page every refusal ends on. Plain HTML forms that work without
JavaScript, CSRF-protected, with a Content-Security-Policy that allows no script at all, but for
the sign-in page's one static file (passkeys/signin.js: the passkey ceremony, which only a script
can run) and its request for the ceremony's options (connect-src 'self').

Sign-in runs accounts.signin's checks, as the API's login and the admin's do: the same rate
limits, equal timing, audit trail and messages. Between the password and the code, the browser's
Django session holds who passed the password (for OTP_STEP_SECONDS), never the password.
"""

import time

from django import forms
from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_protect

from accounts.mfa.errors import InvalidTwoFactorCode, TwoFactorRequired
from accounts.passkeys.errors import InvalidPasskey
from accounts.passkeys.services import passkey_check
from accounts.sessions.browser import browser_session, browser_sign_in, browser_sign_out
from accounts.signin.services import credentials_check, second_factor_check, sign_in
from accounts.users.models import User
from core import errors
from core.addresses import client_address
from core.errors import AccountDisabled, AuthError, InvalidCredentials, Throttled, UserConfirmationRequired

WHERE = "sign-in page"
PENDING_KEY = "oidc_pending_signin"
OTP_STEP_SECONDS = 300
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' https: data:; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self' https: http:"
)
# The sign-in page: its passkey script, a static file of this server, and the options it fetches.
SIGNIN_CSP = CSP.replace("default-src 'none';", "default-src 'none'; script-src 'self'; connect-src 'self';")
REFERRER_POLICY = "same-origin"


def page_language(request) -> str:
    """The page's language: the first of `ui_locales` (OpenID's parameter, on this request or
    carried from the authorization request the page continues) that we speak, else the browser's
    Accept-Language."""
    wanted = request.GET.get("ui_locales", "") or request.POST.get("ui_locales", "")
    for tag in wanted.split():
        try:
            # A tag we speak, or its generic language (de-CH: de); never a guess at a sibling.
            return translation.get_supported_language_variant(tag.lower(), strict=True)
        except LookupError:
            continue
    return translation.get_language_from_request(request)


def page_headers(response, language: str):
    """A hosted page's headers: no script (the sign-in page's own file aside), no referrer to
    other sites, its language."""
    response.setdefault("Content-Security-Policy", CSP)
    # Not "no-referrer": under it a browser posts the page's forms with `Origin: null`, which
    # Django's CSRF check refuses. "same-origin" keeps the page's URL (the authorization request)
    # from other sites all the same, the app included.
    response["Referrer-Policy"] = REFERRER_POLICY
    response["Content-Language"] = language
    response.setdefault("Vary", "Accept-Language, Cookie")
    return response


class Page(View):
    """A hosted page: its language, its security headers, never cached."""

    @method_decorator(never_cache)
    @method_decorator(csrf_protect)
    def dispatch(self, request, *args, **kwargs):
        language = page_language(request)
        with translation.override(language):
            request.LANGUAGE_CODE = language
            response = super().dispatch(request, *args, **kwargs)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        return page_headers(response, language)


def render_page(request, template: str, context: dict, status: int = 200):
    context = {
        "product_name": settings.PRODUCT_NAME,
        "product_logo_url": settings.PRODUCT_LOGO_URL,
        "language": getattr(request, "LANGUAGE_CODE", "en"),
        **context,
    }
    return render(request, template, context, status=status)


def error_page(request, *, title, detail, technical: str = "", status: int = 400):
    """The page a refusal ends on: `detail` in plain words (translated); `technical`, the
    protocol's error for the app's developer, in English."""
    return render_page(request, "oidc/error.html", {"title": title, "detail": detail, "technical": technical}, status=status)


def _safe_next(request, candidate: str | None) -> str:
    """Where to go after signing in: a path of this server only (never another site)."""
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts=None) and candidate.startswith("/") and not candidate.startswith("//"):
        return candidate
    return reverse("oidc-signed-in")


class NextField(forms.CharField):
    """Where to go after signing in, as the page carried it: never an error (the user could not
    see or fix one in a hidden field); a value it refuses is no place to go (_safe_next's default)."""

    def clean(self, value):
        try:
            return super().clean(value)
        except forms.ValidationError:
            return ""


class SignInForm(forms.Form):
    email = forms.CharField(label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "username webauthn", "autofocus": True}))
    password = forms.CharField(label=_("Password"), max_length=4096, strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    next = NextField(required=False, widget=forms.HiddenInput, max_length=4096)


class OTPForm(forms.Form):
    otp = forms.CharField(
        label=_("Two-factor code"),
        max_length=64,
        help_text=_("The code of your authenticator app, or a recovery code."),
        # No inputmode="numeric": a recovery code has letters, which a phone's number pad cannot type.
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false", "autofocus": True}),
    )
    next = NextField(required=False, widget=forms.HiddenInput, max_length=4096)


# What the page says for a refusal: the API's message (core.errors' catalogue), word for word in
# English and translated in the page's language. The catalogue's own text stays untranslated: it is
# the API's contract.
REFUSALS = {
    InvalidCredentials: _("Invalid email or password"),
    UserConfirmationRequired: _("Please confirm your account"),
    AccountDisabled: _("Account disabled"),
    InvalidTwoFactorCode: _("Invalid two-factor code"),
    InvalidPasskey: _("Invalid passkey"),
}


def _message_of(exc: AuthError):
    """What the page says for a refusal, in the page's language."""
    if isinstance(exc, Throttled):
        return _("Too many attempts. Try again in %(wait)d seconds.") % {"wait": exc.wait}
    return REFUSALS.get(type(exc), _("The sign-in was refused."))


def _language_carried(request) -> dict:
    """The `ui_locales` a form posted (the page's language), for the page it redirects to: the
    language chosen on the authorization request holds through every step of the sign-in."""
    wanted = request.POST.get("ui_locales") or request.GET.get("ui_locales")
    return {"ui_locales": wanted} if wanted else {}


def _open_session(request, *, user: User, amr: list[str], next_url: str, where: str = WHERE):
    session = sign_in(
        user=user,
        remember=False,
        amr=amr,
        client_address=client_address(request.META),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        where=where,
    )
    # Signing in anew replaces the browser's former sign-in (prompt=login, or another account).
    previous = browser_session(request)
    if previous is not None:
        browser_sign_out(request)
    browser_sign_in(request, session=session)
    return HttpResponseRedirect(next_url)


def render_signin(request, form, status: int = 200, *, refusal=None):
    """The sign-in page, whose CSP lets its passkey script run and fetch the ceremony's options;
    `refusal` says why a passkey did not sign in."""
    context = {"form": form, "next": form["next"].value() or "", "refusal": refusal}
    response = render_page(request, "oidc/signin.html", context, status=status)
    response["Content-Security-Policy"] = SIGNIN_CSP
    return response


class SignInView(Page):
    """GET /signin: the form; POST: check the email and password (then ask for the code)."""

    def get(self, request):
        initial = {"next": request.GET.get("next", ""), "email": request.GET.get("login_hint", "")}
        return render_signin(request, SignInForm(initial=initial))

    def post(self, request):
        form = SignInForm(request.POST)
        if not form.is_valid():
            return render_signin(request, form, status=400)
        email, password = form.cleaned_data["email"], form.cleaned_data["password"]
        next_url = _safe_next(request, form.cleaned_data["next"])
        address = client_address(request.META)
        try:
            user = credentials_check(email=email, password=password, client_address=address, where=WHERE)
            amr = second_factor_check(user=user, otp="", email=email, client_address=address, where=WHERE)
        except TwoFactorRequired:
            request.session.cycle_key()
            request.session[PENDING_KEY] = {"user": user.pk, "email": email, "at": time.time()}
            return HttpResponseRedirect(reverse("oidc-signin-otp") + "?" + urlencode({"next": next_url, **_language_carried(request)}))
        except AuthError as exc:
            form.add_error(None, _message_of(exc))
            status = 429 if isinstance(exc, Throttled) else 401
            return render_signin(request, form, status=status)
        return _open_session(request, user=user, amr=amr, next_url=next_url)


class CredentialJSONField(forms.JSONField):
    """The credential's JSON text; JSON nested too deeply (RecursionError) is invalid too."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except RecursionError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid", params={"value": ""}) from None


class PasskeySignInForm(forms.Form):
    ceremony = forms.CharField(max_length=2048)
    credential = CredentialJSONField(max_length=64 * 1024)
    next = NextField(required=False, max_length=4096)


class PasskeySignInView(Page):
    """POST /signin/passkey: what the sign-in page's script posts once the browser has run the
    passkey ceremony (the ceremony, and the credential as JSON); signs in as a password would."""

    def post(self, request):
        form = PasskeySignInForm(request.POST)
        page_form = SignInForm(initial={"next": request.POST.get("next", "")})
        if not form.is_valid() or not isinstance(form.cleaned_data["credential"], dict):
            return render_signin(request, page_form, status=400, refusal=_("Invalid passkey"))
        try:
            user, amr = passkey_check(
                ceremony_sealed=form.cleaned_data["ceremony"],
                credential=form.cleaned_data["credential"],
                client_address=client_address(request.META),
                where=WHERE,
            )
        except AuthError as exc:
            return render_signin(
                request, page_form, status=exc.status if isinstance(exc, Throttled) else 401, refusal=_message_of(exc)
            )
        next_url = _safe_next(request, form.cleaned_data["next"])
        return _open_session(request, user=user, amr=amr, next_url=next_url, where=f"passkey, {WHERE}")


class OTPView(Page):
    """GET /signin/two-factor: the code's form; POST: check it and sign in."""

    def _pending(self, request):
        pending = request.session.get(PENDING_KEY)
        if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > OTP_STEP_SECONDS:
            request.session.pop(PENDING_KEY, None)
            return None, None
        user = User.objects.filter(pk=pending.get("user")).first()
        return (user, pending.get("email", "")) if user is not None else (None, None)

    def _restart(self, request):
        next_url = _safe_next(request, request.GET.get("next") or request.POST.get("next"))
        return HttpResponseRedirect(reverse("oidc-signin") + "?" + urlencode({"next": next_url, **_language_carried(request)}))

    def get(self, request):
        user, _email = self._pending(request)
        if user is None:
            return self._restart(request)
        return render_page(request, "oidc/two_factor.html", {"form": OTPForm(initial={"next": request.GET.get("next", "")})})

    def post(self, request):
        user, email = self._pending(request)
        if user is None:
            return self._restart(request)
        form = OTPForm(request.POST)
        if not form.is_valid():
            return render_page(request, "oidc/two_factor.html", {"form": form}, status=400)
        address = client_address(request.META)
        try:
            amr = second_factor_check(user=user, otp=form.cleaned_data["otp"], email=email, client_address=address, where=WHERE)
        except TwoFactorRequired:
            form.add_error("otp", _("Enter the code of your authenticator app (or a recovery code)."))
            return render_page(request, "oidc/two_factor.html", {"form": form}, status=401)
        except AuthError as exc:
            form.add_error("otp", _message_of(exc))
            status = 429 if isinstance(exc, Throttled) else 401
            return render_page(request, "oidc/two_factor.html", {"form": form}, status=status)
        request.session.pop(PENDING_KEY, None)
        return _open_session(request, user=user, amr=amr, next_url=_safe_next(request, form.cleaned_data["next"]))


class SignedInView(Page):
    """GET /signin/done: where a sign-in with nowhere to go ends."""

    def get(self, request):
        session = browser_session(request)
        return render_page(request, "oidc/signed_in.html", {"signed_in_user": session.user if session else None})


class SignOutView(Page):
    """GET /signout: asks; POST (with the CSRF token): signs the browser out, ending its session."""

    def get(self, request):
        session = browser_session(request)
        return render_page(request, "oidc/signout.html", {"signed_in_user": session.user if session else None})

    def post(self, request):
        browser_sign_out(request)
        return render_page(request, "oidc/signed_out.html", {})


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: a hosted page's form posted without a valid CSRF token (cookies blocked,
    or the page left open past a new sign-in) ends on the error page, in the page's language;
    anything else answers the API's envelope (core.errors.csrf_failure)."""
    pages = tuple(reverse(name) for name in ("oidc-signin", "oidc-signout", "oidc-authorize", "oidc-end-session"))
    if not request.path.startswith(pages):
        return errors.csrf_failure(request, reason)
    language = page_language(request)
    with translation.override(language):
        request.LANGUAGE_CODE = language
        response = error_page(
            request,
            title=_("This form has expired"),
            detail=_("Go back, reload the page and try again. Your browser must accept this site's cookies."),
            status=403,
        )
    response["Cache-Control"] = "no-store"
    return page_headers(response, language)
