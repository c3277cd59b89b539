"""The admin's pages in Chromium, as staff see them: the product's name in the header, times with
seconds and the zone, the confirmation page of a key rotation, and a session's revoke button
(whose session's token the API then refuses).

Served as in production (gunicorn, DEBUG off, collected static files), with PRODUCT_NAME set, by
tests/staff/test_admin_browser.py's `served`; skipped without Chromium and chromedriver.
"""

import re

import jwt
import pytest

from tests.conftest import run
from tests.staff.test_admin_browser import (  # noqa: F401 (browser: a fixture)
    STAFF_EMAIL,
    STAFF_PASSWORD,
    api,
    browser,
    pytestmark,
    served,
)
from tests.support.contract import TOKEN_INVALID

from selenium.webdriver.common.by import By  # noqa: E402  (after test_admin_browser's import guard)
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PRODUCT_NAME = "Acme Identity"
USER_EMAIL = "rita.revoked@example.com"
USER_PASSWORD = "revoked staple phrase 4"
# A time as the admin shows it: seconds and the zone (authserver/formats).
TIME_WITH_SECONDS_AND_ZONE = re.compile(r"\b\d{2}:\d{2}:\d{2} UTC\b")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from served(tmp_path_factory, PRODUCT_NAME=PRODUCT_NAME)


@pytest.fixture(scope="module")
def user_token(server) -> str:
    """A confirmed account signed in through the API; return its token."""
    base = server["base"]
    status, body = api(
        f"{base}/api/user", {"email": USER_EMAIL, "name": "Rita", "password": USER_PASSWORD, "confirm": USER_PASSWORD}
    )
    assert status == 200, body
    printed = run(server["project"], "manage.py", "generate_validation_token", USER_EMAIL, **server["variables"])
    assert printed.returncode == 0, printed.stderr
    assert api(f"{base}/api/validate/confirmation", {"token": printed.stdout.strip()})[0] == 200
    status, body = api(f"{base}/api/authenticate", {"email": USER_EMAIL, "password": USER_PASSWORD})
    assert status == 200, body
    return body["token"]


def sign_in_to_the_admin(browser, base: str) -> WebDriverWait:
    wait = WebDriverWait(browser, 15)
    browser.get(f"{base}/admin/login/")
    wait.until(expected_conditions.presence_of_element_located((By.ID, "id_username"))).send_keys(STAFF_EMAIL)
    browser.find_element(By.ID, "id_password").send_keys(STAFF_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, '#login-form [type="submit"]').click()
    wait.until(expected_conditions.url_to_be(f"{base}/admin/"))
    return wait


def test_header_times_key_rotation_and_session_revocation(server, browser, user_token):
    base = server["base"]
    wait = sign_in_to_the_admin(browser, base)

    # The product's name, where Django would say "Django administration".
    assert browser.find_element(By.ID, "site-name").text == f"{PRODUCT_NAME} administration"
    assert browser.title == f"Administration | {PRODUCT_NAME} admin"

    # The audit trail: every time with seconds and the zone.
    browser.get(f"{base}/admin/accounts/authevent/")
    cells = wait.until(
        expected_conditions.presence_of_all_elements_located((By.CSS_SELECTOR, "#result_list tbody .field-created_at"))
    )
    assert len(cells) >= 2  # the user's registration and login, the staff login
    for cell in cells:
        assert TIME_WITH_SECONDS_AND_ZONE.search(cell.text), cell.text

    # Rotating the keys asks first, on a page of its own; going back changes nothing.
    signing_kid = jwt.get_unverified_header(user_token)["kid"]
    browser.get(f"{base}/admin/accounts/signingkey/")
    browser.find_element(By.CSS_SELECTOR, ".object-tools a.rotate").click()
    wait.until(expected_conditions.title_contains("Rotate the signing keys?"))
    assert "the current key becomes previous" in browser.find_element(By.ID, "content-main").text
    browser.find_element(By.CSS_SELECTOR, "a.cancel-link").click()
    wait.until(expected_conditions.url_to_be(f"{base}/admin/accounts/signingkey/"))
    assert browser.find_elements(By.CSS_SELECTOR, "ul.messagelist li") == []
    browser.find_element(By.CSS_SELECTOR, ".object-tools a.rotate").click()
    wait.until(expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, 'input[name="rotate"]'))).click()
    message = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist li")))
    assert message.text.startswith("Keys rotated: ")
    rows = {
        row.find_element(By.CSS_SELECTOR, "th.field-kid").text: row.find_element(By.CSS_SELECTOR, "td.field-state").text
        for row in browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    }
    assert rows[signing_kid].startswith("Previous")
    # The user's token, signed by the key now previous, still works.
    assert api(f"{base}/api/user", token=user_token)[0] == 200

    # The user's session: read-only, its sign-in methods named, a revoke button.
    browser.get(f"{base}/admin/accounts/session/?q=rita.revoked")
    link = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#result_list tbody tr th a")))
    link.click()
    wait.until(expected_conditions.title_contains("View session"))
    content = browser.find_element(By.ID, "content-main")
    assert browser.find_elements(By.CSS_SELECTOR, 'input[name="_save"]') == []
    methods = content.find_element(By.CSS_SELECTOR, ".field-sign_in_methods")
    assert methods.find_element(By.TAG_NAME, "label").text == "Sign-in methods:"
    assert methods.find_element(By.CSS_SELECTOR, ".readonly").text == "password"
    created = content.find_element(By.CSS_SELECTOR, ".field-created_at .readonly").text
    assert TIME_WITH_SECONDS_AND_ZONE.search(created), created
    browser.find_element(By.CSS_SELECTOR, 'button[name="revoke"]').click()
    message = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist li")))
    assert message.text == "Session revoked: its tokens stop working now."
    assert browser.find_elements(By.CSS_SELECTOR, 'button[name="revoke"]') == []
    ended = browser.find_element(By.CSS_SELECTOR, ".field-end_reason .readonly").text
    assert ended == "Revoked by staff"

    # The API refuses the session's token at once.
    assert api(f"{base}/api/user", token=user_token) == (401, TOKEN_INVALID)
