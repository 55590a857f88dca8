"""The team inbox in a real browser (headless Chromium, Selenium) against the whole stack: an agent goes online
through the page, simulated customers write, and everything the agent sees arrives through the live feed
without a reload: new conversations, ticks that turn read, the AI handing a conversation over to them, the
template composer once the 24-hour window has closed. Also: phone width, the keyboard, refusals, roles."""

from __future__ import annotations

import base64
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select
from sqlalchemy.ext.asyncio import AsyncEngine

from stack.launcher import LocalStack
from tests.integration.browser import console_errors, sign_in, wait
from tests.integration.helpers import Business, BusinessFactory, customer_writes, fresh_id, scalar, wait_for
from tests.integration.inbox_fixtures import approved_template, seed
from tests.integration.people import Person, person

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.usefixtures("pipeline_ready")]
LIVE_S = 60  # a customer's message through ingress, router, processor, AI and the feed, on a loaded machine
CANNED = "Thanks for waiting! I am looking into it now."
STATUS_DELAY_S = 20  # Meta's statuses held back past an ambiguous failure (two attempts of 3 s and a retry)


def _wa_id() -> str:
    return f"1555{fresh_id()[:7]}"


def _found(driver: WebDriver, css: str) -> WebElement | None:
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0] if found else None


def _present(driver: WebDriver, css: str, timeout: float = 20) -> WebElement:
    """The first element ``css`` finds, once there is one."""
    def found(d: WebDriver) -> WebElement | bool:
        return _found(d, css) or False

    element = wait(driver, timeout).until(found)
    assert isinstance(element, WebElement)
    return element


def _shown(driver: WebDriver, css: str, timeout: float = 20) -> WebElement:
    """The first element ``css`` finds, once there is one and it is displayed."""
    def shown(d: WebDriver) -> WebElement | bool:
        element = _found(d, css)
        return element if element is not None and element.is_displayed() else False

    element = wait(driver, timeout).until(shown)
    assert isinstance(element, WebElement)
    return element


def _attr(driver: WebDriver, css: str, name: str) -> str | None:
    """An attribute of the first element ``css`` finds (None without one), read at once (never stale)."""
    value = driver.execute_script("var e = document.querySelector(arguments[0]);"
                                  "return e ? e.getAttribute(arguments[1]) : null;", css, name)
    return None if value is None else str(value)


def _text(driver: WebDriver, css: str) -> str:
    """The text of the first element ``css`` finds ("" without one), read at once."""
    return str(driver.execute_script("var e = document.querySelector(arguments[0]);"
                                     "return e ? e.innerText : '';", css))


def _click(driver: WebDriver, css: str, timeout: float = 20) -> None:
    """Wait for ``css`` and click it at once (the list re-renders as live events arrive)."""
    wait(driver, timeout).until(lambda d: d.execute_script(
        "var e = document.querySelector(arguments[0]); if (e) { e.click(); } return !!e;", css))


def _row(key: str) -> str:
    return f'#conversations .conv[data-key="{key}"]'


def _open_inbox(driver: WebDriver, stack: LocalStack, who: Person) -> None:
    sign_in(driver, stack, who.email)
    driver.get(f"{stack.ingress_url}/console/inbox")
    wait(driver, LIVE_S).until(lambda d: d.find_element(By.ID, "inbox").get_attribute("data-ready") == "true")
    wait(driver, LIVE_S).until(lambda d: d.find_element(By.ID, "inbox").get_attribute("data-live") == "live")


@pytest.fixture
async def slow_reads(sim: httpx.AsyncClient) -> AsyncIterator[None]:
    """Statuses a few seconds apart (sent → delivered → read), so the page shows each one; restored after."""
    before = (await sim.get("/_sim/webhooks")).json()
    changed = await sim.put("/_sim/webhooks", json={"delivered_delay_s": 1.5, "read_delay_s": 4.0})
    assert changed.status_code == 200, changed.text
    yield
    await sim.put("/_sim/webhooks", json={k: before[k] for k in ("delivered_delay_s", "read_delay_s")})


