"""Every write the API, the admin or a command can cause, as plain functions.

They take values, not requests, and raise the errors of accounts.errors; the callers turn the
results into responses. Checks run in the order the contract lists them.
"""

import logging
from datetime import timedelta

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import audit, emails
from accounts.errors import (
    AccountDisabled,
    AuthError,
    CouldNotSendEmail,
    InvalidCredentials,
    InvalidPassword,
    InvalidToken,
    NoUpdatesToMake,
    PasswordConfirmationInvalid,
    Throttled,
    UserAlreadyConfirmed,
    UserAlreadyExist,
    UserConfirmationRequired,
)
from accounts.models import AuthEvent, User
from accounts.ratelimit import RateLimit
from accounts.tokens import AuthToken, Purpose, auth_token_issue, validation_token_make, validation_token_user

logger = logging.getLogger(__name__)


def _password_validate(password: str, *, user: User, field: str) -> None:
    """Run Django's password validators; their messages go under `field`."""
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from exc


def _password_matches(user: User | None, password: str) -> bool:
    """Check the password; without a user, hash it anyway so that the answer takes as long
    as for a real account and does not tell which emails exist (Django ticket #20760)."""
    if user is None:
        User().set_password(password)
        return False
    return user.check_password(password)


def _user_by_email(email: str) -> User:
    user = User.objects.with_email(email).first()
    if user is None:
        raise InvalidCredentials
    return user


def user_register(*, email: str, name: str, password: str, confirm: str, client_address: str) -> User:
    """Create an unconfirmed account and email its confirmation link, or create nothing.

    Every attempt counts against SIGNUP_RATE for the client address.
    """
    RateLimit("signup", client_address).check_and_hit()
    if User.objects.with_email(email).exists():
        raise UserAlreadyExist
    if password != confirm:
        raise PasswordConfirmationInvalid
    user = User(email=email, name=name)
    _password_validate(password, user=user, field="password")
    user.set_password(password)
    try:
        # The email is sent inside the transaction: if it fails, the account is rolled back.
        with transaction.atomic():
            user.save()
            token = validation_token_make(user=user, purpose=Purpose.CONFIRMATION)
            emails.send_confirmation(user=user, token=token)
    except IntegrityError as exc:
        # A concurrent registration of the same email (in any case) won the unique index.
        raise UserAlreadyExist from exc
    audit.record(audit.Type.REGISTER, user=user)
    return user


def account_confirm(*, token: str) -> User:
    """Confirm the account a confirmation token names; confirming twice is not an error."""
    user = validation_token_user(token=token, purpose=Purpose.CONFIRMATION)
    if user.confirmed_at is None:
        user.confirmed_at = timezone.now()
        if User.objects.filter(pk=user.pk, confirmed_at__isnull=True).update(confirmed_at=user.confirmed_at):
            audit.record(audit.Type.CONFIRM, user=user)
    return user


def confirmation_resend(*, email: str) -> None:
    """Email a new confirmation link to an unconfirmed account."""
    user = _user_by_email(email)
    if user.is_confirmed:
        raise UserAlreadyConfirmed
    emails.send_confirmation(user=user, token=validation_token_make(user=user, purpose=Purpose.CONFIRMATION))


def user_login(*, email: str, password: str, remember: bool = False, client_address: str) -> str:
    """Check the credentials and return a new auth token; a deactivated account is reactivated.

    Failed attempts count against LOGIN_RATE for this email and client address; once it is
    reached, every attempt is refused until the window moves on, right password or not.
    """
    failures = RateLimit("login", f"{email.lower()}|{client_address}")
    user = None
    try:
        failures.check()
        user = User.objects.with_email(email).first()
        if not _password_matches(user, password):
            failures.hit()
            raise InvalidCredentials
        if not user.is_confirmed:
            raise UserConfirmationRequired
        if not user.is_active:
            raise AccountDisabled
    except Throttled:
        # The failures that reached the limit are recorded; a flood of refusals writes nothing.
        raise
    except AuthError as exc:
        audit.record(audit.Type.LOGIN_FAILED, user=user, email=email, detail=exc.message)
        raise
    now = timezone.now()
    user.last_login = now
    fields = ["last_login"]
    if user.is_deactivated:
        # Reactivation: tokens issued before (and during) the deactivation stay dead.
        user.deactivated_at = None
        user.tokens_valid_after = now
        fields += ["deactivated_at", "tokens_valid_after"]
        audit.record(audit.Type.REACTIVATE, user=user)
    user.save(update_fields=fields)
    audit.record(audit.Type.LOGIN, user=user, detail="remember" if remember else "")
    return auth_token_issue(user=user, remember=remember, now=now)


def password_change(*, user: User, token: AuthToken, password: str, new_password: str, confirm: str) -> str:
    """Set a new password, revoke every other token of the user and return a new one."""
    if new_password != confirm:
        raise PasswordConfirmationInvalid
    if not user.check_password(password):
        raise InvalidCredentials
    _password_validate(new_password, user=user, field="new_password")
    now = timezone.now()
    user.set_password(new_password)
    user.tokens_valid_after = now
    user.save(update_fields=["password", "tokens_valid_after"])
    audit.record(audit.Type.PASSWORD_CHANGE, user=user)
    return auth_token_issue(user=user, remember=token["remember"], now=now)


