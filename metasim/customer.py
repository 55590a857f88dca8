"""Simulated customers: post a customer's message to an ingress as a signed Meta webhook."""

from __future__ import annotations

import httpx

from metasim import payloads


def send_text(url: str, secret: str, *, phone_number_id: str, waba_id: str, wa_id: str, text: str,
              name: str = "Customer") -> str:
    """Post one text message from ``wa_id``; return its wamid. Raises on a non-200 answer."""
    wamid = payloads.new_wamid()
    body = payloads.customer_text(phone_number_id, waba_id, wa_id, text, name=name, wamid=wamid)
    raw, headers = payloads.signed(body, secret)
    response = httpx.post(f"{url.rstrip('/')}/webhooks/meta", content=raw, headers=headers, timeout=30)
    response.raise_for_status()
    return wamid
