"""Passkeys (WebAuthn) in a real browser: headless Chromium (Debian's) with Selenium's virtual
authenticator (CTAP2, internal, discoverable credentials, user verification), the server served by
gunicorn in production mode on a fresh SQLite database.

WebAuthn needs a secure context and a domain as RP ID, so everything runs on `localhost`: the
server (WEBAUTHN_RP_ID=localhost) and the test's own frontend, a single-page app on another
loopback port (tests/passkeys/frontend.js) that calls the API cross-origin with fetch (CORS), as a
real one would. Its functions run the ceremonies with the browser's own JSON helpers
(PublicKeyCredential.parseCreationOptionsFromJSON, parseRequestOptionsFromJSON, toJSON).

The walks: register and sign in (discoverable, and by email), with two-factor on too (no code
asked); the refusals (user verification off, a wrong origin, a replayed assertion, a spent
challenge, options asked for another account, a counter that goes backwards (the passkey then
flagged for good), a removed passkey), each answered 401 "Invalid passkey";
a registration and sign-ins whose options come from one node and whose finish goes to another;
the hosted sign-in page's button (English, German, in an OpenID authorization up to the app's ID
token, a refusal, a ceremony the browser cannot finish) and its autofill; the staff admin's
button (staff signed in, others refused) and its page of flagged passkeys. The pages are checked
as tests/oidc/test_pages_browser.py checks them (axe-core, a visible focus) and for CSP
violations (the page's securitypolicyviolation events and the console). Screenshots are kept in
tests/support/browser.py's SHOTS (passkey-*.png).

The pages' script also asks for a passkey at once where the browser offers passkeys in a field's
autofill (conditional mediation), and Chromium's virtual authenticator answers such a request at
once: the walks of the button turn that off in the browser (without_passkey_autofill).

Where Chromium itself refuses (user verification that fails), the server is asked too, with the
browser's own credential altered: the authenticator data's UV flag cleared, and the assertion
signed again with the authenticator's key (read from the virtual authenticator).
"""

import base64
import hashlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import re
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import copy_project, run
from tests.support.browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    SHOTS,
    axe_violations,
    chromium,
    click_and_leave,
    readable,
    wait_for_heading,
)
from tests.support.node import axe_script
from tests.support.servers import free_port, gunicorn, production_environment

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM_MISSING, reason=CHROMIUM_MISSING_REASON)]

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (see requirements.txt)")
jwt = pytest.importorskip("jwt")
pyotp = pytest.importorskip("pyotp")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.virtual_authenticator import (  # noqa: E402
    Credential,
    Protocol,
    Transport,
    VirtualAuthenticatorOptions,
)
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PASSWORD = "passkey walk phrase 9"
INVALID = {"status": 401, "message": "Invalid passkey"}
AMR = ["hwk", "user", "mfa"]
FRONTEND_JS = Path(__file__).with_name("frontend.js").read_bytes()
FRONTEND_PAGE = (
    b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>frontend</title>'
    b'<script src="/frontend.js"></script></head><body><main><h1>The frontend</h1></main></body></html>'
)


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- The frontends -------------------------------------------------------------------------------