async def _agent(api: httpx.AsyncClient, db: AsyncEngine, business: Business, name: str) -> Person:
    agent = await person(api, db, business.tenant_id)
    named = await api.put(f"/v1/agents/{agent.user_id}", headers=business.auth,
                          json={"display_name": name, "capacity": 5})
    assert named.status_code == 200, named.text
    return agent


async def _presence(api: httpx.AsyncClient, business: Business, user_id: str) -> Any:
    roster = (await api.get("/v1/agents", headers=business.auth)).json()["items"]
    return next(a["presence"] for a in roster if a["user_id"] == user_id)


@pytest.mark.usefixtures("slow_reads")
async def test_an_agent_works_the_inbox_live(browser: WebDriver, stack: LocalStack, api: httpx.AsyncClient,
                                             db: AsyncEngine, sim: httpx.AsyncClient,
                                             business_factory: BusinessFactory) -> None:
    tenant = await business_factory("inbox browser")
    template = await approved_template(api, tenant, f"order_update_{fresh_id()[:6]}")
    saved = await api.post("/v1/canned-responses", headers=tenant.auth, json={"shortcut": "thanks", "text": CANNED})
    assert saved.status_code == 201, saved.text
    agent = await _agent(api, db, tenant, "Ana")
    _open_inbox(browser, stack, agent)

    # The assignment sound is off until the agent turns it on; the choice is remembered.
    assert not browser.find_element(By.ID, "sound-toggle").is_selected()
    browser.find_element(By.ID, "sound-toggle").click()
    assert browser.execute_script("return localStorage.getItem('aerostic.inbox.sound')") == "on"

    # Online through the page's toggle (the heartbeat assignment reads).
    browser.find_element(By.ID, "presence-online").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "presence-online").get_attribute("aria-pressed") == "true")
    assert await _presence(api, tenant, agent.user_id) == "online"

    # A customer's small talk: the AI answers and keeps it; it shows up in Unassigned without a reload.
    browser.find_element(By.ID, "tab-unassigned").click()
    chatty = _wa_id()
    await customer_writes(sim, db, tenant, chatty, "hello", name="Chatty Customer")
    key = tenant.conversation(chatty)
    _present(browser, _row(key), LIVE_S)
    assert "Chatty Customer" in _text(browser, _row(key))
    wait(browser, LIVE_S).until(lambda d: _attr(d, _row(key), "data-handled-by") == "ai")

    # The agent opens it, takes it over and answers with a canned response.
    _click(browser, _row(key))
    wait(browser).until(lambda d: d.find_element(By.ID, "thread-pane").get_attribute("data-key") == key)
    wait(browser, LIVE_S).until(lambda d: _text(d, '#messages .bubble[data-direction="outbound"] .sender') == "AI")
    browser.find_element(By.ID, "take").click()
    wait(browser, LIVE_S).until(lambda d: d.find_element(By.ID, "thread-pane").get_attribute("data-assignee")
                                == agent.user_id)
    box = browser.find_element(By.ID, "reply-text")
    box.send_keys("/than")
    _shown(browser, '#canned-suggestions li[data-shortcut="thanks"]')
    box.send_keys(Keys.ENTER)
    assert box.get_attribute("value") == CANNED
    browser.find_element(By.ID, "send").click()

    # The ticks move live: sent or delivered first, then read (blue).
    mine = '#messages .bubble[data-direction="outbound"][data-message-id]:last-child'
    wait(browser, LIVE_S).until(lambda d: CANNED in _text(d, mine) and _attr(d, mine, "data-status") in (
        "sent", "delivered"))
    wait(browser, LIVE_S).until(lambda d: _attr(d, mine, "data-status") == "read")
    assert _text(browser, f"{mine} .ticks") == "✓✓"
    assert browser.execute_script("return getComputedStyle(document.querySelector(arguments[0])).color",
                                  f"{mine} .ticks") == "rgb(29, 114, 216)"
    assert _text(browser, f"{mine} .sender") == "You"

    # The AI hands a new question over: the conversation is assigned to the agent, who is told on the page.
    asking = _wa_id()
    await customer_writes(sim, db, tenant, asking, "I have a question about my order", name="Asking Customer")
    handed = tenant.conversation(asking)
    wait(browser, LIVE_S).until(lambda d: d.find_element(By.ID, "inbox").get_attribute("data-last-assigned") == handed)
    toast = _present(browser, "#toasts .toast")
    # The assignment may reach the page before the customer's message (another topic): the toast names them then.
    wait(browser, LIVE_S).until(lambda d: "Asking Customer" in toast.text)
    assert toast.text.startswith("Assigned to you: Asking Customer")
    assert browser.title.startswith("(1) ")

    # A customer whose window closed long ago: the composer offers the approved templates instead.
    late = _wa_id()
    two_days_ago = int(datetime.now(UTC).timestamp()) - 2 * 86400
    await customer_writes(sim, db, tenant, late, "old question", name="Late Customer",
                          timestamp=two_days_ago)
    closed = tenant.conversation(late)
    browser.find_element(By.ID, "tab-mine").click()
    # Mine lists the handed-over conversation unread, with why the AI handed it over.
    wait(browser, LIVE_S).until(lambda d: _text(d, f"{_row(handed)} .unread") == "1")
    assert _text(browser, f"{_row(handed)} .handoff-reason").startswith("Hand-off: ")
    _click(browser, _row(closed), LIVE_S)
    wait(browser).until(lambda d: d.find_element(By.ID, "template-composer").is_displayed())
    assert browser.find_element(By.ID, "thread-window").text == "Window closed"
    assert not browser.find_element(By.ID, "send").is_enabled()
    _present(browser, f'#template-select option[value="{template["id"]}"]', LIVE_S)
    Select(browser.find_element(By.ID, "template-select")).select_by_value(template["id"])
    browser.find_element(By.CSS_SELECTOR, '#template-vars input[data-ref="body.1"]').send_keys("Ann")
    browser.find_element(By.CSS_SELECTOR, '#template-vars input[data-ref="body.2"]').send_keys("#42")
    assert browser.find_element(By.ID, "template-preview").text.splitlines() == [
        "Hi Ann, your order #42 has shipped.", "Aerostic test shop"]
    browser.find_element(By.ID, "send-template").click()
    sent = '#messages .bubble[data-direction="outbound"][data-message-id]:last-child'
    wait(browser, LIVE_S).until(lambda d: _attr(d, sent, "data-status") in ("delivered", "read"))
    assert "Hi Ann, your order #42 has shipped." in _text(browser, sent)
    assert console_errors(browser, stack) == []

    # A colleague's conversation: the API's refusal is shown as it is.
    colleague = await person(api, db, tenant.tenant_id)
    theirs = await seed(db, tenant, _wa_id(), name="Their Customer", state="agent", assignee=colleague.user_id)
    browser.find_element(By.ID, "tab-all").click()
    _click(browser, _row(theirs), LIVE_S)
    wait(browser).until(lambda d: d.find_element(By.ID, "thread-pane").get_attribute("data-key") == theirs)
    browser.find_element(By.ID, "resolve").click()
    wait(browser).until(lambda d: "assigned to a colleague" in _text(d, "#action-error"))

    # An agent's role cannot open an admin page.
    browser.get(f"{stack.ingress_url}/console/automations")
    assert "Your role cannot open Automations" in browser.find_element(By.TAG_NAME, "body").text


