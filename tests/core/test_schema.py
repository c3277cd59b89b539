"""/api/docs: Swagger UI on /api/schema, with its files served by this server (no CDN); the schema's
version and paths.

The page's scripts and styles must load on a machine without internet access: they come from
drf-spectacular-sidecar through the static files, found by the finders in development and
collected (hashed, compressed) by `collectstatic` in production.
"""

import json
import re
import subprocess
import sys

import pytest
from django.test import Client

from tests.conftest import clean_env, copy_project

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


def assets(html: str) -> list[str]:
    return ASSET.findall(html)


@pytest.mark.parametrize("path", ["/api/docs", "/api/docs/"])
def test_docs_is_swagger_ui_on_the_schema(client, path):
    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert 'id="swagger-ui"' in html
    assert '"/api/schema"' in html


def test_the_schema_tells_the_version_of_get_root_and_paths_as_clients_call_them(client):
    schema = client.get("/api/schema").json()

    assert schema["info"]["version"] == client.get("/").json()["version"]
    assert "/api/user" in schema["paths"] and "/api/sessions/{session_id}" in schema["paths"]
    assert [path for path in schema["paths"] if path != "/" and path.endswith("/")] == []


def test_docs_needs_no_token(client):
    assert client.get("/api/docs", HTTP_AUTHORIZATION="Bearer garbage").status_code == 200


def test_docs_loads_nothing_from_elsewhere(client):
    urls = assets(client.get("/api/docs").content.decode())

    assert {url.rsplit("/", 1)[-1] for url in urls} >= {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
    }
    assert all(url.startswith("/static/drf_spectacular_sidecar/") for url in urls), urls


def test_docs_files_are_served_in_development(settings):
    """runserver with DEBUG on: whitenoise serves the files from the apps (no collectstatic)."""
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    client = Client()  # a new client builds the middleware, so whitenoise reads the settings above
    for url in assets(client.get("/api/docs").content.decode()):
        response = client.get(url)
        assert response.status_code == 200, url
        content = b"".join(response.streaming_content) if response.streaming else response.content
        assert len(content) > 100, url


# In production: after collectstatic, with DEBUG off, the page and each of its files.
PRODUCTION_FETCH = """
import json, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "authserver.settings"
import django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="localhost")
page = client.get("/api/docs")
result = {"status": page.status_code, "html": page.content.decode(), "assets": {}}
import re
for url in re.findall(r'(?:src|href)="([^"]+)"', result["html"]):
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    result["assets"][url] = [response.status_code, response.get("Content-Type", ""), len(body)]
print(json.dumps(result))
"""


def test_docs_files_are_served_in_production(tmp_path):
    project = copy_project(tmp_path / "project")
    env = clean_env(
        DEBUG="false",
        SECRET_KEY="docs-test-" + "k" * 50,
        EMAIL_BACKEND="console",
        ALLOWED_HOSTS="localhost",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )
    assert collect.returncode == 0, collect.stderr
    fetch = subprocess.run(
        [sys.executable, "-c", PRODUCTION_FETCH], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert fetch.returncode == 0, fetch.stderr
    result = json.loads(fetch.stdout.strip().splitlines()[-1])

    assert result["status"] == 200
    assert len(result["assets"]) >= 4
    for url, (status, content_type, size) in result["assets"].items():
        # Hashed names from the manifest: browsers may cache them for good.
        assert re.search(r"\.[0-9a-f]{12}\.(css|js|png)$", url), url
        assert status == 200, url
        assert content_type.split(";")[0] in {"text/css", "text/javascript", "application/javascript", "image/png"}
        assert size > 100, url
