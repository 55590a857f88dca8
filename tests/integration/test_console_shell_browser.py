"""The console's shell in a real browser: navigation to every page of the role, the front door, the styled
404 and 403 pages, no sideways scroll at phone width with Sign out in view, Meta's words as labels, and the
API reference."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from api.console.nav import nav_items
from config.settings import CoreSettings
from db.tables import phone_numbers
from stack.launcher import LocalStack
from tenants.users import create_user_for
from tests.integration.browser import LOAD_S, PASSWORD, console_errors, on, wait
from tests.integration.helpers import TenantFactory

pytestmark = pytest.mark.asyncio(loop_scope="session")

PHONE = (375, 812)
DESKTOP = (1280, 900)
NO_SIDEWAYS = "return [document.documentElement.scrollWidth, window.innerWidth]"
IN_VIEW = ("var r = arguments[0].getBoundingClientRect();"
           "return r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= window.innerWidth && r.top >= 0;")


async def user_of(settings: CoreSettings, tenant_id: str, role: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:12]}@shell.test"
    await create_user_for(settings, tenant_id=tenant_id, email=email, password=PASSWORD, role=role)
    return email


def slow(driver: WebDriver) -> Any:
    """A wait as long as a page load may take on a loaded machine."""
    return wait(driver, LOAD_S)


def sign_in(driver: WebDriver, stack: LocalStack, email: str) -> None:
    """Sign in through the console's form and wait to leave it."""
    driver.get(f"{stack.ingress_url}/console/login")
    slow(driver).until(ec.presence_of_element_located((By.ID, "email"))).send_keys(email)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    slow(driver).until(lambda d: urlsplit(d.current_url).path != "/console/login")


@pytest.fixture
def phone(browser: WebDriver) -> Iterator[WebDriver]:
    browser.set_window_size(*PHONE)
    yield browser
    browser.set_window_size(*DESKTOP)


def path_of(driver: WebDriver) -> str:
    return urlsplit(driver.current_url).path


def shell_ready(driver: WebDriver) -> Any:
    """The page rendered its layout (header and main)."""
    return slow(driver).until(ec.presence_of_element_located((By.ID, "main")))


def assert_no_sideways_scroll(driver: WebDriver, where: str) -> None:
    scroll_width, inner_width = driver.execute_script(NO_SIDEWAYS)
    assert scroll_width <= inner_width, f"{where} scrolls sideways at {inner_width}px: {scroll_width}px wide"


def assert_in_view(driver: WebDriver, element_id: str, where: str) -> None:
    element = driver.find_element(By.ID, element_id)
    assert element.is_displayed() and driver.execute_script(IN_VIEW, element), f"#{element_id} not in view on {where}"


async def test_navigation_reaches_every_page_of_the_role(browser: WebDriver, stack: LocalStack,
                                                        settings: CoreSettings,
                                                        tenant_factory: TenantFactory) -> None:
    tenant = await tenant_factory("shell nav")
    for role in ("admin", "agent"):
        browser.delete_all_cookies()
        email = await user_of(settings, tenant.tenant_id, role)
        sign_in(browser, stack, email)
        browser.get(f"{stack.ingress_url}/console/api-reference")
        shell_ready(browser)
        assert browser.find_element(By.ID, "user-email").text == email
        assert browser.find_element(By.ID, "user-role").text.lower() == role
        listed = [a.get_attribute("data-nav") for a in browser.find_elements(By.CSS_SELECTOR, "a[data-nav]")]
        assert listed == [item.key for item in nav_items(role)]
        for item in nav_items(role):
            slow(browser).until(ec.element_to_be_clickable((By.ID, f"nav-{item.key}"))).click()
            slow(browser).until(on(stack.ingress_url, item.path))
            shell_ready(browser)
            current = browser.find_element(By.ID, f"nav-{item.key}")
            assert current.get_attribute("aria-current") == "page", item.key
            assert browser.find_elements(By.CSS_SELECTOR, "[aria-current=page]") == [current]
            assert not browser.find_elements(By.ID, "error-page"), f"{item.path} answered an error page"
        browser.find_element(By.ID, "logout").click()
        slow(browser).until(on(stack.ingress_url, "/console/login"))


