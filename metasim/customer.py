"""Simulated customers from the command line: a client of the simulator's customer API.

``POST /_sim/customers/messages`` makes the simulator post the message to Aerostic as a signed
Meta webhook and opens the customer's 24-hour window, exactly as a real customer would.
"""

from __future__ import annotations

from typing import Any

import httpx

KINDS = {"text": "text", "button": "button", "button-reply": "interactive_button_reply",
         "list-reply": "interactive_list_reply", "image": "image", "video": "video", "audio": "audio",
         "document": "document", "sticker": "sticker"}


def send(sim_url: str, *, phone_number_id: str, wa_id: str | None, kind: str = "text", name: str = "Customer",
         username: str | None = None, **content: Any) -> str:
    """Make the customer with number ``wa_id`` and/or ``username`` (no number: a username-only customer, named
    by Meta with a BSUID only) send one message of ``kind`` to the business number; return its wamid."""
    who = {k: v for k, v in (("from", wa_id), ("username", username)) if v is not None}
    body = {"phone_number_id": phone_number_id, **who, "name": name, "type": KINDS[kind],
            **{k: v for k, v in content.items() if v is not None}}
    response = httpx.post(f"{sim_url.rstrip('/')}/_sim/customers/messages", json=body, timeout=30)
    response.raise_for_status()
    return str(response.json()["wamid"])
