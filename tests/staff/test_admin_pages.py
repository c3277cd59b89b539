"""The admin's pages as staff read them (accounts.staff.site, core.admin, each room's admin):
the product's name in the header, times with seconds and the zone, read-only pages that look
read-only, a session's revoke button, the user page's help and permission picker, and the queued
notices' explanation. Through the test client; tests/staff/test_admin_pages_browser.py walks the
same pages in Chromium.
"""

import re
from datetime import datetime, timezone as dt_timezone

import pytest
from django.test import Client

from accounts.audit.models import AuthEvent
from accounts.sessions.models import Session
from tests.conftest import admin_login, sign_in

SESSIONS = "/admin/accounts/session/"


@pytest.fixture
def staff(user_factory):
    return user_factory(email="admin@example.com", name="Ada Admin", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(staff) -> Client:
    client = Client()
    admin_login(client, staff)
    return client


def test_the_header_and_titles_carry_the_product_name(admin_client, settings):
    settings.PRODUCT_NAME = "Acme ID"

    page = admin_client.get("/admin/").content.decode()

    assert '<a href="/admin/">Acme ID administration</a>' in page
    assert "<title>Administration | Acme ID admin</title>" in page
    assert "Django administration" not in page and "Django site admin" not in page


def test_times_show_seconds_and_the_zone(admin_client):
    for second in (3, 41):
        AuthEvent.objects.create(
            type=AuthEvent.Type.LOGIN,
            email="ann@example.com",
            created_at=datetime(2026, 12, 7, 2, 49, second, tzinfo=dt_timezone.utc),
        )

    page = admin_client.get("/admin/accounts/authevent/").content.decode()

    assert "Dec. 7, 2026, 02:49:03 UTC" in page
    assert "Dec. 7, 2026, 02:49:41 UTC" in page


def test_a_session_page_is_read_only_with_a_revoke_button(admin_client, user):
    session = sign_in(user, amr=("pwd", "otp"))

    response = admin_client.get(f"{SESSIONS}{session.pk}/change/")

    page = response.content.decode()
    assert response.context["title"] == "View session"
    assert 'name="_save"' not in page and 'name="_continue"' not in page and 'name="_addanother"' not in page
    assert re.search(r"<label>Sign-in methods:</label>\s*<div class=\"readonly\">password, one-time code</div>", page)
    assert ">Amr<" not in page
    assert "Revoke this session" in page


def test_the_revoke_button_ends_the_session_and_the_page_then_offers_none(admin_client, user, staff):
    session = sign_in(user)

    response = admin_client.post(f"{SESSIONS}{session.pk}/revoke/", follow=True)

    assert [str(message) for message in response.context["messages"]] == ["Session revoked: its tokens stop working now."]
    ended = Session.objects.get(pk=session.pk)
    assert ended.ended_at is not None and ended.end_reason == Session.EndReason.STAFF
    assert AuthEvent.objects.filter(type=AuthEvent.Type.STAFF_ACTION, user=user, detail__contains=staff.email).exists()
    assert "Revoke this session" not in response.content.decode()


def test_a_read_only_page_takes_no_post_and_a_revoke_takes_no_get(admin_client, user):
    session = sign_in(user)

    assert admin_client.post(f"{SESSIONS}{session.pk}/change/", {"user_agent": "changed"}).status_code == 405
    assert admin_client.get(f"{SESSIONS}{session.pk}/revoke/").status_code == 405
    assert Session.objects.get(pk=session.pk).ended_at is None


def test_read_only_lists_are_titled_by_their_rows(admin_client, user):
    sign_in(user)

    sessions = admin_client.get(SESSIONS)
    keys = admin_client.get("/admin/accounts/signingkey/")

    assert sessions.context["title"] == "Sessions"
    assert keys.context["title"] == "Signing keys"
    assert "to change" not in sessions.content.decode() and "to change" not in keys.content.decode()


def test_the_user_page_explains_active_and_lists_only_permissions_that_matter(admin_client, user):
    response = admin_client.get(f"/admin/accounts/user/{user.pk}/change/")

    page = response.content.decode()
    assert "Unselect this" not in page
    assert "Not ticked: staff disabled the account" in page and "Disable and Enable actions" in page
    assert "Prefer a group" in page
    offered = {str(permission) for permission in response.context["adminform"].form.fields["user_permissions"].queryset}
    assert "Accounts | session | Can change session" in offered
    assert "Accounts | user | Can change user" in offered
    assert "Authentication and Authorization | group | Can change group" in offered
    assert not {p for p in offered if p.startswith(("Sessions |", "Content Types |", "Administration |"))}


def test_the_group_page_lists_only_permissions_that_matter(admin_client):
    response = admin_client.get("/admin/auth/group/add/")

    offered = {str(permission) for permission in response.context["adminform"].form.fields["permissions"].queryset}
    assert "Accounts | user | Can change user" in offered
    assert not {p for p in offered if p.startswith(("Sessions |", "Content Types |", "Administration |"))}


def test_the_queued_notices_page_says_what_it_is_for(admin_client):
    page = admin_client.get("/admin/accounts/queuedemail/").content.decode()

    assert "whose first sending failed" in page
    assert "python manage.py send_queued_emails" in page
