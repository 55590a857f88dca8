"""The console's dashboards page in a real browser (headless Chromium) against the whole local stack.

An admin sees the charts drawn (uPlot canvases) and the figures in the tables; while "Today" is shown a new
customer message updates the inbound count without a reload; another range reloads the figures; an agent
gets the styled 403 page."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from sqlalchemy.ext.asyncio import AsyncEngine

from stack.launcher import LocalStack
from tests.integration.browser import console_errors, sign_in, text_is, wait
from tests.integration.helpers import BusinessFactory, customer_writes
from tests.integration.people import person

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Elements sticking out on the right (the diagnosis of a page that scrolls sideways).
WIDER_THAN_SCREEN = """return Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table-wrap'))
  .slice(0, 8)
  .map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));"""
LIVE_S = 60  # a live event, or the page's fallback refresh, and a loaded machine


def customer() -> str:
    return f"9197{random.randrange(10**8):08d}"


def loaded(period: str) -> Any:
    def ready(driver: WebDriver) -> bool:
        found = driver.find_elements(By.CSS_SELECTOR, f"#dashboard[data-loaded=true][data-period='{period}']")
        return bool(found)

    return ready


async def test_an_admin_sees_live_charts_and_tables_and_an_agent_is_refused(
        browser: WebDriver, stack: LocalStack, api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine,
        business_factory: BusinessFactory) -> None:
    shop = await business_factory("dashboards-browser")
    admin = await person(api, db, shop.tenant_id, role="admin")
    await customer_writes(sim, db, shop, customer(), text="hello")

    sign_in(browser, stack, admin.email)
    browser.get(f"{stack.ingress_url}/console/dashboards")
    wait(browser).until(loaded("today"))
    wait(browser).until(text_is("total-inbound", "1"))
    assert browser.find_element(By.ID, "range-today").get_attribute("aria-pressed") == "true"
    for chart in ("volume-chart", "delivery-chart"):
        assert browser.find_elements(By.CSS_SELECTOR, f"#{chart} canvas"), chart
    volume = [int(row.find_elements(By.TAG_NAME, "td")[1].get_attribute("textContent") or "")
              for row in browser.find_elements(By.CSS_SELECTOR, "#volume-table tbody tr")]
    assert len(volume) == 24 and sum(volume) == 1
    assert browser.find_element(By.ID, "episodes").text == "1"
    portfolio = browser.find_elements(By.CSS_SELECTOR, f"#portfolio-table tr[data-waba-id='{shop.waba_id}']")
    assert len(portfolio) == 1 and "Unlimited" in portfolio[0].text
    assert browser.find_element(By.ID, "nav-dashboards").get_attribute("aria-current") == "page"

    # A new customer message while "Today" is shown: the count follows without a reload.
    marker = browser.execute_script("window.__sameDocument = true; return window.__sameDocument;")
    assert marker is True
    await customer_writes(sim, db, shop, customer(), text="hello")
    wait(browser, LIVE_S).until(text_is("total-inbound", "2"))
    assert browser.execute_script("return window.__sameDocument === true;") is True

    # Another range by keyboard: 7 days by the day.
    browser.find_element(By.ID, "range-7d").send_keys("\n")
    wait(browser).until(loaded("7d"))
    wait(browser).until(text_is("total-inbound", "2"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#volume-table tbody tr")) == 7
    assert console_errors(browser, stack) == []

    # Phone width: nothing wider than the screen.
    browser.set_window_size(390, 844)
    wait(browser).until(lambda d: d.execute_script("return window.innerWidth <= 400;"))
    try:
        wait(browser).until(lambda d: d.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;"))
    except TimeoutException:
        wide = browser.execute_script(WIDER_THAN_SCREEN)
        raise AssertionError(f"the page scrolls sideways: {wide}") from None

    # An agent gets the styled 403 page.
    agent = await person(api, db, shop.tenant_id, role="agent")
    browser.delete_all_cookies()
    browser.set_window_size(1280, 900)
    sign_in(browser, stack, agent.email)
    browser.get(f"{stack.ingress_url}/console/dashboards")
    message = wait(browser).until(lambda d: d.find_elements(By.ID, "error-message"))
    assert "Dashboards" in message[0].text
    assert not browser.find_elements(By.ID, "dashboard")
    assert not browser.find_elements(By.ID, "nav-dashboards")
