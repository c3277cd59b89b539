"""The only place that sends mail. Every email is multipart: a text part from
templates/accounts/email/<kind>.txt and an HTML part, both carrying the same link. The HTML part of
an email with a link is <kind>.html (the product's name, a button, the link written out); that of a
security notice is notice.html, its text in HTML. Both extend base.html; an operator overrides any
of them with a template of the same name in a directory of their own (TEMPLATES' DIRS).

Two kinds of email:
- Links (confirmation, recovery): counted against EMAIL_RATE for the recipient; a failure is
  CouldNotSendEmail, which the caller turns into the contract's 500 (and, for a registration,
  into no account at all).
- Security notices (email changed, password changed, two-factor on or off, recovery code used):
  never refused by the recipient's EMAIL_RATE (a stranger's recovery requests must not silence
  them), and never lost: one that cannot be sent at once is queued (QueuedEmail) and sent again by
  `python manage.py send_queued_emails`. They hold no link and no token, so a queued body is safe
  to keep.
"""

import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.notices.errors import CouldNotSendEmail
from accounts.notices.models import QueuedEmail
from accounts.users.models import User, email_delivery
from core import metrics
from core.errors import Throttled
from core.ratelimit import RateLimit

logger = logging.getLogger(__name__)

# Queued notices: retried after 1, 2, 4, ... minutes (at most an hour apart), for a day.
QUEUE_GIVE_UP_AFTER = timedelta(days=1)
QUEUE_MAX_BACKOFF = timedelta(hours=1)
# The name as shown to an address not shown to be the user's: anyone can register any address
# with a name of their choice, so that is all the text of theirs it gets (the subject included).
UNPROVEN_NAME_MAX_LENGTH = 40


def _deliver(*, kind: str, to: str, subject: str, body: str, html: str) -> None:
    """Hand one email (its text `body` and its `html`) to the backend, or raise CouldNotSendEmail;
    counted in /metrics by `kind`."""
    # A header cannot hold a line break; names set by staff are not filtered like API input.
    subject = " ".join(subject.split())
    message = EmailMultiAlternatives(subject, body, settings.MAIL_SENDER, [email_delivery(to)])
    message.attach_alternative(html, "text/html")
    try:
        message.send(fail_silently=False)
    except (smtplib.SMTPException, OSError, UnicodeError, ValueError) as exc:
        # UnicodeError, ValueError: an address the mail library cannot encode.
        logger.warning("Could not send %r to %s: %s", subject, to, exc)
        metrics.email_counted(kind=kind, sent=False)
        raise CouldNotSendEmail from exc
    metrics.email_counted(kind=kind, sent=True)


def _name_shown(user: User, *, proven: bool) -> str:
    """The user's name as the email shows it: whole to an address shown to be theirs (`proven`);
    else on one line (line breaks and other spaces collapsed to one space), at most
    UNPROVEN_NAME_MAX_LENGTH characters, then "…"."""
    if proven:
        return user.name
    name = " ".join(user.name.split())
    return name if len(name) <= UNPROVEN_NAME_MAX_LENGTH else name[:UNPROVEN_NAME_MAX_LENGTH] + "\u2026"


def _body(kind: str, context: dict) -> str:
    """Render the text part of an email of this kind: templates/accounts/email/<kind>.txt."""
    return render_to_string(f"accounts/email/{kind}.txt", context)


def _html(kind: str, context: dict, *, subject: str, body: str) -> str:
    """Render the HTML part: <kind>.html for an email with a link (its context holds `link`), else
    notice.html, from the subject and the text part alone (so that a queued notice sent again
    renders as the first attempt did)."""
    shown = {"product_name": settings.PRODUCT_NAME, "subject": subject}
    if "link" in context:
        return render_to_string(f"accounts/email/{kind}.html", {**context, **shown})
    return render_to_string("accounts/email/notice.html", {**shown, "body": body})


def _send_link(*, kind: str, to: str, subject: str, context: dict) -> None:
    """Send an email with a link, or raise Throttled (EMAIL_RATE for this address) or CouldNotSendEmail."""
    # Keyed on the mailbox: the address mail goes to, lower-cased (spellings of one address count as one).
    sent = RateLimit("email", email_delivery(to).lower())
    sent.check()
    body = _body(kind, context)
    _deliver(kind=kind, to=to, subject=subject, body=body, html=_html(kind, context, subject=subject, body=body))
    sent.hit()


def _send_notice(*, kind: str, to: str, subject: str, context: dict) -> None:
    """Send a security notice now, or queue it to be sent again; never raises for the mail server."""
    body = _body(kind, context)
    try:
        _deliver(kind=kind, to=to, subject=subject, body=body, html=_html(kind, context, subject=subject, body=body))
    except CouldNotSendEmail as exc:
        QueuedEmail.objects.create(
            kind=kind,
            to=to,
            subject=subject,
            body=body,
            next_attempt_at=timezone.now() + timedelta(minutes=1),
            last_error=str(exc.__cause__)[:255],
        )
        logger.warning("Notice %r to %s queued to be sent again", kind, to)


def send_confirmation(*, user: User, token: str) -> None:
    """Send the confirmation link (the same for the first email and every resend)."""
    link = f"{settings.CLIENT_ORIGIN}{settings.CONFIRMATION_URL}/{token}"
    name = _name_shown(user, proven=user.is_email_verified)
    _send_link(
        kind="confirmation",
        to=user.email,
        subject=f"Welcome, {name}",
        context={"user": user, "name": name, "link": link, "max_age_hours": settings.CONFIRMATION_MAX_AGE // 3600},
    )


def send_recovery(*, user: User, token: str) -> None:
    """Send the password recovery link."""
    link = f"{settings.CLIENT_ORIGIN}{settings.RECOVER_URL}/{token}"
    _send_link(
        kind="recovery",
        to=user.email,
        subject="Recover Your Account",
        context={"user": user, "name": _name_shown(user, proven=user.is_email_verified), "link": link, "max_age_minutes": settings.RECOVERY_MAX_AGE // 60},
    )


def send_email_changed(*, user: User, old_email: str, counted: bool = False) -> None:
    """Tell the old address that the account's email changed: a security notice, or, to an
    address never shown to be the user's (`counted`), an email within its EMAIL_RATE, dropped
    (and logged) when refused or failed."""
    subject = "Your email address was changed"
    context = {"user": user, "name": _name_shown(user, proven=not counted), "old_email": old_email}
    if not counted:
        _send_notice(kind="email_changed", to=old_email, subject=subject, context=context)
        return
    try:
        _send_link(kind="email_changed", to=old_email, subject=subject, context=context)
    except (CouldNotSendEmail, Throttled):
        logger.warning("Email change notice to an unverified address not sent (user %s)", user.pk)


def send_email_verification(*, user: User, token: str) -> None:
    """Send the new address, after an email change, the link that shows it is the user's; counted
    against its EMAIL_RATE, dropped (and logged) when refused or failed: the change stands."""
    link = f"{settings.CLIENT_ORIGIN}{settings.CONFIRMATION_URL}/{token}"
    try:
        _send_link(
            kind="email_verification",
            to=user.email,
            subject="Confirm your new email address",
            context={"user": user, "name": _name_shown(user, proven=False), "link": link, "max_age_hours": settings.CONFIRMATION_MAX_AGE // 3600},
        )
    except (CouldNotSendEmail, Throttled):
        logger.warning("Verification link for a changed email not sent (user %s)", user.pk)


def _notify_user(kind: str, subject: str, *, user: User, **context) -> None:
    """Send the user a security notice about their own account (queued if the mail server fails)."""
    name = _name_shown(user, proven=user.is_email_verified)
    _send_notice(kind=kind, to=user.email, subject=subject, context={"user": user, "name": name, **context})


def send_password_changed(*, user: User, how: str) -> None:
    """Tell the user that the password changed (`how`: "changed", "reset by email", ...)."""
    _notify_user("password_changed", "Your password was changed", user=user, how=how)


def send_two_factor_enabled(*, user: User) -> None:
    """Tell the user that two-factor sign-in was turned on."""
    _notify_user("two_factor_enabled", "Two-factor sign-in was turned on", user=user)


def send_two_factor_disabled(*, user: User, how: str) -> None:
    """Tell the user that two-factor sign-in was turned off (`how`: "by our staff (a reset)", ...)."""
    _notify_user("two_factor_disabled", "Two-factor sign-in was turned off", user=user, how=how)


def send_passkey_added(*, user: User, name: str) -> None:
    """Tell the user that a passkey was added to their account."""
    _notify_user("passkey_added", "A passkey was added to your account", user=user, passkey=name)


def send_passkey_removed(*, user: User, name: str, how: str) -> None:
    """Tell the user that a passkey was removed (`how`: "with your password", "by our staff")."""
    _notify_user("passkey_removed", "A passkey was removed from your account", user=user, passkey=name, how=how)


def send_recovery_code_used(*, user: User, codes_left: int) -> None:
    """Tell the user that one of their recovery codes was used, and how many are left."""
    _notify_user("recovery_code_used", "A recovery code was used", user=user, codes_left=codes_left)


def queued_send(*, now=None) -> tuple[int, int, int]:
    """Send the queued notices that are due; return (sent, failed again, given up)."""
    now = now or timezone.now()
    sent = failed = given_up = 0
    for email in QueuedEmail.objects.filter(next_attempt_at__lte=now):
        try:
            html = _html(email.kind, {}, subject=email.subject, body=email.body)
            _deliver(kind=email.kind, to=email.to, subject=email.subject, body=email.body, html=html)
        except CouldNotSendEmail as exc:
            if now - email.created_at >= QUEUE_GIVE_UP_AFTER:
                logger.error("Notice %r to %s given up after %d attempts", email.kind, email.to, email.attempts + 1)
                email.delete()
                given_up += 1
                continue
            email.attempts += 1
            email.next_attempt_at = now + min(timedelta(minutes=2 ** (email.attempts - 1)), QUEUE_MAX_BACKOFF)
            email.last_error = str(exc.__cause__)[:255]
            email.save(update_fields=["attempts", "next_attempt_at", "last_error"])
            failed += 1
        else:
            email.delete()
            sent += 1
    return sent, failed, given_up
