"""contact_identities: one person, whether Meta names them by number, by BSUID or both

``contact_identities`` maps every identity a tenant's customer was seen with (a phone number or a
business-scoped user id) to the person's one identity, the first one seen (schemas.identity); rows are
written once and never re-pointed. ``contacts`` gains what Meta says of the person besides its key: the
number, the BSUID and the username (a username-only customer has no number).

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_identities",
        sa.Column("tenant_id", postgresql.UUID(as_uuid=False), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("identity", sa.Text(), nullable=False),
        sa.Column("canonical", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "identity", name="pk_contact_identities"),
    )
    op.create_index("ix_contact_identities_canonical", "contact_identities", ["tenant_id", "canonical"])
    op.add_column("contacts", sa.Column("phone", sa.Text()))
    op.add_column("contacts", sa.Column("user_id", sa.Text()))
    op.add_column("contacts", sa.Column("username", sa.Text()))


def downgrade() -> None:
    op.drop_column("contacts", "username")
    op.drop_column("contacts", "user_id")
    op.drop_column("contacts", "phone")
    op.drop_index("ix_contact_identities_canonical", table_name="contact_identities")
    op.drop_table("contact_identities")
