"""Meta-shaped webhook bodies, encoded and signed the way Meta sends them.

Meta signs an ASCII-escaped JSON rendering (non-ASCII as ``\\uXXXX``); ``signed()`` produces
exactly those bytes and the ``X-Hub-Signature-256`` header over them. These builders are the
simulated customers' voice and feed tests, benchmarks and the demo. The signature is computed
here, independently of the ingress's code, so the simulator catches a bug in what it tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from typing import Any

import orjson

from metasim.customers import bsuid


def encode(body: dict[str, Any]) -> bytes:
    """Compact, ASCII-only JSON: the bytes Meta puts on the wire (orjson's, unless non-ASCII needs escaping)."""
    raw = orjson.dumps(body)
    return raw if raw.isascii() else json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode()


def signed(body: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    """The raw bytes of ``body`` and the headers Meta sends with them."""
    raw = encode(body)
    return raw, {"X-Hub-Signature-256": signature(raw, secret), "Content-Type": "application/json"}


def signature(raw: bytes, secret: str) -> str:
    """Meta's ``X-Hub-Signature-256`` header: ``sha256=`` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def new_wamid() -> str:
    return f"wamid.SIM{os.urandom(16).hex().upper()}"


def envelope(waba_id: str, changes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"id": waba_id, "changes": changes}]}


def messages_change(phone_number_id: str, *, display: str = "15550000000",
                    contacts: list[dict[str, Any]] | None = None,
                    messages: list[dict[str, Any]] | None = None,
                    statuses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"messaging_product": "whatsapp",
                             "metadata": {"display_phone_number": display, "phone_number_id": phone_number_id}}
    if contacts:
        value["contacts"] = contacts
    if messages:
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    return {"field": "messages", "value": value}


def text_message(wa_id: str, text: str, *, wamid: str | None = None, timestamp: int | None = None
                 ) -> dict[str, Any]:
    return {"from": wa_id, "id": wamid or new_wamid(), "timestamp": str(timestamp or int(time.time())),
            "type": "text", "text": {"body": text}}


def contact(wa_id: str, name: str, *, business_id: str = "") -> dict[str, Any]:
    """A customer's ``contacts[]`` entry as Meta sends it today: number, BSUID and the parent portfolio's."""
    return {"profile": {"name": name}, "wa_id": wa_id, "user_id": bsuid(business_id, f"p:{wa_id}"),
            "parent_user_id": bsuid(business_id, f"p:{wa_id}", parent=True)}


def status(wamid: str, value: str, recipient: str, *, timestamp: int | None = None,
           error_code: int | None = None, error_title: str = "", callback_data: str | None = None
           ) -> dict[str, Any]:
    out: dict[str, Any] = {"id": wamid, "status": value, "timestamp": str(timestamp or int(time.time())),
                           "recipient_id": recipient}
    if error_code is not None:
        out["errors"] = [{"code": error_code, "title": error_title, "message": error_title,
                          "error_data": {"details": error_title}}]
    if callback_data is not None:
        out["biz_opaque_callback_data"] = callback_data
    return out


def customer_text(phone_number_id: str, waba_id: str, wa_id: str, text: str, *, name: str = "Customer",
                  wamid: str | None = None) -> dict[str, Any]:
    """A whole webhook: one customer's text message to a business number."""
    message = {**text_message(wa_id, text, wamid=wamid), "from_user_id": bsuid(waba_id, f"p:{wa_id}")}
    return envelope(waba_id, [messages_change(phone_number_id, contacts=[contact(wa_id, name, business_id=waba_id)],
                                              messages=[message])])


def status_update(phone_number_id: str, waba_id: str, wamid: str, value: str, recipient: str,
                  **kwargs: Any) -> dict[str, Any]:
    """A whole webhook: one status of a message we sent."""
    return envelope(waba_id, [messages_change(phone_number_id, statuses=[status(wamid, value, recipient,
                                                                                **kwargs)])])
