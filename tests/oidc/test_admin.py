"""The OpenID provider's admin pages: consents (withdraw) and grants (revoke); no token in clear."""

import pytest
from django.test import Client as Browser

from accounts.audit.models import AuthEvent
from accounts.clients.services import client_create
from accounts.oidc.models import AccessToken, Consent, RefreshToken
from accounts.oidc.services import consent_give
from accounts.sessions.services import session_open
from tests.conftest import admin_login


@pytest.fixture
def staff(user_factory):
    return user_factory(email="root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def grant(user):
    """A consent and a live grant (a refresh token with its access token), made as the token
    endpoint makes them."""
    client, _ = client_create(name="Shop", redirect_uris=["https://shop.example.com/cb"], scopes="openid offline_access")
    session = session_open(user=user, remember=False, amr=["pwd"], user_agent="t", client_address="127.0.0.1")
    consent_give(user=user, client=client, scopes=["openid", "offline_access"])
    access = AccessToken.objects.create(
        user=user, application=client, token="at-secret-value", scope="openid offline_access", session=session,
        expires="2999-01-01T00:00:00Z", token_family="9b0e4d3c-0f4a-4a43-9d8e-1a2b3c4d5e6f",
    )
    refresh = RefreshToken.objects.create(
        user=user, application=client, token="rt-secret-value", access_token=access, session=session,
        token_family="9b0e4d3c-0f4a-4a43-9d8e-1a2b3c4d5e6f",
    )
    return client, refresh


def test_the_pages_list_and_show_no_token(staff, grant):
    browser = Browser()
    admin_login(browser, staff)
    _, refresh = grant

    pages = [
        browser.get("/admin/accounts/consent/"),
        browser.get("/admin/accounts/refreshtoken/"),
        browser.get(f"/admin/accounts/refreshtoken/{refresh.pk}/change/"),
        browser.get(f"/admin/accounts/consent/{Consent.objects.get().pk}/change/"),
    ]

    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert "Shop" in html
        assert "rt-secret-value" not in html and "at-secret-value" not in html
        assert refresh.token_checksum not in html


def test_staff_revoke_a_grant(staff, grant, user):
    browser = Browser()
    admin_login(browser, staff)
    _, refresh = grant

    response = browser.post(
        "/admin/accounts/refreshtoken/", {"action": "revoke", "_selected_action": [refresh.pk]}, follow=True
    )

    assert "1 grant revoked." in response.content.decode()
    assert RefreshToken.objects.get(pk=refresh.pk).revoked is not None
    assert not AccessToken.objects.exists()
    event = AuthEvent.objects.get(type="grant_revoked")
    assert event.user_id == user.pk and "root@example.com" in event.detail


def test_staff_withdraw_a_consent(staff, grant, user):
    browser = Browser()
    admin_login(browser, staff)
    consent = Consent.objects.get()

    response = browser.post(
        "/admin/accounts/consent/", {"action": "withdraw", "_selected_action": [consent.pk]}, follow=True
    )

    assert "1 consent withdrawn." in response.content.decode()
    assert not Consent.objects.exists()
    assert RefreshToken.objects.get().revoked is not None and not AccessToken.objects.exists()
    assert "by root@example.com" in AuthEvent.objects.get(type="consent_withdrawn").detail


def test_no_add_change_or_delete(staff, grant):
    browser = Browser()
    admin_login(browser, staff)

    assert browser.get("/admin/accounts/consent/add/").status_code == 403
    assert browser.get("/admin/accounts/refreshtoken/add/").status_code == 403
