"""the inbox lists a tenant's conversations by latest activity

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_conversations_activity', 'conversations',
                    ['tenant_id', sa.text('coalesce(last_message_at, created_at) DESC'), sa.text('key DESC')])


def downgrade() -> None:
    op.drop_index('ix_conversations_activity', 'conversations')
