"""The hosted pages in a real browser, served as in production: headless Chromium (Debian's)
driven by Selenium, gunicorn with DEBUG off, a fresh SQLite database, static files collected.

An app registered with `create_oidc_client` (not first-party, so consent is asked) sends users to
the authorization endpoint; its redirect URI is a tiny HTTP server this module runs, which records
what the browser brought back. Users register and confirm through the API, and turn two-factor on
through it (pyotp stands in for the authenticator app). The walks: sign-in, consent, allow (a code
and the state come back, and the code is worth tokens); deny (access_denied and the state); the
two-factor step; sign-out by the app (`/oauth/logout` with `id_token_hint`) and by the user
(`/signout`); the error page. On every page: axe-core finds no serious or critical violation, no
script runs or is served, the CSP forbids inline script (the browser refuses one), and a screenshot
is kept in /tmp/w22b-shots (English and German). The sign-in and consent also work with
JavaScript turned off in the browser.

Needs the system's Chromium and chromedriver (Debian: `apt-get install chromium chromium-driver`)
and tests/node's axe-core; the driver is given by path, so Selenium Manager never runs.
"""

import base64
import hashlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.conftest import copy_project, run
from tests.support.browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    SHOTS,
    axe_violations,
    chromium,
    click_and_leave,
    wait_for_heading,
)
from tests.support.node import axe_script
from tests.support.servers import free_port, gunicorn, production_environment

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM_MISSING, reason=CHROMIUM_MISSING_REASON)]

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (see requirements.txt)")
pyotp = pytest.importorskip("pyotp")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PASSWORD = "consent walk phrase 7"
# What the hosted pages answer with: no script of any kind (default-src 'none' and no script-src),
# but for the sign-in page's one static file, the passkey ceremony (and the options it fetches).
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' https: data:; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self' https: http:"
)
SIGNIN_CSP = CSP.replace("default-src 'none';", "default-src 'none'; script-src 'self'; connect-src 'self';")
# The one script: a static file of the server, under its hashed name (the manifest storage's).
SIGNIN_SCRIPT = re.compile(rb'<script src="/static/passkeys/signin\.[0-9a-f]{12}\.js" defer></script>')
# The app's pages: one inline script, which tells whether the browser runs JavaScript at all.
APP_PAGE = (
    b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>app</title></head>'
    b"<body><main><h1>The app</h1></main><script>document.title = 'app with javascript';</script></body></html>"
)


# --- The app's redirect URI ----------------------------------------------------------------------


class AppServer:
    """The app's side: an HTTP server on 127.0.0.1 that records each request's path and query."""

    def __init__(self):
        self.requests: list[str] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                recorded.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(APP_PAGE)))
                self.end_headers()
                self.wfile.write(APP_PAGE)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def last(self, path: str) -> dict[str, str]:
        """The query of the last request the browser made to `path`."""
        for recorded in reversed(self.requests):
            parts = urllib.parse.urlsplit(recorded)
            if parts.path == path:
                return dict(urllib.parse.parse_qsl(parts.query))
        raise AssertionError(f"the browser never came back to {path}: {self.requests}")


@pytest.fixture(scope="module")
def app_server():
    server = AppServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


# --- The auth server -----------------------------------------------------------------------------