async def test_the_inbox_at_phone_width_and_by_keyboard(browser: WebDriver, stack: LocalStack,
                                                         api: httpx.AsyncClient, db: AsyncEngine,
                                                         business_factory: BusinessFactory) -> None:
    tenant = await business_factory("inbox phone")
    agent = await _agent(api, db, tenant, "Pia")
    key = await seed(db, tenant, _wa_id(), name="Phone Customer", state="agent", assignee=agent.user_id,
                     tags=("vip",))
    browser.set_window_size(390, 844)
    _open_inbox(browser, stack, agent)
    row = _present(browser, _row(key))
    assert "Phone Customer" in row.text and browser.find_element(By.ID, "count-mine").text == "1"
    assert not browser.find_element(By.ID, "thread-pane").is_displayed()
    row.send_keys(Keys.ENTER)  # a real button: the keyboard opens it
    wait(browser).until(lambda d: d.find_element(By.ID, "thread-pane").is_displayed())
    assert not browser.find_element(By.ID, "list-pane").is_displayed()
    _present(browser, '#contact-tags li[data-tag="vip"]')
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    back = browser.find_element(By.ID, "back")
    assert back.is_displayed()
    back.send_keys(Keys.ENTER)
    wait(browser).until(lambda d: d.find_element(By.ID, "list-pane").is_displayed())
    assert not browser.find_element(By.ID, "thread-pane").is_displayed()
    assert browser.switch_to.active_element.get_attribute("data-key") == key  # focus back on its row
    assert console_errors(browser, stack) == []


