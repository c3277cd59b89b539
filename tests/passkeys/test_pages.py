"""Passkeys on the pages: the hosted sign-in page's passkey form and script (POST /signin/passkey),
and the admin's (POST /admin/login/passkey/), driven in-process with the software authenticator.
The script itself runs in Chromium in tests/passkeys/test_browser.py."""

import json
import re

import pytest
from django.test import Client

from accounts.audit.models import AuthEvent
from accounts.passkeys.models import Passkey
from accounts.sessions.models import Session
from accounts.staff.site import SESSION_ID_KEY
from tests.conftest import PASSWORD
from tests.support.authenticator import SoftPasskey

SIGNIN_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self' https: http:"
)


@pytest.fixture
def passkey_of(auth_client):
    """Register a software passkey for the auth_client's user (through the API); return it."""

    def register(client=auth_client) -> SoftPasskey:
        authenticator = SoftPasskey()
        options = client.post("/api/passkeys/options", {"password": PASSWORD}, format="json").json()["options"]
        assert client.post("/api/passkeys", {"credential": authenticator.create(options)}, format="json").status_code == 200
        return authenticator

    return register


def ceremony_for(browser: Client, authenticator: SoftPasskey, **answer) -> dict:
    """What the page's script posts: the ceremony from the API and the credential as JSON text."""
    started = browser.post("/api/authenticate/passkey/options", "{}", content_type="application/json").json()
    return {"ceremony": started["ceremony"], "credential": json.dumps(authenticator.get(started["options"], **answer))}


def test_the_sign_in_page_carries_the_passkey_form_and_its_one_static_script(db):
    page = Client().get("/signin?next=/oauth/authorize%3Fclient_id%3Dx")

    assert page.status_code == 200
    assert page["Content-Security-Policy"] == SIGNIN_CSP
    html = page.content.decode()
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/passkeys/signin.js" defer>']
    assert re.search(r'<form method="post" action="/signin/passkey" id="passkey-form" class="passkey" hidden', html)
    assert 'data-options-url="/api/authenticate/passkey/options"' in html
    assert '<input type="hidden" name="next" value="/oauth/authorize?client_id=x">' in html
    assert 'autocomplete="username webauthn"' in html
    assert 'id="passkey-signin"' in html and "Sign in with a passkey" in html


def test_the_other_pages_keep_a_policy_without_script(db):
    page = Client().get("/signout")
    assert "script-src" not in page["Content-Security-Policy"]
    assert "<script" not in page.content.decode()


def test_a_passkey_signs_the_browser_in_and_goes_on(user, passkey_of):
    authenticator = passkey_of()
    browser = Client()

    answer = browser.post("/signin/passkey", {**ceremony_for(browser, authenticator), "next": "/signin/done"})

    assert (answer.status_code, answer["Location"]) == (302, "/signin/done")
    session = Session.objects.filter(user=user).latest("created_at")
    assert session.amr == ["hwk", "user", "mfa"]
    assert browser.get("/signin/done").context["signed_in_user"] == user
    assert AuthEvent.objects.filter(type=AuthEvent.Type.LOGIN, user=user, detail="passkey, sign-in page").count() == 1


def test_a_next_to_another_site_is_not_followed(user, passkey_of):
    authenticator = passkey_of()
    browser = Client()
    answer = browser.post("/signin/passkey", {**ceremony_for(browser, authenticator), "next": "https://evil.example/"})
    assert answer["Location"] == "/signin/done"


def test_a_refused_passkey_shows_the_sign_in_page_with_why(user, passkey_of):
    authenticator = passkey_of()
    browser = Client()

    answer = browser.post("/signin/passkey", ceremony_for(browser, authenticator, verified=False))

    assert answer.status_code == 401
    assert answer["Content-Security-Policy"] == SIGNIN_CSP
    assert '<div class="errors" role="alert" id="form-errors"><p>Invalid passkey</p></div>' in answer.content.decode()
    assert not Session.objects.filter(user=user, amr=["hwk", "user", "mfa"]).exists()


def test_a_refusal_speaks_german_when_the_page_does(user, passkey_of):
    authenticator = passkey_of()
    browser = Client()
    answer = browser.post("/signin/passkey", {**ceremony_for(browser, authenticator, verified=False), "ui_locales": "de"})
    assert "Ungültiger Passkey" in answer.content.decode()


@pytest.mark.parametrize("body", [{}, {"ceremony": "x", "credential": "not json"}, {"ceremony": "x", "credential": "[1]"}])
def test_a_malformed_post_is_a_400_page(db, body):
    answer = Client().post("/signin/passkey", body)
    assert answer.status_code == 400
    assert "Invalid passkey" in answer.content.decode()


def test_the_passkey_post_needs_the_csrf_token(user, passkey_of):
    browser = Client(enforce_csrf_checks=True)
    answer = browser.post("/signin/passkey", ceremony_for(browser, passkey_of()))
    assert answer.status_code == 403


# --- the admin -----------------------------------------------------------------------------------


@pytest.fixture
def staff(user):
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def test_the_admin_login_page_offers_a_passkey(db):
    html = Client().get("/admin/login/?next=/admin/").content.decode()
    assert '<form action="/admin/login/passkey/" method="post" id="passkey-form" hidden' in html
    assert '<script src="/static/passkeys/signin.js" defer></script>' in html
    assert 'autocomplete="username webauthn"' in html


def test_staff_sign_in_to_the_admin_with_a_passkey(staff, passkey_of):
    authenticator = passkey_of()
    browser = Client()

    answer = browser.post("/admin/login/passkey/", {**ceremony_for(browser, authenticator), "next": "/admin/accounts/user/"})

    assert (answer.status_code, answer["Location"]) == (302, "/admin/accounts/user/")
    session = Session.objects.get(public_id=browser.session[SESSION_ID_KEY])
    assert session.amr == ["hwk", "user", "mfa"] and session.user == staff
    assert browser.get("/admin/").status_code == 200
    assert AuthEvent.objects.filter(type=AuthEvent.Type.LOGIN, detail="passkey, admin site").count() == 1


def test_a_user_who_is_not_staff_is_refused_by_the_admin(user, passkey_of):
    authenticator = passkey_of()
    browser = Client()

    answer = browser.post("/admin/login/passkey/", ceremony_for(browser, authenticator))

    assert answer.status_code == 401
    assert "That passkey did not sign you in." in answer.content.decode()
    assert browser.get("/admin/").status_code == 302
    assert AuthEvent.objects.get(type=AuthEvent.Type.LOGIN_FAILED).detail == "not staff (passkey, admin site)"


def test_a_refused_passkey_at_the_admin_says_so(staff, passkey_of):
    authenticator = passkey_of()
    browser = Client()
    answer = browser.post("/admin/login/passkey/", {**ceremony_for(browser, authenticator, origin="https://evil.example"), "next": "//evil.example"})
    assert answer.status_code == 401
    assert 'name="next" value="/admin/"' in answer.content.decode()
    assert Passkey.objects.get().last_used_at is None


def test_the_admin_passkey_login_is_post_only(db):
    assert Client().get("/admin/login/passkey/").status_code == 405