def http(url: str, data: dict | None = None, headers: dict | None = None, method: str | None = None) -> tuple[int, dict, bytes]:
    """Status, headers and body of one request (a form body when `data` is given); no redirect is
    followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def api(base: str, method: str, path: str, data: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    status, _, body = http(base + path, data, {"Authorization": token} if token else None, method=method)
    return status, json.loads(body)


@pytest.fixture(scope="module")
def server(tmp_path_factory, app_server):
    """gunicorn serving a fresh copy of the project in production mode, with the app registered."""
    axe_script()  # skips the module (the reason CI watches) before anything starts, if it is missing
    workdir = tmp_path_factory.mktemp("pages-browser")
    project = copy_project(workdir / "project")
    port = free_port()
    variables = {
        "DEBUG": "false",
        "SECRET_KEY": "pages-browser-test-" + "k" * 50,
        "EMAIL_BACKEND": "console",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "authserver.settings",
        "SECURE_SSL_REDIRECT": "false",
        "TOKEN_ISSUER": f"http://127.0.0.1:{port}",
    }
    for args in (["collectstatic", "--noinput", "--verbosity", "0"], ["migrate", "--noinput", "--verbosity", "0"]):
        result = run(project, "manage.py", *args, **variables)
        assert result.returncode == 0, f"manage.py {args[0]}: {result.stderr}"
    registered = run(
        project,
        "manage.py",
        "create_oidc_client",
        "Billing",
        "--redirect-uri", f"{app_server.base}/callback",
        "--post-logout-redirect-uri", f"{app_server.base}/signed-out",
        "--scopes", "openid profile email offline_access",
        **variables,
    )
    assert registered.returncode == 0, registered.stderr
    printed = dict(line.split("=", 1) for line in registered.stdout.split())
    assert set(printed) == {"client_id", "client_secret"}

    with gunicorn(
        "-c", "gunicorn.conf.py", "--workers", "2",
        cwd=project,
        env=production_environment(workdir, **variables),
        log=workdir / "gunicorn.log",
        port=port,
        timeout=60,
    ) as running:
        yield {"base": running.base, "project": project, "variables": variables, **printed}


def register(server, email: str) -> str:
    """Register and confirm a user through the API; return the auth token of its login."""
    base = server["base"]
    status, body = api(base, "POST", "/api/user", {"email": email, "name": "Walker", "password": PASSWORD, "confirm": PASSWORD})
    assert status == 200, body
    printed = run(server["project"], "manage.py", "generate_validation_token", email, **server["variables"])
    assert printed.returncode == 0, printed.stderr
    assert api(base, "POST", "/api/validate/confirmation", {"token": printed.stdout.strip()})[0] == 200
    status, body = api(base, "POST", "/api/authenticate", {"email": email, "password": PASSWORD})
    assert status == 200, body
    return body["token"]


def two_factor_on(server, email: str) -> tuple[str, list[str]]:
    """Turn two-factor on for a registered user through the API; return its secret and recovery codes."""
    base, token = server["base"], register(server, email)
    status, enrollment = api(base, "POST", "/api/mfa/totp", {"password": PASSWORD}, token=token)
    assert status == 200, enrollment
    status, enabled = api(base, "PUT", "/api/mfa/totp", {"code": pyotp.TOTP(enrollment["secret"]).now()}, token=token)
    assert status == 200, enabled
    assert api(base, "GET", "/api/mfa", token=token) == (200, {"totp": True, "recovery_codes_left": 10})
    return enrollment["secret"], enabled["recovery_codes"]


VERIFIER = secrets.token_urlsafe(48)
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()


def authorize_url(server, app_server, state: str, **extra) -> str:
    query = {
        "response_type": "code",
        "client_id": server["client_id"],
        "redirect_uri": f"{app_server.base}/callback",
        "scope": "openid profile email",
        "state": state,
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        **extra,
    }
    return f"{server['base']}/oauth/authorize?{urllib.parse.urlencode(query)}"


def tokens_for(server, app_server, code: str) -> dict:
    """Exchange the code at the token endpoint, as the app's backend does (client_secret_basic)."""
    basic = base64.b64encode(f"{server['client_id']}:{server['client_secret']}".encode()).decode()
    status, _, body = http(
        f"{server['base']}/oauth/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": f"{app_server.base}/callback", "code_verifier": VERIFIER},
        {"Authorization": f"Basic {basic}"},
    )
    assert status == 200, body
    return json.loads(body)


# --- The browser ---------------------------------------------------------------------------------


@pytest.fixture
def open_browser(tmp_path):
    """Open Chromium browsers (each with a profile of its own) for the test; all quit after it."""
    opened = []

    def open_(**options):
        driver = chromium(tmp_path, **options)
        opened.append(driver)
        return driver

    try:
        yield open_
    finally:
        for driver in opened:
            driver.quit()


