"""schemas.messages and the send request's Graph body: where a message goes is never the message's to say."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.messages import ROUTING_FIELDS, MessageContent
from schemas.outbound import OutboundRequest


def request(message: dict[str, object]) -> OutboundRequest:
    return OutboundRequest(event_id="m1", tenant_id="t", message_id="m1", idempotency_key="k1",
                           phone_number_id="106540352242922", to="16505551234", message=message,
                           created_at=datetime.now(UTC))


def test_the_graph_body_is_the_message_with_the_requests_routing() -> None:
    body = request({"type": "text", "text": {"body": "Hi"}}).graph_body()
    assert body == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234",
                    "type": "text", "text": {"body": "Hi"}, "biz_opaque_callback_data": "k1"}


def test_a_message_cannot_override_the_routing() -> None:
    hostile = {"type": "text", "text": {"body": "Hi"}, "to": "4915112345678", "messaging_product": "sms",
               "recipient_type": "group", "biz_opaque_callback_data": "someone-elses-key"}
    body = request(hostile).graph_body()
    assert (body["to"], body["messaging_product"], body["recipient_type"], body["biz_opaque_callback_data"]) == (
        "16505551234", "whatsapp", "individual", "k1")
    assert set(ROUTING_FIELDS) - {"recipient"} <= body.keys() and "recipient" not in body


def test_a_message_without_routing() -> None:
    assert MessageContent.model_validate({"type": "text", "text": {"body": "Hi"}}).graph_message() == {
        "type": "text", "text": {"body": "Hi"}}
