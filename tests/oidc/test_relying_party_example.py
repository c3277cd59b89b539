"""examples/relying_party, walked as its README tells a newcomer: the auth server, the example
resource server and the example app each started as a subprocess with the README's commands, the
user registered and the app registered with them too (curl and manage.py through bash), then the
browser part (step 5) done with `requests`: sign in on the hosted pages, the ID token's claims on
the app's page, the resource server's answer to the access token, sign-out at both.

Every command is taken from the README as written (the test fails if the README no longer has it);
only the ports change (free loopback ports for 8000, 8001, 8002), `python` is this Python, and
`runserver` runs without its autoreloader (one process to stop).
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
import requests

from tests.conftest import PROJECT
from tests.oidc.live import TIMEOUT, authorize, forms_of, printed_values
from tests.support.servers import answers, free_port, gunicorn, production_environment


README = (PROJECT / "examples" / "relying_party" / "README.md").read_text()
EMAIL, PASSWORD = "ann@example.com", "correct horse battery"

# The README's commands, as written there.
AUTH_MIGRATE = "python manage.py migrate"
AUTH_SERVER = "python manage.py runserver\n"
REGISTER = """curl -s -H 'Content-Type: application/json' \\
    -d '{"email": "ann@example.com", "name": "Ann Example", "password": "correct horse battery", "confirm": "correct horse battery"}' \\
    http://localhost:8000/api/user"""
CONFIRM = """curl -s -H 'Content-Type: application/json' \\
    -d "{\\"token\\": \\"$(python manage.py generate_validation_token ann@example.com)\\"}" \\
    http://localhost:8000/api/validate/confirmation"""
REGISTER_APP = (
    'python manage.py create_oidc_client "Example app" --redirect-uri http://localhost:8002/callback '
    "--post-logout-redirect-uri http://localhost:8002/signed-out"
)
RESOURCE_SERVER = "AUTH_ISSUER=http://localhost:8000 python manage.py runserver 8001"
APP_SETTINGS = ["export OIDC_ISSUER=http://localhost:8000", "export RESOURCE_SERVER_URL=http://localhost:8001"]
APP = "python manage.py runserver 8002"