async def test_the_front_door_and_the_error_pages(browser: WebDriver, stack: LocalStack, settings: CoreSettings,
                                                 tenant_factory: TenantFactory) -> None:
    browser.get(f"{stack.ingress_url}/")
    slow(browser).until(on(stack.ingress_url, "/console/login"))

    browser.get(f"{stack.ingress_url}/console/no-such-page")
    assert browser.find_element(By.ID, "error-page").get_attribute("data-status") == "404"
    assert str(browser.find_element(By.ID, "back").get_attribute("href")).endswith("/console/login")

    tenant = await tenant_factory("shell errors")
    agent = await user_of(settings, tenant.tenant_id, "agent")
    sign_in(browser, stack, agent)
    browser.get(f"{stack.ingress_url}/")
    slow(browser).until(on(stack.ingress_url, "/console/inbox"))

    browser.get(f"{stack.ingress_url}/console/no-such-page")
    page = browser.find_element(By.ID, "error-page")
    assert page.get_attribute("data-status") == "404" and "Page not found" in page.text
    assert browser.find_element(By.ID, "nav-account").is_displayed()  # the way back: the navigation
    assert browser.find_elements(By.CSS_SELECTOR, "[aria-current=page]") == []  # no page of the console is this
    browser.find_element(By.ID, "back").click()
    slow(browser).until(on(stack.ingress_url, "/console/inbox"))

    admin_only = next(item for item in nav_items("admin") if "agent" not in item.roles)
    browser.get(f"{stack.ingress_url}{admin_only.path}")
    page = browser.find_element(By.ID, "error-page")
    assert page.get_attribute("data-status") == "403"
    assert admin_only.label in browser.find_element(By.ID, "error-message").text
    assert browser.find_element(By.ID, "nav-inbox").is_displayed()
    assert not browser.find_elements(By.ID, f"nav-{admin_only.key}")
    # The browser logs each error page's own status; nothing else (no CSP violation, no script error).
    logged = console_errors(browser, stack)
    assert [e for e in logged if "the server responded with a status of 40" not in e] == [], logged

    async with httpx.AsyncClient(base_url=stack.ingress_url, timeout=30) as client:
        as_api = await client.get("/console/no-such-page/v1", headers={"Accept": "application/json"})
        assert as_api.status_code == 404 and as_api.headers["content-type"].startswith("text/html")
        api = await client.get("/v1/no-such-route", headers={"Accept": "text/html"})
        assert api.status_code == 404 and api.json() == {"detail": "Not Found"}


async def test_phone_width_no_page_scrolls_sideways(phone: WebDriver, stack: LocalStack, settings: CoreSettings,
                                                    tenant_factory: TenantFactory) -> None:
    tenant = await tenant_factory("shell phone")
    admin = await user_of(settings, tenant.tenant_id, "admin")
    sign_in(phone, stack, admin)
    assert phone.execute_script("return window.innerWidth") <= PHONE[0]
    for item in nav_items("admin"):
        phone.get(f"{stack.ingress_url}{item.path}")
        shell_ready(phone)
        assert path_of(phone) == item.path
        assert_no_sideways_scroll(phone, item.path)
        assert_in_view(phone, "logout", item.path)
    phone.get(f"{stack.ingress_url}/console/no-such-page")
    assert_no_sideways_scroll(phone, "the 404 page")
    logged = console_errors(phone, stack)  # the 404 page's own status, and nothing else
    assert [e for e in logged if "the server responded with a status of 404" not in e] == [], logged

    # The navigation is a menu: closed, opened by keyboard, closed again by Escape.
    phone.get(f"{stack.ingress_url}/console")
    shell_ready(phone)
    menu = phone.find_element(By.ID, "nav-menu")
    slow(phone).until(lambda d: menu.get_attribute("data-layout") == "menu")
    assert menu.get_attribute("open") is None and not phone.find_element(By.ID, "nav-inbox").is_displayed()
    toggle = phone.find_element(By.ID, "nav-toggle")
    assert "WhatsApp & keys" in toggle.text  # the current page, named on the button
    toggle.send_keys(Keys.ENTER)
    slow(phone).until(lambda d: d.find_element(By.ID, "nav-inbox").is_displayed())
    assert_no_sideways_scroll(phone, "the open menu")
    phone.find_element(By.ID, "nav-inbox").send_keys(Keys.ESCAPE)
    slow(phone).until(lambda d: not d.find_element(By.ID, "nav-inbox").is_displayed())
    assert phone.switch_to.active_element == phone.find_element(By.ID, "nav-toggle")

    # The account page: a key created and revoked at phone width; Throughput and Revoke reachable.
    phone.find_element(By.ID, "key-name").send_keys("phone key")
    phone.find_element(By.ID, "create-key").click()
    slow(phone).until(ec.presence_of_element_located((By.ID, "new-key")))
    assert_no_sideways_scroll(phone, "the account page with a new key")
    assert_in_view(phone, "logout", "the account page")
    phone.get(f"{stack.ingress_url}/console")
    throughput = phone.find_element(By.CSS_SELECTOR, "#numbers th:last-child")
    revoke = phone.find_element(By.CSS_SELECTOR, "form.revoke button")
    for element in (throughput, revoke):
        phone.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})", element)
        assert element.is_displayed() and phone.execute_script(IN_VIEW, element)
    assert throughput.text == "Throughput"
    assert_no_sideways_scroll(phone, "the account page scrolled to its columns")
    revoke.click()
    slow(phone).until(ec.alert_is_present()).accept()
    slow(phone).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#keys .revoked"))
    assert console_errors(phone, stack) == []