# A PNG of one pixel: the browser must be able to decode what the thread shows inline.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAAB"
                       "JRU5ErkJggg==")
OUTBOUND_BY_TEXT = """
var wanted = arguments[0];
var found = Array.prototype.filter.call(document.querySelectorAll('#messages .bubble[data-direction="outbound"]'),
    function (b) { var body = b.querySelector('.body'); return body && body.textContent === wanted; });
if (!found.length) return null;
var failure = found[0].querySelector('.failure');
return [found[0].getAttribute('data-status'), failure ? failure.textContent : ''];
"""


async def test_the_thread_shows_media_inline_and_meta_errors(browser: WebDriver, stack: LocalStack,
                                                             api: httpx.AsyncClient, db: AsyncEngine,
                                                             sim: httpx.AsyncClient,
                                                             business_factory: BusinessFactory) -> None:
    tenant = await business_factory("inbox media")
    agent = await _agent(api, db, tenant, "Mia")
    seeded = await sim.post("/_sim/media", json={"phone_number_id": tenant.phone_number_id, "mime_type": "image/png",
                                                 "content_b64": base64.b64encode(PNG).decode()})
    assert seeded.status_code == 200, seeded.text
    _open_inbox(browser, stack, agent)
    browser.find_element(By.ID, "tab-all").click()

    customer = _wa_id()
    sent = await sim.post("/_sim/customers/messages", json={
        "phone_number_id": tenant.phone_number_id, "from": customer, "type": "image",
        "media_id": seeded.json()["id"], "name": "Picture Customer"})
    assert sent.status_code == 200, sent.text
    key = tenant.conversation(customer)
    _click(browser, _row(key), LIVE_S)
    inline = '#messages .bubble[data-direction="inbound"] img'
    wait(browser, LIVE_S).until(lambda d: d.execute_script(
        "var i = document.querySelector(arguments[0]); return !!i && i.complete && i.naturalWidth === 1;", inline))
    assert (_attr(browser, inline, "src") or "").startswith("/v1/media/")

    # Meta refuses the agent's reply (131026, undeliverable): the bubble says so with Meta's code.
    assert (await sim.post("/_sim/recipients/undeliverable", json={"wa_id": customer})).status_code < 300
    reply = "Thanks, we received your picture."
    browser.find_element(By.ID, "reply-text").send_keys(reply)
    browser.find_element(By.ID, "send").click()
    wait(browser, LIVE_S).until(lambda d: (d.execute_script(OUTBOUND_BY_TEXT, reply) or [""])[0] == "failed")
    failure = browser.execute_script(OUTBOUND_BY_TEXT, reply)[1]
    assert failure.startswith("Failed (131026)"), failure
    assert _text(browser, '#messages .bubble[data-status="failed"] .ticks') == "⚠ failed"
    assert console_errors(browser, stack) == []