def submit(browser, selector: str) -> None:
    """Click `selector` and wait until the browser has left the page: a page that answers with
    the same heading (a refused code, a wrong password) must not be read before it has loaded."""
    click_and_leave(browser, browser.find_element(By.CSS_SELECTOR, selector))


def check_page(browser, shot: str, *, heading: str) -> None:
    """The page every walk checks: its heading, no script served, pages.css applied, no serious
    or critical axe-core violation, and a screenshot."""
    wait_for_heading(browser, heading)
    # No inline script: the sign-in page's one static file at most.
    scripts = browser.execute_script("return [...document.scripts].map(script => script.getAttribute('src'))")
    assert all(re.fullmatch(r"/static/passkeys/signin\.[0-9a-f]{12}\.js", src or "") for src in scripts), (
        f"{shot}: the page has a script: {scripts}"
    )
    # pages.css, collected and served by whitenoise under style-src 'self', is applied.
    assert browser.execute_script("return getComputedStyle(document.querySelector('main')).maxWidth") == "416px"
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / f"{shot}.png"))
    violations = axe_violations(browser)
    assert violations == [], f"{shot}: axe-core found\n{json.dumps(violations, indent=2)}"
    # Whatever takes the keyboard's focus shows it plainly.
    unmarked = browser.execute_script(
        "return [...document.querySelectorAll('main a, main button, main input:not([type=hidden])')].filter(element => {"
        "  element.focus(); const style = getComputedStyle(element);"
        "  return document.activeElement !== element || style.outlineStyle !== 'solid' || parseFloat(style.outlineWidth) < 2;"
        "}).map(element => element.outerHTML);"
    )
    assert unmarked == [], f"{shot}: no visible focus on {unmarked}"


def sign_in(browser, email: str, password: str = PASSWORD) -> None:
    browser.find_element(By.NAME, "email").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(password)
    submit(browser, "form button[type=submit]")


def wait_for_app(browser, app_server, path: str) -> dict:
    """Wait until the browser is at the app's `path`; return the query the app received."""
    WebDriverWait(browser, 20).until(lambda driver: driver.current_url.startswith(f"{app_server.base}{path}"))
    return app_server.last(path)


# --- The walks -----------------------------------------------------------------------------------


def test_sign_in_consent_allow_then_the_app_signs_the_user_out(server, app_server, open_browser):
    email = "allow.walker@example.com"
    register(server, email)
    browser = open_browser()

    browser.get(authorize_url(server, app_server, "st-allow"))
    check_page(browser, "en-signin", heading="Sign in")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=id_email]").text == "Email"
    assert browser.find_element(By.CSS_SELECTOR, "label[for=id_password]").text == "Password"

    sign_in(browser, email, "not the password")
    check_page(browser, "en-signin-refused", heading="Sign in")
    assert browser.find_element(By.ID, "form-errors").text == "Invalid email or password"

    browser.find_element(By.NAME, "email").clear()
    sign_in(browser, email)
    check_page(browser, "en-consent", heading="Allow Billing?")
    assert [item.text for item in browser.find_elements(By.CSS_SELECTOR, "ul.scopes li")] == [
        "Sign you in with your account",
        "See your name",
        "See your email address",
    ]
    browser.execute_script("document.querySelector('button[name=allow]').focus()")
    browser.save_screenshot(str(SHOTS / "en-consent-focus.png"))
    # The same page for a browser that prefers a dark scheme: its colours pass too.
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    check_page(browser, "en-consent-dark", heading="Allow Billing?")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    submit(browser, "button[name=allow]")

    answer = wait_for_app(browser, app_server, "/callback")
    assert answer["state"] == "st-allow"
    assert answer["iss"] == server["base"]
    assert "error" not in answer
    issued = tokens_for(server, app_server, answer["code"])
    assert set(issued) >= {"access_token", "id_token", "token_type", "expires_in"}

    browser.get(f"{server['base']}/signin/done")
    check_page(browser, "en-signed-in", heading="Signed in")

    # The app signs the user out with its ID token: at once, and back to the app with the state.
    logout = urllib.parse.urlencode(
        {"id_token_hint": issued["id_token"], "post_logout_redirect_uri": f"{app_server.base}/signed-out", "state": "st-out"}
    )
    browser.get(f"{server['base']}/oauth/logout?{logout}")
    assert wait_for_app(browser, app_server, "/signed-out") == {"state": "st-out"}
    browser.get(f"{server['base']}/signout")
    check_page(browser, "en-signout-nobody", heading="Sign out")
    assert "You are not signed in." in browser.find_element(By.TAG_NAME, "main").text


