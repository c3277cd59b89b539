"""The admin site: Django's, with the API's sign-in rules and sessions (apart from accounts.admin, whose
import registers the pages on this site).

- The login form checks the email and password through accounts.signin.services, as the API does:
  LOGIN_RATE, LOGIN_ADDRESS_RATE and LOGIN_ACCOUNT_RATE, equal timing, the audit trail. Staff who
  turned two-factor on give a code too (the form's third field, left empty by everyone else), and
  their admin session then records ["pwd", "otp"].
- Each admin login opens one of the server's sessions (it shows in the user's session list); every
  page checks that it is still open, so "sign out everywhere", a password change or reset,
  deactivation and disabling end the admin's browser session too. Logging out (a POST with the
  CSRF token, as Django's LogoutView requires) ends it; a GET of the logout page ends nothing.
- Staff may sign in with a passkey instead: the login page's script (passkeys/signin.js, as on
  the hosted sign-in page) runs the ceremony and posts it to /admin/login/passkey/, which checks it
  with accounts.passkeys.services, as the API does, and lets staff only in.
- The header and the pages' titles carry the product's name (PRODUCT_NAME).
"""

import json

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.contrib.auth import login as django_login
from django.contrib.auth import logout
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.utils.decorators import method_decorator

from accounts.audit import services as audit
from accounts.mfa.errors import InvalidTwoFactorCode, TwoFactorRequired
from accounts.passkeys.services import passkey_check
from accounts.passwords.credentials import password_check
from accounts.passwords.services import password_replace
from accounts.sessions.models import Session
from accounts.sessions.services import EndReason, session_end, session_is_open, session_open
from accounts.signin.services import credentials_check, second_factor_check, sign_in
from core.addresses import client_address
from core.errors import AuthError, Throttled

# The key, in Django's session, of the server session this admin login opened.
SESSION_ID_KEY = "accounts_session_id"
WHERE = "admin site"


def _throttled(exc: Throttled) -> ValidationError:
    return ValidationError("Too many requests. Try again in %(wait)d seconds.", code="throttled", params={"wait": exc.wait})


class StaffLoginForm(AdminAuthenticationForm):
    otp = forms.CharField(
        label="Two-factor code",
        required=False,
        max_length=64,
        help_text="If you turned two-factor sign-in on: the code of your app, or a recovery code.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}),
    )
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "two_factor_required": "Enter the code of your authenticator app (or a recovery code).",
        "invalid_two_factor_code": "Invalid two-factor code.",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Passkeys in the email field's autofill too (the page's passkey script).
        self.fields["username"].widget.attrs["autocomplete"] = "username webauthn"

    def clean(self):
        email, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if email is not None and password:
            address = client_address(self.request.META)
            try:
                user = credentials_check(email=email, password=password, client_address=address, where=WHERE)
            except Throttled as exc:
                raise _throttled(exc) from exc
            except AuthError as exc:
                raise self.get_invalid_login_error() from exc
            # Staff only: nobody else is asked for a code here.
            self.confirm_login_allowed(user)
            try:
                amr = second_factor_check(
                    user=user, otp=self.cleaned_data.get("otp", ""), email=email, client_address=address, where=WHERE
                )
            except Throttled as exc:
                raise _throttled(exc) from exc
            except TwoFactorRequired as exc:
                raise ValidationError(self.error_messages["two_factor_required"], code="two_factor_required") from exc
            except InvalidTwoFactorCode as exc:
                raise ValidationError(self.error_messages["invalid_two_factor_code"], code="invalid_two_factor_code") from exc
            self.user_cache = user
            # For AdminSite.login, once Django has logged the user in.
            self.request.staff_signed_in = (user, amr)
        return self.cleaned_data


class StaffPasswordChangeForm(AdminPasswordChangeForm):
    """The admin's "change my password" form: the old password is checked as the API checks one
    (LOGIN_ACCOUNT_RATE, the audit trail), and the new one ends every session, as the API's
    password change does."""

    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        try:
            matched = password_check(user=self.user, password=old_password, action="admin password change")
        except Throttled as exc:
            raise _throttled(exc) from exc
        if not matched:
            raise ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password

    def save(self, commit=True):
        password_replace(user=self.user, password=self.cleaned_data["new_password1"], where="admin site")
        return self.user


