"""Email through a real SMTP server (aiosmtpd on 127.0.0.1), not Django's in-memory outbox.

Covers the SMTP path end to end: a registration delivers the confirmation email (subject, sender,
recipient, a link whose token confirms the account); the EMAIL_* and MAIL_SENDER variables reach
Django's SMTP backend (`manage.py sendtestemail` in a subprocess); and a mail server that is down,
refuses the recipient or never answers turns into CouldNotSendEmail with nothing created.
"""

import json
import re
import socket

import pytest

from accounts.users.models import User
from tests.conftest import PASSWORD, run
from tests.support.contract import COULD_NOT_SEND_EMAIL
from tests.support.servers import free_port
from tests.support.smtp import body_text, smtp_sink


@pytest.fixture
def smtp_server():
    """Run an SMTP server on a free local port; yield its collector (with .port)."""
    with smtp_sink() as collector:
        yield collector


def use_smtp(settings, port: int, *, timeout: int = 10) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = timeout


@pytest.fixture
def smtp(settings, smtp_server):
    """Send the server's email to the SMTP server of `smtp_server`."""
    use_smtp(settings, smtp_server.port)
    return smtp_server


def register(client, *, email="new@example.com", name="New Person"):
    return client.post(
        "/api/user",
        data=json.dumps({"email": email, "name": name, "password": PASSWORD, "confirm": PASSWORD}),
        content_type="application/json",
    )


# --- Delivery ------------------------------------------------------------------------------------


def test_registration_sends_the_confirmation_email_over_smtp(db, client, settings, smtp):
    settings.MAIL_SENDER = "Auth Tests <noreply@auth.example>"

    response = register(client)

    assert response.status_code == 200
    assert json.loads(response.content) == {"user": "new@example.com"}
    assert len(smtp.messages) == 1
    recipients, message = smtp.messages[0]
    assert recipients == ["new@example.com"]
    assert message["To"] == "new@example.com"
    assert message["Subject"] == "Welcome, New Person"
    assert message["From"] == "Auth Tests <noreply@auth.example>"
    prefix = f"{settings.CLIENT_ORIGIN}{settings.CONFIRMATION_URL}/"
    match = re.search(re.escape(prefix) + r"([A-Za-z0-9_\-.:]+)", body_text(message))
    assert match, body_text(message)

    # The emailed link is the real thing: its token confirms the account.
    confirmed = client.post(
        "/api/validate/confirmation",
        data=json.dumps({"token": match.group(1)}),
        content_type="application/json",
    )
    assert json.loads(confirmed.content) == {"message": "Account confirmed"}
    assert User.objects.get(email="new@example.com").confirmed_at is not None


def test_non_ascii_name_survives_the_subject_header(db, client, smtp):
    response = register(client, email="zoe@example.com", name="Zoë Ærøskøbing")

    assert response.status_code == 200
    [(recipients, message)] = smtp.messages
    assert recipients == ["zoe@example.com"]
    assert message["Subject"] == "Welcome, Zoë Ærøskøbing"


def test_recovery_email_goes_over_smtp(client, settings, smtp, user):
    response = client.patch(
        "/api/authenticate", data=json.dumps({"email": user.email}), content_type="application/json"
    )

    assert json.loads(response.content) == {"message": "Recovery link sent"}
    [(recipients, message)] = smtp.messages
    assert recipients == [user.email]
    assert message["Subject"] == "Recover Your Account"
    assert f"{settings.CLIENT_ORIGIN}{settings.RECOVER_URL}/" in body_text(message)


# --- The environment reaches the SMTP backend ---------------------------------------------------


def sendtestemail(project, **variables: str):
    """Run `manage.py sendtestemail someone@example.com` in a fresh process, DEBUG on, plus `variables`."""
    return run(project, "manage.py", "sendtestemail", "someone@example.com", DEBUG="true", **variables)


def test_sendtestemail_uses_the_email_variables(project, smtp_server):
    result = sendtestemail(
        project,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_server.port),
        EMAIL_USE_TLS="false",
        MAIL_SENDER="Env Sender <env-sender@auth.example>",
    )

    assert result.returncode == 0, result.stderr
    [(recipients, message)] = smtp_server.messages
    assert recipients == ["someone@example.com"]
    assert message["From"] == "Env Sender <env-sender@auth.example>"
    assert "Test email" in message["Subject"]


def test_without_email_host_nothing_goes_to_smtp(project, smtp_server):
    """With EMAIL_HOST unset, emails are printed to the console, even with EMAIL_PORT set."""
    result = sendtestemail(project, EMAIL_PORT=str(smtp_server.port), EMAIL_USE_TLS="false")

    assert result.returncode == 0, result.stderr
    assert smtp_server.messages == []
    assert "someone@example.com" in result.stdout


# --- Failures ------------------------------------------------------------------------------------


def test_smtp_server_down_fails_registration_and_creates_nothing(db, client, settings):
    use_smtp(settings, free_port())  # nothing listens there

    response = register(client)

    assert response.status_code == 500
    assert json.loads(response.content) == COULD_NOT_SEND_EMAIL
    assert not User.objects.exists()


def test_smtp_server_down_then_up_lets_the_same_email_register(db, client, settings, smtp_server):
    """The failed attempt left nothing behind: the same address registers once mail works."""
    use_smtp(settings, free_port())
    assert json.loads(register(client).content) == COULD_NOT_SEND_EMAIL

    use_smtp(settings, smtp_server.port)
    response = register(client)

    assert json.loads(response.content) == {"user": "new@example.com"}
    assert User.objects.count() == 1
    assert len(smtp_server.messages) == 1


def test_refused_recipient_fails_registration_and_creates_nothing(db, client, smtp):
    smtp.refuse.add("new@example.com")

    response = register(client)

    assert response.status_code == 500
    assert json.loads(response.content) == COULD_NOT_SEND_EMAIL
    assert not User.objects.exists()
    assert smtp.messages == []


def test_smtp_server_that_never_answers_fails_registration(db, client, settings):
    """A server that accepts the connection but never greets: EMAIL_TIMEOUT ends the wait."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        use_smtp(settings, silent.getsockname()[1], timeout=1)

        response = register(client)

    assert response.status_code == 500
    assert json.loads(response.content) == COULD_NOT_SEND_EMAIL
    assert not User.objects.exists()


def test_smtp_server_down_fails_recovery(client, settings, user):
    use_smtp(settings, free_port())

    response = client.patch(
        "/api/authenticate", data=json.dumps({"email": user.email}), content_type="application/json"
    )

    assert response.status_code == 500
    assert json.loads(response.content) == COULD_NOT_SEND_EMAIL


def test_smtp_server_down_fails_confirmation_resend(client, settings, user_factory):
    pending = user_factory(email="pending@example.com", confirmed=False)
    use_smtp(settings, free_port())

    response = client.put(
        "/api/validate/confirmation",
        data=json.dumps({"email": pending.email}),
        content_type="application/json",
    )

    assert response.status_code == 500
    assert json.loads(response.content) == COULD_NOT_SEND_EMAIL
    pending.refresh_from_db()
    assert pending.confirmed_at is None
