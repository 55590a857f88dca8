"""Publishing the conversation processor's commands (``conversations.commands``) from the API.

A command is keyed by its conversation, so it is ordered with everything else about it, and the
API answers only after the broker acknowledged it; a failed delivery answers 503 (retry).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from fastapi import HTTPException, status

from broker.producer import AsyncProducer, DeliveryError
from config.settings import IngressSettings
from schemas.catalogue import CONVERSATIONS_COMMANDS
from schemas.conversation import ConversationCommand

Action = Literal["assign", "transfer", "resolve", "reopen", "claim"]


def conversation_command(*, tenant_id: str, key: str, action: Action, actor: str, agent_id: str | None = None,
                         team: str | None = None) -> ConversationCommand:
    """A new command with a fresh id."""
    return ConversationCommand(event_id=f"{action}:{key}:{uuid.uuid4()}", tenant_id=tenant_id, conversation_key=key,
                               action=action, agent_id=agent_id, team=team, actor=actor, at=datetime.now(UTC))


async def publish(producer: AsyncProducer, settings: IngressSettings, command: ConversationCommand) -> None:
    """Append ``command`` to ``conversations.commands``; 503 when the broker did not acknowledge it."""
    try:
        await producer.send(CONVERSATIONS_COMMANDS.full_name(settings.topic_prefix), value=command.encode(),
                            key=command.conversation_key.encode())
    except DeliveryError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the command could not be queued; retry",
                            headers={"Retry-After": "1"}) from exc
