"""The send API's ledger: which message a client's idempotency key was given, in PostgreSQL.

``reserve`` claims a key for a new message with a unique key (``tenant_id``, ``idempotency_key``) in
the same statement that records the message, so two requests racing on one key get one message,
and a key outlives a Redis restart (24 h, ``LEDGER_TTL_S``; an expired key is claimed afresh).
While a key is reserved the row keeps the message's command, so a request that died before the
broker acknowledged it can be finished by the client's retry. Each row also lets ``GET
/v1/messages/{id}`` answer before the projector has written the message.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import and_, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import api_sends
from schemas.outbound import SendCommand

LEDGER_TTL_S = 24 * 3600
STALE_RESERVATION_S = 30.0  # well past the producer's delivery wait: the reserving request is gone
EXPIRED_PER_CLAIM = 100  # expired rows removed alongside each claim: the table stays bounded without a job


class SendRecord(BaseModel):
    """One accepted message; ``command`` is kept only while an idempotency key is reserved for it."""

    id: str
    conversation_key: str
    type: str
    created_at: datetime
    fingerprint: str
    command: SendCommand | None = None

    @classmethod
    def of(cls, command: SendCommand) -> SendRecord:
        what = json.dumps([command.phone_number_id, command.to, command.message], sort_keys=True)
        return cls(id=command.message_id, conversation_key=command.conversation_key,
                   type=str(command.message["type"]), created_at=command.created_at,
                   fingerprint=hashlib.sha256(what.encode()).hexdigest(), command=command)

    def age_s(self) -> float:
        return (datetime.now(UTC) - self.created_at).total_seconds()


class SendLedger:
    """A tenant's idempotency reservations and accepted-message records."""

    def __init__(self, engine: AsyncEngine, tenant_id: str) -> None:
        self.engine = engine
        self.tenant_id = tenant_id

    async def reserve(self, client_key: str | None, record: SendRecord) -> bool:
        """Record ``record`` under ``client_key`` (if any); False when an earlier message holds the key."""
        cutoff = datetime.now(UTC) - timedelta(seconds=LEDGER_TTL_S)
        values = {"tenant_id": self.tenant_id, "message_id": record.id, "idempotency_key": client_key,
                  "conversation_key": record.conversation_key, "type": record.type,
                  "fingerprint": record.fingerprint, "created_at": record.created_at,
                  "command": record.command.model_dump(mode="json") if record.command and client_key else None}
        async with self.engine.begin() as conn:
            expired = select(api_sends.c.message_id).where(api_sends.c.tenant_id == self.tenant_id,
                                                            api_sends.c.created_at < cutoff).limit(EXPIRED_PER_CLAIM)
            await conn.execute(delete(api_sends).where(api_sends.c.tenant_id == self.tenant_id,
                                                        api_sends.c.message_id.in_(expired.scalar_subquery())))
            claimed = await conn.execute(insert(api_sends).values(**values).on_conflict_do_nothing().returning(
                api_sends.c.message_id))
            return claimed.first() is not None

    async def release(self, client_key: str, message_id: str) -> None:
        """Give ``client_key`` back (only if it still names ``message_id``) so the client can retry."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(api_sends).where(api_sends.c.tenant_id == self.tenant_id,
                                                        api_sends.c.idempotency_key == client_key,
                                                        api_sends.c.message_id == message_id))

    async def earlier(self, client_key: str) -> SendRecord | None:
        """The record of the message ``client_key`` was given to within the last ``LEDGER_TTL_S``."""
        return await self._one(and_(api_sends.c.idempotency_key == client_key,
                                    api_sends.c.created_at >= datetime.now(UTC) - timedelta(seconds=LEDGER_TTL_S)))

    async def find(self, message_id: str) -> SendRecord | None:
        return await self._one(api_sends.c.message_id == message_id)

    async def settled(self, record: SendRecord) -> None:
        """The broker acknowledged ``record``'s command: it need not be kept any more."""
        async with self.engine.begin() as conn:
            await conn.execute(update(api_sends).where(api_sends.c.tenant_id == self.tenant_id,
                                                        api_sends.c.message_id == record.id).values(command=None))

    async def _one(self, condition: object) -> SendRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(api_sends).where(api_sends.c.tenant_id == self.tenant_id,
                                                               condition))).first()  # type: ignore[arg-type]
        if row is None:
            return None
        return SendRecord(id=row.message_id, conversation_key=row.conversation_key, type=row.type,
                          created_at=row.created_at, fingerprint=row.fingerprint,
                          command=SendCommand.model_validate(row.command) if row.command else None)