# Counts the thread reads whose answer the page has merged (the count moves a task after the JSON resolves).
COUNT_THREAD_READS = """
window.threadReads = 0;
var original = window.fetch;
window.fetch = function (input) {
  var reading = original.apply(this, arguments);
  if (String(input).indexOf('/thread?') < 0) return reading;
  return reading.then(function (response) {
    var json = response.json.bind(response);
    response.json = function () {
      return json().then(function (data) { setTimeout(function () { window.threadReads++; }, 0); return data; });
    };
    return response;
  });
};
"""
INBOUND = '#messages .bubble[data-direction="inbound"]'
INBOUND_TEXTS = f"""return Array.prototype.map.call(document.querySelectorAll('{INBOUND} .body'),
                                   function (b) {{ return b.textContent; }});"""


async def _a_thread_open(browser: WebDriver, stack: LocalStack, api: httpx.AsyncClient, db: AsyncEngine,
                         sim: httpx.AsyncClient, business_factory: BusinessFactory, label: str,
                         text: str) -> tuple[Business, str]:
    """A new business whose agent has the inbox open on a new customer's thread, showing ``text``."""
    tenant = await business_factory(label)
    agent = await _agent(api, db, tenant, "Noor")
    _open_inbox(browser, stack, agent)
    browser.find_element(By.ID, "tab-all").click()
    customer = _wa_id()
    await customer_writes(sim, db, tenant, customer, text, name="Waiting Customer")
    _click(browser, _row(tenant.conversation(customer)), LIVE_S)
    wait(browser, LIVE_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, INBOUND))
    return tenant, customer


async def test_an_ambiguous_failure_yields_to_the_statuses_meta_reports(
        browser: WebDriver, stack: LocalStack, api: httpx.AsyncClient, db: AsyncEngine, sim: httpx.AsyncClient,
        business_factory: BusinessFactory) -> None:
    """Meta takes the reply and never answers, twice: the dispatcher gives up with an ambiguous failure, which
    has no wamid. Meta's statuses for it carry the send's idempotency key, and the bubble turns to them live."""
    tenant, _ = await _a_thread_open(browser, stack, api, db, sim, business_factory, "inbox ambiguous",
                                     "Did my parcel leave?")

    # Meta's statuses come 20 s after it took the message: after the dispatcher's two 3 s attempts gave up.
    before = (await sim.get("/_sim/webhooks")).json()
    assert (await sim.put("/_sim/webhooks", json={"sent_delay_s": STATUS_DELAY_S})).status_code == 200
    faults = await sim.post(f"/_sim/faults/{tenant.phone_number_id}",
                            json={"timeout_after_accept_rate": 1.0, "hang_s": 5, "seed": 1})
    assert faults.status_code < 300, faults.text
    reply = "It left this morning."
    try:
        browser.find_element(By.ID, "reply-text").send_keys(reply)
        browser.find_element(By.ID, "send").click()
        wait(browser, LIVE_S).until(lambda d: (d.execute_script(OUTBOUND_BY_TEXT, reply) or [""])[0] == "failed")
        assert "ambiguous_outcome" in browser.execute_script(OUTBOUND_BY_TEXT, reply)[1]
        wait(browser, LIVE_S).until(lambda d: (d.execute_script(OUTBOUND_BY_TEXT, reply) or [""])[0] == "read")
    finally:
        await sim.delete(f"/_sim/faults/{tenant.phone_number_id}")
        await sim.put("/_sim/webhooks", json={"sent_delay_s": before["sent_delay_s"]})
    status, failure = browser.execute_script(OUTBOUND_BY_TEXT, reply)
    assert failure == "", (status, failure)
    assert await scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND text = :x AND ambiguous "
                            "AND result ->> 'outcome' = 'failed'", t=tenant.tenant_id, x=reply) == 1
    assert console_errors(browser, stack) == []


