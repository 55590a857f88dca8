"""The send API's ledger in PostgreSQL: idempotency keys survive the loss of Redis.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_sends",
        sa.Column("tenant_id", UUID(as_uuid=False), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.Text),
        sa.Column("conversation_key", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("command", JSONB),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "message_id", name="pk_api_sends"),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_api_sends_idempotency_key"),
    )
    op.create_index("ix_api_sends_created_at", "api_sends", ["created_at"])


def downgrade() -> None:
    op.drop_table("api_sends")