class Frontend:
    """An origin of the test's own on a loopback port, reached as http://localhost:<port>: the
    page (at every path, the OpenID redirect URI included) and its script; it records the paths
    and queries asked for."""

    def __init__(self):
        self.requests: list[str] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                recorded.append(self.path)
                if urllib.parse.urlsplit(self.path).path == "/frontend.js":
                    body, kind = FRONTEND_JS, "text/javascript; charset=utf-8"
                else:
                    body, kind = FRONTEND_PAGE, "text/html; charset=utf-8"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def last(self, path: str) -> dict[str, str]:
        for recorded in reversed(self.requests):
            parts = urllib.parse.urlsplit(recorded)
            if parts.path == path:
                return dict(urllib.parse.parse_qsl(parts.query))
        raise AssertionError(f"the browser never came to {path}: {self.requests}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def frontend():
    """The app's frontend: in WEBAUTHN_ORIGINS and CORS_ALLOWED_ORIGINS."""
    served = Frontend()
    yield served
    served.close()


@pytest.fixture(scope="module")
def elsewhere():
    """A third origin: CORS lets it call the API (so that only WebAuthn's origin check stands in
    its way), but it is not in WEBAUTHN_ORIGINS."""
    served = Frontend()
    yield served
    served.close()


# --- The server ----------------------------------------------------------------------------------


def http(url: str, body: dict | None = None, headers: dict | None = None, method: str | None = None) -> tuple[int, dict, bytes]:
    """Status, headers and body of one request (a JSON body when `body` is given); no redirect is
    followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    headers = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def api(base: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    status, _, answer = http(base + path, body, {"Authorization": f"Bearer {token}"} if token else None, method=method)
    try:
        return status, json.loads(answer)
    except ValueError:
        return status, {"not json": answer.decode(errors="replace")[:500]}


@pytest.fixture(scope="module")
def server(tmp_path_factory, frontend, elsewhere):
    """gunicorn serving a fresh copy of the project in production mode on localhost, with an
    OpenID app ("Billing") whose redirect URI is the frontend's /callback."""
    axe_script()  # skips the module (the reason CI watches) before anything starts, if it is missing
    workdir = tmp_path_factory.mktemp("passkeys-browser")
    project = copy_project(workdir / "project")
    port = free_port()
    base = f"http://localhost:{port}"
    variables = {
        "DEBUG": "false",
        "SECRET_KEY": "passkeys-browser-test-" + "k" * 50,
        "EMAIL_BACKEND": "console",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "authserver.settings",
        "SECURE_SSL_REDIRECT": "false",
        "TOKEN_ISSUER": base,
        "WEBAUTHN_RP_ID": "localhost",
        "WEBAUTHN_ORIGINS": f"{base},{frontend.origin}",
        "CLIENT_ORIGIN": frontend.origin,
        "CORS_ALLOWED_ORIGINS": f"{frontend.origin},{elsewhere.origin}",
        # Every walk signs in from 127.0.0.1: no rate limit is the point here.
        "LOGIN_RATE": "1000/min",
        "LOGIN_ACCOUNT_RATE": "1000/hour",
        "LOGIN_ADDRESS_RATE": "1000/hour",
        "SIGNUP_RATE": "1000/hour",
    }
    for args in (["collectstatic", "--noinput", "--verbosity", "0"], ["migrate", "--noinput", "--verbosity", "0"]):
        result = run(project, "manage.py", *args, **variables)
        assert result.returncode == 0, f"manage.py {args[0]}: {result.stderr}"
    registered = run(
        project,
        "manage.py",
        "create_oidc_client",
        "Billing",
        "--redirect-uri", f"{frontend.origin}/callback",
        "--scopes", "openid profile email",
        **variables,
    )
    assert registered.returncode == 0, registered.stderr
    printed = dict(line.split("=", 1) for line in registered.stdout.split())

    with gunicorn(
        "-c", "gunicorn.conf.py", "--workers", "2",
        cwd=project,
        env=production_environment(workdir, **variables),
        log=workdir / "gunicorn.log",
        port=port,
        timeout=60,
    ):
        yield {"base": base, "port": port, "project": project, "workdir": workdir, "variables": variables, **printed}


def manage(server, *args: str, **extra: str) -> str:
    printed = run(server["project"], "manage.py", *args, **server["variables"], **extra)
    assert printed.returncode == 0, f"manage.py {args[0]}: {printed.stderr}"
    return printed.stdout


def confirm(server, email: str) -> None:
    token = manage(server, "generate_validation_token", email).strip()
    status, body = api(server["base"], "POST", "/api/validate/confirmation", {"token": token})
    assert status == 200, body


def password_login(server, email: str, **extra) -> str:
    status, body = api(server["base"], "POST", "/api/authenticate", {"email": email, "password": PASSWORD, **extra})
    assert status == 200, body
    return body["token"]


def register_user(server, email: str) -> str:
    """Register and confirm a user through the API; return the auth token of its login."""
    status, body = api(server["base"], "POST", "/api/user", {"email": email, "name": "Walker", "password": PASSWORD, "confirm": PASSWORD})
    assert status == 200, body
    confirm(server, email)
    return password_login(server, email)


def claims(server, token: str) -> dict:
    """The auth token's claims, verified with the server's published keys (PyJWT)."""
    status, jwks = api(server["base"], "GET", "/.well-known/jwks.json")
    assert status == 200, jwks
    keys = {key["kid"]: key for key in jwks["keys"]}
    key = jwt.PyJWK(keys[jwt.get_unverified_header(token)["kid"]])
    return jwt.decode(token, key.key, algorithms=[key.algorithm_name], audience="authserver", issuer=server["base"])


def assert_signed_in_as(server, token: str, email: str) -> None:
    status, body = api(server["base"], "GET", "/api/user", token=token)
    assert status == 200, body
    assert email in json.dumps(body), body
    assert claims(server, token)["amr"] == AMR


def flagged_passkeys(server) -> list[str]:
    """The ids of the passkeys flagged as cloned, read in the database."""
    printed = manage(
        server,
        "shell",
        "-c",
        "from accounts.passkeys.models import Passkey\n"
        "print(list(Passkey.objects.filter(cloned_at__isnull=False).values_list('user__email', flat=True)))",
    )
    return json.loads(printed.strip().splitlines()[-1].replace("'", '"'))


@pytest.fixture(scope="module")
def staff(server) -> str:
    """A staff user, created as an operator does (createsuperuser), confirmed; its email."""
    email = "staff.walker@example.com"
    manage(server, "createsuperuser", "--noinput", DJANGO_SUPERUSER_EMAIL=email, DJANGO_SUPERUSER_PASSWORD=PASSWORD, DJANGO_SUPERUSER_NAME="Staff Walker")
    status, body = api(server["base"], "POST", "/api/authenticate", {"email": email, "password": PASSWORD})
    if status != 200:
        confirm(server, email)
    return email


def admin_password_login(browser, server, email: str) -> None:
    """Log into the admin with the email and password, as staff without a passkey do."""
    without_passkey_autofill(browser)
    browser.get(f"{server['base']}/admin/login/")
    WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located((By.ID, "login-form")))
    browser.find_element(By.NAME, "username").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    click_and_leave(browser, browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]"))
    wait_for_heading(browser, "Administration")


