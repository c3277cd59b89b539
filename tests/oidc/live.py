"""The auth server served as production serves it, and a browser made of `requests`, for the tests
that walk the OpenID provider with clients nobody here wrote (Authlib, openid-client) and for the
relying-party example's walk.

- `auth_server(...)`: a copy of the project under gunicorn, on a fresh SQLite file, DEBUG off,
  its static files collected, TOKEN_ISSUER its own base URL;
  `AuthServer.manage(...)` runs a management command on its database, `.user(...)` registers and
  confirms an account through the API, `.client(...)` registers a client with
  `manage.py create_oidc_client` and returns what it printed.
- `access_token_claims(...)`: an access token verified offline with PyJWT, as a resource server
  verifies it.
- `authorize(...)`: what a user does in a browser between the app's redirect to the authorization
  endpoint and the redirect back to the app: it fills the hosted pages' HTML forms (sign-in:
  `email`, `password`; consent: the `allow` button), as a password manager or a person would,
  following the server's redirects, and returns the URL the server sends the browser back to.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import jwt
import requests

from tests.conftest import copy_project
from tests.support.servers import free_port, gunicorn, production_environment

PASSWORD = "correct horse battery"
TIMEOUT = 30  # seconds, per HTTP request: a safety net only


def server_environment(workdir: Path, base: str, **variables: str) -> dict[str, str]:
    """The auth server's environment: production (DEBUG off), a SQLite file in `workdir`,
    TOKEN_ISSUER = `base`. The cookies lose their Secure flag only because the test speaks plain
    HTTP on the loopback: a Secure cookie is never sent over http://, so no browser (nor requests'
    cookie jar) could keep a sign-in. Everything else is as deployed."""
    return production_environment(
        workdir,
        DJANGO_SETTINGS_MODULE="authserver.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        EMAIL_BACKEND="console",
        TOKEN_ISSUER=base,
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        **variables,
    )


@dataclass
class AuthServer:
    base: str
    project: Path
    env: dict[str, str]

    def manage(self, *args: str) -> str:
        """Run `manage.py *args` on the server's database; require success; return its output."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,  # a safety net only
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def user(self, email: str, name: str, password: str = PASSWORD) -> None:
        """Register an account through the API and confirm it with the emailed token (made by
        `manage.py generate_validation_token`, as the email's link carries it)."""
        registration = {"email": email, "name": name, "password": password, "confirm": password}
        response = requests.post(f"{self.base}/api/user", json=registration, timeout=TIMEOUT)
        assert (response.status_code, response.json()) == (200, {"user": email})
        token = self.manage("generate_validation_token", email).strip()
        response = requests.post(f"{self.base}/api/validate/confirmation", json={"token": token}, timeout=TIMEOUT)
        assert (response.status_code, response.json()) == (200, {"message": "Account confirmed"})

    def client(self, name: str, *options: str) -> dict[str, str]:
        """Register a client with `create_oidc_client NAME *options`; return its `client_id` (and
        `client_secret`, for a confidential one)."""
        return printed_values(self.manage("create_oidc_client", name, *options))

    def service(self, name: str) -> dict[str, str]:
        """Register a service (client_credentials; introspection) with `create_resource_server`."""
        return printed_values(self.manage("create_resource_server", name))


def printed_values(output: str) -> dict[str, str]:
    """The `name=value` lines a command printed."""
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


@contextlib.contextmanager
def auth_server(workdir: Path, **variables: str) -> Iterator[AuthServer]:
    """Serve a copy of the project under gunicorn, in `workdir`: its static files collected and
    its database migrated first, as a deployment does (Dockerfile, Procfile)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_environment(workdir, base, **variables)
    server = AuthServer(base=base, project=copy_project(workdir / "project"), env=env)
    server.manage("collectstatic", "--noinput", "--verbosity", "0")
    server.manage("migrate", "--noinput", "--verbosity", "0")
    with gunicorn(
        "-c", "gunicorn.conf.py", "authserver.wsgi:application", "--workers", "2",
        cwd=server.project, env=env, log=workdir / "gunicorn.log", port=port,
    ):
        yield server


def access_token_claims(token: str, metadata: dict, audience: str = "authserver") -> dict:
    """Verify an access token offline with PyJWT against the JWKS, as a resource server does
    (RFC 9068: the `at+jwt` type, iss, aud, exp, and the claims it must carry); return its claims."""
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key,
        algorithms=[key.algorithm_name],
        issuer=metadata["issuer"],
        audience=audience,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"]},
    )


# --- A browser made of requests -------------------------------------------------------------------


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str]  # inputs with a name (hidden ones with their values)
    buttons: dict[str, str]  # submit buttons: name → value


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(attributes.get("action", ""), attributes.get("method", "get").lower(), {}, {}))
        elif self.forms and tag in ("input", "button") and attributes.get("name"):
            kind = attributes.get("type", "text" if tag == "input" else "submit")
            target = self.forms[-1].buttons if kind == "submit" else self.forms[-1].fields
            target[attributes["name"]] = attributes.get("value", "")


def forms_of(html: str) -> list[Form]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def _submit(browser: requests.Session, page: requests.Response, form: Form, **values: str) -> requests.Response:
    assert form.method == "post", form
    return browser.post(urljoin(page.url, form.action), data={**form.fields, **values}, allow_redirects=False, timeout=TIMEOUT)


def follow(browser: requests.Session, response: requests.Response, base: str) -> requests.Response:
    """Follow the redirects that stay on the server at `base`; return the first answer that is
    not one (a page), or a redirect that leaves the server (to the app)."""
    while response.is_redirect:
        target = urljoin(response.url, response.headers["Location"])
        if not target.startswith(f"{base}/"):
            return response
        response = browser.get(target, allow_redirects=False, timeout=TIMEOUT)
    return response


def authorize(browser: requests.Session, url: str, base: str, email: str, password: str = PASSWORD) -> tuple[str, list[str]]:
    """Go to the authorization URL, sign in and allow the app on the hosted pages as a user would,
    filling only the pages the server shows (a browser still signed in, an app already allowed,
    skip them). Return the URL the server redirects back to (the app's redirect URI, with the
    code) and the pages filled ("sign-in", "consent")."""
    response = follow(browser, browser.get(url, allow_redirects=False, timeout=TIMEOUT), base)
    shown: list[str] = []
    for _page in range(3):  # sign-in, consent, and the redirect back
        if response.is_redirect:
            return response.headers["Location"], shown
        assert response.status_code == 200, (response.status_code, response.url, response.text[:2000])
        forms = forms_of(response.text)
        sign_in = next((form for form in forms if "password" in form.fields), None)
        consent = next((form for form in forms if "allow" in form.buttons), None)
        if sign_in is not None:
            response = _submit(browser, response, sign_in, email=email, password=password)
            shown.append("sign-in")
        elif consent is not None:
            response = _submit(browser, response, consent, allow=consent.buttons["allow"])
            shown.append("consent")
        else:
            raise AssertionError(f"neither a sign-in form nor a consent form at {response.url}:\n{response.text[:2000]}")
        response = follow(browser, response, base)
    raise AssertionError(f"no redirect back to the app; the last page was {response.url}")
