"""The console in a real browser (Debian's Chromium, headless, driven by Selenium): sign in, connect
WhatsApp through the simulator's Embedded Signup dialog and watch the page turn "WhatsApp connected"
on its own; cancel in the dialog and be told so."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select

from stack.launcher import LocalStack
from tests.integration.browser import CONNECT_S, PASSWORD, console_errors, new_admin, on, text_is, wait
from tests.integration.helpers import MetaAccount, MetaAccountFactory

pytestmark = pytest.mark.asyncio(loop_scope="session")


def sign_in_and_connect(driver: WebDriver, stack: LocalStack, email: str) -> None:
    """Sign in through the console's form, then follow its Connect WhatsApp button to Meta's dialog."""
    driver.get(f"{stack.ingress_url}/console/login")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait(driver).until(on(stack.ingress_url, "/console"))
    assert driver.find_element(By.ID, "connection-status").text == "Not connected"
    connect = wait(driver).until(ec.element_to_be_clickable((By.ID, "connect")))
    assert connect.text == "Connect WhatsApp"
    assert console_errors(driver, stack) == []
    connect.click()
    wait(driver).until(on(stack.metasim_url))


def log_in_to_meta(driver: WebDriver, meta: MetaAccount) -> None:
    """Page 1 of the dialog: log in to "Facebook"; page 2 (consent) is then shown."""
    wait(driver).until(ec.presence_of_element_located((By.ID, "email"))).send_keys(meta.email)
    driver.find_element(By.ID, "password").send_keys(meta.password)
    driver.find_element(By.ID, "login").click()
    wait(driver).until(ec.presence_of_element_located((By.ID, "allow")))


async def test_connecting_whatsapp_in_the_browser(browser: WebDriver, stack: LocalStack,
                                                  meta_account_factory: MetaAccountFactory) -> None:
    email = await new_admin(stack, "browser shop")
    meta = await meta_account_factory(numbers=1)
    sign_in_and_connect(browser, stack, email)
    log_in_to_meta(browser, meta)
    Select(browser.find_element(By.ID, "business_id")).select_by_value(meta.business_id)
    Select(browser.find_element(By.ID, "waba_id")).select_by_value(meta.waba_id)
    Select(browser.find_element(By.ID, "phone_number_id")).select_by_value(meta.numbers[0])
    browser.find_element(By.ID, "allow").click()

    wait(browser).until(on(stack.ingress_url, "/console"))
    assert parse_qs(urlsplit(browser.current_url).query).get("attempt"), browser.current_url
    # The page follows the attempt by itself (no reload): "Connecting…", then connected with the number.
    wait(browser, CONNECT_S).until(text_is("connection-status", "WhatsApp connected"))
    wait(browser).until(ec.presence_of_element_located(
        (By.CSS_SELECTOR, f'#numbers tr[data-phone-number-id="{meta.numbers[0]}"]')))
    rows = browser.find_elements(By.CSS_SELECTOR, "#numbers tr[data-phone-number-id]")
    assert [row.get_attribute("data-phone-number-id") for row in rows] == meta.numbers
    assert f"+1 555-{meta.numbers[0][-4:]}" in rows[0].text and "Shop" in rows[0].text
    # The script words Meta's codes as the server does, Meta's value on hover.
    for cell, text, code in (("quality", "High", "GREEN"), ("tier", "1,000 customers a day", "TIER_1K"),
                             ("throughput", "80 messages/s", "STANDARD")):
        shown = rows[0].find_element(By.CSS_SELECTOR, f"td.{cell} span")
        assert (shown.text, shown.get_attribute("title")) == (text, code)
    assert browser.find_element(By.ID, "connect").text == "Reconnect WhatsApp"
    assert console_errors(browser, stack) == []

    # A fresh load renders the same state on the server.
    browser.get(f"{stack.ingress_url}/console")
    assert browser.find_element(By.ID, "connection-status").text == "WhatsApp connected"
    assert [row.get_attribute("data-phone-number-id") for row in browser.find_elements(
        By.CSS_SELECTOR, "#numbers tr[data-phone-number-id]")] == meta.numbers


async def test_cancelling_in_the_dialog_says_so(browser: WebDriver, stack: LocalStack,
                                                meta_account_factory: MetaAccountFactory) -> None:
    email = await new_admin(stack, "browser cancel")
    meta = await meta_account_factory(numbers=1)
    sign_in_and_connect(browser, stack, email)
    log_in_to_meta(browser, meta)
    browser.find_element(By.ID, "cancel").click()

    wait(browser).until(on(stack.ingress_url))
    wait(browser).until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "You cancelled the connection"))
    assert console_errors(browser, stack) == []
    browser.find_element(By.ID, "back").click()
    wait(browser).until(on(stack.ingress_url, "/console"))
    assert browser.find_element(By.ID, "connection-status").text == "Not connected"
    assert browser.find_elements(By.CSS_SELECTOR, "#numbers tr[data-phone-number-id]") == []