# --- The browser ---------------------------------------------------------------------------------


@pytest.fixture
def open_browser(tmp_path, frontend):
    """Open Chromium at the frontend with a virtual authenticator of its own (a phone's or laptop's
    built-in one: CTAP2, internal, discoverable credentials, user verification that succeeds
    unless `user_verified` is false); all quit after the test."""
    opened = []

    def open_(*, user_verified: bool = True, at: str | None = None, **options):
        driver = chromium(tmp_path / f"browser-{len(opened)}", console_log=True, **options)
        opened.append(driver)
        driver.get(f"{at or frontend.origin}/")
        wait_for_heading(driver, "The frontend")
        driver.add_virtual_authenticator(
            VirtualAuthenticatorOptions(
                protocol=Protocol.CTAP2,
                transport=Transport.INTERNAL,
                has_resident_key=True,
                has_user_verification=True,
                is_user_verified=user_verified,
            )
        )
        return driver

    try:
        yield open_
    finally:
        for driver in opened:
            driver.quit()


def spa(browser, function: str, *args):
    """Run one of the frontend's functions (window.spa) in the page; return what it answered."""
    answer = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"window.spa.{function}(...Array.from(arguments).slice(0, -1))"
        ".then(done, error => done({step: 'script', error: `${error.name}: ${error.message}`}));",
        *args,
    )
    assert answer.get("step") != "script", f"the frontend's {function} failed: {answer['error']}"
    return answer


def register_passkey(browser, server, token: str, name: str | None = "Laptop") -> dict:
    """Register a passkey from the frontend's page; return the frontend's answer (status 200)."""
    answer = spa(browser, "register", server["base"], token, PASSWORD, name)
    assert (answer["step"], answer.get("status")) == ("finish", 200), answer
    return answer


def passkey_sign_in(browser, server, email: str | None = None, finish: str | None = None) -> dict:
    return spa(browser, "signIn", server["base"], email, finish)


def signed_in(answer: dict) -> str:
    assert (answer["step"], answer.get("status")) == ("finish", 200), answer
    assert set(answer["body"]) == {"token"}, answer["body"]
    return answer["body"]["token"]


def refused(answer: dict) -> None:
    assert answer["step"] == "finish", answer
    assert (answer["status"], answer["body"]) == (401, INVALID), answer


def authenticator_key(browser, credential_id: str):
    """The private key of a credential in the browser's virtual authenticator."""
    stored = {b64encode(b64decode(credential.id)): credential for credential in browser.get_credentials()}
    return serialization.load_der_private_key(b64decode(stored[credential_id].private_key), password=None)


def without_user_verification(browser, credential: dict) -> dict:
    """The browser's assertion with its UV flag cleared, signed again with the authenticator's key."""
    response = credential["response"]
    data = bytearray(b64decode(response["authenticatorData"]))
    data[32] &= ~0x04 & 0xFF
    return resigned(browser, credential, bytes(data))


def resigned(browser, credential: dict, authenticator_data: bytes | None = None) -> dict:
    """The browser's assertion signed again with the authenticator's key (its authenticator data
    replaced by `authenticator_data` if given)."""
    response = credential["response"]
    data = authenticator_data if authenticator_data is not None else b64decode(response["authenticatorData"])
    signed = data + hashlib.sha256(b64decode(response["clientDataJSON"])).digest()
    key = authenticator_key(browser, credential["id"])
    # The algorithm the authenticator chose from the options' list: Ed25519 or ES256.
    signature = key.sign(signed, ec.ECDSA(hashes.SHA256())) if isinstance(key, ec.EllipticCurvePrivateKey) else key.sign(signed)
    return {**credential, "response": {**response, "authenticatorData": b64encode(data), "signature": b64encode(signature)}}


def console_csp_errors(browser) -> list[str]:
    """What the browser's console said of the Content-Security-Policy since the last read."""
    try:
        entries = browser.get_log("browser")
    except Exception as error:  # noqa: BLE001 (a driver without the log: said, not hidden)
        return [f"no console log: {error}"]
    return [entry["message"] for entry in entries if "Content Security Policy" in entry["message"] or "Content-Security-Policy" in entry["message"]]


def record_csp_violations(browser) -> None:
    """From the next document on, record the page's CSP violations in window.cspViolations."""
    browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {
            "source": "window.cspViolations = [];"
            "document.addEventListener('securitypolicyviolation', event => window.cspViolations.push("
            "`${event.effectiveDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`));"
        },
    )


