"""The OpenID provider walked by panva's `openid-client` (v6, an OpenID-certified relying party,
npm; tests/node), against the project served by gunicorn as in production, through the hosted
pages' HTML forms.

The relying party is tests/oidc/openid_client_walk.mjs, run by `node`: discovery, the
authorization URL (PKCE S256, state, nonce), the code grant (state, iss and the ID token checked,
its signature against the JWKS included), userinfo, refresh with rotation and reuse, RFC 7009
revocation, the end_session URL. This test is the user: it drives the hosted sign-in and consent
forms with `requests` and hands the URL the browser is sent back to to the script; then it
follows the end_session URL and checks what the script saw.
"""

import json
import subprocess
from pathlib import Path

import jwt
import pytest
import requests

from tests.oidc.live import TIMEOUT, access_token_claims, auth_server, authorize
from tests.support.node import require_node_packages

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("openid_client_walk.mjs")
EMAIL = "ann.openid-client@example.com"
NAME = "Ann Node"
SCOPE = "openid profile email offline_access"
APP = "http://127.0.0.1:9/app"  # the app's addresses: nothing listens there, nothing is followed
REDIRECT_URI, AFTER_LOGOUT = f"{APP}/callback", f"{APP}/signed-out"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_node_packages("openid-client")  # skips, naming tests/node, before any server starts
    with auth_server(tmp_path_factory.mktemp("openid-client")) as server:
        server.user(EMAIL, NAME)
        yield server


@pytest.fixture(scope="module")
def metadata(server):
    return requests.get(f"{server.base}/.well-known/openid-configuration", timeout=TIMEOUT).json()


def run_walk(server, arguments: dict, log: Path) -> tuple[dict, list[list[str]], requests.Session]:
    """Run the script; be the user at each authorization it asks for. Return its result, the
    pages each authorization showed, and the browser (still signed in)."""
    browser, shown, result = requests.Session(), [], None
    with log.open("w") as errors:
        node = subprocess.Popen(
            ["node", str(SCRIPT), json.dumps(arguments)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True,
        )
        try:
            for line in node.stdout:
                message = json.loads(line)
                if "authorize" in message:
                    callback, pages = authorize(browser, message["authorize"], server.base, EMAIL)
                    shown.append(pages)
                    node.stdin.write(f"{callback}\n")
                    node.stdin.flush()
                else:
                    result = message["result"]
            node.wait(timeout=60)  # a safety net only
        finally:
            if node.poll() is None:
                node.kill()
    assert node.returncode == 0, log.read_text()
    assert result is not None, log.read_text()
    return result, shown, browser


@pytest.mark.parametrize(
    "kind, algorithm",
    [("confidential", "RS256"), ("public", "ES256")],
    ids=["confidential-client_secret_post-RS256", "public-none-ES256"],
)
def test_openid_client_walks_code_pkce_userinfo_refresh_revocation_and_end_session(server, metadata, tmp_path, kind, algorithm):
    options = ["--public"] if kind == "public" else []
    registered = server.client(
        f"openid-client {kind}", *options, "--redirect-uri", REDIRECT_URI, "--post-logout-redirect-uri", AFTER_LOGOUT,
        "--scopes", SCOPE, "--id-token-algorithm", algorithm,
    )
    client_id = registered["client_id"]

    result, shown, browser = run_walk(
        server,
        {
            "issuer": server.base, "client_id": client_id, "client_secret": registered.get("client_secret"),
            "id_token_alg": algorithm, "redirect_uri": REDIRECT_URI, "post_logout_redirect_uri": AFTER_LOGOUT,
            "scope": SCOPE,
        },
        tmp_path / "node.log",
    )

    # The first authorization showed the sign-in and consent pages; the second, none (the browser
    # signed in, the consent remembered).
    assert shown == [["sign-in", "consent"], []]
    # The ID token openid-client accepted, in the client's algorithm.
    claims = result["id_token_claims"]
    assert jwt.get_unverified_header(result["id_token"])["alg"] == algorithm
    assert (claims["iss"], claims["aud"], claims["nonce"]) == (server.base, client_id, result["nonce"])
    assert (claims["email"], claims["name"], claims["amr"]) == (EMAIL, NAME, ["pwd"])
    assert claims["at_hash"] and claims["sid"] and claims["auth_time"] <= claims["iat"]
    # Its access token, verified offline with PyJWT: RFC 9068, bound to the same session.
    access = access_token_claims(result["access_token"], metadata)
    assert (access["sub"], access["client_id"], access["sid"]) == (claims["sub"], client_id, claims["sid"])
    assert result["userinfo"] == {"sub": claims["sub"], "name": NAME, "email": EMAIL, "email_verified": True}
    # Refresh rotated the refresh token each time; the first, reused, was refused, and so was the
    # newest of its family.
    assert len(set(result["refresh_tokens"])) == 3
    assert result["refreshed_id_token_sub"] == claims["sub"]  # a refresh brings a new ID token too
    assert result["reused"] == {"error": "invalid_grant", "status": 400}
    assert result["family_revoked"] == {"error": "invalid_grant", "status": 400}
    # Revoked (RFC 7009): the refresh token refreshes nothing, userinfo refuses the access token.
    assert result["second_nonce_matches"] is True and result["second_sid"] == claims["sid"]
    assert result["revoked_refresh"] == {"error": "invalid_grant", "status": 400}
    assert result["revoked_access"]["status"] == 401

    # end_session, with the ID token of the browser's session: signed out at once, and back at the
    # registered address with the state.
    assert EMAIL in browser.get(f"{server.base}/signin/done", timeout=TIMEOUT).text  # signed in
    signed_out = browser.get(result["end_session_url"], allow_redirects=False, timeout=TIMEOUT)
    assert signed_out.status_code == 302
    assert signed_out.headers["Location"] == f"{AFTER_LOGOUT}?state={result['logout_state']}"
    after = browser.get(f"{server.base}/signin/done", timeout=TIMEOUT)
    assert after.status_code == 200 and EMAIL not in after.text  # signed out
