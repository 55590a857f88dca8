"""The console's live feed in a real browser: the header says "Live", events reach ``window.AerosticLive``,
and when its web server goes away while events are produced (a web process of its own, stopped, then
started again on the same port: the browser's connection is really dropped, and the new process's feed
starts after the events it missed), the page shows "Reconnecting…", comes back and has every event once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.producer import AsyncProducer
from config.settings import CoreSettings
from schemas.catalogue import AGENTS_PRESENCE
from schemas.presence import AgentPresence
from stack.launcher import LocalStack
from stack.processes import free_port
from tests.integration.browser import PASSWORD, new_admin, text_is, wait
from tests.integration.helpers import scalar
from tests.integration.live_client import web_process

pytestmark = pytest.mark.asyncio(loop_scope="session")
LIVE_S = 60  # the slow, shared machine: connecting and reconnecting may take a while

COLLECT = """
window.__live = [];
window.__statuses = [];
window.AerosticLive.on("*", function (e) { window.__live.push(e); });
window.AerosticLive.onStatus(function (s) { window.__statuses.push(s); });
"""


async def presence(producer: AsyncProducer, settings: CoreSettings, tenant_id: str, names: list[str]) -> None:
    for name in names:  # one at a time: one partition, in this order
        await producer.send(AGENTS_PRESENCE.full_name(settings.topic_prefix), AgentPresence(
            event_id=str(uuid.uuid4()), tenant_id=tenant_id, user_id=name, presence="online",
            at=datetime.now(UTC)).encode(), tenant_id.encode())


def collected(driver: WebDriver) -> list[dict[str, Any]]:
    return list(driver.execute_script("return window.__live;"))


def sign_in_at(driver: WebDriver, base_url: str, email: str) -> None:
    """Sign in through the console's form of the web server at ``base_url``."""
    driver.get(f"{base_url}/console/login")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait(driver).until(lambda d: urlsplit(d.current_url).path != "/console/login")


def errors_of(driver: WebDriver, base_url: str) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and base_url in entry["message"]]


async def test_the_page_is_live_and_misses_nothing_across_a_dropped_connection(
        browser: WebDriver, stack: LocalStack, db: AsyncEngine, settings: CoreSettings,
        producer: AsyncProducer) -> None:
    email = await new_admin(stack, "live browser")
    tenant_id = str(await scalar(db, "SELECT tenant_id FROM users WHERE email = :e", e=email))
    port = free_port()
    server, client = await web_process(stack, "ingress-live-browser", port)
    await client.aclose()
    try:
        base_url = str(client.base_url).rstrip("/")
        sign_in_at(browser, base_url, email)
        wait(browser, LIVE_S).until(text_is("live-status", "Live"))
        assert errors_of(browser, base_url) == []
        browser.execute_script(COLLECT)

        first = [f"first-{i}" for i in range(5)]
        await presence(producer, settings, tenant_id, first)
        wait(browser, LIVE_S).until(lambda d: len(collected(d)) >= len(first))
        assert [e["data"]["user_id"] for e in collected(browser)] == first
        event = collected(browser)[0]
        assert event["type"] == "presence" and event["id"] and event["at"] and event["conversation_key"] is None
        assert browser.execute_script("return window.AerosticLive.status;") == "live"

        server.stop()  # the browser's stream is cut with its server
        wait(browser, LIVE_S).until(text_is("live-status", "Reconnecting…"))
        while_away = [f"away-{i}" for i in range(10)]
        await presence(producer, settings, tenant_id, while_away)
        server, client = await web_process(stack, "ingress-live-browser", port)  # its feed starts after them
        await client.aclose()
        wait(browser, LIVE_S).until(text_is("live-status", "Live"))
        after = [f"after-{i}" for i in range(3)]
        await presence(producer, settings, tenant_id, after)
        wait(browser, LIVE_S).until(lambda d: len(collected(d)) >= len(first + while_away + after))
        statuses = browser.execute_script("return window.__statuses;")
        assert statuses == ["live", "reconnecting", "live"]
    finally:
        server.stop()

    events = collected(browser)
    assert [e["data"]["user_id"] for e in events] == first + while_away + after  # none missed, none twice
    assert len({e["id"] for e in events}) == len(events)