def check_hosted_page(browser, shot: str, *, heading: str) -> None:
    """A hosted page with the passkey button: its heading, no CSP violation, pages.css applied
    where it applies, no serious or critical axe-core violation, a visible focus, a screenshot."""
    wait_for_heading(browser, heading)
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / f"{shot}.png"))
    assert browser.execute_script("return window.cspViolations || []") == [], shot
    assert console_csp_errors(browser) == [], shot
    violations = axe_violations(browser)
    assert violations == [], f"{shot}: axe-core found\n{readable(violations)}"
    unmarked = browser.execute_script(
        "return [...document.querySelectorAll('main a, main button, main input:not([type=hidden]), #content a, #content button, #content input:not([type=hidden])')]"
        ".filter(element => {"
        "  element.focus(); const style = getComputedStyle(element);"
        "  return document.activeElement !== element || style.outlineStyle === 'none' || parseFloat(style.outlineWidth) < 1;"
        "}).map(element => element.outerHTML);"
    )
    assert unmarked == [], f"{shot}: no visible focus on {unmarked}"


def passkey_button(browser, text: str = "Sign in with a passkey"):
    button = browser.find_element(By.ID, "passkey-signin")
    # The hosted page's is a <button>; the admin's an <input type=button>, styled as its "Log in".
    assert (button.text or button.get_attribute("value")) == text
    assert button.is_displayed() and button.is_enabled()
    return button


def without_passkey_autofill(browser) -> None:
    """From the next document on, the browser offers no passkeys in a field's autofill
    (PublicKeyCredential.isConditionalMediationAvailable answers false), so that the pages' script
    waits for the button: Chromium's virtual authenticator answers a conditional request at once,
    as a user picking the passkey in the autofill would."""
    browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {"source": "PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);"},
    )


# --- The walks -----------------------------------------------------------------------------------


def test_a_passkey_registered_from_the_frontend_signs_in_with_and_without_the_email(server, open_browser):
    email = "first.walker@example.com"
    token = register_user(server, email)
    browser = open_browser()

    registered = register_passkey(browser, server, token, "Work laptop")
    passkey = registered["body"]["passkey"]
    assert set(passkey) == {"id", "name", "created_at", "last_used_at", "backed_up", "transports"}
    assert passkey["name"] == "Work laptop"
    assert passkey["last_used_at"] is None
    assert "internal" in passkey["transports"]
    # The options: a discoverable credential with user verification, no attestation, and a user
    # handle that says nothing of the user.
    options = registered["options"]
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options.get("attestation", "none") == "none"
    assert options["rp"]["id"] == "localhost"
    assert options.get("excludeCredentials", []) == []
    handle = b64decode(options["user"]["id"])
    assert len(handle) >= 16 and email.encode() not in handle
    assert [credential.user_handle for credential in browser.get_credentials()] == [base64.urlsafe_b64encode(handle).decode()]

    status, listed = api(server["base"], "GET", "/api/passkeys", token=token)
    assert status == 200, listed
    assert listed == {"passkeys": [passkey]}

    # Discoverable: no email, the authenticator offers the passkey.
    discovered = passkey_sign_in(browser, server)
    assert discovered["options"].get("allowCredentials", []) == []
    assert discovered["options"]["userVerification"] == "required"
    assert_signed_in_as(server, signed_in(discovered), email)

    # With the email: the options name the user's passkeys.
    named = passkey_sign_in(browser, server, email)
    assert [allowed["id"] for allowed in named["options"]["allowCredentials"]] == [registered["credential"]["id"]]
    assert_signed_in_as(server, signed_in(named), email)

    status, listed = api(server["base"], "GET", "/api/passkeys", token=token)
    assert listed["passkeys"][0]["last_used_at"] is not None, listed

    # The same authenticator again: the options exclude the passkey it holds, and it refuses.
    again = spa(browser, "register", server["base"], token, PASSWORD, "Again")
    assert [excluded["id"] for excluded in again["options"]["excludeCredentials"]] == [registered["credential"]["id"]]
    assert again["step"] == "create" and again["error"].startswith("InvalidStateError"), again

    # Another authenticator (a phone): a second passkey, with the account's same user handle,
    # listed first; each signs in.
    phone = open_browser()
    second = register_passkey(phone, server, token, "Phone")
    assert second["options"]["user"]["id"] == options["user"]["id"]
    status, listed = api(server["base"], "GET", "/api/passkeys", token=token)
    assert [passkey["name"] for passkey in listed["passkeys"]] == ["Phone", "Work laptop"], listed
    assert_signed_in_as(server, signed_in(passkey_sign_in(phone, server)), email)
    named = passkey_sign_in(phone, server, email)
    assert {allowed["id"] for allowed in named["options"]["allowCredentials"]} == {registered["credential"]["id"], second["credential"]["id"]}
    assert_signed_in_as(server, signed_in(named), email)


def test_a_user_with_two_factor_on_signs_in_with_a_passkey_and_no_code(server, open_browser):
    email = "totp.walker@example.com"
    token = register_user(server, email)
    status, enrollment = api(server["base"], "POST", "/api/mfa/totp", {"password": PASSWORD}, token=token)
    assert status == 200, enrollment
    status, enabled = api(server["base"], "PUT", "/api/mfa/totp", {"code": pyotp.TOTP(enrollment["secret"]).now()}, token=token)
    assert status == 200, enabled
    # A password alone no longer signs in.
    assert api(server["base"], "POST", "/api/authenticate", {"email": email, "password": PASSWORD})[0] != 200
    browser = open_browser()
    register_passkey(browser, server, token)

    assert_signed_in_as(server, signed_in(passkey_sign_in(browser, server)), email)
    assert_signed_in_as(server, signed_in(passkey_sign_in(browser, server, email)), email)
    # On the hosted page too: no two-factor step.
    without_passkey_autofill(browser)
    browser.get(f"{server['base']}/signin")
    WebDriverWait(browser, 20).until(expected_conditions.visibility_of_element_located((By.ID, "passkey-signin")))
    passkey_button(browser).click()
    wait_for_heading(browser, "Signed in")


