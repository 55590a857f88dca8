"""each input's own facts, so that projections converge whatever order the topics deliver them in

The dispatcher's verdict on a message (its status is merged from it and Meta's statuses), each
status's error title and details, and the time of the inbound message that gave a contact's
profile name; an index to find a message by its idempotency key (Meta's statuses carry it).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# Messages projected before: their verdict and error as the row holds them, so that a late input
# derives the same status again (the row's time stands in for the result's completion time).
BACKFILL_VERDICTS = """
UPDATE messages SET result = jsonb_build_object(
    'outcome', CASE WHEN status = 'failed' THEN 'failed' ELSE 'accepted' END, 'wamid', wamid,
    'error_code', error_code, 'error_title', error_title, 'error_details', error_details,
    'ambiguous', coalesce(ambiguous, false), 'completed_at', status_at)
WHERE message_id IS NOT NULL AND result IS NULL AND status IS NOT NULL AND status <> 'queued'
  AND status_at IS NOT NULL
"""
BACKFILL_ERRORS = """
UPDATE message_statuses s SET error_title = m.error_title, error_details = m.error_details
FROM messages m
WHERE s.status = 'failed' AND m.status = 'failed' AND m.tenant_id = s.tenant_id AND m.wamid = s.wamid
  AND m.error_code IS NOT DISTINCT FROM s.error_code
"""


def upgrade() -> None:
    op.add_column('messages', sa.Column('result', postgresql.JSONB(), nullable=True))
    op.add_column('message_statuses', sa.Column('error_title', sa.Text(), nullable=True))
    op.add_column('message_statuses', sa.Column('error_details', sa.Text(), nullable=True))
    op.add_column('contacts', sa.Column('profile_name_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_messages_idempotency_key', 'messages', ['tenant_id', 'idempotency_key'])
    op.execute(BACKFILL_VERDICTS)
    op.execute(BACKFILL_ERRORS)


def downgrade() -> None:
    op.drop_index('ix_messages_idempotency_key', 'messages')
    op.drop_column('contacts', 'profile_name_at')
    op.drop_column('message_statuses', 'error_details')
    op.drop_column('message_statuses', 'error_title')
    op.drop_column('messages', 'result')
