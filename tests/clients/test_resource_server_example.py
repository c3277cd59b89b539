"""examples/resource_server against the real auth server: two processes, tokens over HTTP.

The auth server runs under gunicorn with production settings (DEBUG off) on a database of its
own (a SQLite file, or a fresh PostgreSQL database when DATABASE_URL names PostgreSQL); the
example runs under its own gunicorn, knowing nothing of the auth server but its issuer, and
verifies tokens with the keys of the auth server's JWKS. Users are registered, confirmed and
signed in over HTTP; the group is given with `manage.py shell`, as an operator without the admin
would. Then: who may see /me and /reports, forged tokens, and a key rotation and retirement made
with `manage.py signing_keys` while both run.

The auth server's workers each serve one request and are replaced (--max-requests 1), as in
tests/core/test_ratelimit_gunicorn.py: every answer comes from a process that reads the keys afresh, as the
process that rotated would, so the test never waits out the keyring's RELOAD_SECONDS. It still
polls for the change, with a generous deadline that is a safety net, not a measure.
"""

import ast
import base64
import hashlib
import hmac
import importlib.util
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import PROJECT, clean_env, postgresql_database_of_its_own, run
from tests.support.api import live_login
from tests.support.servers import free_port, gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("gunicorn") is None, reason="needs gunicorn (pip install gunicorn) to serve both projects"
)]

EXAMPLE = Path("examples") / "resource_server"
PASSWORD = "correct horse battery"
ANN, BOB = "ann@example.com", "bob@example.com"  # Ann reports; Bob does not
GROUP = "reporters"
DEADLINE = 90  # seconds: a safety net for the polls below, never an expectation

DATABASE_URL = os.environ.get("DATABASE_URL", "")


# --- HTTP ----------------------------------------------------------------------------------------


def http(method: str, url: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, dict, dict]:
    """Return status, JSON body and headers of one request."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def poll(what: str, answer):
    """Call `answer()` until it returns something true, and return that; fail after DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while True:
        result = answer()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting after {DEADLINE} s for {what}")
        time.sleep(0.5)


# --- The two servers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    """A database for the auth server alone: a SQLite file, or a fresh PostgreSQL database next
    to DATABASE_URL's (dropped after), never the test database."""
    if not DATABASE_URL.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path_factory.mktemp('authdb') / 'db.sqlite3'}"
        return
    with postgresql_database_of_its_own("authserver_rs") as url:
        yield url


# What the example reads, besides Django's own variables (which clean_env drops already).
EXAMPLE_VARIABLES = ("AUTH_", "REQUIRED_GROUP", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "LOG_LEVEL")


def environment(**variables: str) -> dict[str, str]:
    """Return a clean environment (nothing of the server's or the example's configuration), plus
    `variables`."""
    env = {name: value for name, value in clean_env().items() if not name.startswith(EXAMPLE_VARIABLES)}
    return {**env, **variables}


@pytest.fixture(scope="module")
def auth(project, database_url, tmp_path_factory):
    """The auth server under gunicorn; yield its URL and the environment its commands need."""
    workdir = tmp_path_factory.mktemp("auth")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "DJANGO_SETTINGS_MODULE": "authserver.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "EMAIL_BACKEND": "console",
        "DATABASE_URL": database_url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "TOKEN_ISSUER": base,
    }
    migrated = run(project, "manage.py", "migrate", "--verbosity", "0", **env)
    assert migrated.returncode == 0, migrated.stderr
    log = workdir / "gunicorn.log"
    with gunicorn(
        "-c", "gunicorn.conf.py", "authserver.wsgi:application", "--workers", "2", "--max-requests", "1",
        # One request per process: sync workers (gunicorn runs gthread while threads > 1).
        "--worker-class", "sync", "--threads", "1",
        cwd=project,
        env=environment(**env),
        log=log,
        port=port,
    ):
        yield {"base": base, "env": env, "project": project, "log": log}


@pytest.fixture(scope="module")
def example_log(tmp_path_factory) -> Path:
    """The example's gunicorn log (its Django log lines too)."""
    return tmp_path_factory.mktemp("example") / "gunicorn.log"


