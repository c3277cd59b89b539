"""Registration and confirmation: POST /api/user, /api/validate/confirmation."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.account.errors import UserAlreadyConfirmed, UserAlreadyExist
from accounts.audit import services as audit
from accounts.notices import services as emails
from accounts.passwords.services import password_validate
from accounts.users.links import Purpose, validation_token_make, validation_token_user
from accounts.users.models import User
from accounts.users.selectors import user_by_email
from accounts.webhooks.events import user_event_emit
from core.errors import PasswordConfirmationInvalid
from core.ratelimit import address_limit


def user_register(*, email: str, name: str, password: str, confirm: str, client_address: str) -> User:
    """Create an unconfirmed account and email its confirmation link, or create nothing.

    Every attempt counts against SIGNUP_RATE for the client address (an IPv6 client's /64).
    """
    address_limit("signup", client_address).check_and_hit()
    if User.objects.with_email(email).exists():
        raise UserAlreadyExist
    if password != confirm:
        raise PasswordConfirmationInvalid
    user = User(email=email, name=name)
    password_validate(password, user=user, field="password")
    user.set_password(password)
    try:
        # The email is sent inside the transaction: if it fails, the account is rolled back.
        with transaction.atomic():
            user.save()
            user_event_emit("user.created", user=user, name=user.name)
            token = validation_token_make(user=user, purpose=Purpose.CONFIRMATION)
            emails.send_confirmation(user=user, token=token)
    except IntegrityError as exc:
        # A concurrent registration of the same email (in any case) won the unique index.
        raise UserAlreadyExist from exc
    audit.record(audit.Type.REGISTER, user=user)
    return user


def account_confirm(*, token: str) -> User:
    """Confirm the account a confirmation token names, and that its email is the user's (a link
    sent after an email change does only the latter); confirming twice is not an error."""
    user = validation_token_user(token=token, purpose=Purpose.CONFIRMATION)
    now = timezone.now()
    with transaction.atomic():
        if user.email_verified_at is None:
            # The token is bound to the current email: whoever followed it reads that mailbox.
            user.email_verified_at = now
            User.objects.filter(pk=user.pk, email_verified_at__isnull=True).update(email_verified_at=now)
        if user.confirmed_at is None:
            user.confirmed_at = now
            if User.objects.filter(pk=user.pk, confirmed_at__isnull=True).update(confirmed_at=now):
                user_event_emit("user.confirmed", user=user)
                audit.record(audit.Type.CONFIRM, user=user)
    return user


def confirmation_resend(*, email: str, client_address: str) -> None:
    """PUT /api/validate/confirmation: every request counts against EMAIL_REQUEST_RATE for the address."""
    address_limit("email_request", client_address).check_and_hit()
    confirmation_send(user=user_by_email(email))


def confirmation_send(*, user: User) -> None:
    """Email a new confirmation link to an unconfirmed account."""
    if user.is_confirmed:
        raise UserAlreadyConfirmed
    emails.send_confirmation(user=user, token=validation_token_make(user=user, purpose=Purpose.CONFIRMATION))
