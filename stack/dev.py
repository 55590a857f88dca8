"""``aerostic dev``: the whole local stack with a demo tenant, until Ctrl-C.

Starts the services, the ingress (webhooks, tenant API and console), the stream worker, the
projector, the Meta simulator, the dispatcher and the webhook deliverer; creates a demo tenant through the platform API
and connects it through the real Embedded Signup flow against the simulator (its OAuth dialog
approved headlessly); then proves both directions: a simulated customer's message reaches
PostgreSQL, and a reply sent through the API reaches the simulator and comes back as read.

Its data (PostgreSQL, Redis, logs) lives in a temporary directory that is removed when it stops, unless
``AEROSTIC_DEV_KEEP_DATA=1`` (``./scripts/dev.sh --keep-data``). Stopped by SIGKILL, it leaves that
directory behind (its processes still die with it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from config.settings import IngressSettings
from stack.launcher import LocalStack
from stack.signup_driver import approve
from vault.cipher import generate_key_spec

log = logging.getLogger(__name__)

DEMO_PHONE_NUMBER_ID = "106540352242922"
DEMO_WABA_ID = "102290129340398"
DEMO_DISPLAY_NUMBER = "15550783881"
DEMO_CUSTOMER = "16505551234"
DEMO_KNOWLEDGE = [
    ("Which colors does it come in?", "It comes in blue, green and red."),
    ("How long does shipping take?", "Orders ship within 2 business days."),
    ("What is your return policy?", "Returns are free within 30 days."),
]
DEMO_ADMIN_EMAIL = "admin@demo.shop"
DEMO_ADMIN_PASSWORD = "demo-shop-password"  # noqa: S105 - the local demo's console login
# The demo business as Meta knows it: a Facebook user who owns it, with one number still to register.
DEMO_META_ACCOUNT: dict[str, Any] = {
    "email": "owner@demo.shop", "password": "facebook-demo-password", "name": "Demo Owner",
    "businesses": [{"id": "810000000000001", "name": "Demo Shop Ltd", "wabas": [{
        "id": DEMO_WABA_ID, "name": "Demo Shop", "numbers": [{
            "id": DEMO_PHONE_NUMBER_ID, "display_phone_number": DEMO_DISPLAY_NUMBER, "verified_name": "Demo Shop",
            "quality_rating": "GREEN", "messaging_limit_tier": "TIER_1K", "throughput_level": "STANDARD",
            "status": "PENDING"}]}]}],
}


KEEP_DATA_ENV = "AEROSTIC_DEV_KEEP_DATA"


def keep_data_requested() -> bool:
    return os.environ.get(KEEP_DATA_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def aerostic_command() -> str:
    """``aerostic`` as a fresh shell can run it: the absolute path of the console script that runs us.

    ``sys.argv[0]`` when we were started as ``…/bin/aerostic``; else the script next to this interpreter (a
    virtualenv's ``bin``); else the one on ``PATH``; else ``python -m aerostic`` with this interpreter.
    """
    for candidate in (Path(sys.argv[0]), Path(sys.executable).parent / "aerostic"):
        if candidate.name == "aerostic" and candidate.is_file() and os.access(candidate, os.X_OK):
            return shlex.quote(str(candidate.absolute()))
    found = shutil.which("aerostic")
    if found:
        return shlex.quote(str(Path(found).absolute()))
    return f"{shlex.quote(str(Path(sys.executable).absolute()))} -m aerostic"


def run_dev(stop: threading.Event, *, ingress_port: int, sim_port: int | None = None,
            exit_after_ready: bool = False, keep_data: bool | None = None,
            scale: dict[str, int] | None = None) -> int:
    """Start everything, connect the demo tenant, prove a message each way, then wait.

    The stack's directory is removed when it stops unless ``keep_data`` (default: ``AEROSTIC_DEV_KEEP_DATA``).
    ``scale``: processes per role (``--scale dispatcher=2``; see ``stack.scale``).
    """
    keep = keep_data_requested() if keep_data is None else keep_data
    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:  # the terminal closed: stop and clean up as for Ctrl-C
        previous_hup = signal.signal(signal.SIGHUP, lambda *_: stop.set())
    stack = LocalStack(keep_data=keep)
    if scale:
        stack.scale.update(scale)
    vault_keys = generate_key_spec("dev")
    try:
        stack.start_services()
        stack.prepare()
        stack.metasim_port = sim_port or 0
        url = stack.start_ingress(ingress_port)
        stack.start_streams()
        stack.start_campaigns()
        stack.start_projector()
        stack.start_ai()
        settings = IngressSettings(environment=stack.environment)  # the children's settings
        stack.start_metasim(app_secret=settings.app_secrets[0].get_secret_value(), port=sim_port)
        stack.start_dispatcher(vault_keys=vault_keys)
        stack.start_deliverer()
        demo = asyncio.run(_demo(settings, stack))
        _banner(stack, url, demo, keep=keep)
        if not exit_after_ready:
            stop.wait()
        return 0
    finally:
        log.info("stopping the local stack")
        stack.stop()
        if keep:
            log.info("kept the local stack's data in %s", stack.root)
        else:
            shutil.rmtree(stack.root, ignore_errors=True)
        if on_main_thread:
            signal.signal(signal.SIGHUP, previous_hup)


async def _demo(settings: IngressSettings, stack: LocalStack) -> dict[str, Any]:
    """Create the demo tenant through the platform API and connect it through Embedded Signup."""
    platform = {"Authorization": f"Bearer {settings.platform_key.get_secret_value()}"}
    async with httpx.AsyncClient(base_url=stack.metasim_url, timeout=30) as sim, \
            httpx.AsyncClient(base_url=stack.ingress_url, timeout=30) as api:
        created = await api.post("/admin/tenants", headers=platform, json={
            "name": "Demo Shop", "admin_email": DEMO_ADMIN_EMAIL, "admin_password": DEMO_ADMIN_PASSWORD})
        created.raise_for_status()
        tenant_id = created.json()["tenant_id"]
        (await sim.post("/_sim/signup/accounts", json=DEMO_META_ACCOUNT)).raise_for_status()
        login = await api.post("/v1/auth/login", json={"email": DEMO_ADMIN_EMAIL, "password": DEMO_ADMIN_PASSWORD})
        login.raise_for_status()
        session = {"Authorization": f"Bearer {login.json()['token']}"}
        started = time.monotonic()
        approval = await approve(api, session, email=DEMO_META_ACCOUNT["email"],
                                 password=DEMO_META_ACCOUNT["password"])
        if approval.response.status_code != 303:
            raise RuntimeError(f"Embedded Signup callback answered {approval.response.status_code}")
        await _until(lambda: _connected(api, session), "Embedded Signup to connect the demo tenant")
        signup_s = time.monotonic() - started
        key = await api.post("/v1/api-keys", headers=session, json={"name": "demo"})
        key.raise_for_status()
        api_key = key.json()["key"]
        auth = {"Authorization": f"Bearer {api_key}"}
        for question, answer in DEMO_KNOWLEDGE:
            (await api.post("/v1/knowledge", headers=auth, json={"question": question, "answer": answer})
             ).raise_for_status()
        started = time.monotonic()
        (await sim.post("/_sim/customers/messages", json={
            "phone_number_id": DEMO_PHONE_NUMBER_ID, "from": DEMO_CUSTOMER, "name": "Sheena Nelson",
            "type": "text", "text": "Hi! Does it come in another color?"})).raise_for_status()
        conversation = f"{DEMO_PHONE_NUMBER_ID}:{DEMO_CUSTOMER}"
        await _until(lambda: _history_has(api, auth, conversation), "the customer's message in PostgreSQL")
        inbound_s = time.monotonic() - started
        await _until(lambda: _ai_answered(api, auth, conversation), "the AI's answer to be read")
        ai_s = time.monotonic() - started
        started = time.monotonic()
        sent = await api.post("/v1/messages", headers=auth, json={
            "to": DEMO_CUSTOMER, "type": "text", "text": {"body": "Yes: blue, green and red."}})
        sent.raise_for_status()
        message_id = sent.json()["id"]
        await _until(lambda: _is_read(api, auth, message_id), "the reply to be read")
        return {"tenant_id": tenant_id, "api_key": api_key, "signup_s": signup_s, "inbound_s": inbound_s, "ai_s": ai_s,
                "reply_s": time.monotonic() - started}


async def _connected(api: httpx.AsyncClient, auth: dict[str, str]) -> bool:
    view = (await api.get("/v1/whatsapp/connection", headers=auth)).json()
    if view["state"] == "failed":
        attempt = view["attempt"]
        raise RuntimeError(f"Embedded Signup failed at {attempt['step']}: {attempt['error_message']}")
    return bool(view["state"] == "connected")


async def _ai_answered(api: httpx.AsyncClient, auth: dict[str, str], conversation: str) -> bool:
    response = await api.get(f"/v1/conversations/{conversation}/messages", headers=auth)
    return response.status_code == 200 and any(
        m["direction"] == "outbound" and m["status"] == "read" for m in response.json()["messages"])


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


def _over_tcp(stack: LocalStack, name: str) -> str:
    """``  (also <TCP URL>)`` for a service the stack started (its processes use its Unix socket), else nothing."""
    service = stack.services.get(name)
    tcp = service.extra.get("tcp_url") if service else None
    return f"  (also {tcp})" if tcp else ""


def _banner(stack: LocalStack, url: str, demo: dict[str, Any], *, keep: bool = False) -> None:
    data = "kept when it stops" if keep else f"removed when it stops; {KEEP_DATA_ENV}=1 keeps it"
    metrics = " ".join(f"{name}:{port}" for name, port in stack.metrics_ports.items())
    lines = [
        "Aerostic local stack is up.",
        f"  webhook ingress   {url}/webhooks/meta",
        f"  console           {url}/console/login  ({DEMO_ADMIN_EMAIL} / {DEMO_ADMIN_PASSWORD})",
        f"  tenant API        {url}/v1  (API key of the demo tenant: {demo['api_key']})",
        f"  Meta simulator    {stack.metasim_url}  (inspection: {stack.metasim_url}/_sim/requests)",
        f"  Kafka bootstrap   {stack.kafka}",
        f"  PostgreSQL        {stack.database_url}{_over_tcp(stack, 'postgres')}",
        f"  Redis             {stack.redis_url}{_over_tcp(stack, 'redis')}",
        f"  demo tenant       {demo['tenant_id']} (number {DEMO_PHONE_NUMBER_ID})",
        f"  demo signup       connected {demo['signup_s']:.2f}s after the dialog was approved",
        f"  Meta's dialog     log in as {DEMO_META_ACCOUNT['email']} / {DEMO_META_ACCOUNT['password']} "
        "to connect again",
        f"  demo inbound      stored {demo['inbound_s']:.2f}s after the customer wrote",
        f"  demo AI answer    read {demo['ai_s']:.2f}s after the customer wrote (offline scorer, knowledge base)",
        f"  demo reply        read {demo['reply_s']:.2f}s after the API call",
        f"  metrics           {metrics}  (GET /metrics on 127.0.0.1)",
        f"  logs              {stack.log_dir}",
        f"  data              {stack.root} ({data})",
        "Make the customer write again, then answer through the API:",
        f"  {aerostic_command()} simulate text {DEMO_PHONE_NUMBER_ID} {DEMO_CUSTOMER} 'hello' "
        f"--sim {stack.metasim_url}",
        f"  curl -X POST {url}/v1/messages -H 'Authorization: Bearer {demo['api_key']}' "
        f"-H 'content-type: application/json' -d '{{\"to\":\"{DEMO_CUSTOMER}\",\"type\":\"text\","
        f"\"text\":{{\"body\":\"Thanks!\"}}}}'",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)