async def _why_not_failed(browser: WebDriver, sim: httpx.AsyncClient, tenant: Business, customer: str,
                          reply: str) -> str:
    """What the page, the live feed and the simulator show when the failed tick never came."""
    log = (await sim.get("/_sim/requests", params={"phone_number_id": tenant.phone_number_id})).json()["data"]
    calls = [(entry.get("status"), entry.get("body", {}).get("type")) for entry in log
             if entry.get("body", {}).get("to") == customer]
    return (f"the reply's bubble {browser.execute_script(OUTBOUND_BY_TEXT, reply)!r}, "
            f"the feed {_attr(browser, '#live-status', 'data-status')!r}, "
            f"the simulator's answers to the customer {calls!r}")


async def test_a_failure_the_feed_showed_outlives_an_older_read_of_the_thread(
        browser: WebDriver, stack: LocalStack, api: httpx.AsyncClient, db: AsyncEngine, sim: httpx.AsyncClient,
        business_factory: BusinessFactory) -> None:
    """The feed tells of Meta's refusal (``outbound.results``) before the projector has written it; a thread
    read in between still holds the reply as queued, and must not turn the failed bubble back."""
    tenant, customer = await _a_thread_open(browser, stack, api, db, sim, business_factory, "inbox stale read",
                                            "Is my order on its way?")

    # Meta refuses the reply (131026). The dispatcher waits until the projector has stored the reply as queued,
    # and the projector is paused before the refusal reaches it.
    assert (await sim.post("/_sim/recipients/undeliverable", json={"wa_id": customer})).status_code < 300
    dispatcher, projector = stack.children["dispatcher"], stack.children["projector"]
    paused: list[int] = []
    try:
        os.kill(dispatcher.pid, signal.SIGSTOP)
        paused.append(dispatcher.pid)
        reply = "Let me check the courier for you."
        browser.find_element(By.ID, "reply-text").send_keys(reply)
        browser.find_element(By.ID, "send").click()
        await wait_for(lambda: scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND text = :x "
                                          "AND direction = 'outbound' AND status IS DISTINCT FROM 'failed'",
                                      t=tenant.tenant_id, x=reply), what="the queued reply to be stored")
        os.kill(projector.pid, signal.SIGSTOP)
        paused.append(projector.pid)
        os.kill(dispatcher.pid, signal.SIGCONT)
        paused.remove(dispatcher.pid)
        try:
            wait(browser, LIVE_S).until(lambda d: (d.execute_script(OUTBOUND_BY_TEXT, reply) or [""])[0] == "failed")
        except TimeoutException as exc:
            raise AssertionError(await _why_not_failed(browser, sim, tenant, customer, reply)) from exc

        # The customer writes again: the page shows it at once and reads the thread, where the reply is queued.
        browser.execute_script(COUNT_THREAD_READS)
        again = await sim.post("/_sim/customers/messages", json={
            "phone_number_id": tenant.phone_number_id, "from": customer, "type": "text", "text": "Thanks!"})
        assert again.status_code == 200, again.text
        wait(browser, LIVE_S).until(lambda d: "Thanks!" in (d.execute_script(INBOUND_TEXTS) or [])
                                    and d.execute_script("return window.threadReads") >= 1)
        status, failure = browser.execute_script(OUTBOUND_BY_TEXT, reply)
        assert status == "failed"
        assert failure.startswith("Failed (131026)"), failure
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM messages WHERE tenant_id = :t AND text = :x "
                                      "AND status = 'failed' AND error_code = 131026", t=tenant.tenant_id, x=reply),
                   what="the projector, resumed, to store the failure")
    assert console_errors(browser, stack) == []