async def test_the_numbers_table_speaks_words_with_metas_value_on_hover(
        browser: WebDriver, stack: LocalStack, settings: CoreSettings, db: AsyncEngine,
        tenant_factory: TenantFactory) -> None:
    tenant = await tenant_factory("shell labels")
    async with db.begin() as conn:
        await conn.execute(update(phone_numbers).where(phone_numbers.c.phone_number_id == tenant.phone_number_id)
                           .values(quality_rating="GREEN", messaging_limit_tier="TIER_1K"))
    sign_in(browser, stack, await user_of(settings, tenant.tenant_id, "agent"))
    browser.get(f"{stack.ingress_url}/console")
    row = slow(browser).until(ec.presence_of_element_located(
        (By.CSS_SELECTOR, f'#numbers tr[data-phone-number-id="{tenant.phone_number_id}"]')))
    quality = row.find_element(By.CSS_SELECTOR, "td.quality span")
    assert (quality.text, quality.get_attribute("title")) == ("High", "GREEN")
    tier = row.find_element(By.CSS_SELECTOR, "td.tier span")
    assert (tier.text, tier.get_attribute("title")) == ("1,000 customers a day", "TIER_1K")
    throughput = row.find_element(By.CSS_SELECTOR, "td.throughput span")
    assert (throughput.text, throughput.get_attribute("title")) == ("80 messages/s", "STANDARD")
    # The page's script words a re-rendered row the same way (the connection view's JSON as it polls it).
    view = browser.execute_async_script(
        "var done = arguments[0]; fetch('/v1/whatsapp/connection', {credentials: 'same-origin'})"
        ".then(function (r) { return r.json(); }).then(function (v) { var n = v.numbers[0];"
        " done([AerosticLabels.span('quality', n.quality_rating).outerHTML,"
        " AerosticLabels.span('tier', n.messaging_limit_tier).outerHTML,"
        " AerosticLabels.span('throughput', n.throughput_mps).outerHTML]); });")
    assert view == ['<span class="meta-value" title="GREEN" data-meta="GREEN">High</span>',
                    '<span class="meta-value" title="TIER_1K" data-meta="TIER_1K">1,000 customers a day</span>',
                    '<span class="meta-value" title="STANDARD" data-meta="STANDARD">80 messages/s</span>']
    assert console_errors(browser, stack) == []


async def test_the_api_reference(browser: WebDriver, stack: LocalStack, settings: CoreSettings,
                                 tenant_factory: TenantFactory) -> None:
    tenant = await tenant_factory("shell reference")
    sign_in(browser, stack, await user_of(settings, tenant.tenant_id, "agent"))
    browser.get(f"{stack.ingress_url}/console/api-reference")
    reply = slow(browser).until(ec.presence_of_element_located(
        (By.CSS_SELECTOR, 'article.api-op[data-method="POST"][data-path="/v1/conversations/{key}/reply"]')))
    assert "/v1/conversations/{key}/reply" in reply.text
    body = json.loads(reply.find_element(By.CSS_SELECTOR, "pre.request-example").text)
    assert body["message"] == {"type": "text", "text": {"body": "Your order ships today."}}
    answer = json.loads(reply.find_element(By.CSS_SELECTOR, 'pre.response-example[data-code="202"]').text)
    assert answer["status"] == "queued" and answer["conversation_key"]
    assert "401" in reply.find_element(By.CSS_SELECTOR, "dl.api-errors").text
    automations = browser.find_element(By.CSS_SELECTOR,
                                       'article.api-op[data-method="POST"][data-path="/v1/automations"]')
    assert json.loads(automations.find_element(By.CSS_SELECTOR, "pre.request-example").text)["actions"]
    assert str(browser.find_element(By.ID, "openapi-download").get_attribute("href")).endswith("/v1/openapi.json")
    document = browser.execute_async_script(
        "var done = arguments[0]; fetch('/v1/openapi.json', {credentials: 'same-origin'})"
        ".then(function (r) { return r.json(); }).then(done);")
    assert "/v1/conversations/{key}/reply" in document["paths"]
    assert console_errors(browser, stack) == []
    async with httpx.AsyncClient(base_url=stack.ingress_url, timeout=30) as client:
        assert (await client.get("/v1/openapi.json")).status_code == 401
        assert (await client.get("/openapi.json")).status_code == 404  # no public docs