def test_without_user_verification_nothing_is_registered_and_nobody_signs_in(server, open_browser):
    email = "uv.walker@example.com"
    token = register_user(server, email)

    # An authenticator whose user verification fails: the browser itself refuses both ceremonies.
    unverified = open_browser(user_verified=False)
    answer = spa(unverified, "register", server["base"], token, PASSWORD, "No UV")
    assert answer["step"] == "create" and answer["error"].startswith("NotAllowedError"), answer
    assert api(server["base"], "GET", "/api/passkeys", token=token) == (200, {"passkeys": []})

    # The server refuses them too: the browser's own credential with its UV flag cleared.
    browser = open_browser()
    made = spa(browser, "register", server["base"], token, PASSWORD, "Cleared UV", False)
    assert made["step"] == "create" and "credential" in made, made
    attestation = bytearray(b64decode(made["credential"]["response"]["attestationObject"]))
    at = bytes(attestation).index(hashlib.sha256(b"localhost").digest()) + 32
    assert attestation[at] & 0x04
    attestation[at] &= ~0x04 & 0xFF
    # toJSON adds a copy of the authenticator data beside the attestation object: cleared too.
    copy = bytearray(b64decode(made["credential"]["response"]["authenticatorData"]))
    copy[32] &= ~0x04 & 0xFF
    cleared = {
        **made["credential"],
        "response": {
            **made["credential"]["response"],
            "attestationObject": b64encode(bytes(attestation)),
            "authenticatorData": b64encode(bytes(copy)),
        },
    }
    answer = spa(browser, "call", server["base"], "POST", "/api/passkeys", {"credential": cleared, "name": "Cleared UV"}, token)
    assert (answer["status"], answer["body"]) == (401, INVALID), answer
    assert api(server["base"], "GET", "/api/passkeys", token=token) == (200, {"passkeys": []})

    browser.remove_all_credentials()
    register_passkey(browser, server, token)
    # The browser's assertion signed again as it is: signed in (what follows is no artefact).
    ceremony = spa(browser, "signIn", server["base"], None, None, False)
    answer = spa(browser, "call", server["base"], "POST", "/api/authenticate/passkey", {"ceremony": ceremony["ceremony"], "credential": resigned(browser, ceremony["credential"])})
    assert answer["status"] == 200, answer
    # The same with the UV flag cleared: refused.
    ceremony = spa(browser, "signIn", server["base"], None, None, False)
    answer = spa(browser, "call", server["base"], "POST", "/api/authenticate/passkey", {"ceremony": ceremony["ceremony"], "credential": without_user_verification(browser, ceremony["credential"])})
    assert (answer["status"], answer["body"]) == (401, INVALID), answer

    # The authenticator that fails user verification holds no credential; one that holds a passkey
    # but fails user verification (the key copied in) cannot sign in either: the browser refuses.
    held = browser.get_credentials()[0]
    unverified.add_credential(
        Credential.create_resident_credential(
            b64decode(held.id), "localhost", b64decode(held.user_handle), b64decode(held.private_key), held.sign_count
        )
    )
    answer = spa(unverified, "signIn", server["base"], None, None)
    assert answer["step"] == "get" and answer["error"].startswith("NotAllowedError"), answer


def test_a_ceremony_on_another_origin_is_refused(server, open_browser, elsewhere):
    email = "origin.walker@example.com"
    token = register_user(server, email)
    browser = open_browser()
    register_passkey(browser, server, token)

    # The same browser and authenticator on a third origin, which CORS lets call the API: its
    # ceremonies (the RP ID fits, `localhost`) are refused for their origin.
    browser.get(f"{elsewhere.origin}/")
    wait_for_heading(browser, "The frontend")
    answer = passkey_sign_in(browser, server)
    assert "credential" in answer, answer
    assert json.loads(b64decode(answer["credential"]["response"]["clientDataJSON"]))["origin"] == elsewhere.origin
    refused(answer)
    refused(passkey_sign_in(browser, server, email))

    browser.remove_all_credentials()
    answer = spa(browser, "register", server["base"], token, PASSWORD, "Elsewhere")
    refused(answer)
    status, listed = api(server["base"], "GET", "/api/passkeys", token=token)
    assert [passkey["name"] for passkey in listed["passkeys"]] == ["Laptop"]


