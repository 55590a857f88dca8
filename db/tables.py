"""PostgreSQL tables (SQLAlchemy Core), the system of record people query.

Writers: ``tenants``/``phone_numbers`` by the tenant commands (later Embedded Signup);
everything else by the projector. Every row that belongs to a tenant carries ``tenant_id``
and every query filters on it. The migration in ``db/migrations`` creates exactly these.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

tenants = Table(
    "tenants", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

phone_numbers = Table(
    "phone_numbers", metadata,
    Column("phone_number_id", Text, primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("waba_id", Text),
    Column("display_phone_number", Text),
    Column("status", Text, nullable=False, server_default="connected"),
    Column("attached_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

contacts = Table(
    "contacts", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("wa_id", Text, nullable=False),
    Column("profile_name", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "wa_id", name="uq_contacts_tenant_wa_id"),
)

conversations = Table(
    "conversations", metadata,
    Column("key", Text, primary_key=True),  # "{phone_number_id}:{wa_id}"
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("phone_number_id", Text, nullable=False),
    Column("wa_id", Text, nullable=False),
    Column("last_message_at", DateTime(timezone=True)),
    Column("last_inbound_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

messages = Table(
    "messages", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("wamid", Text, nullable=False),
    Column("conversation_key", Text, nullable=False),
    Column("direction", Text, nullable=False),  # inbound | outbound
    Column("type", Text),
    Column("text", Text),
    Column("payload", JSONB),
    Column("sent_at", DateTime(timezone=True)),
    Column("status", Text),
    Column("status_at", DateTime(timezone=True)),
    Column("error_code", Integer),
    Column("error_title", Text),
    Column("error_details", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "wamid", name="uq_messages_tenant_wamid"),
    Index("ix_messages_conversation", "tenant_id", "conversation_key", "sent_at"),
)

message_statuses = Table(
    "message_statuses", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("wamid", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_at", DateTime(timezone=True), nullable=False),
    Column("applied", Boolean, nullable=False),
    Column("error_code", Integer),
    Column("payload", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "wamid", "status", name="uq_statuses_tenant_wamid_status"),
)

account_events = Table(
    "account_events", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False, unique=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("waba_id", Text, nullable=False),
    Column("phone_number_id", Text),
    Column("field", Text, nullable=False),
    Column("event", Text),
    Column("payload", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
