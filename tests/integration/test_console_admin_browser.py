"""The admin pages in a real browser (headless Chromium): automations (create, list, reorder, disable,
executions after a customer's message), the AI agent (a knowledge-base entry, a question tried), agents & teams
(capacity and team, a new user), and the 403 an agent gets on each of them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth import SESSION_COOKIE
from stack.launcher import LocalStack
from tests.integration.browser import (
    attribute_is,
    console_errors,
    fill,
    fits_phone_width,
    present,
    refused,
    save,
    sign_in,
    wait,
)
from tests.integration.helpers import BusinessFactory, customer_writes, fresh_id, wait_for
from tests.integration.people import PASSWORD, person

pytestmark = pytest.mark.asyncio(loop_scope="session")
SLOW_S = 60  # the machine is loaded: generous waits for what crosses the pipeline
ADMIN_PAGES = ("/console/automations", "/console/ai", "/console/agents")


def loaded(element_id: str) -> Any:
    """A wait condition: the element's ``data-loaded`` is "true" (the page's script filled it)."""
    return attribute_is(element_id, "data-loaded", "true")


def rule_names(driver: WebDriver) -> list[str]:
    return [li.get_attribute("data-name") or "" for li in driver.find_elements(By.CSS_SELECTOR, "#rules > li")]


def rule_item(driver: WebDriver, name: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'#rules > li[data-name="{name}"]')


def only_refusals(driver: WebDriver, stack: LocalStack) -> bool:
    """The browser's errors so far are the API's 422 answers the test provoked (Chromium logs each one)."""
    errors = console_errors(driver, stack)
    return bool(errors) and all("status of 422" in e for e in errors)


async def test_an_admin_manages_automations_and_sees_their_executions(
        browser: WebDriver, stack: LocalStack, api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine,
        business_factory: BusinessFactory) -> None:
    tenant = await business_factory("admin automations")
    existing = await api.post("/v1/automations", headers=tenant.auth, json={
        "name": "Greeting", "trigger": {"type": "keyword", "keywords": ["hello"]},
        "actions": [{"type": "add_tag", "tag": "greeted"}]})
    assert existing.status_code == 201, existing.text
    admin = await person(api, db, tenant.tenant_id, role="admin")
    sign_in(browser, stack, admin.email)
    browser.get(f"{stack.ingress_url}/console/automations")
    wait(browser).until(loaded("rules"))
    assert rule_names(browser) == ["Greeting"]

    # A rule the API refuses: its error is shown next to the form, in words.
    browser.find_element(By.ID, "new-rule").click()
    wait(browser).until(ec.visibility_of_element_located((By.ID, "rule-form")))
    fill(browser, {"rule-name": "Price reply"})
    errors = refused(browser, "save-rule", "rule-errors")
    assert "keywords" in errors.lower() and browser.find_element(By.ID, "trigger-error").text
    assert '"loc"' not in errors  # words, not the raw answer
    assert only_refusals(browser, stack)

    # Keyword trigger → reply action.
    fill(browser, {"trigger-keywords": "price, cost", "trigger-match": "word"})
    browser.find_element(By.CSS_SELECTOR, '#actions [data-field="body"]').send_keys("Our prices start at 10 EUR.")
    save(browser, "save-rule", '#rules > li[data-name="Price reply"]')
    assert rule_names(browser) == ["Greeting", "Price reply"]
    summary = rule_item(browser, "Price reply").find_element(By.CSS_SELECTOR, "[data-role=summary]").text
    assert "“price” or “cost”" in summary and "reply “Our prices start at 10 EUR.”" in summary
    assert rule_item(browser, "Price reply").get_attribute("data-enabled") == "true"

    # Moved above the other one by keyboard; the focus stays on the moved rule.
    up = rule_item(browser, "Price reply").find_element(By.CSS_SELECTOR, "[data-action=up]")
    browser.execute_script("arguments[0].focus()", up)
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait(browser).until(lambda d: rule_names(d) == ["Price reply", "Greeting"])
    focused = browser.switch_to.active_element
    assert focused.get_attribute("aria-label") == "Move Price reply down"
    order = (await api.get("/v1/automations", headers=tenant.auth)).json()["items"]
    assert [r["name"] for r in order] == ["Price reply", "Greeting"]
    price_id = order[0]["id"]

    # Disabled, then enabled again.
    rule_item(browser, "Price reply").find_element(By.CSS_SELECTOR, "[data-action=toggle]").click()
    wait(browser).until(lambda d: rule_item(d, "Price reply").get_attribute("data-enabled") == "false")
    assert (await api.get(f"/v1/automations/{price_id}", headers=tenant.auth)).json()["enabled"] is False
    rule_item(browser, "Price reply").find_element(By.CSS_SELECTOR, "[data-action=toggle]").click()
    wait(browser).until(lambda d: rule_item(d, "Price reply").get_attribute("data-enabled") == "true")

    # Its executions are open when a customer asks the price: the run appears without a reload (live feed).
    rule_item(browser, "Price reply").find_element(By.CSS_SELECTOR, "[data-action=executions]").click()
    wait(browser).until(loaded("executions-panel"))
    assert browser.find_element(By.ID, "executions-empty").is_displayed()
    await customer_writes(sim, db, tenant, "16505550177", text="what is the price?")

    async def executed() -> list[dict[str, Any]]:
        response = await api.get(f"/v1/automations/{price_id}/executions", headers=tenant.auth)
        return list(response.json()["items"])

    await wait_for(executed, timeout=SLOW_S, what="the rule's execution to be recorded")
    wait(browser, SLOW_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#executions-body tr"))
    row = browser.find_element(By.CSS_SELECTOR, "#executions-body tr").text
    assert tenant.conversation("16505550177") in row and "reply “Our prices start at 10 EUR.”" in row
    assert " UTC" in row and not browser.find_element(By.ID, "executions-empty").is_displayed()

    browser.set_window_size(390, 844)
    browser.get(f"{stack.ingress_url}/console/automations")
    wait(browser).until(loaded("rules"))
    assert fits_phone_width(browser)
    assert console_errors(browser, stack) == []


async def test_an_admin_adds_knowledge_and_tries_a_question(
        browser: WebDriver, stack: LocalStack, api: httpx.AsyncClient, db: AsyncEngine,
        business_factory: BusinessFactory) -> None:
    tenant = await business_factory("admin ai")
    admin = await person(api, db, tenant.tenant_id, role="admin")
    sign_in(browser, stack, admin.email)
    browser.get(f"{stack.ingress_url}/console/ai")
    wait(browser).until(loaded("kb-list"))
    wait(browser).until(lambda d: d.find_element(By.ID, "ai-threshold-value").text == "0.70")
    assert "70 %" in browser.find_element(By.ID, "ai-threshold-meaning").text

    browser.find_element(By.ID, "kb-new").click()
    assert refused(browser, "kb-save", "kb-errors")  # empty: the API's words, beside the fields
    assert browser.find_element(By.ID, "kb-question-error").text
    assert only_refusals(browser, stack)

    question = "What are your opening hours?"
    fill(browser, {"kb-question": question, "kb-answer": "We are open 9:00 to 17:00, Monday to Friday.",
                   "kb-keywords": "open, hours"})
    save(browser, "kb-save", f'#kb-list > li[data-question="{question}"]')

    browser.find_element(By.ID, "ai-try-question").send_keys(question)
    browser.find_element(By.ID, "ai-try").click()
    wait(browser, SLOW_S).until(lambda d: d.find_element(By.ID, "ai-try-result").get_attribute("data-state")
                                in ("answered", "failed"))
    assert browser.find_element(By.ID, "ai-try-result").get_attribute("data-state") == "answered"
    verdict = browser.find_element(By.ID, "ai-try-verdict")
    assert verdict.get_attribute("data-verdict") == "send" and verdict.text == "Would send this reply"
    confidence = float(browser.find_element(By.ID, "ai-try-confidence").get_attribute("data-value") or "nan")
    assert 0.7 <= confidence <= 1.0 and "%" in browser.find_element(By.ID, "ai-try-confidence").text
    assert browser.find_element(By.ID, "ai-try-reply").text == "We are open 9:00 to 17:00, Monday to Friday."

    # The search finds the entry; the calibration answered.
    browser.find_element(By.ID, "kb-q").send_keys("OPENING", Keys.ENTER)
    wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#kb-list > li")) == 1)
    wait(browser, SLOW_S).until(loaded("calibration"))
    assert console_errors(browser, stack) == []


async def test_an_admin_sets_capacity_and_team_and_adds_a_user(
        browser: WebDriver, stack: LocalStack, api: httpx.AsyncClient, db: AsyncEngine,
        business_factory: BusinessFactory) -> None:
    tenant = await business_factory("admin agents")
    admin = await person(api, db, tenant.tenant_id, role="admin")
    agent = await person(api, db, tenant.tenant_id, role="agent")
    sign_in(browser, stack, admin.email)
    browser.get(f"{stack.ingress_url}/console/agents")
    wait(browser).until(loaded("agents-table"))
    row = browser.find_element(By.ID, f"agent-{agent.user_id}")
    assert agent.email in row.text and "agent" in row.text

    row.find_element(By.CSS_SELECTOR, "[data-action=edit]").click()
    capacity = browser.find_element(By.ID, "agent-capacity")
    assert browser.switch_to.active_element == capacity
    capacity.clear()
    capacity.send_keys("101")
    assert "100" in refused(browser, "agent-save", "agent-errors")  # out of bounds: the API says so
    assert only_refusals(browser, stack)
    capacity.clear()
    fill(browser, {"agent-capacity": "7", "agent-teams": "sales"})
    save(browser, "agent-save", f'#agent-{agent.user_id}[data-capacity="7"]')
    row = browser.find_element(By.ID, f"agent-{agent.user_id}")
    assert row.find_element(By.CSS_SELECTOR, "[data-role=teams]").text == "sales"
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#teams > li[data-team="sales"]'))
    team = browser.find_element(By.CSS_SELECTOR, '#teams > li[data-team="sales"]')
    assert team.get_attribute("data-members") == agent.email and team.get_attribute("data-waiting") == "0"
    listed = (await api.get("/v1/agents", headers=tenant.auth)).json()["items"]
    assert [(a["capacity"], a["teams"]) for a in listed if a["user_id"] == agent.user_id] == [(7, ["sales"])]

    email = f"new-{fresh_id()}@example.com"
    fill(browser, {"user-email-input": email, "user-role-input": "agent", "user-password-input": PASSWORD})
    browser.find_element(By.ID, "user-password-input").send_keys(Keys.ENTER)  # the form is sent by keyboard
    wait(browser).until(present(f'#agents-body tr[data-email="{email}"]'))
    assert email in browser.find_element(By.ID, "user-notice").text

    browser.set_window_size(390, 844)
    browser.get(f"{stack.ingress_url}/console/agents")
    wait(browser).until(loaded("agents-table"))
    assert fits_phone_width(browser)
    assert console_errors(browser, stack) == []


async def test_an_agent_is_refused_every_admin_page(
        browser: WebDriver, stack: LocalStack, api: httpx.AsyncClient, db: AsyncEngine,
        business_factory: BusinessFactory) -> None:
    tenant = await business_factory("admin pages refused")
    agent = await person(api, db, tenant.tenant_id, role="agent")
    sign_in(browser, stack, agent.email)
    for path in ADMIN_PAGES:
        browser.get(f"{stack.ingress_url}{path}")
        message = wait(browser).until(ec.visibility_of_element_located((By.ID, "error-message")))
        assert "Ask a tenant admin" in message.text, path
        assert not browser.find_elements(By.CSS_SELECTOR, f'a[href="{path}"]')  # not in the agent's navigation
    async with httpx.AsyncClient(base_url=stack.ingress_url, timeout=30,
                                 cookies={SESSION_COOKIE: agent.token}) as client:
        for path in ADMIN_PAGES:
            assert (await client.get(path)).status_code == 403, path