@pytest.fixture(scope="module")
def example(project, auth, example_log):
    """The example under its own gunicorn, given only the auth server's issuer; yield its URL."""
    log = example_log
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"AUTH_ISSUER": auth["base"], "AUTH_AUDIENCE": "authserver", "ALLOWED_HOSTS": "127.0.0.1", "REQUIRED_GROUP": GROUP}

    def answering(server) -> bool:
        try:
            return http("GET", f"{server.base}/me")[0] == 401
        except OSError:
            return False

    with gunicorn(
        "resource_server.wsgi:application", "--workers", "2",
        cwd=project / EXAMPLE,
        env=environment(**env),
        log=log,
        port=port,
        ready=answering,
        timeout=DEADLINE,
        name="the example",
    ):
        yield base


def manage(auth, *args: str) -> str:
    """Run a management command of the auth server on its database; return what it printed."""
    result = run(auth["project"], "manage.py", *args, **auth["env"])
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def users(auth):
    """Ann (in the group) and Bob (not), registered and confirmed over HTTP."""
    base = auth["base"]
    for email, name in ((ANN, "Ann Reporter"), (BOB, "Bob Reader")):
        registration = {"email": email, "name": name, "password": PASSWORD, "confirm": PASSWORD}
        assert http("POST", f"{base}/api/user", registration)[:2] == (200, {"user": email})
        token = manage(auth, "generate_validation_token", email).strip()
        assert http("POST", f"{base}/api/validate/confirmation", {"token": token})[:2] == (
            200,
            {"message": "Account confirmed"},
        )
    manage(
        auth,
        "shell",
        "-c",
        "from django.contrib.auth.models import Group; from accounts.models import User; "
        f"User.objects.get(email={ANN!r}).groups.add(Group.objects.get_or_create(name={GROUP!r})[0])",
    )
    return {"base": base}


@pytest.fixture(scope="module")
def tokens(auth, users):
    """Tokens of a login each, issued after Ann joined the group."""
    return {ANN: live_login(auth["base"], ANN), BOB: live_login(auth["base"], BOB)}


@pytest.fixture(scope="module")
def client_credentials(auth):
    """A registered resource server's credentials, for the introspection endpoint."""
    printed = dict(line.split("=", 1) for line in manage(auth, "create_resource_server", "reports").split())
    return printed["client_id"], printed["client_secret"]


def introspect(auth, credentials, token: str) -> dict:
    basic = base64.b64encode(":".join(credentials).encode()).decode()
    status, body, _ = http(
        "POST", f"{auth['base']}/api/introspect", {"token": token}, {"Authorization": f"Basic {basic}"}
    )
    assert status == 200, body
    return body


# --- Who may see what ----------------------------------------------------------------------------


def test_me_answers_who_the_token_says(example, auth, tokens, client_credentials):
    status, body, _ = http("GET", f"{example}/me", headers=bearer(tokens[ANN]))

    assert status == 200, body
    assert body == {"sub": body["sub"], "email": ANN, "groups": [GROUP]}
    # The user's stable public id, as the auth server itself tells it.
    assert body["sub"] == introspect(auth, client_credentials, tokens[ANN])["sub"]
    status, bob, _ = http("GET", f"{example}/me/", headers=bearer(tokens[BOB]))
    assert status == 200, bob
    assert bob == {"sub": introspect(auth, client_credentials, tokens[BOB])["sub"], "email": BOB, "groups": []}
    assert bob["sub"] != body["sub"]


def test_no_token_is_401_with_a_bearer_challenge(example):
    for headers in ({}, {"Authorization": "Basic YW5uOnB3"}):
        status, body, response_headers = http("GET", f"{example}/me", headers=headers)

        assert (status, body) == (401, {"status": 401, "message": "Login required"})
        assert response_headers["WWW-Authenticate"].startswith("Bearer")


