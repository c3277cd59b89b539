"""Passwords: change, recovery by email, reset, and staff setting one.

Every change of password ends every session of the user (a password change opens a new one for
the caller) and sends the user a notice.
"""

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.audit import services as audit
from accounts.notices import services as emails
from accounts.passwords.credentials import account_failures_clear, password_check
from accounts.sessions.models import Session
from accounts.sessions.services import EndReason, session_open, sessions_end
from accounts.sessions.tokens import auth_token_issue
from accounts.users.links import Purpose, validation_token_make, validation_token_user
from accounts.users.models import User
from accounts.users.selectors import user_by_email
from accounts.webhooks.events import user_event_emit
from core.errors import (
    AccountDisabled,
    InvalidCredentials,
    InvalidToken,
    PasswordConfirmationInvalid,
    UserConfirmationRequired,
)
from core.ratelimit import address_limit


def password_validate(password: str, *, user: User, field: str) -> None:
    """Run Django's password validators; their messages go under `field`."""
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from exc


def password_change(
    *,
    user: User,
    session: Session,
    password: str,
    new_password: str,
    confirm: str,
    client_address: str,
    user_agent: str = "",
) -> str:
    """Set a new password, end every session of the user and return a token of a new one."""
    if new_password != confirm:
        raise PasswordConfirmationInvalid
    if not password_check(user=user, password=password, action="password change"):
        raise InvalidCredentials
    password_validate(new_password, user=user, field="new_password")
    with transaction.atomic():
        ended = _password_store(user=user, password=new_password, how="changed")
        new = session_open(
            user=user, remember=session.remember, amr=session.amr, user_agent=user_agent, client_address=client_address
        )
    audit.record(audit.Type.PASSWORD_CHANGE, user=user, detail=f"{ended} sessions ended")
    emails.send_password_changed(user=user, how="changed")
    return auth_token_issue(session=new, user=user, now=new.created_at)


def password_replace(*, user: User, password: str, where: str) -> None:
    """Set a new password the user chose and whose old one was checked elsewhere (the admin
    site's own form): every session ends, and the user is told."""
    with transaction.atomic():
        ended = _password_store(user=user, password=password, how="changed")
    audit.record(audit.Type.PASSWORD_CHANGE, user=user, detail=f"{where}, {ended} sessions ended")
    emails.send_password_changed(user=user, how=f"changed in the {where}")


def _password_store(*, user: User, password: str, how: str) -> int:
    """Save the new password and end every session of the user (in the caller's transaction);
    return how many were open."""
    user.set_password(password)
    user.save(update_fields=["password"])
    user_event_emit("user.password_changed", user=user, how=how)
    return sessions_end(user=user, reason=EndReason.PASSWORD_CHANGE)


def recovery_send(*, user: User) -> None:
    """Email a password recovery link to a confirmed account that staff did not disable."""
    if not user.is_confirmed:
        raise UserConfirmationRequired
    if not user.is_active:
        raise AccountDisabled
    emails.send_recovery(user=user, token=validation_token_make(user=user, purpose=Purpose.RECOVERY))
    audit.record(audit.Type.RECOVERY_REQUEST, user=user)


def recovery_request(*, email: str, client_address: str) -> None:
    """PATCH /api/authenticate: every request counts against EMAIL_REQUEST_RATE for the address."""
    address_limit("email_request", client_address).check_and_hit()
    recovery_send(user=user_by_email(email))


def password_reset(*, token: str, new_password: str, confirm: str) -> None:
    """Set the password a recovery token allows; the token is spent and every session ends."""
    user = validation_token_user(token=token, purpose=Purpose.RECOVERY)
    if new_password != confirm:
        raise PasswordConfirmationInvalid
    password_validate(new_password, user=user, field="new_password")
    with transaction.atomic():
        # Compare-and-set on the state the token was made from (`user` is left as read): of two
        # resets with one token, one writes and the other finds the state changed.
        updated = User.objects.filter(
            pk=user.pk, password=user.password, last_login=user.last_login, email=user.email
        ).update(password=make_password(new_password))
        if not updated:
            raise InvalidToken
        user_event_emit("user.password_changed", user=user, how="reset")
        ended = sessions_end(user=user, reason=EndReason.RECOVERY)
    account_failures_clear(user=user)
    audit.record(audit.Type.RECOVERY_COMPLETE, user=user, detail=f"{ended} sessions ended")
    emails.send_password_changed(user=user, how="reset with a recovery link")


def password_set(*, user: User, password: str | None) -> None:
    """Set a password chosen by staff (None: no usable password); every session ends.

    The caller records the staff action (the admin, in UserAdmin.log_change)."""
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    with transaction.atomic():
        user.save(update_fields=["password"])
        user_event_emit("user.password_changed", user=user, how="set_by_staff")
        sessions_end(user=user, reason=EndReason.STAFF)
