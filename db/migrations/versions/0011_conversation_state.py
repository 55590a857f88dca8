"""conversation_state: the conversation processor's state with its version, the copy that outlives Redis

Filled from the projected ``conversations`` (state, assignee, version, window, the last inbound wamid),
so that conversations the processor has not touched since the upgrade survive a loss of Redis too.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BACKFILL = """
INSERT INTO conversation_state (conversation_key, tenant_id, version, state)
SELECT c.key, c.tenant_id, c.version, jsonb_strip_nulls(jsonb_build_object(
    'tenant_id', c.tenant_id::text, 'state', c.state, 'assignee_id', c.assignee_id, 'team', c.team,
    'reason', c.handoff_reason, 'version', c.version, 'last_wamid', m.wamid,
    'last_inbound_at', extract(epoch FROM c.last_inbound_at)::float8,
    'window_until', extract(epoch FROM c.last_inbound_at)::float8 + 86400,
    'queued_at', extract(epoch FROM c.state_changed_at)::float8))
FROM conversations c
LEFT JOIN LATERAL (
    SELECT wamid FROM messages
    WHERE tenant_id = c.tenant_id AND conversation_key = c.key AND direction = 'inbound' AND wamid IS NOT NULL
    ORDER BY sent_at DESC NULLS LAST LIMIT 1) m ON true
ON CONFLICT (conversation_key) DO NOTHING
"""


def upgrade() -> None:
    op.create_table(
        'conversation_state',
        sa.Column('conversation_key', sa.Text(), primary_key=True),
        sa.Column('tenant_id', sa.UUID(as_uuid=False), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.Column('state', postgresql.JSONB(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table('conversation_state')
