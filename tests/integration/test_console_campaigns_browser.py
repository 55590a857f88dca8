"""The console's Templates, Contacts and Campaigns pages in a real browser (headless Chromium): an admin imports
a CSV and reads its report, makes a segment with its live count, creates a campaign through the wizard (preview
and cost estimate), launches it, watches its funnel fill from the live feed, pauses it and sees it stop; a campaign
whose account needs reconnecting says so, and finishes once it is; the Templates page shows a template's status
and previews a new one as it is typed, the API's refusal at its field; an agent is refused every one of these
pages."""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth import SESSION_COOKIE
from stack.launcher import LocalStack
from templates.registry import template_id
from tests.integration.browser import (
    attribute_is,
    console_errors,
    fill,
    fits_phone_width,
    on,
    present,
    save,
    sign_in,
    text_is,
    wait,
)
from tests.integration.helpers import BusinessFactory, scalar, wait_for
from tests.integration.people import person
from tests.integration.test_campaigns import LANGUAGE, TEMPLATE, approved_template, numbers, sends
from vault.store import set_status

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.usefixtures("pipeline_ready")]

PEOPLE = 240
LIVE_S = 60  # the whole pipeline (expander, dispatcher, simulator, statuses, projector, live feed) on a loaded box
PAGES = ("/console/templates", "/console/contacts", "/console/campaigns", "/console/campaigns/new")


def session(stack: LocalStack, token: str) -> httpx.AsyncClient:
    """An HTTP client holding a console session's cookie, as the browser does."""
    return httpx.AsyncClient(base_url=stack.ingress_url, cookies={SESSION_COOKIE: token}, timeout=30)


def count_of(driver: WebDriver, element_id: str) -> int:
    raw = driver.find_element(By.ID, element_id).get_attribute("data-count") or ""
    return int(raw) if raw.isdigit() else -1


def at_least(element_id: str, least: int) -> Any:
    return lambda driver: count_of(driver, element_id) >= least


