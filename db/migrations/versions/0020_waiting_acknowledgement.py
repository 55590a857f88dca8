"""waiting acknowledgement and canned responses

``tenant_settings.waiting`` (NULL: the defaults of ``automations.waiting.WaitingReplies``): the texts a
customer waiting for a person receives and the tenant's two choices (acknowledge, AI answers while
waiting); the schedule is the tenant's business hours (``timezone``, ``business_hours``). ``canned_responses``:
an inbox's saved replies, a shortcut unique per tenant.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenant_settings", sa.Column("waiting", postgresql.JSONB(), nullable=True))
    op.create_table(
        "canned_responses",
        sa.Column("id", postgresql.UUID(as_uuid=False), primary_key=True),
        sa.Column("tenant_id", postgresql.UUID(as_uuid=False), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("shortcut", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("tenant_id", "shortcut", name="uq_canned_responses_shortcut"),
        sa.CheckConstraint("char_length(text) BETWEEN 1 AND 4096", name="ck_canned_responses_text"),
    )


def downgrade() -> None:
    op.drop_table("canned_responses")
    op.drop_column("tenant_settings", "waiting")
