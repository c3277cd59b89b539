"""The hosted pages speak English and German, and the API only English (accounts.oidc.pages, the
consent and error pages of accounts.oidc.views, accounts/locale).

The language comes from `ui_locales` (on the authorization request, carried through every step of
the sign-in), else from Accept-Language. In German, no English text of the pages' catalogue is
left on any page. The API's messages are its contract: English whatever the browser asks for.
Operators override the templates and set the product's name and logo without touching code.
"""

import base64
import gettext
import hashlib
import html
import re
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings as django_settings
from django.test import Client

from accounts.clients.services import client_create
from accounts.mfa import services as mfa
from tests.conftest import PASSWORD, TOTP_START, totp_code
from tests.support.api import ANN

LOCALE = Path(django_settings.BASE_DIR) / "accounts" / "locale" / "de" / "LC_MESSAGES"
REDIRECT_URI = "https://billing.example.com/callback"
VERIFIER = "v" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
ENGLISH = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}
GERMAN = {"HTTP_ACCEPT_LANGUAGE": "de-DE,de;q=0.9"}


# --- The catalogue -------------------------------------------------------------------------------


def po_entries() -> dict[str, str]:
    """{msgid: msgstr} of the German .po (plural entries by their singular, their msgstr[0])."""
    entries = {}
    text = (LOCALE / "django.po").read_text()
    for block in text.split("\n\n"):
        if "#, fuzzy" in block:
            entries.setdefault("#fuzzy", "")
        msgid = re.search(r'^msgid ((?:".*"\n?)+)', block, re.MULTILINE)
        msgstr = re.search(r'^msgstr(?:\[0\])? ((?:".*"\n?)+)', block, re.MULTILINE)
        if msgid and msgstr:
            key = "".join(re.findall(r'"(.*)"', msgid.group(1))).replace('\\"', '"')
            if key:
                entries[key] = "".join(re.findall(r'"(.*)"', msgstr.group(1))).replace('\\"', '"')
    return entries


def english_fragments() -> set[str]:
    """The English words of the catalogue as they could show on a page: each msgid, split at its
    placeholders, fragments of two characters or more."""
    fragments = set()
    for msgid in po_entries():
        for part in re.split(r"%\(\w+\)[sd]|%[sd]", msgid):
            part = part.strip(" :?.")
            if len(part) >= 2:
                fragments.add(part)
    return fragments


def test_every_entry_of_the_german_catalogue_is_translated_and_none_is_fuzzy():
    entries = po_entries()

    assert "#fuzzy" not in entries
    assert len(entries) >= 40
    untranslated = [msgid for msgid, msgstr in entries.items() if not msgstr.strip() or msgstr == msgid]
    assert untranslated == []
    # Placeholders survive translation.
    for msgid, msgstr in entries.items():
        assert sorted(re.findall(r"%\(\w+\)[sd]", msgid)) == sorted(re.findall(r"%\(\w+\)[sd]", msgstr)), msgid


def test_the_committed_mo_is_the_compiled_po():
    with open(LOCALE / "django.mo", "rb") as file:
        compiled = gettext.GNUTranslations(file)

    for msgid, msgstr in po_entries().items():
        assert compiled.gettext(msgid) == msgstr, msgid


# --- Helpers -------------------------------------------------------------------------------------


@pytest.fixture
def app(db):
    """A third-party app (consent is asked) allowed every scope."""
    client, _secret = client_create(
        name="Billing", redirect_uris=[REDIRECT_URI], scopes="openid profile email groups offline_access"
    )
    return client


def authorize_path(app, **extra) -> str:
    query = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email groups offline_access",
        "state": "st-42",
        "nonce": "n-42",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        **extra,
    }
    return "/oauth/authorize?" + urlencode(query)


def visible_text(response) -> str:
    """The page's text as a reader gets it: tags dropped, except the developer's note (English
    on purpose, marked lang="en"), with the title and the attributes a screen reader reads."""
    page = response.content.decode()
    page = re.sub(r'<code lang="en">.*?</code>', " ", page, flags=re.DOTALL)
    attributes = " ".join(re.findall(r'(?:alt|aria-label|title|placeholder)="([^"]*)"', page))
    text = re.sub(r"</?(?:strong|em|span|a|code)\b[^>]*>", "", page)
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(html.unescape(f"{text} {attributes}").split())


def assert_german(response, *expected: str) -> None:
    """The page is German: its lang and Content-Language, the `expected` strings, and no English
    fragment of the catalogue."""
    assert response["Content-Language"] == "de"
    assert '<html lang="de">' in response.content.decode()
    text = visible_text(response)
    for words in expected:
        assert words in text, f"{words!r} not in {text!r}"
    leftovers = sorted(fragment for fragment in english_fragments() if re.search(rf"\b{re.escape(fragment)}\b", text))
    assert leftovers == [], text


def follow_to_signin(client, app, **headers):
    response = client.get(authorize_path(app, ui_locales="de"), **headers)
    assert response.status_code == 302
    return response["Location"]


def hidden_fields(response) -> dict:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html.unescape(response.content.decode())))


