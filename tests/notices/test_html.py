"""Every email is multipart (accounts.notices.services): a text part and an HTML part from the
templates under templates/accounts/email/, parsed here as a mail client would read the message.

Each kind is sent as a user causes it (registration, recovery, email change, password change
through the API; the two-factor notices through their service), then: both parts present, the
same link in both (the HTML's button and its written-out link), the product's name in the HTML,
no image and nothing fetched from elsewhere; a notice's HTML holds its text and no link, also
when it was queued and sent again.
"""

import re
from io import StringIO
from email import message_from_bytes, policy
from html.parser import HTMLParser

import pytest
from django.core import mail
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.notices import services as notices
from accounts.notices.models import QueuedEmail
from tests.conftest import PASSWORD
from tests.support.api import client_with
from tests.support.contract import AUTHENTICATE_PATH, USER_PATH

NEW_PASSWORD = "another staple phrase 8"


class Parsed(HTMLParser):
    """What a mail client would fetch or follow in an HTML part."""

    def __init__(self, html: str):
        super().__init__()
        self.hrefs, self.sources, self.tags, self.text = [], [], set(), []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        if "href" in attrs:
            self.hrefs.append(attrs["href"])
        for name in ("src", "background", "srcset"):
            if name in attrs:
                self.sources.append(attrs[name])

    def handle_data(self, data):
        self.text.append(data)


def parts(message) -> tuple[str, str, str]:
    """Return the subject, the text part and the HTML part of a sent message, read from its bytes."""
    parsed = message_from_bytes(message.message().as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    return parsed["Subject"], parsed.get_body(("plain",)).get_content(), parsed.get_body(("html",)).get_content()


def assert_safe_html(html: str, product_name: str) -> Parsed:
    page = Parsed(html)
    assert product_name in " ".join(page.text)
    assert "img" not in page.tags and page.sources == []
    assert "url(" not in html and "<link" not in html and "<script" not in html
    return page


def assert_link_email(message, product_name: str) -> str:
    _, text, html = parts(message)
    (link,) = re.findall(r"https?://\S+", text)
    page = assert_safe_html(html, product_name)
    # The button and the link written out for clients that show no button: the text part's link.
    assert page.hrefs == [link, link]
    assert 'class="button"' in html
    return link


def assert_notice(message, product_name: str) -> None:
    subject, text, html = parts(message)
    page = assert_safe_html(html, product_name)
    assert page.hrefs == [] and not re.search(r"https?://", text)
    shown = " ".join(" ".join(page.text).split())
    assert subject in shown
    for paragraph in text.strip().split("\n\n"):
        assert " ".join(paragraph.split()) in shown


@pytest.fixture(autouse=True)
def product(settings):
    settings.PRODUCT_NAME = "Acme Identity"
    settings.CLIENT_ORIGIN = "https://app.example"
    return settings.PRODUCT_NAME


def test_the_confirmation_email_has_the_same_link_in_both_parts(db, product):
    response = APIClient().post(
        USER_PATH, {"email": "rita@example.com", "name": "Rita <b>", "password": PASSWORD, "confirm": PASSWORD}, format="json"
    )

    assert response.status_code == 200
    (message,) = mail.outbox
    link = assert_link_email(message, product)
    assert link.startswith("https://app.example/confirm/")
    # The name is the user's own text: escaped in the HTML.
    assert "Rita &lt;b&gt;" in parts(message)[2]


def test_the_recovery_email_has_the_same_link_in_both_parts(user, product):
    assert APIClient().patch(AUTHENTICATE_PATH, {"email": user.email}, format="json").status_code == 200

    (message,) = mail.outbox
    assert assert_link_email(message, product).startswith("https://app.example/recover/")


def test_an_email_change_sends_a_notice_and_a_verification_link(user, token_for, product):
    response = client_with(token_for(user)).patch(
        USER_PATH, {"new_email": "ann.new@example.com", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 200
    by_recipient = {message.to[0]: message for message in mail.outbox}
    assert set(by_recipient) == {"ann@example.com", "ann.new@example.com"}
    assert_notice(by_recipient["ann@example.com"], product)
    assert assert_link_email(by_recipient["ann.new@example.com"], product).startswith("https://app.example/confirm/")


def test_the_password_notice_is_multipart(user, token_for, product):
    body = {"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}

    assert client_with(token_for(user)).put(AUTHENTICATE_PATH, body, format="json").status_code == 200

    (message,) = mail.outbox
    assert message.subject == "Your password was changed"
    assert_notice(message, product)


@pytest.mark.parametrize(
    "send, subject",
    [
        (lambda user: notices.send_two_factor_enabled(user=user), "Two-factor sign-in was turned on"),
        (lambda user: notices.send_two_factor_disabled(user=user, how="by our staff (a reset)"), "Two-factor sign-in was turned off"),
        (lambda user: notices.send_recovery_code_used(user=user, codes_left=9), "A recovery code was used"),
        (lambda user: notices.send_passkey_added(user=user, name="Pixel 8"), "A passkey was added to your account"),
        (lambda user: notices.send_passkey_removed(user=user, name="Pixel 8", how="by our staff"), "A passkey was removed from your account"),
    ],
)
def test_the_two_factor_and_passkey_notices_are_multipart(user, product, send, subject):
    send(user)

    (message,) = mail.outbox
    assert message.subject == subject
    assert_notice(message, product)


def test_a_queued_notice_is_sent_again_as_text_and_html(user, token_for, product, settings):
    settings.EMAIL_BACKEND = "tests.conftest.FailingEmailBackend"
    body = {"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert client_with(token_for(user)).put(AUTHENTICATE_PATH, body, format="json").status_code == 200
    assert QueuedEmail.objects.count() == 1

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    QueuedEmail.objects.update(next_attempt_at=QueuedEmail.objects.get().created_at)
    call_command("send_queued_emails", stdout=StringIO())

    (message,) = mail.outbox
    assert message.subject == "Your password was changed"
    assert_notice(message, product)


def test_an_operator_template_overrides_the_html(user, product, settings, tmp_path):
    (tmp_path / "accounts" / "email").mkdir(parents=True)
    (tmp_path / "accounts" / "email" / "recovery.html").write_text(
        "<p>{{ product_name }}: <a href=\"{{ link }}\">Reset</a></p>"
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]

    assert APIClient().patch(AUTHENTICATE_PATH, {"email": user.email}, format="json").status_code == 200

    (message,) = mail.outbox
    _, text, html = parts(message)
    (link,) = re.findall(r"https?://\S+", text)
    assert html.strip() == f'<p>Acme Identity: <a href="{link}">Reset</a></p>'