def test_reports_needs_the_group(example, tokens):
    assert http("GET", f"{example}/reports", headers=bearer(tokens[BOB]))[:2] == (
        403,
        {"status": 403, "message": f"Requires the group {GROUP}"},
    )
    status, body, _ = http("GET", f"{example}/reports", headers=bearer(tokens[ANN]))
    assert status == 200, body
    assert body["reports"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_with_public_key(claims: dict, kid: str, public_jwk: dict) -> str:
    """Return the claims signed with HMAC, its secret the published key's PEM: what a verifier
    that took the algorithm from the token's header would accept (PyJWT refuses to make one)."""
    pem = jwt.PyJWK(public_jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'kid': kid, 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


def _forgeries(auth, token: str) -> dict[str, str]:
    """Tokens that claim Bob is a reporter, none signed by the auth server's key."""
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["groups"] = [GROUP]
    kid = kid_of(token)
    jwks = http("GET", f"{auth['base']}/.well-known/jwks.json")[1]
    public_jwk = next(key for key in jwks["keys"] if key["kid"] == kid)
    header, payload, signature = token.split(".")
    tampered = _b64(json.dumps(claims).encode())
    return {
        "garbage": "not.a.token",
        "another key, the real kid": jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), "ES256", {"kid": kid}),
        "another key, an unknown kid": jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), "ES256", {"kid": "made-up"}),
        "HS256 with the public key as its secret": _hs256_with_public_key(claims, kid, public_jwk),
        "alg none": jwt.encode(claims, None, "none", {"kid": kid}),
        "the real signature, other claims": f"{header}.{tampered}.{signature}",
    }


def refusals(log: Path) -> list[str]:
    return re.findall(r"Token refused: (.*)", log.read_text())