def contacts_csv(people: list[str]) -> Path:
    path = Path(tempfile.mkdtemp(prefix="aerostic-console-")) / "customers.csv"
    lines = ["phone,name,city"] + [f"+{p},n{i},Pune" for i, p in enumerate(people)] + ["12345,bad,Pune", ",empty,Pune"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_import_segment_wizard_launch_live_funnel_and_pause(
        browser: WebDriver, stack: LocalStack, api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine,
        business_factory: BusinessFactory) -> None:
    business = await business_factory("console campaigns", throughput=20)
    await approved_template(db, sim, business)
    admin = await person(api, db, business.tenant_id, role="admin")
    people = numbers(PEOPLE, start=900_000 + int(time.time()) % 50 * 1000)
    tag = f"spring-{uuid.uuid4().hex[:8]}"
    driver = browser
    sign_in(driver, stack, admin.email)

    # Contacts: import the CSV, see progress end in its report.
    driver.get(f"{stack.ingress_url}/console/contacts")
    driver.find_element(By.ID, "import-file").send_keys(str(contacts_csv(people)))
    driver.find_element(By.ID, "import-tag").send_keys(tag)
    driver.find_element(By.ID, "import-start").click()
    wait(driver, LIVE_S).until(attribute_is("import-state", "data-state", "completed"))
    assert driver.find_element(By.ID, "import-state").text == "Import finished"
    assert driver.find_element(By.ID, "import-rows").text == str(PEOPLE + 2)
    assert driver.find_element(By.ID, "import-created").text == str(PEOPLE)
    assert driver.find_element(By.ID, "import-invalid").text == "2"
    rejected = driver.find_elements(By.CSS_SELECTOR, "#import-errors tbody tr")
    assert len(rejected) == 2 and all(r.text.strip() for r in rejected)
    assert driver.find_element(By.ID, "import-download").is_displayed()
    assert driver.find_element(By.ID, "import-progress").get_attribute("aria-valuenow") == "100"

    # A contact's details from the search.
    driver.find_element(By.ID, "contact-search").send_keys("n7")
    driver.find_element(By.ID, "search").click()
    found = f"#contacts-body tr[data-wa-id='{people[7]}'] button"
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, found))
    driver.find_element(By.CSS_SELECTOR, found).click()
    wait(driver).until(text_is("contact-detail-title", "n7"))
    assert "Pune" in driver.find_element(By.ID, "detail-attributes").text
    assert driver.find_element(By.ID, "detail-opt-state").get_attribute("data-opted-out") == "false"
    driver.find_element(By.ID, "opt-reason").send_keys("asked by phone")
    driver.find_element(By.ID, "opt-toggle").click()
    wait(driver).until(attribute_is("detail-opt-state", "data-opted-out", "true"))
    assert "asked by phone" in driver.find_element(By.ID, "opt-history-body").text
    driver.find_element(By.ID, "opt-toggle").click()  # back in, so the campaign below reaches everyone
    wait(driver).until(attribute_is("detail-opt-state", "data-opted-out", "false"))
    assert len(driver.find_elements(By.CSS_SELECTOR, "#opt-history-body tr")) == 2

    # A segment of the imported contacts, counted live as the rule is typed.
    driver.find_element(By.ID, "seg-tags-all").send_keys(tag)
    wait(driver).until(attribute_is("segment-count", "data-count", str(PEOPLE)))
    driver.find_element(By.ID, "seg-add-condition").click()
    driver.find_element(By.ID, "seg-cond-0-key").send_keys("city")
    driver.find_element(By.ID, "seg-cond-0-value").send_keys("Mumbai")
    wait(driver).until(attribute_is("segment-count", "data-count", "0"))
    driver.find_element(By.ID, "seg-cond-0-value").clear()
    driver.find_element(By.ID, "seg-cond-0-value").send_keys("Pune")
    wait(driver).until(attribute_is("segment-count", "data-count", str(PEOPLE)))
    fill(driver, {"seg-name": "spring buyers"})
    save(driver, "seg-save", "#segments-body tr[data-name='spring buyers']")
    assert console_errors(driver, stack) == []

    # The wizard: template, audience, variables, schedule, review.
    driver.get(f"{stack.ingress_url}/console/campaigns/new")
    driver.find_element(By.ID, "cmp-name").send_keys("spring in the browser")
    key = template_id(business.tenant_id, business.waba_id, TEMPLATE, LANGUAGE)
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#cmp-template option[value='{key}']"))
    Select(driver.find_element(By.ID, "cmp-template")).select_by_value(key)
    assert driver.find_element(By.ID, "cmp-template-preview").text == "Hi {{1}}, {{2}} is on sale"
    driver.find_element(By.ID, "wizard-next").click()
    wait(driver).until(attribute_is("wizard", "data-step", "2"))
    wait(driver).until(lambda d: any(o.text == "spring buyers" for o in d.find_elements(By.CSS_SELECTOR,
                                                                                      "#cmp-segment option")))
    Select(driver.find_element(By.ID, "cmp-segment")).select_by_visible_text("spring buyers")
    wait(driver).until(attribute_is("cmp-audience-count", "data-count", str(PEOPLE)))
    driver.find_element(By.ID, "wizard-next").click()
    wait(driver).until(attribute_is("wizard", "data-step", "3"))
    Select(driver.find_element(By.ID, "cmp-var-0-kind")).select_by_value("profile_name")
    driver.find_element(By.ID, "cmp-var-0-default").send_keys("there")
    Select(driver.find_element(By.ID, "cmp-var-1-kind")).select_by_value("text")
    driver.find_element(By.ID, "wizard-next").click()  # the fixed text is missing: the step says so
    wait(driver).until(text_is("cmp-var-1-error", "Type the text."))
    driver.find_element(By.ID, "cmp-var-1-value").send_keys("green tea")
    driver.find_element(By.ID, "wizard-next").click()
    wait(driver).until(attribute_is("wizard", "data-step", "4"))
    assert driver.find_element(By.ID, "cmp-when-now").is_selected()
    driver.find_element(By.ID, "wizard-next").click()
    wait(driver).until(attribute_is("review-preview", "data-ready", "true"))
    assert re.fullmatch(r"Hi n\d+, green tea is on sale", driver.find_element(By.ID, "review-preview").text)
    cost = driver.find_element(By.ID, "review-cost").text
    assert cost.startswith("Estimate: USD ") and f"{PEOPLE} recipients" in cost
    assert float(driver.find_element(By.ID, "review-cost").get_attribute("data-total") or 0) > 0
    assert "estimate" in driver.find_element(By.ID, "review-cost-note").text.lower()
    assert str(PEOPLE) in driver.find_element(By.ID, "review-tier").text
    campaign_id = driver.find_element(By.ID, "wizard").get_attribute("data-campaign")
    assert campaign_id

    # Back to the variables, a change, and forward again: the same draft is edited, none is left behind.
    for step in ("4", "3"):
        driver.find_element(By.ID, "wizard-back").click()
        wait(driver).until(attribute_is("wizard", "data-step", step))
    driver.find_element(By.ID, "cmp-var-1-value").clear()
    fill(driver, {"cmp-var-1-value": "black tea"})
    for step in ("4", "5"):
        driver.find_element(By.ID, "wizard-next").click()
        wait(driver).until(attribute_is("wizard", "data-step", step))
    wait(driver).until(lambda d: re.fullmatch(r"Hi n\d+, black tea is on sale",
                                              d.find_element(By.ID, "review-preview").text))
    assert driver.find_element(By.ID, "wizard").get_attribute("data-campaign") == campaign_id
    async with session(stack, admin.token) as client:
        drafts = (await client.get("/v1/campaigns")).json()["items"]
    assert [(c["id"], c["state"]) for c in drafts] == [(campaign_id, "draft")]
    assert {"source": "text:black tea"} in drafts[0]["variables"].values()
    wait(driver).until(lambda d: d.find_element(By.ID, "cmp-launch").is_enabled())
    driver.find_element(By.ID, "cmp-launch").click()
    wait(driver, LIVE_S).until(on(stack.ingress_url, f"/console/campaigns/{campaign_id}"))

    # The funnel fills from the live feed (the page never polls; nothing here reloads it).
    wait(driver, LIVE_S).until(attribute_is("live-status", "data-status", "live"))
    wait(driver, LIVE_S).until(at_least("funnel-targeted", 1))
    wait(driver, LIVE_S * 3).until(at_least("funnel-sent", 40))
    assert count_of(driver, "funnel-sent") < PEOPLE, "the campaign ended before it could be paused"
    driver.find_element(By.ID, "cmp-pause").click()
    wait(driver, LIVE_S).until(text_is("campaign-state", "Paused"))
    paused_at = time.time()
    assert driver.find_element(By.ID, "cmp-resume").is_displayed()
    assert not driver.find_element(By.ID, "cmp-pause").is_displayed()

    # It stops: once the messages already on the wire are counted, the page and the simulator stay still.
    async def sent_to_people() -> int:
        return sum(n for to, n in (await sends(sim, business)).items() if to in set(people))

    async def page_caught_up() -> int | None:
        sent = await sent_to_people()
        return sent if count_of(driver, "funnel-sent") == sent else None

    sent = await wait_for(page_caught_up, timeout=LIVE_S, what="the page's sent count to match the simulator's")
    await asyncio.sleep(2.0)  # nothing is awaited here: the test checks that nothing happens meanwhile
    assert sum(n for to, n in (await sends(sim, business, since=paused_at + 0.5)).items() if to in set(people)) == 0
    assert await sent_to_people() == sent == count_of(driver, "funnel-sent") < PEOPLE
    assert count_of(driver, "funnel-queued") > 0
    assert driver.find_element(By.ID, "campaign-state").text == "Paused"

    # Recipients by state, and their export.
    Select(driver.find_element(By.ID, "recipient-state")).select_by_value("queued")
    wait(driver).until(attribute_is("recipients-body", "data-showing", "queued"))
    assert driver.find_elements(By.CSS_SELECTOR, "#recipients-body tr[data-state='queued']")
    assert not driver.find_elements(By.CSS_SELECTOR, "#recipients-body tr[data-state]:not([data-state='queued'])")
    export = driver.find_element(By.ID, "recipients-export").get_attribute("href") or ""
    assert export.endswith(f"/v1/campaigns/{campaign_id}/recipients?format=csv&state=queued")
    async with session(stack, admin.token) as client:
        exported = await client.get(export.removeprefix(stack.ingress_url))
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert len(exported.text.strip().splitlines()) == 1 + count_of(driver, "funnel-queued")
    driver.set_window_size(390, 844)  # the campaign's page at phone width: no sideways scroll
    assert fits_phone_width(driver)
    assert console_errors(driver, stack) == []

    # The list shows it paused, with its progress.
    driver.get(f"{stack.ingress_url}/console/campaigns")
    listed = f"#campaigns-body tr[data-campaign='{campaign_id}']"
    wait(driver).until(present(f"{listed} [data-col=progress] .progress"))
    assert driver.find_element(By.CSS_SELECTOR, f"{listed} [data-col=state]").text == "Paused"
    assert f"of {PEOPLE}" in driver.find_element(By.CSS_SELECTOR, f"{listed} [data-col=progress]").text
    assert console_errors(driver, stack) == []


