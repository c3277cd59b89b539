"""The admin site: Django's, with the API's sign-in rules and sessions (apart from accounts.admin, whose
import registers the pages on this site).

- The login form checks the email and password through accounts.services.login, as the API does:
  LOGIN_RATE, LOGIN_ADDRESS_RATE and LOGIN_ACCOUNT_RATE, equal timing, the audit trail.
- Each admin login opens one of the server's sessions (it shows in the user's session list); every
  page checks that it is still open, so "sign out everywhere", a password change or reset,
  deactivation and disabling end the admin's browser session too. Logging out ends it.
"""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.contrib.auth import logout
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.addresses import client_address
from accounts.errors import AuthError, Throttled
from accounts.services.credentials import password_check
from accounts.services.login import credentials_check, sign_in
from accounts.services.passwords import password_replace
from accounts.services.sessions import EndReason, session_end, session_is_open, session_open

# The key, in Django's session, of the server session this admin login opened.
SESSION_ID_KEY = "accounts_session_id"
WHERE = "admin site"


class StaffLoginForm(AdminAuthenticationForm):
    def clean(self):
        email, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if email is not None and password:
            try:
                user = credentials_check(
                    email=email, password=password, client_address=client_address(self.request.META), where=WHERE
                )
            except Throttled as exc:
                raise _throttled(exc) from exc
            except AuthError as exc:
                raise self.get_invalid_login_error() from exc
            self.confirm_login_allowed(user)
            self.user_cache = user
            # For AdminSite.login, once Django has logged the user in.
            self.request.staff_signed_in = user
        return self.cleaned_data


def _throttled(exc: Throttled) -> ValidationError:
    return ValidationError("Too many requests. Try again in %(wait)d seconds.", code="throttled", params={"wait": exc.wait})


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
    which ended all of theirs), as the API's password change does for its caller."""
    session = session_open(
        user=request.user,
        remember=False,
        amr=["pwd"],
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        client_address=client_address(request.META),
    )
    request.session[SESSION_ID_KEY] = session.public_id


class AdminSite(admin.AdminSite):
    login_form = StaffLoginForm

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        user = getattr(request, "staff_signed_in", None)
        if user is not None and request.user.is_authenticated and request.user.pk == user.pk:
            session = sign_in(
                user=request.user,
                remember=False,
                amr=["pwd"],
                client_address=client_address(request.META),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
                where=WHERE,
            )
            request.session[SESSION_ID_KEY] = session.public_id
        return response

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
        session_id = request.session.get(SESSION_ID_KEY)
        if session_id:
            session_end(session_id=session_id, reason=EndReason.SIGNED_OUT)
        return super().logout(request, extra_context)
