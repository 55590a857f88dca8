"""Dead letters as the operator sees them: one row per record a consumer group set aside.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("consumer_group", sa.Text, nullable=False),
        sa.Column("source_topic", sa.Text, nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False),
        sa.Column("source_offset", sa.BigInteger, nullable=False),
        sa.Column("part", sa.Text),
        sa.Column("error_type", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dead_letters_group_failed_at", "dead_letters", ["consumer_group", "failed_at"])


def downgrade() -> None:
    op.drop_table("dead_letters")