async def test_a_campaign_whose_account_needs_reconnecting_says_so_and_finishes_once_it_is(
        browser: WebDriver, stack: LocalStack, api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine,
        business_factory: BusinessFactory) -> None:
    """Meta refused the account's token: the campaign's sends wait in the dispatcher (nothing is dropped), and its
    page says why instead of showing a running campaign that does not move; reconnected, it finishes."""
    business = await business_factory("console campaign held", throughput=1000)
    await approved_template(db, sim, business)
    admin = await person(api, db, business.tenant_id, role="admin")
    people = numbers(5, start=700_000 + int(time.time()) % 50 * 1000)
    async with db.begin() as conn:
        await set_status(conn, tenant_id=business.tenant_id, waba_id=business.waba_id, status="needs_reauth",
                         reason="token refused (190)")
    audience = {"kind": "csv", "csv": "phone,name\n" + "".join(f"+{p},n{i}\n" for i, p in enumerate(people))}
    created = await api.post("/v1/campaigns", headers=business.auth, json={
        "name": "held", "template": {"name": TEMPLATE, "language": LANGUAGE}, "audience": audience,
        "variables": {"body.1": {"source": "column:name", "default": "there"}, "body.2": {"source": "text:tea"}}})
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    assert (await api.post(f"/v1/campaigns/{campaign_id}/launch", headers=business.auth)).status_code == 200

    async def waiting() -> dict[str, Any] | None:
        view = (await api.get(f"/v1/campaigns/{campaign_id}", headers=business.auth)).json()
        return view if view["state"] == "running" and view["funnel"]["targeted"] == len(people) else None

    view = await wait_for(waiting, timeout=LIVE_S, what="the campaign to run")
    assert view["waiting_for"] == "account_needs_reauth" and view["eta_s"] is None
    listed = (await api.get("/v1/campaigns", headers=business.auth)).json()["items"]
    [item] = [c for c in listed if c["id"] == campaign_id]  # the list says it too, with the progress it gives
    assert (item["waiting_for"], item["eta_s"], item["progress"]) == ("account_needs_reauth", None, view["progress"])
    driver = browser
    sign_in(driver, stack, admin.email)
    driver.get(f"{stack.ingress_url}/console/campaigns")
    row = f"#campaigns-body tr[data-campaign='{campaign_id}']"
    wait(driver).until(present(f"{row} [data-col=waiting]"))
    assert driver.find_element(By.CSS_SELECTOR, f"{row} [data-col=waiting]").text == \
        "(waiting: WhatsApp account needs reconnecting (Meta refused its token))"
    assert f"0 of {len(people)}" in driver.find_element(By.CSS_SELECTOR, f"{row} [data-col=progress]").text
    driver.get(f"{stack.ingress_url}/console/campaigns/{campaign_id}")
    wait(driver).until(text_is("campaign-reason",
                               "(waiting: WhatsApp account needs reconnecting (Meta refused its token))"))
    assert driver.find_element(By.ID, "campaign-state").text == "Sending"
    assert not await sends(sim, business)

    async with db.begin() as conn:  # reconnected (Embedded Signup stores a fresh token the same way)
        await set_status(conn, tenant_id=business.tenant_id, waba_id=business.waba_id, status="connected",
                         reason=None)
    driver.find_element(By.ID, "cmp-refresh").click()
    wait(driver, LIVE_S).until(text_is("campaign-state", "Completed"))
    assert driver.find_element(By.ID, "campaign-reason").text == ""
    sent = await sends(sim, business)
    assert set(sent) == set(people) and set(sent.values()) == {1}
    assert console_errors(driver, stack) == []