def signed_in(user, app, **headers) -> Client:
    """A browser signed in on the hosted sign-in page."""
    client = Client()
    response = client.post("/signin", {"email": user.email, "password": PASSWORD, "next": "/signin/done"}, **headers)
    assert response.status_code == 302, response.content
    return client


# --- Every page in German ------------------------------------------------------------------------


def test_the_sign_in_page_is_german_by_ui_locales(db, app):
    client = Client()
    signin = follow_to_signin(client, app, **ENGLISH)

    response = client.get(signin, **ENGLISH)

    assert response.status_code == 200
    assert_german(response, "Anmelden", "E-Mail-Adresse", "Passwort")
    assert "<title>Anmelden · Auth server</title>" in response.content.decode()


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"email": "", "password": ""}, 400, "Dieses Feld ist zwingend erforderlich."),
        ({"email": ANN, "password": "wrong horse battery"}, 401, "E-Mail-Adresse oder Passwort ist ungültig"),
    ],
    ids=["empty", "wrong-password"],
)
def test_the_sign_in_page_refuses_in_german(user, form, status, message):
    response = Client().post("/signin", {**form, "next": "", "ui_locales": "de"}, **ENGLISH)

    assert response.status_code == status
    assert_german(response, message, "Anmelden")


def test_the_sign_in_page_says_the_apis_message_in_english(user):
    """The page's refusal is the API's message (core.errors' catalogue), word for word."""
    response = Client().post("/signin", {"email": ANN, "password": "wrong horse battery"}, **ENGLISH)

    assert response.status_code == 401
    assert "Invalid email or password" in visible_text(response)
    assert response["Content-Language"] == "en"


def test_the_error_page_is_german_with_the_protocols_error_for_the_developer(user, app):
    client = signed_in(user, app)

    response = client.get(authorize_path(app, redirect_uri="https://evil.example/cb", ui_locales="de"), **ENGLISH)

    assert response.status_code == 400
    assert_german(
        response,
        "Diese Anmeldeanfrage kann nicht fortgesetzt werden",
        "Die Adresse, zu der die App Sie zurückschicken möchte, ist für sie nicht registriert.",
        "Für das Entwicklungsteam der App:",
    )
    assert '<code lang="en">invalid_request: Mismatching redirect URI.</code>' in response.content.decode()


def test_an_unknown_app_is_told_in_plain_german(user, app):
    client = signed_in(user, app)

    response = client.get("/oauth/authorize?" + urlencode({"client_id": "nobody", "response_type": "code", "ui_locales": "de"}))

    assert response.status_code in (400, 401)
    assert_german(response, "Die App, die Sie hierher geschickt hat, ist diesem Server nicht bekannt oder wurde abgeschaltet.")


def test_ui_locales_holds_through_password_two_factor_and_consent(user, app, totp_clock):
    """An English browser, an app asking for German: every step of the sign-in is German."""
    enrollment = mfa.totp_enrollment_start(user=user, password=PASSWORD)
    mfa.totp_enrollment_confirm(user=user, code=totp_code(enrollment.secret, TOTP_START))
    totp_clock.tick()
    client = Client()

    signin = follow_to_signin(client, app, **ENGLISH)
    page = client.get(signin, **ENGLISH)
    assert_german(page, "Anmelden")
    response = client.post("/signin", {**hidden_fields(page), "email": ANN, "password": PASSWORD}, **ENGLISH)
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == "/signin/two-factor"

    page = client.get(response["Location"], **ENGLISH)
    assert page.status_code == 200
    assert_german(page, "Zwei-Faktor-Anmeldung", "Zwei-Faktor-Code", "Der Code Ihrer Authenticator-App oder ein Wiederherstellungscode.", "Weiter", "Von vorn beginnen")
    wrong = client.post("/signin/two-factor", {**hidden_fields(page), "otp": "000000"}, **ENGLISH)
    assert wrong.status_code == 401
    assert_german(wrong, "Ungültiger Zwei-Faktor-Code")

    response = client.post(
        "/signin/two-factor", {**hidden_fields(page), "otp": totp_code(enrollment.secret, totp_clock.now)}, **ENGLISH
    )
    assert response.status_code == 302
    consent = client.get(response["Location"], **ENGLISH)

    assert consent.status_code == 200
    assert_german(
        consent,
        "Billing zulassen?",
        f"Billing möchte Ihr Konto {ANN} verwenden, um:",
        "Sie mit Ihrem Konto anzumelden",
        "Ihren Namen einzusehen",
        "Ihre E-Mail-Adresse einzusehen",
        "die Gruppen einzusehen, denen Sie angehören",
        "auch in Ihrer Abwesenheit Zugriff zu behalten (bis Sie ihn widerrufen)",
        "Zulassen",
        "Ablehnen",
        "Sie können dies jederzeit widerrufen; die App muss Sie dann erneut fragen.",
    )
    assert hidden_fields(consent)["ui_locales"] == "de"


