"""dashboards: the indexes their range queries use (api.dashboard_queries)

``ix_messages_tenant_time`` serves every count of messages over a range (volume, delivery, failures, the
episodes' first messages), with direction and status inside the index. ``ix_conversation_events_states``
finds a conversation's state changes by state and time (its closes and hand-offs), for first response,
resolution and deflection.

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_tenant_time", "messages", ["tenant_id", "sent_at"],
                    postgresql_include=["direction", "status"])
    op.create_index("ix_conversation_events_states", "conversation_events",
                    ["tenant_id", "conversation_key", sa.text("(payload ->> 'state')"), "at"],
                    postgresql_where=sa.text("kind = 'conversation_changed'"))


def downgrade() -> None:
    op.drop_index("ix_conversation_events_states", table_name="conversation_events")
    op.drop_index("ix_messages_tenant_time", table_name="messages")