async def test_templates_page_shows_status_and_previews_a_new_one(
        browser: WebDriver, stack: LocalStack, api: httpx.AsyncClient, sim: httpx.AsyncClient, db: AsyncEngine,
        business_factory: BusinessFactory) -> None:
    business = await business_factory("console templates")
    await approved_template(db, sim, business)
    admin = await person(api, db, business.tenant_id, role="admin")
    driver = browser
    sign_in(driver, stack, admin.email)
    driver.get(f"{stack.ingress_url}/console/templates")
    row = f"#templates-body tr[data-template='{TEMPLATE}:{LANGUAGE}']"
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, row))
    status = driver.find_element(By.CSS_SELECTOR, f"{row} [data-col=status] .pill")
    assert status.text == "Approved" and status.get_attribute("title") == "APPROVED"
    assert driver.find_element(By.CSS_SELECTOR, f"{row} [data-col=category] .pill").text == "Marketing"

    name = f"order_ready_{uuid.uuid4().hex[:6]}"
    driver.find_element(By.ID, "tpl-name").send_keys("Order Ready")
    Select(driver.find_element(By.ID, "tpl-category")).select_by_value("UTILITY")
    driver.find_element(By.ID, "tpl-body").send_keys("Hello {{1}}, your order {{2}} ships today")
    wait(driver).until(lambda d: d.find_elements(By.ID, "tpl-body-example-2"))
    assert driver.find_element(By.ID, "tpl-preview-body").text == "Hello {{1}}, your order {{2}} ships today"
    driver.find_element(By.ID, "tpl-body-example-1").send_keys("Ann")
    driver.find_element(By.ID, "tpl-body-example-2").send_keys("#42")
    wait(driver).until(text_is("tpl-preview-body", "Hello Ann, your order #42 ships today"))
    driver.find_element(By.ID, "tpl-footer").send_keys("Reply {{1}} to stop")
    wait(driver).until(text_is("tpl-preview-footer", "Reply {{1}} to stop"))
    driver.find_element(By.ID, "tpl-add-button").click()
    driver.find_element(By.ID, "tpl-button-0-text").send_keys("Track it")
    wait(driver).until(text_is("tpl-preview-buttons", "Track it"))

    driver.find_element(By.ID, "tpl-submit").click()  # a bad name: the API's refusal shows at the field
    wait(driver).until(lambda d: d.find_element(By.ID, "tpl-name-error").text.strip() != "")
    assert driver.find_element(By.ID, "tpl-name").get_attribute("aria-invalid") == "true"
    driver.find_element(By.ID, "tpl-name").clear()
    driver.find_element(By.ID, "tpl-name").send_keys(name)
    driver.find_element(By.ID, "tpl-submit").click()  # a variable in the footer: Meta would refuse it
    wait(driver).until(lambda d: d.find_element(By.ID, "tpl-footer-error").text.strip() != "")
    assert driver.find_element(By.ID, "tpl-name-error").text == ""
    refusals = console_errors(driver, stack)  # the browser logs each refused request: these two, nothing else
    assert len(refusals) == 2 and all("/v1/templates - Failed to load resource: the server responded with a status "
                                      "of 422" in e for e in refusals), refusals
    driver.find_element(By.ID, "tpl-footer").clear()
    driver.find_element(By.ID, "tpl-footer").send_keys("Thanks for shopping")
    driver.find_element(By.ID, "tpl-submit").click()
    wait(driver).until(lambda d: name in d.find_element(By.ID, "create-message").text)
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM message_templates WHERE tenant_id = :t AND name = :n",
                                  t=business.tenant_id, n=name), timeout=LIVE_S, what="the template in the registry")
    driver.refresh()
    made = f"#templates-body tr[data-template='{name}:en_US']"
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, made))

    # Sync from Meta, then delete the new template (Meta deletes by name).
    driver.find_element(By.ID, "sync").click()
    wait(driver, LIVE_S * 1.5).until(lambda d: "Synced from Meta" in d.find_element(By.ID, "registry-message").text)
    driver.find_element(By.CSS_SELECTOR, f"{made} button.danger").click()
    driver.switch_to.alert.accept()
    wait(driver).until(lambda d: f"Deleting {name}" in d.find_element(By.ID, "registry-message").text)
    await wait_for(lambda: scalar(db, "SELECT count(*) FROM message_templates WHERE tenant_id = :t AND name = :n "
                                      "AND status = 'DELETED'", t=business.tenant_id, n=name),
                   timeout=LIVE_S, what="the template deleted")
    assert console_errors(driver, stack) == []

    # At phone width every page fits: no sideways scroll (wide tables scroll inside their own box).
    driver.set_window_size(390, 844)
    for path, ready in zip(PAGES, ("templates-body tr[data-template]", "segments-body tr", "campaigns-body tr",
                                   "cmp-template option[value]:not([value=''])"), strict=True):
        driver.get(f"{stack.ingress_url}{path}")
        wait(driver).until(present(f"#{ready}"))
        assert fits_phone_width(driver), path
    assert console_errors(driver, stack) == []


async def test_an_agent_is_refused_these_pages(
        browser: WebDriver, stack: LocalStack, api: httpx.AsyncClient, db: AsyncEngine,
        business_factory: BusinessFactory) -> None:
    business = await business_factory("console campaigns agent")
    agent = await person(api, db, business.tenant_id, role="agent")
    async with session(stack, agent.token) as client:
        for path in PAGES:
            refused = await client.get(path)
            assert refused.status_code == 403, (path, refused.status_code)
    driver = browser
    sign_in(driver, stack, agent.email)
    for path, page in zip(PAGES, ("Templates", "Contacts", "Campaigns", "Campaigns"), strict=True):
        driver.get(f"{stack.ingress_url}{path}")
        wait(driver).until(text_is("error-message", f"Your role cannot open {page}. Ask a tenant admin."))
        assert not driver.find_elements(By.ID, f"nav-{page.lower()}")
    refusals = console_errors(driver, stack)  # each refused page is logged as a 403, and nothing else is
    assert len(refusals) == len(PAGES) and all("status of 403" in e for e in refusals), refusals