def admin_session_renew(request) -> None:
    """Give the signed-in staff member a new server session (after they set their own password,
    which ended all of theirs), as the API's password change does for its caller: with the
    methods of the sign-in it replaces."""
    ended = Session.objects.filter(public_id=request.session.get(SESSION_ID_KEY), user=request.user).first()
    session = session_open(
        user=request.user,
        remember=False,
        amr=ended.amr if ended is not None else ["pwd"],
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        client_address=client_address(request.META),
    )
    request.session[SESSION_ID_KEY] = session.public_id


class AdminSite(admin.AdminSite):
    login_form = StaffLoginForm
    index_title = "Administration"

    # The product's name (PRODUCT_NAME), read at use, where Django says "Django administration".
    @property
    def site_header(self):
        return f"{settings.PRODUCT_NAME} administration"

    @property
    def site_title(self):
        return f"{settings.PRODUCT_NAME} admin"

    # Django's login page, with the form's two-factor field.
    login_template = "admin/accounts/login.html"

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        user, amr = getattr(request, "staff_signed_in", (None, None))
        if user is not None and request.user.is_authenticated and request.user.pk == user.pk:
            self._session_open(request, amr=amr, where=WHERE)
        return response

    def _session_open(self, request, *, amr: list[str], where: str) -> None:
        session = sign_in(
            user=request.user,
            remember=False,
            amr=amr,
            client_address=client_address(request.META),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            where=where,
        )
        request.session[SESSION_ID_KEY] = session.public_id

    def get_urls(self):
        return [path("login/passkey/", self.passkey_login, name="login_passkey"), *super().get_urls()]

    @method_decorator(never_cache)
    @method_decorator(csrf_protect)
    def passkey_login(self, request):
        """POST /admin/login/passkey/: the login page's passkey ceremony (the ceremony, and the
        credential as JSON); staff only. A refusal shows the login page again, with why."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        next_url = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
            next_url = reverse("admin:index", current_app=self.name)
        try:
            credential = json.loads(request.POST.get("credential", ""))
            user, amr = passkey_check(
                ceremony_sealed=request.POST.get("ceremony", "")[:2048],
                credential=credential,
                client_address=client_address(request.META),
                where=WHERE,
            )
        except Throttled as exc:
            return self._login_refused(request, next_url, _throttled(exc).messages[0])
        except (AuthError, ValueError, RecursionError):
            # ValueError, RecursionError: the credential is not JSON, or JSON nested too deeply.
            return self._login_refused(request, next_url, "That passkey did not sign you in.")
        if not user.is_staff:
            # The same words as Django's for a valid non-staff account: nothing more is told.
            audit.record(audit.Type.LOGIN_FAILED, user=user, detail=f"not staff (passkey, {WHERE})")
            return self._login_refused(request, next_url, "That passkey did not sign you in.")
        django_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        self._session_open(request, amr=amr, where=f"passkey, {WHERE}")
        return HttpResponseRedirect(next_url)

    def _login_refused(self, request, next_url: str, reason: str):
        context = {
            **self.each_context(request),
            "title": "Log in",
            "app_path": reverse("admin:login", current_app=self.name),
            "form": self.login_form(request),
            "next": next_url,
            "passkey_error": reason,
            "site_header": self.site_header,
        }
        request.current_app = self.name
        return TemplateResponse(request, self.login_template, context, status=401)

    def has_permission(self, request):
        if not super().has_permission(request):
            return False
        if session_is_open(session_id=request.session.get(SESSION_ID_KEY), user=request.user):
            return True
        # Its server session was ended (or never opened): the browser is signed out.
        logout(request)
        return False

    def password_change(self, request, extra_context=None):
        """Django's view with StaffPasswordChangeForm; the browser stays signed in, on a new session."""
        defaults = {
            "form_class": StaffPasswordChangeForm,
            "success_url": reverse("admin:password_change_done", current_app=self.name),
            "extra_context": {**self.each_context(request), **(extra_context or {})},
        }
        if self.password_change_template is not None:
            defaults["template_name"] = self.password_change_template
        request.current_app = self.name
        response = PasswordChangeView.as_view(**defaults)(request)
        if request.method == "POST" and response.status_code == 302:
            admin_session_renew(request)
        return response

    def logout(self, request, extra_context=None):
        """Django's view (a POST that passed the CSRF check logs out; a GET is refused, 405), then
        the server session ends: only if Django did end the browser's session (flushed, so the
        key is gone), so that <img src=".../admin/logout/"> on some page signs nobody out."""
        session_id = request.session.get(SESSION_ID_KEY)
        response = super().logout(request, extra_context)
        if session_id and request.session.get(SESSION_ID_KEY) != session_id:
            session_end(session_id=session_id, reason=EndReason.SIGNED_OUT)
        return response
