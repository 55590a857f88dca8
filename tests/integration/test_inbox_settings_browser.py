"""The inbox settings page in a real browser: an admin edits the waiting acknowledgement, the business hours
and a canned response, and a reload shows them saved; phone width and the keyboard; an agent is refused."""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select
from sqlalchemy.ext.asyncio import AsyncEngine

from stack.launcher import LocalStack
from tests.integration.browser import console_errors, new_admin, sign_in, text_is, wait
from tests.integration.helpers import scalar
from tests.integration.people import person

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAGE = "/console/inbox-settings"
LOAD_S = 60  # a loaded machine: the page and its two API calls


def _ready(driver: WebDriver) -> None:
    wait(driver, LOAD_S).until(lambda d: d.find_element(By.ID, "inbox-settings").get_attribute("data-ready") == "true")


def _saves(driver: WebDriver, count: int) -> None:
    wait(driver, LOAD_S).until(
        lambda d: d.find_element(By.ID, "inbox-settings").get_attribute("data-saved") == str(count))


def _type(driver: WebDriver, element_id: str, text: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def _fill(field: WebElement, text: str) -> None:
    field.clear()
    field.send_keys(text)


def _ranges(driver: WebDriver, day: str) -> list[list[str]]:
    return [[row.find_element(By.CSS_SELECTOR, ".start").get_attribute("value") or "",
             row.find_element(By.CSS_SELECTOR, ".end").get_attribute("value") or ""]
            for row in driver.find_elements(By.CSS_SELECTOR, f"#ranges-{day} .range")]


async def test_an_admin_edits_the_acknowledgement_hours_and_canned_responses(
        browser: WebDriver, stack: LocalStack, api: httpx.AsyncClient, db: AsyncEngine) -> None:
    email = await new_admin(stack, "inbox settings shop")
    sign_in(browser, stack, email)
    browser.get(f"{stack.ingress_url}{PAGE}")
    _ready(browser)
    assert browser.find_element(By.ID, "in-hours-text").get_attribute("value") == \
        "Thanks! A teammate will reply shortly."
    assert browser.find_element(By.ID, "acknowledge").is_selected()
    assert browser.find_element(By.ID, "closed-mon").is_displayed()  # no hours yet

    _type(browser, "in-hours-text", "We'll be right with you.")
    _type(browser, "out-of-hours-text", "Closed now, back {next_open}.")
    browser.find_element(By.ID, "ai-while-waiting").click()  # off
    Select(browser.find_element(By.ID, "timezone")).select_by_value("Europe/Paris")
    browser.find_element(By.ID, "add-mon").click()
    assert _ranges(browser, "mon") == [["09:00", "17:00"]]
    # The keyboard: the new range's first field has the focus; a second range follows the first one's close.
    active = browser.switch_to.active_element
    assert active.get_attribute("class") == "start"
    monday = browser.find_elements(By.CSS_SELECTOR, "#ranges-mon .range")[0]
    _fill(monday.find_element(By.CSS_SELECTOR, ".end"), "12:30")
    browser.find_element(By.ID, "add-mon").click()
    second = browser.find_elements(By.CSS_SELECTOR, "#ranges-mon .range")[1]
    _fill(second.find_element(By.CSS_SELECTOR, ".start"), "13:30")
    second.find_element(By.CSS_SELECTOR, ".end").send_keys("18:00")
    browser.find_element(By.ID, "add-sat").click()
    browser.find_element(By.ID, "add-sun").click()
    browser.find_element(By.CSS_SELECTOR, "#ranges-sun .remove").click()  # added, then removed again
    assert _ranges(browser, "sun") == [] and browser.find_element(By.ID, "closed-sun").is_displayed()

    # An overlap is refused with the API's reason, and nothing is saved.
    _fill(second.find_element(By.CSS_SELECTOR, ".start"), "12:00")
    browser.find_element(By.ID, "save-waiting").click()
    wait(browser, LOAD_S).until(ec.visibility_of_element_located((By.ID, "waiting-errors")))
    assert "overlaps" in browser.find_element(By.ID, "waiting-errors").text
    assert all("422" in e for e in console_errors(browser, stack))  # the refused save, and nothing else
    _fill(second.find_element(By.CSS_SELECTOR, ".start"), "13:30")
    browser.find_element(By.ID, "save-waiting").click()
    _saves(browser, 1)
    wait(browser).until(text_is("waiting-status", "Saved."))
    assert not browser.find_element(By.ID, "waiting-errors").is_displayed()

    _type(browser, "canned-shortcut", "hours")
    _type(browser, "canned-text", "We open at 9:00, Monday to Saturday.")
    browser.find_element(By.ID, "canned-save").click()
    _saves(browser, 2)
    _type(browser, "canned-shortcut", "bye")
    _type(browser, "canned-text", "Goodbye!")
    browser.find_element(By.ID, "canned-text").send_keys(Keys.TAB, Keys.ENTER)  # the keyboard reaches "Add"
    _saves(browser, 3)
    _type(browser, "canned-shortcut", "hours")  # taken
    _type(browser, "canned-text", "again")
    browser.find_element(By.ID, "canned-save").click()
    wait(browser, LOAD_S).until(ec.visibility_of_element_located((By.ID, "canned-errors")))
    assert "already in use" in browser.find_element(By.ID, "canned-errors").text
    assert all("409" in e for e in console_errors(browser, stack))
    # Edit one: the row changes in place.
    browser.find_element(By.CSS_SELECTOR, 'tr[data-shortcut="bye"] button.edit').click()
    assert browser.find_element(By.ID, "canned-shortcut").get_attribute("value") == "bye"
    _type(browser, "canned-text", "Goodbye, and thanks!")
    browser.find_element(By.ID, "canned-save").click()
    _saves(browser, 4)
    assert browser.find_element(By.CSS_SELECTOR, 'tr[data-shortcut="bye"] td.text').text == "Goodbye, and thanks!"
    assert console_errors(browser, stack) == []

    browser.refresh()
    _ready(browser)
    assert browser.find_element(By.ID, "in-hours-text").get_attribute("value") == "We'll be right with you."
    assert browser.find_element(By.ID, "out-of-hours-text").get_attribute("value") == "Closed now, back {next_open}."
    assert not browser.find_element(By.ID, "ai-while-waiting").is_selected()
    assert browser.find_element(By.ID, "acknowledge").is_selected()
    assert Select(browser.find_element(By.ID, "timezone")).first_selected_option.get_attribute("value") == \
        "Europe/Paris"
    assert _ranges(browser, "mon") == [["09:00", "12:30"], ["13:30", "18:00"]]
    assert _ranges(browser, "sat") == [["09:00", "17:00"]] and _ranges(browser, "sun") == []
    rows = browser.find_elements(By.CSS_SELECTOR, "#canned-list tr[data-shortcut]")
    assert [r.get_attribute("data-shortcut") for r in rows] == ["hours", "bye"]
    tenant_id = await scalar(db, "SELECT tenant_id FROM users WHERE email = :e", e=email)
    saved = await scalar(db, "SELECT waiting ->> 'in_hours_text' FROM tenant_settings WHERE tenant_id = :t",
                         t=tenant_id)
    assert saved == "We'll be right with you."

    # Delete one (the browser's confirm accepted).
    browser.execute_script("window.confirm = function () { return true; };")
    browser.find_element(By.CSS_SELECTOR, 'tr[data-shortcut="hours"] button.delete').click()
    _saves(browser, 1)
    browser.refresh()
    _ready(browser)
    assert [r.get_attribute("data-shortcut") for r in browser.find_elements(
        By.CSS_SELECTOR, "#canned-list tr[data-shortcut]")] == ["bye"]

    # Phone width: no sideways scroll.
    browser.set_window_size(390, 844)
    browser.refresh()
    _ready(browser)
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert console_errors(browser, stack) == []

    # An agent of the same tenant gets the 403 page.
    agent = await person(api, db, str(tenant_id), "agent")
    browser.delete_all_cookies()
    sign_in(browser, stack, agent.email)
    browser.get(f"{stack.ingress_url}{PAGE}")
    wait(browser, LOAD_S).until(lambda d: "Your role cannot open Inbox settings" in d.page_source)
    assert browser.find_elements(By.ID, "inbox-settings") == []
