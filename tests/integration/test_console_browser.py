"""The web console in a real browser: Debian's headless Chromium, driven through
chromedriver, logs in, reaches the subjects, a reviewed diff and one person's disclosures with
the keyboard alone (Tab and Enter, focus always visible), and screenshots that are not blank.

Skipped, saying so, where no chromium and chromedriver are installed, except under ``CI``
(``.ci/run`` installs Debian's); never downloads a browser of its own."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from tests.fixtures.console import (
    GDT_PURPOSE,
    PERSON,
    SUBJECT,
    ConsoleRun,
    console_run_fixture,  # noqa: F401
)

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DEADLINE = 15.0
MOST_TABS = 80
# the network is closed: nothing may reach out for updates, sync or field trials
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        missing = "needs Debian's chromium and chromium-driver (apt-get install them)"
        if os.environ.get("CI"):
            pytest.fail(missing)  # CI installs them: the browser test must run there
        pytest.skip(missing)
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager: never download a driver
    monkeypatch.setenv("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "d"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], bool], what: str) -> None:
    # an element read while the next page replaces it is stale: read it again
    wait = WebDriverWait(driver, DEADLINE, ignored_exceptions=[StaleElementReferenceException])
    wait.until(condition, f"not within {DEADLINE} s: {what}")


def press(driver: WebDriver, *keys: str) -> None:
    ActionChains(driver).send_keys(*keys).perform()


def focused(driver: WebDriver) -> WebElement:
    return driver.switch_to.active_element


def main_text(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "main").text)


def tab_to(driver: WebDriver, matches: Callable[[WebElement], bool], what: str) -> WebElement:
    """Press Tab until the focused element ``matches``; its focus must be visible."""
    for _ in range(MOST_TABS):
        press(driver, Keys.TAB)
        element = focused(driver)
        if matches(element):
            assert element.value_of_css_property("outline-style") != "none", what
            return element
    raise AssertionError(f"Tab never reached {what}")


def link_to(text: str) -> Callable[[WebElement], bool]:
    return lambda e: e.tag_name == "a" and e.text.strip() == text


def button(text: str) -> Callable[[WebElement], bool]:
    return lambda e: e.tag_name == "button" and e.text.strip() == text


def on_page(driver: WebDriver, path: str) -> None:
    wait_for(driver, lambda d: d.current_url.split("?")[0].endswith(path), f"page {path}")
    wait_for(driver, lambda d: d.execute_script("return document.readyState") == "complete", path)


def assert_not_blank(png: bytes, where: Path) -> None:
    """The screenshot decodes as a PNG of the window's size and is not one colour."""
    where.write_bytes(png)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width >= 1000 and image.height >= 600
    colours = image.convert("RGB").getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 10, f"a blank screenshot: {where}"
    # the text on the page is drawn: enough pixels differ from the most common colour
    background = max(colours)[0]
    assert image.width * image.height - background > 2_000


def log_in(driver: WebDriver, run: ConsoleRun, user: str) -> None:
    """Type the name in the focused field, Tab to the password, Enter."""
    driver.get(run.url + "/login")
    on_page(driver, "/login")
    assert focused(driver).get_attribute("id") == "name"
    press(driver, user, Keys.TAB, run.passwords[user], Keys.ENTER)


def test_keyboard_only_through_subjects_a_reviewed_diff_and_a_persons_disclosures(
    browser: WebDriver, console_run: ConsoleRun, tmp_path: Path
) -> None:
    driver = browser
    log_in(driver, console_run, "reviewer")
    on_page(driver, "/subjects")
    assert SUBJECT in main_text(driver)
    assert_not_blank(driver.get_screenshot_as_png(), tmp_path / "subjects.png")

    tab_to(driver, link_to(SUBJECT), "the subject's link")
    press(driver, Keys.ENTER)
    on_page(driver, f"/subjects/{SUBJECT}")
    tab_to(driver, link_to("Compare version 1 with version 2"), "the comparison's link")
    press(driver, Keys.ENTER)
    on_page(driver, f"/subjects/{SUBJECT}/diff")
    main = main_text(driver)
    assert "Verdict per compatibility level" in main and "FULL_TRANSITIVE" in main
    assert "Statistics office" in main and "nickname" in main
    assert len(driver.find_elements(By.CSS_SELECTOR, "table.diff tr.added")) == 1
    assert_not_blank(driver.get_screenshot_as_png(), tmp_path / "diff.png")

    tab_to(driver, button("Log out"), "the logout button")
    press(driver, Keys.ENTER)
    on_page(driver, "/login")

    log_in(driver, console_run, "dpo")
    on_page(driver, "/disclosures")
    tab_to(driver, lambda e: e.get_attribute("id") == "personal_id", "the personal id field")
    press(driver, PERSON, Keys.ENTER)
    wait_for(driver, lambda d: f"2 disclosures about {PERSON}" in main_text(d), "the answer")
    rows = driver.find_elements(By.CSS_SELECTOR, "main table tbody tr")
    assert len(rows) == 2 and GDT_PURPOSE in rows[1].text
    assert_not_blank(driver.get_screenshot_as_png(), tmp_path / "disclosures.png")

    tab_to(driver, link_to("Subjects"), "the subjects link in the header")
    press(driver, Keys.ENTER)
    on_page(driver, "/subjects")


def test_the_session_cookie_is_out_of_a_pages_reach(
    browser: WebDriver, console_run: ConsoleRun
) -> None:
    driver = browser
    log_in(driver, console_run, "reviewer")
    on_page(driver, "/subjects")
    (cookie,) = driver.get_cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert driver.execute_script("return document.cookie") == ""