def test_a_replayed_assertion_and_a_spent_challenge_are_refused(server, open_browser):
    email = "replay.walker@example.com"
    token = register_user(server, email)
    browser = open_browser()
    register_passkey(browser, server, token)

    first = passkey_sign_in(browser, server)
    signed_in(first)
    # The same assertion and ceremony again.
    replayed = spa(browser, "call", server["base"], "POST", "/api/authenticate/passkey", {"ceremony": first["ceremony"], "credential": first["credential"]})
    assert (replayed["status"], replayed["body"]) == (401, INVALID), replayed
    # A fresh assertion (a new signature, a higher counter) for the spent ceremony's challenge.
    fresh = spa(browser, "assertFor", server["base"], first["options"], first["ceremony"])
    assert fresh["credential"]["response"]["signature"] != first["credential"]["response"]["signature"]
    refused(fresh)
    # An assertion made for one ceremony and posted with another's token.
    other = spa(browser, "signIn", server["base"], None, None, False)
    mine = spa(browser, "signIn", server["base"], None, None, False)
    crossed = spa(browser, "call", server["base"], "POST", "/api/authenticate/passkey", {"ceremony": other["ceremony"], "credential": mine["credential"]})
    assert (crossed["status"], crossed["body"]) == (401, INVALID), crossed
    # The passkey still works.
    assert_signed_in_as(server, signed_in(passkey_sign_in(browser, server)), email)


def test_options_asked_for_one_account_do_not_sign_in_another(server, open_browser):
    """Options asked for an email allow that account's passkeys only: an assertion of another
    account's passkey (the browser asked without the list) is refused for them."""
    email, other = "asked.walker@example.com", "other.walker@example.com"
    register_passkey(open_browser(), server, register_user(server, email))
    browser = open_browser()
    register_passkey(browser, server, register_user(server, other))

    started = spa(browser, "call", server["base"], "POST", "/api/authenticate/passkey/options", {"email": email})
    assert started["status"] == 200, started
    options = {key: value for key, value in started["body"]["options"].items() if key != "allowCredentials"}
    answer = spa(browser, "assertFor", server["base"], options, started["body"]["ceremony"])
    refused(answer)
    # The same passkey with options asked without an email, or for its own account: signed in.
    assert_signed_in_as(server, signed_in(passkey_sign_in(browser, server)), other)
    assert_signed_in_as(server, signed_in(passkey_sign_in(browser, server, other)), other)