def test_consent_deny_in_german_by_ui_locales_on_a_phone_sized_window(server, app_server, open_browser):
    email = "deny.walker.with.a.long.address@example.com"
    register(server, email)
    browser = open_browser(language="en-US", size="390,844")

    browser.get(authorize_url(server, app_server, "st-deny", ui_locales="de"))
    check_page(browser, "de-signin-phone", heading="Anmelden")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=id_email]").text == "E-Mail-Adresse"
    sign_in(browser, email)
    check_page(browser, "de-consent-phone", heading="Billing zulassen?")
    # Nothing is wider than the window (a long address wraps).
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert browser.find_element(By.CSS_SELECTOR, "button[name=deny]").text == "Ablehnen"
    submit(browser, "button[name=deny]")

    answer = wait_for_app(browser, app_server, "/callback")
    assert answer["error"] == "access_denied"
    assert answer["state"] == "st-deny"
    assert "code" not in answer


@pytest.mark.parametrize("language", ["en-US", "de-DE"])
def test_two_factor_step_then_consent(server, app_server, open_browser, language):
    """English with a code of the app; German (by Accept-Language) with a recovery code."""
    email = f"otp.walker.{language.lower()}@example.com"
    secret, recovery_codes = two_factor_on(server, email)
    german = language.startswith("de")
    prefix = "de" if german else "en"
    browser = open_browser(language=language)

    browser.get(authorize_url(server, app_server, f"st-otp-{prefix}"))
    check_page(browser, f"{prefix}-signin-2fa-user", heading="Anmelden" if german else "Sign in")
    sign_in(browser, email)
    heading = "Zwei-Faktor-Anmeldung" if german else "Two-factor sign-in"
    check_page(browser, f"{prefix}-two-factor", heading=heading)

    browser.find_element(By.NAME, "otp").send_keys("000000")
    submit(browser, "form button[type=submit]")
    check_page(browser, f"{prefix}-two-factor-refused", heading=heading)
    refused = browser.find_element(By.ID, "id_otp_error").text
    assert refused == ("Ungültiger Zwei-Faktor-Code" if german else "Invalid two-factor code")
    # The refusal and the help are read with the field.
    assert browser.find_element(By.NAME, "otp").get_attribute("aria-describedby") == "id_otp_helptext id_otp_error"

    if german:
        code = recovery_codes[0]
    else:
        # The code that turned two-factor on is spent, and so is its time step: the app's next
        # code, which the server accepts one step early (it allows a step of clock skew).
        code = pyotp.TOTP(secret).at(time.time() + 30)
    browser.find_element(By.NAME, "otp").clear()
    browser.find_element(By.NAME, "otp").send_keys(code)
    submit(browser, "form button[type=submit]")
    check_page(browser, f"{prefix}-consent-2fa-user", heading="Billing zulassen?" if german else "Allow Billing?")
    submit(browser, "button[name=allow]")

    answer = wait_for_app(browser, app_server, "/callback")
    assert answer["state"] == f"st-otp-{prefix}"
    claims = tokens_for(server, app_server, answer["code"])["id_token"].split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(claims + "==="))["amr"] == ["pwd", "otp"]