class Walk:
    """The README's ports mapped to free ones, and its commands run in a fresh shell's environment."""

    def __init__(self, workdir: Path):
        self.ports = {"8000": free_port(), "8001": free_port(), "8002": free_port()}
        self.base = {port: f"http://127.0.0.1:{ours}" for port, ours in self.ports.items()}
        self.auth, self.resource_server, self.app = self.base["8000"], self.base["8001"], self.base["8002"]
        # A newcomer's shell: none of the servers' variables (manage.py then defaults to
        # development), its database in the test's directory, `python` this Python.
        self.env = production_environment(workdir, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
        for name in ("DEBUG", "ALLOWED_HOSTS", *[name for name in self.env if name.startswith(("AUTH_", "OIDC_"))]):
            self.env.pop(name, None)
        # The README's auth server has the default issuer, http://localhost:8000; here it is the
        # port the test chose.
        self.env["TOKEN_ISSUER"] = self.auth

    def line(self, command: str) -> str:
        """The README's command with the test's addresses."""
        assert command in README, f"the README no longer says: {command}"
        for port, base in self.base.items():
            command = command.replace(f"http://localhost:{port}", base)
        return command

    def shell(self, command: str, cwd: Path = PROJECT) -> str:
        """Run a README command in bash; require success; return what it printed."""
        result = subprocess.run(
            ["bash", "-c", self.line(command)], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def server(self, command: str, cwd: Path, log: Path, ready, **variables: str):
        """Start a README `runserver` command (on a loopback address, without the autoreloader)."""
        words = shlex.split(self.line(command))
        env = dict(self.env, **variables)
        while "=" in words[0]:
            name, value = words.pop(0).split("=", 1)
            env[name] = value
        assert words[:3] == ["python", "manage.py", "runserver"], command
        port = self.ports[words[3] if len(words) > 3 else "8000"]
        line = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        return gunicorn(command=line, cwd=cwd, env=env, log=log, port=port, ready=ready, name=command)


def text_of(html: str) -> str:
    """A page's text, as a reader sees it: tags dropped (inline ones without a space), spaces
    collapsed."""
    html = re.sub(r"</?(?:a|strong|code)\b[^>]*>", "", html)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (the README's walk uses it)")
def test_the_readme_walk_signs_in_shows_the_claims_calls_the_resource_server_and_signs_out(project, tmp_path):
    walk = Walk(tmp_path)
    examples = project / "examples"

    # 1. The auth server.
    walk.shell(AUTH_MIGRATE, cwd=project)
    with walk.server(AUTH_SERVER.strip(), project, tmp_path / "auth.log", lambda s: answers(f"{s.base}/status")):
        # 2. A user, confirmed, and the app registered: the README's commands and outputs.
        assert walk.shell(REGISTER, cwd=project).strip() == '{"user":"ann@example.com"}'
        assert '{"user":"ann@example.com"}' in README
        assert walk.shell(CONFIRM, cwd=project).strip() == '{"message":"Account confirmed"}'
        assert '{"message":"Account confirmed"}' in README
        registered = printed_values(walk.shell(REGISTER_APP, cwd=project))
        assert set(registered) == {"client_id", "client_secret"}

        # 3. The resource server; 4. the app, with the README's settings and the printed values.
        app_settings = dict(walk.line(line).removeprefix("export ").split("=", 1) for line in APP_SETTINGS)
        app_settings.update(
            OIDC_CLIENT_ID=registered["client_id"], OIDC_CLIENT_SECRET=registered["client_secret"],
            # The README's app is at its default address, http://localhost:8002; here, the test's.
            APP_URL=walk.app, SESSION_FILE_PATH=str(tmp_path),
        )
        rs_ready = lambda s: answers(f"{s.base}/me", 401)  # noqa: E731
        with (
            walk.server(RESOURCE_SERVER, examples / "resource_server", tmp_path / "rs.log", rs_ready),
            walk.server(APP, examples / "relying_party", tmp_path / "app.log", lambda s: answers(f"{s.base}/"), **app_settings),
        ):
            browser_walk(walk, registered["client_id"])


def browser_walk(walk: Walk, client_id: str) -> None:
    """Step 5 of the README, in a browser made of requests."""
    browser = requests.Session()

    # 1. Not signed in; the link to sign in.
    home = browser.get(f"{walk.app}/", timeout=TIMEOUT)
    assert "You are not signed in." in text_of(home.text)
    assert 'href="/signin"' in home.text
    # 2., 3. The auth server's sign-in and consent pages.
    sent_away = browser.get(f"{walk.app}/signin", allow_redirects=False, timeout=TIMEOUT)
    assert sent_away.headers["Location"].startswith(f"{walk.auth}/oauth/authorize?")
    callback, shown = authorize(browser, sent_away.headers["Location"], walk.auth, EMAIL, PASSWORD)
    assert shown == ["sign-in", "consent"]
    assert callback.startswith(f"{walk.app}/callback?")

    # 4. Back at the app: the ID token's claims.
    page = browser.get(callback, timeout=TIMEOUT)
    assert page.url == f"{walk.app}/"
    text = text_of(page.text)
    assert f"Signed in as {EMAIL}." in text
    claims = dict(re.findall(r'<th scope="row">([^<]+)</th><td><code>([^<]*)</code></td>', page.text))
    assert (claims["iss"], claims["aud"], unescape(claims["email"]), claims["name"]) == (walk.auth, client_id, EMAIL, "Ann Example")
    assert {"sub", "email_verified", "nonce", "at_hash", "sid", "amr", "auth_time", "iat", "exp"} <= claims.keys()

    # 5. The resource server verified the access token and answered.
    called = browser.get(f"{walk.app}/resource", timeout=TIMEOUT)
    expected = '{\n  "sub": "%s",\n  "email": "",\n  "groups": []\n}' % claims["sub"]
    assert f"It answered 200: {text_of(expected)}" in text_of(called.text)
    assert 'It answered 200: { "sub": "<the same sub as in the ID token>", "email": "", "groups": [] }' in re.sub(r"\s+", " ", README)

    # 6. Sign out: at the auth server too, straight back with the state.
    (sign_out,) = [form for form in forms_of(called.text) if "signout" in form.buttons]
    to_auth = browser.post(f"{walk.app}/signout", data=sign_out.fields, allow_redirects=False, timeout=TIMEOUT)
    assert to_auth.headers["Location"].startswith(f"{walk.auth}/oauth/logout?")
    signed_out = browser.get(to_auth.headers["Location"], timeout=TIMEOUT)
    assert signed_out.url.startswith(f"{walk.app}/signed-out?state=")
    assert "You are signed out, here and on the auth server." in text_of(signed_out.text)
    assert "You are signed out, here and on the auth server." in README
    # Signing in again shows the sign-in page, and no consent page (remembered).
    again = browser.get(f"{walk.app}/signin", allow_redirects=False, timeout=TIMEOUT)
    assert authorize(browser, again.headers["Location"], walk.auth, EMAIL, PASSWORD)[1] == ["sign-in"]


def _pins(path: Path) -> dict[str, str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return dict(line.lower().split("==", 1) for line in lines if "==" in line)


def test_the_example_pins_the_servers_versions():
    server, example = _pins(PROJECT / "requirements.txt"), _pins(PROJECT / "examples" / "relying_party" / "requirements.txt")

    assert {"django", "authlib", "requests", "cryptography"} <= example.keys()
    assert example == {name: server[name] for name in example}
