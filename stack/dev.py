"""``aerostic dev``: the whole local stack with a demo tenant, until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from aerostic.settings import CoreSettings, IngressSettings
from metasim import payloads
from stack.launcher import LocalStack
from tenants.commands import attach_number, create_tenant

log = logging.getLogger(__name__)

DEMO_PHONE_NUMBER_ID = "106540352242922"
DEMO_WABA_ID = "102290129340398"
DEMO_DISPLAY_NUMBER = "15550783881"


def run_dev(stop: threading.Event, *, ingress_port: int, exit_after_ready: bool = False) -> int:
    """Start everything, connect the demo tenant, prove one message end to end, then wait."""
    stack = LocalStack()
    try:
        stack.start_services()
        stack.prepare()
        url = stack.start_ingress(ingress_port)
        stack.start_streams()
        stack.start_projector()
        settings = CoreSettings(kafka_bootstrap_servers=stack.kafka, database_url=stack.database_url,
                                redis_url=stack.redis_url)
        tenant_id, seconds = asyncio.run(_demo(settings, url))
        _banner(stack, url, tenant_id, seconds)
        if not exit_after_ready:
            stop.wait()
        return 0
    finally:
        log.info("stopping the local stack")
        stack.stop()


async def _demo(settings: CoreSettings, url: str) -> tuple[str, float]:
    tenant_id = await create_tenant(settings, "Demo Shop")
    await attach_number(settings, tenant_id=tenant_id, phone_number_id=DEMO_PHONE_NUMBER_ID,
                        waba_id=DEMO_WABA_ID, display_phone_number=DEMO_DISPLAY_NUMBER)
    secret = IngressSettings().app_secrets[0].get_secret_value()
    wamid = payloads.new_wamid()
    body = payloads.customer_text(DEMO_PHONE_NUMBER_ID, DEMO_WABA_ID, "16505551234",
                                  "Hi! Does it come in another color?", name="Sheena Nelson", wamid=wamid)
    raw, headers = payloads.signed(body, secret)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/webhooks/meta", content=raw, headers=headers)
        response.raise_for_status()
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            while not (await conn.execute(text("SELECT 1 FROM messages WHERE wamid = :w"), {"w": wamid})).first():
                if time.monotonic() - started > 120:
                    raise TimeoutError("the demo message did not reach PostgreSQL")
                await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    return tenant_id, time.monotonic() - started


def _banner(stack: LocalStack, url: str, tenant_id: str, seconds: float) -> None:
    lines = [
        "Aerostic local stack is up.",
        f"  webhook ingress   {url}/webhooks/meta",
        f"  Kafka bootstrap   {stack.kafka}",
        f"  PostgreSQL        {stack.database_url}",
        f"  Redis             {stack.redis_url}",
        f"  demo tenant       {tenant_id} (number {DEMO_PHONE_NUMBER_ID})",
        f"  demo message      stored in PostgreSQL {seconds:.2f}s after the webhook",
        f"  logs              {stack.log_dir}",
        "Send a customer message:",
        f"  aerostic simulate text {DEMO_PHONE_NUMBER_ID} 16505551234 'hello' --url {url}",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)
