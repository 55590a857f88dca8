"""the team inbox in the console: each user's read marker per conversation, and the thread's newest-first index

``conversation_reads`` holds, per tenant, user and conversation, the highest ``messages.id`` the user has seen
(written when the user opens the thread; it never goes back), from which the inbox counts unread customer
messages. ``ix_messages_conversation_id`` serves the inbox's last-message preview and unread counts.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversation_reads",
        sa.Column("tenant_id", postgresql.UUID(as_uuid=False), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=False), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("conversation_key", sa.Text(), nullable=False),
        sa.Column("last_read_id", sa.BigInteger(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "conversation_key", name="pk_conversation_reads"),
    )
    op.create_index("ix_messages_conversation_id", "messages", ["tenant_id", "conversation_key", "id"])


def downgrade() -> None:
    op.drop_index("ix_messages_conversation_id", table_name="messages")
    op.drop_table("conversation_reads")