def test_accept_language_alone_makes_every_page_german(user, app):
    client = signed_in(user, app, **GERMAN)

    assert_german(client.get("/signin", **GERMAN), "Anmelden")
    assert_german(client.get("/signin/done", **GERMAN), "Angemeldet", f"Sie sind als {ANN} angemeldet.", "Abmelden")
    assert_german(client.get(authorize_path(app), **GERMAN), "Billing zulassen?", "Zulassen", "Ablehnen")
    assert_german(
        client.get("/signout", **GERMAN),
        f"Sie sind als {ANN} angemeldet. Möchten Sie sich von allen Apps abmelden, die diese Anmeldung nutzen?",
        "Abmelden",
    )
    assert_german(client.get("/oauth/logout", **GERMAN), "Abmelden")
    assert_german(client.post("/signout", **GERMAN), "Abgemeldet", "Sie sind abgemeldet. Sie können diese Seite schließen.")
    assert_german(client.get("/signout", **GERMAN), "Sie sind nicht angemeldet.")
    assert_german(client.get("/signin/done", **GERMAN), "Anmelden")
    assert_german(
        client.get("/oauth/logout?id_token_hint=not-a-token", **GERMAN),
        "Abmeldeanfrage abgelehnt",
        "Das übergebene ID-Token stammt nicht von diesem Server.",
    )
    assert_german(
        client.get("/oauth/logout?client_id=nobody", **GERMAN),
        "Die App, die Sie hierher geschickt hat, ist diesem Server nicht bekannt.",
    )
    assert_german(
        client.get(f"/oauth/logout?client_id={app.client_id}&post_logout_redirect_uri=https://evil.example/", **GERMAN),
        "Diese Rücksprungadresse ist für die App nicht registriert.",
    )


def test_ui_locales_wins_over_accept_language(user, app):
    client = signed_in(user, app, **GERMAN)

    english = client.get(authorize_path(app, ui_locales="en"), **GERMAN)
    german = client.get(authorize_path(app, ui_locales="fr-CA de-CH"), **ENGLISH)

    assert english["Content-Language"] == "en"
    assert "Allow Billing?" in visible_text(english)
    assert_german(german, "Billing zulassen?")


def test_a_language_the_pages_do_not_speak_falls_back_to_english(db):
    response = Client().get("/signin?ui_locales=fr", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")

    assert response["Content-Language"] == "en"
    assert '<html lang="en">' in response.content.decode()
    assert "Sign in" in visible_text(response)


def test_a_form_posted_without_its_csrf_token_ends_on_the_error_page_in_german(db):
    response = Client(enforce_csrf_checks=True).post("/signin", {"email": ANN, "password": PASSWORD, "ui_locales": "de"})

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    assert_german(response, "Dieses Formular ist abgelaufen")


# --- The API stays English -----------------------------------------------------------------------


def test_the_api_answers_in_english_whatever_the_browser_asks(user, app):
    client = Client()
    # A German page first, in the same thread: its language must not leak into the API.
    assert_german(client.get("/signin?ui_locales=de", **GERMAN), "Anmelden")

    wrong = client.post("/api/authenticate", {"email": ANN, "password": "wrong horse battery"}, content_type="application/json", **GERMAN)
    invalid = client.post("/api/user", {"email": "not an email"}, content_type="application/json", **GERMAN)
    userinfo = client.get("/oauth/userinfo", **GERMAN)
    token = client.post("/oauth/token", {"grant_type": "authorization_code", "code": "nope", "client_id": app.client_id}, **GERMAN)

    assert wrong.json() == {"status": 401, "message": "Invalid email or password"}
    body = invalid.json()
    assert body["status"] == 400
    assert "This field is required." in " ".join(" ".join(messages) for messages in body["errors"].values())
    assert "Enter a valid email address." in " ".join(body["errors"]["email"])
    assert userinfo.json() == {"error": "invalid_request", "error_description": "An access token is required."}
    assert token.json()["error"] == "invalid_client"
    for response in (wrong, invalid, userinfo, token):
        assert response.get("Content-Language") in (None, "en")


# --- The operator's pages ------------------------------------------------------------------------


def test_the_product_name_and_logo_show_on_every_page(user, app, settings):
    settings.PRODUCT_NAME = "Acme ID"
    settings.PRODUCT_LOGO_URL = "https://cdn.acme.example/logo.svg"
    client = signed_in(user, app)

    for path in ("/signin", "/signin/done", authorize_path(app), "/signout"):
        page = client.get(path).content.decode()
        assert " · Acme ID</title>" in page, path
        assert '<img src="https://cdn.acme.example/logo.svg" alt="Acme ID" class="logo">' in page, path


def test_the_operators_templates_come_before_the_apps(db, settings, tmp_path):
    (tmp_path / "oidc").mkdir()
    (tmp_path / "oidc" / "base.html").write_text(
        '{% load i18n %}<!DOCTYPE html><html lang="{{ language }}"><title>Acme</title>'
        '<main><h1>{% block heading %}{% endblock %}</h1><p class="acme">{% translate "Acme sign-in" %}</p>'
        "{% block content %}{% endblock %}</main></html>"
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]

    page = Client().get("/signin?ui_locales=de").content.decode()

    assert '<p class="acme">Acme sign-in</p>' in page
    assert "<h1>Anmelden</h1>" in page
    assert 'name="email"' in page and 'name="password"' in page
