"""ai_small_talk: a tenant's replies to greetings, thanks and goodbyes; an index for the AI's knowledge gaps

``tenant_settings.ai_small_talk`` (NULL: the default replies, ``ai.small_talk.SmallTalk``), and
``conversation_events (tenant_id, kind, at)`` so the questions handed over recently are found
without reading a tenant's whole history.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenant_settings", sa.Column("ai_small_talk", postgresql.JSONB(), nullable=True))
    op.create_index("ix_conversation_events_kind", "conversation_events", ["tenant_id", "kind", "at"])


def downgrade() -> None:
    op.drop_index("ix_conversation_events_kind", table_name="conversation_events")
    op.drop_column("tenant_settings", "ai_small_talk")