def recovery_request(*, email: str) -> None:
    """Email a password recovery link to a confirmed account."""
    user = _user_by_email(email)
    if not user.is_confirmed:
        raise UserConfirmationRequired
    if not user.is_active:
        raise AccountDisabled
    emails.send_recovery(user=user, token=validation_token_make(user=user, purpose=Purpose.RECOVERY))
    audit.record(audit.Type.RECOVERY_REQUEST, user=user)


def password_reset(*, token: str, new_password: str, confirm: str) -> None:
    """Set the password a recovery token allows; the token is spent and all auth tokens die."""
    user = validation_token_user(token=token, purpose=Purpose.RECOVERY)
    if new_password != confirm:
        raise PasswordConfirmationInvalid
    _password_validate(new_password, user=user, field="new_password")
    # Compare-and-set on the state the token was made from (`user` is left as read): of two
    # resets with one token, one writes and the other finds the state changed.
    updated = User.objects.filter(
        pk=user.pk, password=user.password, tokens_valid_after=user.tokens_valid_after
    ).update(password=make_password(new_password), tokens_valid_after=timezone.now())
    if not updated:
        raise InvalidToken
    audit.record(audit.Type.RECOVERY_COMPLETE, user=user)


def user_delete(*, user: User, password: str) -> None:
    """Delete the account and everything of it, after checking the password."""
    if not user.check_password(password):
        raise InvalidCredentials
    email = user.email
    user.delete()
    audit.record(audit.Type.DELETE, email=email)


def profile_update(*, user: User, name: str | None) -> User:
    """Change the profile (the name)."""
    if not name:
        raise NoUpdatesToMake
    user.name = name
    user.save(update_fields=["name"])
    return user


def email_change(*, user: User, new_email: str, password: str) -> User:
    """Change the login email at once and tell the old address."""
    if not user.check_password(password):
        raise InvalidPassword
    if User.objects.with_email(new_email).exclude(pk=user.pk).exists():
        raise UserAlreadyExist
    old_email = user.email
    user.email = new_email
    try:
        with transaction.atomic():
            user.save(update_fields=["email"])
    except IntegrityError as exc:
        raise UserAlreadyExist from exc
    audit.record(audit.Type.EMAIL_CHANGE, user=user, detail=f"from {old_email}")
    if old_email.lower() != new_email.lower():
        try:
            emails.send_email_changed(user=user, old_email=old_email)
        except (CouldNotSendEmail, Throttled):
            # The change is made and the client told so; a lost notice must not undo it.
            logger.warning("Email change notice for user %s not sent", user.pk)
    return user


def user_deactivate(*, user: User) -> None:
    """Deactivate the account (the user's choice); logging in again reactivates it."""
    now = timezone.now()
    user.deactivated_at = now
    user.tokens_valid_after = now
    user.save(update_fields=["deactivated_at", "tokens_valid_after"])
    audit.record(audit.Type.DEACTIVATE, user=user)


def validation_token_issue(*, email: str, purpose: Purpose) -> str:
    """Return a validation token for the account with this email (for operators)."""
    user = User.objects.with_email(email).first()
    if user is None:
        raise User.DoesNotExist(f"No user with email {email!r}")
    return validation_token_make(user=user, purpose=purpose)


# --- staff and operators ------------------------------------------------------------------------


def staff_action_record(*, user: User, actor: User | None, action: str) -> None:
    """Record a staff action on an account; `actor` None means an operator's command."""
    by = actor.email if actor is not None else "an operator command"
    audit.record(audit.Type.STAFF_ACTION, user=user, detail=f"{action} by {by}")


def user_confirm(*, user: User, actor: User | None) -> bool:
    """Confirm an account without its email link; return False if it was confirmed already."""
    if user.is_confirmed:
        return False
    user.confirmed_at = timezone.now()
    user.save(update_fields=["confirmed_at"])
    staff_action_record(user=user, actor=actor, action="confirmed")
    return True


def user_set_active(*, user: User, active: bool, actor: User | None) -> bool:
    """Disable (or enable again) an account; disabling revokes its tokens. Return False if
    the account was in that state already."""
    if user.is_active == active:
        return False
    user.is_active = active
    fields = ["is_active"]
    if not active:
        user.tokens_valid_after = timezone.now()
        fields.append("tokens_valid_after")
    user.save(update_fields=fields)
    staff_action_record(user=user, actor=actor, action="enabled" if active else "disabled")
    return True


def password_set(*, user: User, password: str | None) -> None:
    """Set a password chosen by staff (None: no usable password); the user is signed out.

    The caller records the staff action (the admin, in UserAdmin.log_change)."""
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.tokens_valid_after = timezone.now()
    user.save(update_fields=["password", "tokens_valid_after"])


def tokens_revoke(*, user: User, actor: User | None) -> None:
    """Sign the user out everywhere: every auth token issued so far stops working."""
    user.tokens_valid_after = timezone.now()
    user.save(update_fields=["tokens_valid_after"])
    staff_action_record(user=user, actor=actor, action="signed out everywhere")


def staff_confirmation_send(*, user: User, actor: User | None) -> None:
    """Send a new confirmation email, as PUT /api/validate/confirmation does."""
    confirmation_resend(email=user.email)
    staff_action_record(user=user, actor=actor, action="sent a confirmation email")


def staff_recovery_send(*, user: User, actor: User | None) -> None:
    """Send a recovery email, as PATCH /api/authenticate does."""
    recovery_request(email=user.email)
    staff_action_record(user=user, actor=actor, action="sent a recovery email")


def auth_events_prune(*, older_than_days: int) -> int:
    """Delete the audit events older than the given number of days; return how many."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = AuthEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted
