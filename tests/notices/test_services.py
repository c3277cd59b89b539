"""accounts/notices: the emails the server sends on its own (email-change notices), their limits,
and the queue that sends a lost notice again."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.notices.models import QueuedEmail
from tests.conftest import PASSWORD
from tests.support.api import client_with
from tests.support.contract import THROTTLED, assert_error


NEW_PASSWORD = "a fresh staple battery"


# --- 6. Email quota lockout -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("patch", "/api/authenticate"), ("put", "/api/validate/confirmation")],
    ids=["recovery", "resend"],
)
def test_unauthenticated_email_requests_are_limited_per_address(user_factory, settings, method, path):
    settings.EMAIL_REQUEST_RATE = "3/hour"
    user_factory(email="una@example.com", confirmed=False)
    attacker = APIClient(REMOTE_ADDR="192.0.2.66")

    answers = [getattr(attacker, method)(path, {"email": email}, format="json") for email in ("a@example.com", "b@example.com", "una@example.com")]
    # None throttled: unknown addresses are 401; the unconfirmed account is told to confirm on a
    # recovery (400) and sent its link again on a resend (200).
    assert [answer.status_code for answer in answers] == [401, 401, 400 if method == "patch" else 200]

    # Answered or refused, every request counted: the fourth is throttled, for any email.
    assert_error(getattr(attacker, method)(path, {"email": "una@example.com"}, format="json"), THROTTLED)
    # Another client is not.
    assert getattr(APIClient(REMOTE_ADDR="192.0.2.67"), method)(path, {"email": "nobody@example.com"}, format="json").status_code == 401


def test_a_strangers_recovery_requests_do_not_silence_the_email_change_notice(user, token_for, settings):
    settings.EMAIL_RATE = "5/hour"
    for n in range(5):
        APIClient(REMOTE_ADDR=f"192.0.2.{n}").patch("/api/authenticate", {"email": "ann@example.com"}, format="json")
    assert len(mail.outbox) == 5
    assert_error(APIClient().patch("/api/authenticate", {"email": "ann@example.com"}, format="json"), THROTTLED)

    response = client_with(token_for(user)).patch("/api/user", {"new_email": "ann.new@example.com", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    notices = [m for m in mail.outbox if m.subject == "Your email address was changed"]
    assert [m.to for m in notices] == [["ann@example.com"]]


    # The recovery links the stranger had sent still work for the owner, who holds the mailbox;
    # the email change killed them (item 7), so the owner would ask again from their new address.


def test_a_lost_notice_is_queued_and_sent_again(user, token_for, settings):
    settings.EMAIL_BACKEND = "tests.conftest.FailingEmailBackend"
    token = token_for(user)
    body = {"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}

    assert client_with(token).put("/api/authenticate", body, format="json").status_code == 200

    (queued,) = QueuedEmail.objects.all()
    assert (queued.kind, queued.to, queued.attempts) == ("password_changed", "ann@example.com", 1)
    assert "recover" not in queued.body.lower() or "/recover/" not in queued.body  # no link, no token

    # Still failing: retried later, with a longer wait.
    later = timezone.now() + timedelta(minutes=2)
    QueuedEmail.objects.update(next_attempt_at=timezone.now())
    call_command("send_queued_emails", stdout=_Out())
    queued.refresh_from_db()
    assert queued.attempts == 2 and queued.next_attempt_at > timezone.now()

    # The mail server is back: sent, and the queue is empty.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    QueuedEmail.objects.update(next_attempt_at=later - timedelta(minutes=5))
    out = _Out()
    call_command("send_queued_emails", stdout=out)
    assert out.text == "sent 1, failed 0 (will retry), given up 0\n"
    assert QueuedEmail.objects.count() == 0
    assert [m.subject for m in mail.outbox] == ["Your password was changed"]


def test_a_notice_that_cannot_be_sent_for_a_day_is_given_up(user, settings):
    settings.EMAIL_BACKEND = "tests.conftest.FailingEmailBackend"
    QueuedEmail.objects.create(kind="email_changed", to="old@example.com", subject="s", body="b", created_at=timezone.now() - timedelta(days=2))
    out = _Out()

    call_command("send_queued_emails", stdout=out)

    assert out.text == "sent 0, failed 0 (will retry), given up 1\n"
    assert QueuedEmail.objects.count() == 0


class _Out:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


# --- EMAIL_RATE counts the mailbox, not the spelling ------------------------------------------


def test_email_rate_is_keyed_on_the_address_mail_is_delivered_to(user_factory, settings):
    """Accounts stored before the address rule under spellings that reach one mailbox (invisible
    characters dropped by IDNA, a domain in another case) share that mailbox's EMAIL_RATE."""
    from accounts.notices import services
    from core.errors import Throttled

    settings.EMAIL_RATE = "5/hour"
    users = [user_factory(email=email) for email in ("x@exam\u00adple.com", "x@exam\u200bple.com", "y@example.com")]
    users[2].email = "x@EXAMPLE.com"  # not saved: a third spelling of one mailbox
    sent = refused = 0
    for n in range(9):
        try:
            services.send_recovery(user=users[n % 3], token="t")
        except Throttled:
            refused += 1
        else:
            sent += 1

    assert (sent, refused) == (5, 4)
    assert {message.to[0].lower() for message in mail.outbox} == {"x@example.com"}


# --- What a stranger can make the server say to an address not yet confirmed -------------------

LONG_NAME = "Win\u2028a prize:\r\ncall +1-555-0100 now, or visit evil.example before it ends"


def test_a_registration_name_is_cut_to_one_line_of_40_characters_in_the_confirmation_email(db):
    response = APIClient().post("/api/user", {"email": "target@example.com", "name": LONG_NAME[:150].replace("\r\n", " "), "password": PASSWORD, "confirm": PASSWORD}, format="json")
    assert response.status_code == 200

    [message] = mail.outbox
    shown = "Win a prize: call +1-555-0100 now, or vi\u2026"
    assert message.subject == f"Welcome, {shown}"
    assert message.body.splitlines()[0] == f"Hello {shown},"
    assert "evil.example" not in message.subject + message.body


def test_a_short_name_is_kept_whole_on_one_line(user_factory):
    from accounts.notices import services

    user = user_factory(email="una@example.com", name="Una\u2029Example", confirmed=False)
    services.send_confirmation(user=user, token="t")

    [message] = mail.outbox
    assert message.subject == "Welcome, Una Example"
    assert message.body.splitlines()[0] == "Hello Una Example,"


def test_mail_to_an_unconfirmed_address_cuts_the_name_mail_to_a_confirmed_one_does_not(user, token_for):
    user.name = LONG_NAME.replace("\r\n", " ")
    user.save(update_fields=["name"])

    response = client_with(token_for(user)).patch("/api/user", {"new_email": "ann.new@example.com", "password": PASSWORD}, format="json")
    assert response.status_code == 200

    greetings = {message.to[0]: message.body.splitlines()[0] for message in mail.outbox}
    assert greetings["ann.new@example.com"] == "Hello Win a prize: call +1-555-0100 now, or vi\u2026,"
    # The old address was confirmed: its owner's own name, whole.
    assert [message.body.startswith(f"Hello {user.name},") for message in mail.outbox if message.to == ["ann@example.com"]] == [True]