def test_a_counter_that_goes_backwards_is_refused_and_the_passkey_flagged(server, staff, open_browser):
    email = "clone.walker@example.com"
    token = register_user(server, email)
    browser = open_browser()
    register_passkey(browser, server, token)
    signed_in(passkey_sign_in(browser, server))
    signed_in(passkey_sign_in(browser, server))
    (original,) = browser.get_credentials()
    assert original.sign_count >= 3, original.sign_count

    # A copy of the authenticator's key whose counter starts behind (a cloned authenticator).
    browser.remove_all_credentials()
    browser.add_credential(
        Credential.create_resident_credential(
            b64decode(original.id), original.rp_id, b64decode(original.user_handle), b64decode(original.private_key), 0
        )
    )
    answer = passkey_sign_in(browser, server)
    assert int.from_bytes(b64decode(answer["credential"]["response"]["authenticatorData"])[33:37], "big") < original.sign_count
    refused(answer)
    assert flagged_passkeys(server) == [email]
    # A flagged passkey signs in no more, whatever its counter says next.
    browser.remove_all_credentials()
    browser.add_credential(
        Credential.create_resident_credential(
            b64decode(original.id), original.rp_id, b64decode(original.user_handle), b64decode(original.private_key), 100
        )
    )
    refused(passkey_sign_in(browser, server))
    # The API does not tell; the staff's page of passkeys does.
    status, listed = api(server["base"], "GET", "/api/passkeys", token=token)
    assert status == 200 and len(listed["passkeys"]) == 1 and "cloned_at" not in listed["passkeys"][0], listed
    staff_browser = open_browser()
    admin_password_login(staff_browser, server, staff)
    staff_browser.get(f"{server['base']}/admin/accounts/passkey/?flagged=yes")
    wait_for_heading(staff_browser, "Passkeys")
    rows = [row.text for row in staff_browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")]
    assert len(rows) == 1 and email in rows[0], rows
    SHOTS.mkdir(parents=True, exist_ok=True)
    staff_browser.save_screenshot(str(SHOTS / "passkey-admin-flagged.png"))


def test_the_options_from_one_node_and_the_finish_on_another(server, frontend, open_browser):
    """Two gunicorn servers on the same database and SECRET_KEY: the options from node A (the
    module's server), the finish posted to node B, for a registration and for sign-ins."""
    email = "nodes.walker@example.com"
    token = register_user(server, email)
    browser = open_browser()

    port = free_port()
    with gunicorn(
        "-c", "gunicorn.conf.py", "--workers", "1",
        cwd=server["project"],
        env=production_environment(server["workdir"], **server["variables"]),
        log=server["workdir"] / "gunicorn-b.log",
        port=port,
        timeout=60,
    ):
        node_b = f"http://localhost:{port}"
        answer = spa(browser, "register", server["base"], token, PASSWORD, "Laptop", True, node_b)
        assert (answer["step"], answer.get("status")) == ("finish", 200), answer
        answer = passkey_sign_in(browser, server, None, node_b)
        assert_signed_in_as(server, signed_in(answer), email)
        answer = passkey_sign_in(browser, server, email, node_b)
        assert_signed_in_as(server, signed_in(answer), email)


def test_a_renamed_then_removed_passkey_no_longer_signs_in(server, open_browser):
    email = "removal.walker@example.com"
    token = register_user(server, email)
    browser = open_browser()
    registered = register_passkey(browser, server, token, None)
    passkey, registered_id = registered["body"]["passkey"], registered["credential"]["id"]
    assert passkey["name"], passkey  # a default name when none was given

    status, renamed = api(server["base"], "PATCH", f"/api/passkeys/{passkey['id']}", {"name": "Phone"}, token=token)
    assert status == 200, renamed
    assert renamed["passkey"] == {**passkey, "name": "Phone"}

    status, body = api(server["base"], "DELETE", f"/api/passkeys/{passkey['id']}", {"password": "not the password"}, token=token)
    assert status != 200, body
    assert api(server["base"], "GET", "/api/passkeys", token=token)[1]["passkeys"] != []
    assert api(server["base"], "DELETE", f"/api/passkeys/{passkey['id']}", {"password": PASSWORD}, token=token) == (200, {"message": "Passkey removed"})
    assert api(server["base"], "GET", "/api/passkeys", token=token) == (200, {"passkeys": []})

    refused(passkey_sign_in(browser, server))
    # With the email: the options name no passkey the authenticator holds (an account without
    # passkeys gets what an unknown email gets), and the browser finds none to use.
    answer = passkey_sign_in(browser, server, email)
    assert registered_id not in [allowed["id"] for allowed in answer["options"]["allowCredentials"]], answer["options"]
    assert answer["step"] == "get" and answer["error"].startswith("NotAllowedError"), answer


@pytest.mark.parametrize("language", ["en-US", "de-DE"])
def test_the_hosted_sign_in_page_signs_in_with_the_passkey_button(server, open_browser, language):
    """English in a desktop's window, German in a phone's."""
    german = language.startswith("de")
    prefix = "de" if german else "en"
    email = f"hosted.walker.{prefix}@example.com"
    token = register_user(server, email)
    browser = open_browser(language=language, size="390,844" if german else "1280,900")
    register_passkey(browser, server, token)
    console_csp_errors(browser)  # forget the frontend's console

    status, headers, _ = http(f"{server['base']}/signin")
    assert status == 200
    policy = {part.strip().split(" ", 1)[0]: part.strip() for part in headers["Content-Security-Policy"].split(";")}
    assert policy["script-src"] == "script-src 'self'", headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in headers["Content-Security-Policy"]

    record_csp_violations(browser)
    without_passkey_autofill(browser)
    browser.get(f"{server['base']}/signin")
    heading = "Anmelden" if german else "Sign in"
    wait_for_heading(browser, heading)
    WebDriverWait(browser, 20).until(expected_conditions.visibility_of_element_located((By.ID, "passkey-signin")))
    check_hosted_page(browser, f"passkey-{prefix}-signin", heading=heading)
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    # The one script: the server's own file (its name hashed by the manifest storage), no inline one.
    scripts = browser.execute_script("return [...document.scripts].map(script => script.src ? new URL(script.src).pathname : 'inline')")
    assert len(scripts) == 1 and re.fullmatch(r"/static/passkeys/signin(\.[0-9a-f]{12})?\.js", scripts[0]), scripts
    passkey_button(browser, "Mit einem Passkey anmelden" if german else "Sign in with a passkey").click()

    check_hosted_page(browser, f"passkey-{prefix}-signed-in", heading="Angemeldet" if german else "Signed in")
    assert email in browser.find_element(By.TAG_NAME, "main").text


def test_the_hosted_sign_in_page_signs_in_from_the_email_fields_autofill(server, open_browser):
    """Where the browser offers passkeys in the email field's autofill, the page asks for one at
    once (conditional mediation); the virtual authenticator answers as the user's pick would."""
    email = "autofill.walker@example.com"
    token = register_user(server, email)
    browser = open_browser()
    register_passkey(browser, server, token)
    assert browser.execute_async_script(
        "const done = arguments[arguments.length - 1]; PublicKeyCredential.isConditionalMediationAvailable().then(done);"
    )

    browser.get(f"{server['base']}/signin")
    wait_for_heading(browser, "Signed in")
    assert email in browser.find_element(By.TAG_NAME, "main").text


def test_the_hosted_sign_in_page_refuses_a_removed_passkey(server, open_browser):
    email = "hosted.refused@example.com"
    token = register_user(server, email)
    browser = open_browser()
    passkey = register_passkey(browser, server, token)["body"]["passkey"]
    assert api(server["base"], "DELETE", f"/api/passkeys/{passkey['id']}", {"password": PASSWORD}, token=token)[0] == 200

    record_csp_violations(browser)
    without_passkey_autofill(browser)
    browser.get(f"{server['base']}/signin")
    wait_for_heading(browser, "Sign in")
    click_and_leave(browser, passkey_button(browser))
    WebDriverWait(browser, 20).until(expected_conditions.visibility_of_element_located((By.ID, "passkey-signin")))
    check_hosted_page(browser, "passkey-signin-refused", heading="Sign in")
    assert browser.find_element(By.ID, "form-errors").text == "Invalid passkey"

    # An authenticator without the passkey: the browser's ceremony fails, the page says so and stays.
    browser.remove_all_credentials()
    passkey_button(browser).click()
    WebDriverWait(browser, 30).until(lambda driver: driver.find_element(By.ID, "passkey-status").text != "")
    assert browser.find_element(By.ID, "passkey-status").text == (
        "The passkey sign-in did not finish. Try again, or sign in with your password."
    )
    check_hosted_page(browser, "passkey-signin-not-finished", heading="Sign in")


def test_the_hosted_sign_in_page_of_an_authorization_then_consent(server, frontend, open_browser):
    email = "authorize.walker@example.com"
    token = register_user(server, email)
    browser = open_browser()
    register_passkey(browser, server, token)

    verifier = secrets.token_urlsafe(48)
    query = {
        "response_type": "code",
        "client_id": server["client_id"],
        "redirect_uri": f"{frontend.origin}/callback",
        "scope": "openid profile email",
        "state": "st-passkey",
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": b64encode(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256",
    }
    record_csp_violations(browser)
    without_passkey_autofill(browser)
    browser.get(f"{server['base']}/oauth/authorize?{urllib.parse.urlencode(query)}")
    wait_for_heading(browser, "Sign in")
    WebDriverWait(browser, 20).until(expected_conditions.visibility_of_element_located((By.ID, "passkey-signin")))
    check_hosted_page(browser, "passkey-authorize-signin", heading="Sign in")
    passkey_button(browser).click()

    check_hosted_page(browser, "passkey-consent", heading="Allow Billing?")
    browser.find_element(By.CSS_SELECTOR, "button[name=allow]").click()
    WebDriverWait(browser, 20).until(lambda driver: driver.current_url.startswith(f"{frontend.origin}/callback"))
    answer = frontend.last("/callback")
    assert answer["state"] == "st-passkey" and "code" in answer, answer
    basic = base64.b64encode(f"{server['client_id']}:{server['client_secret']}".encode()).decode()
    status, _, body = form_post(
        f"{server['base']}/oauth/token",
        {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": f"{frontend.origin}/callback", "code_verifier": verifier},
        {"Authorization": f"Basic {basic}"},
    )
    assert status == 200, body
    id_token = json.loads(body)["id_token"]
    # The app learns how the user signed in: with a passkey, as the API's tokens say.
    assert json.loads(b64decode(id_token.split(".")[1]))["amr"] == AMR


def form_post(url: str, form: dict, headers: dict) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_a_staff_user_signs_in_to_the_admin_with_a_passkey(server, staff, open_browser):
    email = staff
    token = password_login(server, email)
    browser = open_browser()
    register_passkey(browser, server, token, "Staff key")
    console_csp_errors(browser)

    record_csp_violations(browser)
    without_passkey_autofill(browser)
    browser.get(f"{server['base']}/admin/login/")
    WebDriverWait(browser, 20).until(expected_conditions.visibility_of_element_located((By.ID, "passkey-signin")))
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "passkey-admin-login.png"))
    assert browser.execute_script("return window.cspViolations") == []
    assert console_csp_errors(browser) == []
    violations = axe_violations(browser)
    assert violations == [], f"admin login: axe-core found\n{readable(violations)}"
    # The admin's words: "Log in" (Django's), where the hosted page says "Sign in".
    passkey_button(browser, "Log in with a passkey").click()

    WebDriverWait(browser, 20).until(lambda driver: urllib.parse.urlsplit(driver.current_url).path == "/admin/")
    wait_for_heading(browser, "Administration")
    assert email in browser.find_element(By.ID, "user-tools").text.lower()
    browser.save_screenshot(str(SHOTS / "passkey-admin-index.png"))
    assert console_csp_errors(browser) == []


def test_the_admin_refuses_the_passkey_of_a_user_who_is_not_staff(server, open_browser):
    email = "not.staff@example.com"
    token = register_user(server, email)
    browser = open_browser()
    register_passkey(browser, server, token)

    without_passkey_autofill(browser)
    browser.get(f"{server['base']}/admin/login/")
    WebDriverWait(browser, 20).until(expected_conditions.visibility_of_element_located((By.ID, "passkey-signin")))
    click_and_leave(browser, passkey_button(browser, "Log in with a passkey"))
    WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located((By.ID, "login-form")))
    assert urllib.parse.urlsplit(browser.current_url).path.startswith("/admin/login/")
    assert "That passkey did not sign you in." in browser.find_element(By.CSS_SELECTOR, ".errornote").text
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "passkey-admin-refused.png"))
    # Not signed in: the admin's index sends the browser back to its login.
    browser.get(f"{server['base']}/admin/")
    WebDriverWait(browser, 20).until(lambda driver: urllib.parse.urlsplit(driver.current_url).path == "/admin/login/")
