"""Shared pieces of the console's browser tests: a fresh headless Chromium per test (Debian's Chromium and
ChromeDriver, driven by Selenium), waits on page state (never sleeps), signing in, and the browser's own errors.

The ``browser`` fixture is registered in ``conftest.py``; tests import the helpers from here."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from stack.launcher import LocalStack
from tests.integration.helpers import PLATFORM_KEY

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900")
PASSWORD = "a long enough password"
STEP_S = 20  # one page to load or one click to land
LOAD_S = 60  # one page load while other stacks share the machine's two cores
CONNECT_S = 90  # the whole signup: dispatcher exchange, discovery, subscription, registration, projector


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """A fresh headless Chromium (its own profile, so no cookies from another test)."""
    profile = tempfile.mkdtemp(prefix="aerostic-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (*CHROMIUM_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(LOAD_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


async def new_admin(stack: LocalStack, name: str) -> str:
    """A tenant with an admin user and no WhatsApp account; returns the admin's email."""
    email = f"admin-{uuid.uuid4().hex[:12]}@console.test"
    async with httpx.AsyncClient(base_url=stack.ingress_url, timeout=30) as client:
        created = await client.post("/admin/tenants", headers={"Authorization": f"Bearer {PLATFORM_KEY}"},
                                    json={"name": name, "admin_email": email, "admin_password": PASSWORD})
    assert created.status_code == 201, created.text
    return email


def wait(driver: WebDriver, timeout: float = STEP_S) -> WebDriverWait[WebDriver]:
    """A wait that polls every 0.1 s; an element the page re-rendered while the condition read it (a live update
    replacing a list) only means "not yet": the condition is asked again."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))


def on(base_url: str, path: str | None = None) -> Any:
    """A wait condition: the browser shows a page of ``base_url`` (at ``path``, if given)."""
    def landed(driver: WebDriver) -> bool:
        url = driver.current_url
        return url.startswith(base_url) and (path is None or urlsplit(url).path == path)

    return landed


def text_is(element_id: str, expected: str) -> Any:
    """A wait condition: the element's visible text is exactly ``expected``."""
    def reads(driver: WebDriver) -> bool:
        found = driver.find_elements(By.ID, element_id)
        return bool(found) and found[0].text.strip() == expected

    return reads


def console_errors(driver: WebDriver, stack: LocalStack) -> list[str]:
    """Errors the browser logged on the console's pages since the last call (CSP violations among them)."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and stack.ingress_url in entry["message"]]


def sign_in(driver: WebDriver, stack: LocalStack, email: str, password: str = PASSWORD) -> None:
    """Sign in through the console's form and wait to leave it."""
    driver.get(f"{stack.ingress_url}/console/login")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()
    wait(driver).until(lambda d: urlsplit(d.current_url).path != "/console/login")


def attribute_is(element_id: str, name: str, expected: str) -> Any:
    """A wait condition: the element's attribute ``name`` is ``expected``."""
    def holds(driver: WebDriver) -> bool:
        found = driver.find_elements(By.ID, element_id)
        return bool(found) and found[0].get_attribute(name) == expected

    return holds


def present(css: str) -> Any:
    """A wait condition: an element matches ``css`` (the matches, truthy)."""
    return lambda driver: driver.find_elements(By.CSS_SELECTOR, css)


def fill(driver: WebDriver, values: Mapping[str, str]) -> None:
    """Type each value into the field of that id (a select chooses the option of that value)."""
    for element_id, value in values.items():
        field = driver.find_element(By.ID, element_id)
        if field.tag_name == "select":
            Select(field).select_by_value(value)
        else:
            field.send_keys(value)


def save(driver: WebDriver, button_id: str, listed: str, timeout: float = STEP_S) -> None:
    """Click the form's save button and wait until the list shows the saved item (``listed``, a CSS selector)."""
    driver.find_element(By.ID, button_id).click()
    wait(driver, timeout).until(present(listed))


def refused(driver: WebDriver, button_id: str, errors_id: str) -> str:
    """Click the form's save button, wait for the API's refusal in the errors box, and return its text."""
    driver.find_element(By.ID, button_id).click()
    return str(wait(driver).until(ec.visibility_of_element_located((By.ID, errors_id))).text)


def fits_phone_width(driver: WebDriver) -> bool:
    """The page scrolls no sideways (at a phone's width, say)."""
    return bool(driver.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"))
