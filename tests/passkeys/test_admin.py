"""Passkeys in the admin: the list and the user's page show them (flagged ones marked); staff remove
them with the action (audited, the user emailed), never by a plain delete; staff who may not act on
an account cannot remove its passkeys."""

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.audit.models import AuthEvent
from accounts.passkeys.models import Passkey
from tests.conftest import admin_login


def passkey(user, name="Phone", **fields) -> Passkey:
    return Passkey.objects.create(
        user=user, name=name, credential_id=f"cred-{user.pk}-{name}", user_handle="h", public_key=b"k", **fields
    )


@pytest.fixture
def superuser(user_factory):
    return user_factory(email="root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def browser(superuser) -> Client:
    client = Client()
    admin_login(client, superuser)
    return client


def test_the_list_shows_each_passkey_and_marks_the_flagged_ones(browser, user):
    passkey(user, "Phone")
    passkey(user, "Cloned key", cloned_at=timezone.now(), backed_up=True)

    page = browser.get("/admin/accounts/passkey/")
    flagged = browser.get("/admin/accounts/passkey/?flagged=yes")

    assert page.status_code == 200
    assert "Phone" in page.content.decode() and "Cloned key" in page.content.decode()
    assert "Cloned key" in flagged.content.decode() and "Phone" not in flagged.content.decode()
    assert 'value="delete_selected"' not in page.content.decode()


def test_the_users_page_lists_their_passkeys(browser, user):
    passkey(user, "Laptop")
    page = browser.get(f"/admin/accounts/user/{user.pk}/change/")
    assert page.status_code == 200
    assert "Laptop" in page.content.decode()


def test_staff_remove_a_passkey_with_the_action_audited_and_emailed(browser, user, superuser):
    removed = passkey(user, "Lost phone")
    kept = passkey(user, "Laptop")
    mail.outbox.clear()

    answer = browser.post("/admin/accounts/passkey/", {"action": "remove", "_selected_action": [removed.pk]}, follow=True)

    assert answer.status_code == 200 and "1 passkey removed." in answer.content.decode()
    assert list(Passkey.objects.values_list("pk", flat=True)) == [kept.pk]
    assert [message.subject for message in mail.outbox] == ["A passkey was removed from your account"]
    assert "by our staff" in mail.outbox[0].body
    assert AuthEvent.objects.get(type=AuthEvent.Type.PASSKEY_REMOVED).detail == f"Lost phone (by {superuser.email})"


def test_a_passkey_page_is_read_only(browser, user):
    row = passkey(user)
    assert browser.get(f"/admin/accounts/passkey/{row.pk}/change/").status_code == 200
    assert browser.post(f"/admin/accounts/passkey/{row.pk}/change/", {"name": "renamed"}).status_code == 405
    assert browser.post(f"/admin/accounts/passkey/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Passkey.objects.get().name == "Phone"


def test_staff_may_not_remove_a_superusers_passkey(user_factory, superuser):
    from django.contrib.auth.models import Permission

    clerk = user_factory(email="clerk@example.com", is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(codename__in=["view_passkey", "change_passkey"]))
    browser = Client()
    admin_login(browser, clerk)
    theirs = passkey(superuser)

    answer = browser.post("/admin/accounts/passkey/", {"action": "remove", "_selected_action": [theirs.pk]}, follow=True)

    assert "0 passkeys removed." in answer.content.decode()
    assert Passkey.objects.filter(pk=theirs.pk).exists()
