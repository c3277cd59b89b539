"""Headless Chromium for the browser tests: the system's Chromium and chromedriver (Debian:
`apt-get install chromium chromium-driver`), given by path so that Selenium Manager never runs.

CHROMIUM_MISSING is the reason a module skips with when either is absent (CI watches for it);
`chromium(...)` starts a browser with a profile of its own under `tmp_path`; `wait_for_heading`
waits for a page's h1 without holding an element that a navigation may replace, `click_and_leave`
for a click that loads another page; `axe_violations`
runs axe-core (tests/node) on the page.

Selenium is imported when a browser starts, so that a module can skip (pytest.importorskip)
before anything here needs it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def _first(*candidates: str | None) -> str | None:
    return next((path for path in candidates if path and Path(path).is_file()), None)


CHROMIUM = _first("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
CHROMEDRIVER = _first("/usr/bin/chromedriver", shutil.which("chromedriver"))
CHROMIUM_MISSING = CHROMIUM is None or CHROMEDRIVER is None
CHROMIUM_MISSING_REASON = "no Chromium and chromedriver on this machine (Debian: apt-get install chromium chromium-driver)"

# Where the browser tests keep their screenshots, to be looked at.
SHOTS = Path("/tmp/w22b-shots")


def chromium(
    tmp_path: Path,
    *,
    language: str = "en-US",
    javascript: bool = True,
    size: str = "1280,900",
    console_log: bool = False,
):
    """A headless Chromium, its profile in `tmp_path`; `console_log` keeps the page's console
    messages for `driver.get_log("browser")`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

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
        "--force-color-profile=srgb",
        f"--window-size={size}",
        f"--lang={language}",
        f"--user-data-dir={tmp_path / f'chromium-{language}-{javascript}-{size}'}",
    ):
        options.add_argument(argument)
    prefs = {"intl.accept_languages": language}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    if console_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(60)
    return driver


def axe_violations(browser) -> list[dict]:
    """Run axe-core on the page; return its serious and critical violations, readable."""
    from tests.support.node import axe_script

    browser.execute_script(axe_script())
    violations = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(results => done(results.violations), error => done([{id: 'axe-error', impact: 'critical', help: String(error), nodes: []}]));"
    )
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [f"{node['html']}: {node.get('failureSummary', '')}" for node in violation["nodes"]],
        }
        for violation in violations
        if violation["impact"] in ("serious", "critical")
    ]


def readable(violations: list[dict]) -> str:
    return json.dumps(violations, indent=2)


def wait_for_heading(browser, heading: str, timeout: float = 20) -> None:
    """Wait until the page's h1 is `heading`; else fail with where the browser is and what it shows."""
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # Read in the page's current document (a script, not an element handle), and any WebDriver
    # error while a navigation replaces the document (a node of the old one, no context yet) is
    # only "not yet": Chromium answers such a read with an inspector error, not a stale element.
    def shown(driver) -> bool:
        return driver.execute_script("const h = document.querySelector('h1'); return h ? h.innerText.trim() : null") == heading

    try:
        WebDriverWait(browser, timeout, ignored_exceptions=(WebDriverException,)).until(shown)
    except TimeoutException:
        raise AssertionError(f"no h1 {heading!r} at {browser.current_url}:\n{browser.find_element(By.TAG_NAME, 'body').text}") from None


def click_and_leave(browser, element) -> None:
    """Click `element` and wait until the browser has replaced the page (a page answered with the
    same heading must not be read before it has loaded). The old document is told apart by a mark
    set in it, read by a script: while a navigation replaces it, Chromium may answer a read of its
    elements with an inspector error rather than a stale element, which is only "not yet" here."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("window.leftBehind = true;")
    element.click()
    WebDriverWait(browser, 20, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: driver.execute_script("return document.readyState !== 'loading' && window.leftBehind !== true")
    )
