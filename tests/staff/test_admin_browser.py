"""The admin in a real browser, served as in production: headless Chromium driven by Selenium,
gunicorn with DEBUG off, static files gathered by `collectstatic` and served by whitenoise.

Runs in a copy of the project (conftest.copy_project), so `collectstatic` never writes into the
working tree, with its own SQLite file. A staff member logs in with the email, checks that the
admin's stylesheets are served and applied, finds a user with the search box and disables it with
the list's action; the API then refuses that user's login and its earlier token (AccountDisabled).

Needs the system's Chromium and chromedriver (Debian: `apt-get install chromium chromium-driver`);
without them the test is skipped. The driver is given by path, so Selenium Manager never runs
and nothing is downloaded.
"""

import json
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import clean_env, copy_project, run
from tests.support.contract import ACCOUNT_DISABLED
from tests.support.servers import gunicorn


def _first(*candidates: str | None) -> str | None:
    return next((path for path in candidates if path and Path(path).is_file()), None)


CHROMIUM = _first("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
CHROMEDRIVER = _first("/usr/bin/chromedriver", shutil.which("chromedriver"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="no Chromium and chromedriver on this machine (Debian: apt-get install chromium chromium-driver)",
    ),
]

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (see requirements.txt)")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

STAFF_EMAIL = "operator@example.com"
STAFF_PASSWORD = "operator phrase 31"
STAFF_NAME = "Olga Operator"
TARGET_EMAIL = "mallory.target@example.com"
TARGET_PASSWORD = "target staple phrase 9"


def http(url: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """Return status, headers and body of one request."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def api(url: str, data: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    status, _, body = http(url, data, {"Authorization": token} if token else None)
    return status, json.loads(body)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """gunicorn serving a fresh copy of the project in production mode; yield its base URL."""
    yield from served(tmp_path_factory)


def served(tmp_path_factory, **extra: str):
    """Serve a fresh copy of the project with gunicorn in production mode, its staff account made
    by `createsuperuser`; yield its base URL, the copy and its variables (`extra` among them)."""
    workdir = tmp_path_factory.mktemp("admin-browser")
    project = copy_project(workdir / "project")
    variables = {
        **extra,
        "DEBUG": "false",
        "SECRET_KEY": "browser-test-" + "s" * 50,
        "EMAIL_BACKEND": "console",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "authserver.settings",
        "SECURE_SSL_REDIRECT": "false",
        "TRUSTED_PROXIES": "",
    }
    for args in (
        ["collectstatic", "--noinput", "--verbosity", "0"],
        ["migrate", "--noinput", "--verbosity", "0"],
        ["createsuperuser", "--noinput"],
    ):
        result = run(
            project,
            "manage.py",
            *args,
            DJANGO_SUPERUSER_EMAIL=STAFF_EMAIL,
            DJANGO_SUPERUSER_NAME=STAFF_NAME,
            DJANGO_SUPERUSER_PASSWORD=STAFF_PASSWORD,
            **variables,
        )
        assert result.returncode == 0, f"manage.py {args[0]}: {result.stderr}"
    assert (project / "staticfiles" / "staticfiles.json").is_file(), "collectstatic wrote no manifest"

    # The project's own gunicorn configuration, as deployed; only the address and size differ.
    with gunicorn(
        "-c", "gunicorn.conf.py", "--workers", "2",
        cwd=project,
        env=clean_env(**variables),
        log=workdir / "gunicorn.log",
        timeout=30,
    ) as server:
        yield {"base": server.base, "project": project, "variables": variables}


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def target(server) -> str:
    """A confirmed account, registered and confirmed through the API; return a token of its login."""
    base = server["base"]
    status, body = api(
        f"{base}/api/user",
        {"email": TARGET_EMAIL, "name": "Mallory Target", "password": TARGET_PASSWORD, "confirm": TARGET_PASSWORD},
    )
    assert status == 200, body
    printed = run(server["project"], "manage.py", "generate_validation_token", TARGET_EMAIL, **server["variables"])
    assert printed.returncode == 0, printed.stderr
    assert api(f"{base}/api/validate/confirmation", {"token": printed.stdout.strip()})[0] == 200
    status, body = api(f"{base}/api/authenticate", {"email": TARGET_EMAIL, "password": TARGET_PASSWORD})
    assert status == 200, body
    assert api(f"{base}/api/user", token=body["token"]) == (
        200,
        {"email": TARGET_EMAIL, "profile": {"name": "Mallory Target"}},
    )
    return body["token"]


def test_staff_disables_a_user_found_by_search_and_the_api_refuses_it(server, browser, target):
    base = server["base"]
    wait = WebDriverWait(browser, 15)

    # The login page, with the admin's stylesheets collected, hashed and served by whitenoise.
    browser.get(f"{base}/admin/")
    wait.until(expected_conditions.presence_of_element_located((By.ID, "id_username")))
    assert browser.current_url.startswith(f"{base}/admin/login/")
    links = browser.find_elements(By.CSS_SELECTOR, 'link[rel="stylesheet"]')
    stylesheets = [link.get_attribute("href") for link in links]
    assert any(re.search(r"/static/admin/css/base\.[0-9a-f]{12}\.css$", href) for href in stylesheets), stylesheets
    for href in stylesheets:
        status, headers, _ = http(href)
        assert status == 200, href
        assert headers["Content-Type"].startswith("text/css"), href
    header_background = browser.execute_script(
        "return getComputedStyle(document.getElementById('header')).backgroundColor"
    )
    assert header_background not in ("", "transparent", "rgba(0, 0, 0, 0)"), "the admin CSS is not applied"

    # Log in with the email.
    assert "Email address" in browser.find_element(By.CSS_SELECTOR, 'label[for="id_username"]').text
    browser.find_element(By.ID, "id_username").send_keys(STAFF_EMAIL.upper())
    browser.find_element(By.ID, "id_password").send_keys(STAFF_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, '#login-form [type="submit"]').click()
    wait.until(expected_conditions.url_to_be(f"{base}/admin/"))

    # Find the user with the search box.
    browser.get(f"{base}/admin/accounts/user/")
    search = wait.until(expected_conditions.presence_of_element_located((By.ID, "searchbar")))
    search.send_keys("mallory.target")
    browser.find_element(By.CSS_SELECTOR, '#changelist-search [type="submit"]').click()
    wait.until(expected_conditions.url_contains("q=mallory.target"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1
    assert TARGET_EMAIL in rows[0].text
    assert rows[0].find_element(By.CSS_SELECTOR, "td.field-state").text == "active"

    # Select it and run "disable".
    rows[0].find_element(By.CSS_SELECTOR, "input.action-select").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("disable")
    browser.find_element(By.CSS_SELECTOR, 'button[name="index"]').click()
    message = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist li")))
    assert message.text == "1 account disabled."
    state = browser.find_element(By.CSS_SELECTOR, "#result_list tbody tr td.field-state")
    assert state.text == "disabled"

    # The API refuses the user at once: its login and its earlier token.
    assert api(f"{base}/api/authenticate", {"email": TARGET_EMAIL, "password": TARGET_PASSWORD}) == (
        403,
        ACCOUNT_DISABLED,
    )
    assert api(f"{base}/api/user", token=target) == (403, ACCOUNT_DISABLED)
    assert api(f"{base}/api/authenticate", token=f"Bearer {target}") == (403, ACCOUNT_DISABLED)

    # The audit trail shows the staff action, read-only.
    browser.get(f"{base}/admin/accounts/authevent/?type__exact=staff_action")
    entries = wait.until(
        expected_conditions.presence_of_all_elements_located((By.CSS_SELECTOR, "#result_list tbody tr"))
    )
    assert len(entries) == 1
    assert TARGET_EMAIL in entries[0].text and STAFF_EMAIL in entries[0].text
