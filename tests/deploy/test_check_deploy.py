"""Production hardening: `check --deploy` with the documented production variables, CORS, the OpenAPI schema."""

import json
import os
import re
import secrets
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

BASE_DIR = Path(__file__).resolve().parents[2]

# Every route and verb of ../shared/CONTRACT.md, with the operation that serves it.
CONTRACT_OPERATIONS = {
    ("/api/authenticate", "post"): "login",
    ("/api/authenticate", "get"): "refresh",
    ("/api/authenticate", "put"): "change_password",
    ("/api/authenticate", "patch"): "recover",
    ("/api/authenticate", "delete"): "delete_account",
    ("/api/user", "get"): "profile",
    ("/api/user", "post"): "register",
    ("/api/user", "put"): "update_profile",
    ("/api/user", "patch"): "change_email",
    ("/api/user", "delete"): "deactivate",
    ("/api/validate/confirmation", "post"): "confirm",
    ("/api/validate/confirmation", "put"): "resend",
    ("/api/validate/recovery", "post"): "reset_password",
    ("/status", "get"): "status",
    # Beyond the old contract: sessions, introspection, the keys.
    ("/api/sessions", "get"): "list_sessions",
    ("/api/sessions", "delete"): "revoke_others",
    ("/api/sessions/{session_id}", "delete"): "revoke",
    ("/api/introspect", "post"): "introspect",
    ("/.well-known/jwks.json", "get"): "jwks",
    ("/.well-known/openid-configuration", "get"): "openid_configuration",
    ("/.well-known/oauth-authorization-server", "get"): "authorization_server_metadata",
    # The OpenID provider: the apps a user authorized.
    ("/api/authorizations", "get"): "list_authorizations",
    ("/api/authorizations/{authorization_id}", "delete"): "withdraw",
    # Two-factor sign-in.
    ("/api/mfa", "get"): "two_factor_status",
    ("/api/mfa/totp", "post"): "totp_enroll",
    ("/api/mfa/totp", "put"): "totp_confirm",
    ("/api/mfa/totp", "delete"): "totp_disable",
    ("/api/mfa/recovery-codes", "post"): "recovery_codes_regenerate",
    # Passkeys.
    ("/api/passkeys/options", "post"): "registration_options",
    ("/api/passkeys", "get"): "list_passkeys",
    ("/api/passkeys", "post"): "add",
    ("/api/passkeys/{passkey_id}", "patch"): "rename",
    ("/api/passkeys/{passkey_id}", "delete"): "remove",
    ("/api/authenticate/passkey/options", "post"): "signin_options",
    ("/api/authenticate/passkey", "post"): "signin",
    # Operations.
    ("/", "get"): "index",
    ("/metrics", "get"): "metrics",
}


def readme_production_env() -> dict[str, str]:
    """Return the variables of docs/operations.md's production block (after `<!-- production-env -->`)."""
    readme = (BASE_DIR / "docs" / "operations.md").read_text()
    block = readme.split("<!-- production-env -->", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    variables = dict(re.findall(r"^export (\w+)=(\S+)", block, re.MULTILINE))
    variables["SECRET_KEY"] = secrets.token_urlsafe(50)  # the README computes it in the shell
    return variables


def check_deploy(extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env.update(extra)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_readme_production_variables_pass_check_deploy():
    variables = readme_production_env()
    assert {"DEBUG", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS"} <= variables.keys()
    result = check_deploy(variables)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_is_a_real_check():
    """Without the hardening variables, check --deploy names what is missing."""
    result = check_deploy({"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), "EMAIL_BACKEND": "console"})
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


# --- CORS ---------------------------------------------------------------------------------------


def preflight(client, path, origin):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )


def test_cors_allows_the_client_origin_on_the_api(client, settings):
    response = preflight(client, "/api/user", settings.CLIENT_ORIGIN)
    assert response["Access-Control-Allow-Origin"] == settings.CLIENT_ORIGIN
    assert "authorization" in response["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in response


def test_cors_refuses_other_origins(client):
    response = preflight(client, "/api/user", "https://evil.example")
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.parametrize("path", ["/admin/login/", "/status"])
def test_cors_covers_only_the_api(client, settings, path):
    response = client.get(path, HTTP_ORIGIN=settings.CLIENT_ORIGIN)
    assert "Access-Control-Allow-Origin" not in response


# --- OpenAPI schema -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema():
    from django.test import Client

    response = Client().get("/api/schema")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/")
    return json.loads(response.content)


def test_schema_is_openapi_3_and_valid():
    """drf-spectacular's own validation, failing on any warning."""
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out)
    assert json.loads(out.getvalue())["openapi"].startswith("3.")


def test_schema_has_every_contract_operation(schema):
    served = {
        (path, verb): operation["operationId"]
        for path, operations in schema["paths"].items()
        for verb, operation in operations.items()
    }
    assert served == CONTRACT_OPERATIONS


@pytest.mark.parametrize(("path", "verb"), [key for key in CONTRACT_OPERATIONS if key[0] != "/status"])
def test_schema_documents_the_errors(schema, path, verb):
    operation = schema["paths"][path][verb]
    responses = operation["responses"]
    assert "200" in responses
    if operation.get("security") == [{"token": []}]:
        assert {"401", "403"} <= responses.keys()  # the token checks
    elif operation.get("security"):
        assert "401" in responses  # the client's credentials
    if "requestBody" in operation:
        assert {"400", "413", "415"} <= responses.keys()
        assert set(operation["requestBody"]["content"]) == {
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        }
    for status, response in responses.items():
        if status != "200":
            body = response["content"]["application/json"]
            assert body["schema"]["$ref"].split("/")[-1] in {"Error", "FieldError"}
            for example in body["examples"].values():
                assert example["value"]["status"] == int(status)


def test_schema_needs_no_token(client):
    assert client.get("/api/schema/", HTTP_AUTHORIZATION="Bearer garbage").status_code == 200