@pytest.mark.parametrize("language", ["en-US", "de-DE"])
def test_the_user_signs_out_on_the_sign_out_page(server, app_server, open_browser, language):
    email = f"signout.walker.{language.lower()}@example.com"
    register(server, email)
    german = language.startswith("de")
    prefix = "de" if german else "en"
    browser = open_browser(language=language)
    browser.get(f"{server['base']}/signin")
    check_page(browser, f"{prefix}-signin-direct", heading="Anmelden" if german else "Sign in")
    sign_in(browser, email)
    check_page(browser, f"{prefix}-signed-in", heading="Angemeldet" if german else "Signed in")

    submit(browser, "main a")
    check_page(browser, f"{prefix}-signout", heading="Abmelden" if german else "Sign out")
    submit(browser, "button[name=confirm]")

    check_page(browser, f"{prefix}-signed-out", heading="Abgemeldet" if german else "Signed out")
    # Signed out for real: the app's next request asks for the sign-in again.
    browser.get(authorize_url(server, app_server, "st-again"))
    check_page(browser, f"{prefix}-signin-again", heading="Anmelden" if german else "Sign in")


@pytest.mark.parametrize("language", ["en-US", "de-DE"])
def test_a_request_with_an_unregistered_redirect_uri_ends_on_the_error_page(server, app_server, open_browser, language):
    email = f"error.walker.{language.lower()}@example.com"
    register(server, email)
    german = language.startswith("de")
    browser = open_browser(language=language)
    browser.get(f"{server['base']}/signin")
    sign_in(browser, email)
    WebDriverWait(browser, 20).until(expected_conditions.url_contains("/signin/done"))
    before = len(app_server.requests)

    browser.get(authorize_url(server, app_server, "st-error", redirect_uri=f"{app_server.base}/elsewhere"))

    heading = "Diese Anmeldeanfrage kann nicht fortgesetzt werden" if german else "This sign-in request cannot go on"
    check_page(browser, f"{'de' if german else 'en'}-error", heading=heading)
    assert browser.find_element(By.CSS_SELECTOR, "code[lang=en]").text == "invalid_request: Mismatching redirect URI."
    assert browser.current_url.startswith(server["base"])
    assert len(app_server.requests) == before


def test_sign_in_and_consent_work_with_javascript_turned_off(server, app_server, open_browser):
    email = "nojs.walker@example.com"
    register(server, email)
    browser = open_browser(javascript=False)

    browser.get(authorize_url(server, app_server, "st-nojs", ui_locales="de"))
    wait_for_heading(browser, "Anmelden")
    browser.save_screenshot(str(SHOTS / "de-signin-nojs.png"))
    sign_in(browser, email)
    wait_for_heading(browser, "Billing zulassen?")
    browser.save_screenshot(str(SHOTS / "de-consent-nojs.png"))
    submit(browser, "button[name=allow]")

    answer = wait_for_app(browser, app_server, "/callback")
    assert answer["state"] == "st-nojs"
    assert tokens_for(server, app_server, answer["code"])["token_type"] == "Bearer"
    # JavaScript was off indeed: the app's page has a script that would have renamed it.
    assert browser.title == "app"


def test_every_page_forbids_inline_script_and_the_browser_enforces_it(server, app_server, open_browser):
    base = server["base"]
    pages = [
        f"{base}/signin",
        f"{base}/signin?ui_locales=de",
        f"{base}/signin/done",
        f"{base}/signout",
        f"{base}/oauth/logout",
        authorize_url(server, app_server, "st-csp"),
        f"{base}/oauth/authorize?client_id=nobody&response_type=code",
    ]
    for url in pages:
        status, headers, body = http(url)
        assert status in (200, 302, 400), (url, status)
        signin = urllib.parse.urlsplit(url).path == "/signin"
        assert headers["Content-Security-Policy"] == (SIGNIN_CSP if signin else CSP), url
        # Not no-referrer: under it Chromium posts the forms with `Origin: null` (CSRF refuses it).
        assert headers["Referrer-Policy"] == "same-origin", url
        assert body.count(b"<script") == (1 if signin else 0), url
        assert not signin or SIGNIN_SCRIPT.search(body), url

    browser = open_browser()
    browser.get(f"{base}/signin")
    WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located((By.NAME, "email")))
    # An inline script put into the page (as an injection would) is refused by the browser.
    refused = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "document.addEventListener('securitypolicyviolation', event => done({directive: event.effectiveDirective, ran: window.injected === true}));"
        "const script = document.createElement('script'); script.textContent = 'window.injected = true;';"
        "document.body.appendChild(script);"
    )
    assert refused == {"directive": "script-src-elem", "ran": False}
