"""``aerostic dev``: the whole local stack with a demo tenant, until Ctrl-C.

Starts the services, the ingress (webhooks and the tenant API), the stream worker, the
projector, the Meta simulator and the dispatcher; connects a demo tenant whose number is
known to the simulator; then proves both directions: a simulated customer's message reaches
PostgreSQL, and a reply sent through the API reaches the simulator and comes back as read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import httpx

from aerostic.settings import CoreSettings, IngressSettings
from stack.launcher import LocalStack
from tenants.api_keys import create_key_for
from tenants.commands import attach_number, create_tenant
from vault.cipher import Vault, generate_key_spec

log = logging.getLogger(__name__)

DEMO_PHONE_NUMBER_ID = "106540352242922"
DEMO_WABA_ID = "102290129340398"
DEMO_DISPLAY_NUMBER = "15550783881"
DEMO_CUSTOMER = "16505551234"
DEMO_TOKEN = "EAAG-demo-token-known-only-to-the-simulator"  # noqa: S105 - the simulator's demo token


def run_dev(stop: threading.Event, *, ingress_port: int, sim_port: int | None = None,
            exit_after_ready: bool = False) -> int:
    """Start everything, connect the demo tenant, prove a message each way, then wait."""
    stack = LocalStack()
    vault_keys = generate_key_spec("dev")
    try:
        stack.start_services()
        stack.prepare()
        url = stack.start_ingress(ingress_port)
        stack.start_streams()
        stack.start_projector()
        secret = IngressSettings().app_secrets[0].get_secret_value()
        stack.start_metasim(app_secret=secret, port=sim_port)
        stack.start_dispatcher(vault_keys=vault_keys)
        settings = CoreSettings(kafka_bootstrap_servers=stack.kafka, database_url=stack.database_url,
                                redis_url=stack.redis_url)
        demo = asyncio.run(_demo(settings, stack, Vault.from_spec(vault_keys)))
        _banner(stack, url, demo)
        if not exit_after_ready:
            stop.wait()
        return 0
    finally:
        log.info("stopping the local stack")
        stack.stop()


async def _demo(settings: CoreSettings, stack: LocalStack, vault: Vault) -> dict[str, Any]:
    tenant_id = await create_tenant(settings, "Demo Shop")
    await attach_number(settings, tenant_id=tenant_id, phone_number_id=DEMO_PHONE_NUMBER_ID,
                        waba_id=DEMO_WABA_ID, display_phone_number=DEMO_DISPLAY_NUMBER, token=DEMO_TOKEN,
                        vault=vault)
    _, api_key = await create_key_for(settings, tenant_id=tenant_id, name="demo")
    auth = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=stack.metasim_url, timeout=30) as sim, \
            httpx.AsyncClient(base_url=stack.ingress_url, timeout=30) as api:
        (await sim.post("/_sim/numbers", json={"phone_number_id": DEMO_PHONE_NUMBER_ID, "waba_id": DEMO_WABA_ID,
                                               "display_phone_number": DEMO_DISPLAY_NUMBER,
                                               "token": DEMO_TOKEN})).raise_for_status()
        started = time.monotonic()
        (await sim.post("/_sim/customers/messages", json={
            "phone_number_id": DEMO_PHONE_NUMBER_ID, "from": DEMO_CUSTOMER, "name": "Sheena Nelson",
            "type": "text", "text": "Hi! Does it come in another color?"})).raise_for_status()
        conversation = f"{DEMO_PHONE_NUMBER_ID}:{DEMO_CUSTOMER}"
        await _until(lambda: _history_has(api, auth, conversation), "the customer's message in PostgreSQL")
        inbound_s = time.monotonic() - started
        started = time.monotonic()
        sent = await api.post("/v1/messages", headers=auth, json={
            "to": DEMO_CUSTOMER, "type": "text", "text": {"body": "Yes: blue, green and red."}})
        sent.raise_for_status()
        message_id = sent.json()["id"]
        await _until(lambda: _is_read(api, auth, message_id), "the reply to be read")
        return {"tenant_id": tenant_id, "api_key": api_key, "inbound_s": inbound_s,
                "reply_s": time.monotonic() - started}


async def _history_has(api: httpx.AsyncClient, auth: dict[str, str], conversation: str) -> bool:
    response = await api.get(f"/v1/conversations/{conversation}/messages", headers=auth)
    return response.status_code == 200 and bool(response.json()["messages"])


async def _is_read(api: httpx.AsyncClient, auth: dict[str, str], message_id: str) -> bool:
    response = await api.get(f"/v1/messages/{message_id}", headers=auth)
    return response.status_code == 200 and response.json()["status"] == "read"


async def _until(probe: Any, what: str, timeout: float = 120) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def _banner(stack: LocalStack, url: str, demo: dict[str, Any]) -> None:
    lines = [
        "Aerostic local stack is up.",
        f"  webhook ingress   {url}/webhooks/meta",
        f"  tenant API        {url}/v1  (API key of the demo tenant: {demo['api_key']})",
        f"  Meta simulator    {stack.metasim_url}  (inspection: {stack.metasim_url}/_sim/requests)",
        f"  Kafka bootstrap   {stack.kafka}",
        f"  PostgreSQL        {stack.database_url}",
        f"  Redis             {stack.redis_url}",
        f"  demo tenant       {demo['tenant_id']} (number {DEMO_PHONE_NUMBER_ID})",
        f"  demo inbound      stored {demo['inbound_s']:.2f}s after the customer wrote",
        f"  demo reply        read {demo['reply_s']:.2f}s after the API call",
        f"  logs              {stack.log_dir}",
        "Make the customer write again, then answer through the API:",
        f"  aerostic simulate text {DEMO_PHONE_NUMBER_ID} {DEMO_CUSTOMER} 'hello' --sim {stack.metasim_url}",
        f"  curl -X POST {url}/v1/messages -H 'Authorization: Bearer {demo['api_key']}' "
        f"-H 'content-type: application/json' -d '{{\"to\":\"{DEMO_CUSTOMER}\",\"type\":\"text\","
        f"\"text\":{{\"body\":\"Thanks!\"}}}}'",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)
