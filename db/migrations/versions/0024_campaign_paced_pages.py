"""campaigns: the expander's next page, held until the campaign's sends need it

The expander keeps a campaign's expansion a bounded time ahead of what its number can send
(``streams.campaign_expander``): a page not needed yet is written here (``paced_job``, the encoded
``CampaignJob``) with the time it is due (``paced_until``), and the campaign scheduler publishes it then.
The partial index holds only the campaigns with a page waiting.

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("paced_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("campaigns", sa.Column("paced_job", sa.Text(), nullable=True))
    op.create_index("ix_campaigns_paced", "campaigns", ["paced_until"],
                    postgresql_where=sa.text("paced_until IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_campaigns_paced", table_name="campaigns")
    op.drop_column("campaigns", "paced_job")
    op.drop_column("campaigns", "paced_until")
