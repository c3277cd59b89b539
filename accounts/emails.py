"""The only place that sends mail. Bodies are text templates under templates/accounts/email/."""

import logging
import smtplib

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from accounts.errors import CouldNotSendEmail
from accounts.models import User
from accounts.ratelimit import RateLimit

logger = logging.getLogger(__name__)


def _send(*, to: str, subject: str, template: str, context: dict) -> None:
    """Send one email, or raise Throttled (EMAIL_RATE for this address) or CouldNotSendEmail."""
    sent = RateLimit("email", to.lower())
    sent.check()
    body = render_to_string(f"accounts/email/{template}", context)
    # A header cannot hold a line break; names set by staff are not filtered like API input.
    subject = " ".join(subject.split())
    try:
        send_mail(subject, body, settings.MAIL_SENDER, [to], fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        logger.warning("Could not send %r to %s: %s", subject, to, exc)
        raise CouldNotSendEmail from exc
    sent.hit()


def send_confirmation(*, user: User, token: str) -> None:
    """Send the confirmation link (the same for the first email and every resend)."""
    link = f"{settings.CLIENT_ORIGIN}{settings.CONFIRMATION_URL}/{token}"
    _send(
        to=user.email,
        subject=f"Welcome, {user.name}",
        template="confirmation.txt",
        context={"user": user, "link": link, "max_age_hours": settings.CONFIRMATION_MAX_AGE // 3600},
    )


def send_recovery(*, user: User, token: str) -> None:
    """Send the password recovery link."""
    link = f"{settings.CLIENT_ORIGIN}{settings.RECOVER_URL}/{token}"
    _send(
        to=user.email,
        subject="Recover Your Account",
        template="recovery.txt",
        context={"user": user, "link": link, "max_age_minutes": settings.RECOVERY_MAX_AGE // 60},
    )


def send_email_changed(*, user: User, old_email: str) -> None:
    """Tell the old address that the account's email changed."""
    _send(
        to=old_email,
        subject="Your email address was changed",
        template="email_changed.txt",
        context={"user": user, "old_email": old_email},
    )