def test_garbage_and_forged_tokens_are_401(example, auth, tokens, example_log):
    forgeries = _forgeries(auth, tokens[BOB])
    logged_before = len(refusals(example_log))
    for name, token in forgeries.items():
        for path in ("/me", "/reports"):
            status, body, headers = http("GET", f"{example}{path}", headers=bearer(token))

            assert (status, body) == (401, {"status": 401, "message": "Invalid or expired token"}), name
            assert headers["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"', name

    # The log says why each was refused (the client is told nothing more), never with the token.
    logged = refusals(example_log)[logged_before:]
    assert len(logged) == 2 * len(forgeries)
    assert all(reason.strip("'\"") for reason in logged), logged
    text = example_log.read_text()
    assert not [name for name, token in forgeries.items() if len(token) > 20 and token in text]


def test_a_token_of_an_unknown_key_is_logged_with_its_key_id(example, auth, example_log):
    key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode({"iss": "http://elsewhere.example", "sub": "x"}, key, algorithm="ES256", headers={"kid": "made-up-kid"})

    assert http("GET", f"{example}/me", headers=bearer(token))[0] == 401

    assert "made-up-kid" in refusals(example_log)[-1]


def _example_tokens_module():
    """Load the example's verifier (plain PyJWT, no Django) into this process."""
    spec = importlib.util.spec_from_file_location("example_tokens", PROJECT / EXAMPLE / "resource_server" / "tokens.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_verifier_checks_issuer_and_audience(auth, tokens):
    tokens_module = _example_tokens_module()
    jwks_url = f"{auth['base']}/.well-known/jwks.json"

    def verifier(issuer=auth["base"], audience="authserver"):
        return tokens_module.TokenVerifier(issuer=issuer, audience=audience, jwks_url=jwks_url)

    user = verifier().verify(tokens[ANN])
    assert (user.email, user.groups, user.amr, user.is_authenticated) == (ANN, (GROUP,), ("pwd",), True)
    for wrong in (verifier(issuer="http://elsewhere.example"), verifier(audience="another-service")):
        with pytest.raises(tokens_module.InvalidToken):
            wrong.verify(tokens[ANN])



@pytest.mark.parametrize(
    "header, claims, accepted",
    [
        pytest.param({"typ": "at+jwt"}, {"client_id": "app", "scope": "openid"}, True, id="RFC 9068 access token"),
        pytest.param({"typ": "application/at+jwt"}, {"client_id": "app"}, True, id="its long media type"),
        pytest.param({"typ": "JWT"}, {"token_type": "auth"}, True, id="the auth server's auth token"),
        pytest.param({}, {"token_type": "auth"}, True, id="an auth token without typ"),
        pytest.param({"typ": "JWT"}, {"nonce": "n", "at_hash": "h"}, False, id="ID token"),
        pytest.param({"typ": "logout+jwt"}, {"events": {}}, False, id="logout token"),
        pytest.param({"typ": "logout+jwt"}, {"token_type": "auth"}, False, id="logout type with the auth claim"),
        pytest.param({"typ": "JWT"}, {"token_type": "refresh"}, False, id="another token_type"),
    ],
)
def test_the_verifier_takes_access_tokens_and_auth_tokens_only(header, claims, accepted):
    """Every token of the auth server is signed by the same keys, so a signature, `iss` and `aud`
    do not tell an access token from an ID or logout token whose `aud` (a client id) happens to be
    the service's audience: the kind does (RFC 9068, section 4: `typ` must be `at+jwt`)."""
    tokens_module = _example_tokens_module()

    if accepted:
        tokens_module.kind_check(header, claims)
    else:
        with pytest.raises(tokens_module.InvalidToken):
            tokens_module.kind_check(header, claims)

# --- Keys rotated and retired while both run ------------------------------------------------------


def test_rotation_keeps_old_tokens_and_new_ones_work_and_retirement_ends_old_ones(
    example, auth, tokens, client_credentials
):
    base = auth["base"]
    old_token = tokens[ANN]
    old_kid = kid_of(old_token)
    assert http("GET", f"{example}/reports", headers=bearer(old_token))[0] == 200  # the example knows the keys

    printed = manage(auth, "signing_keys", "--rotate")
    new_kid = re.search(r"^Rotated: (\S+) is current\.$", printed, re.MULTILINE).group(1)
    assert new_kid != old_kid

    # The old key is now the previous one: still published, its tokens still good everywhere.
    assert http("GET", f"{example}/reports", headers=bearer(old_token))[0] == 200
    assert http("GET", f"{base}/api/user", headers=bearer(old_token))[0] == 200
    def jwks_names_new_current():
        return http("GET", f"{base}/.well-known/jwks.json")[1]["keys"][0]["kid"] == new_kid

    def token_of_new_key():
        token = live_login(auth["base"], ANN)
        return token if kid_of(token) == new_kid else None

    poll("the JWKS to name the new current key first", jwks_names_new_current)
    new_token = poll("a login to sign with the new key", token_of_new_key)
    status, body, _ = http("GET", f"{example}/reports", headers=bearer(new_token))
    assert status == 200, body
    assert http("GET", f"{example}/me", headers=bearer(new_token))[1]["email"] == ANN

    printed = manage(auth, "signing_keys", "--retire", old_kid, "--force")
    assert f"Retired: {old_kid}." in printed

    # The auth server refuses the retired key's tokens, and no longer publishes the key.
    def old_token_refused():
        status, body, _ = http("GET", f"{base}/api/user", headers=bearer(old_token))
        return (status, body) if status != 200 else None

    assert poll("the auth server to refuse the retired key's token", old_token_refused) == (
        401,
        {"status": 401, "message": "Invalid or expired token"},
    )
    assert old_kid not in [key["kid"] for key in http("GET", f"{base}/.well-known/jwks.json")[1]["keys"]]
    assert introspect(auth, client_credentials, old_token) == {"active": False}
    # The new key's tokens go on, on both.
    assert http("GET", f"{base}/api/user", headers=bearer(new_token))[:2] == (
        200,
        {"email": ANN, "profile": {"name": "Ann Reporter"}},
    )
    assert http("GET", f"{example}/reports", headers=bearer(new_token))[0] == 200
    assert introspect(auth, client_credentials, new_token)["active"] is True


# --- The example as a project to copy ------------------------------------------------------------


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"\[.*\]", "", name).strip().lower()] = version.strip()
    return pins


def test_the_example_pins_the_servers_versions():
    server, example = _pins(PROJECT / "requirements.txt"), _pins(PROJECT / EXAMPLE / "requirements.txt")

    assert {"django", "djangorestframework", "pyjwt", "cryptography"} <= example.keys()
    assert {name: version for name, version in example.items()} == {name: server[name] for name in example}
    assert "PyJWT[crypto]==" in (PROJECT / EXAMPLE / "requirements.txt").read_text()


def test_the_example_imports_nothing_of_the_server():
    allowed = {"django", "rest_framework", "jwt", "cryptography", "resource_server", *sys.stdlib_module_names}
    for path in (PROJECT / EXAMPLE).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.relative_to(PROJECT)} imports {name}"


def test_the_example_refuses_to_start_without_an_issuer(project):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=project / EXAMPLE,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,  # a safety net only
    )

    assert result.returncode != 0
    assert "AUTH_ISSUER is not set" in result.stderr
