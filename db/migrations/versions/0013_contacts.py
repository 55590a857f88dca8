"""contacts: numbers in E.164, opt-out history with its source, CSV imports, segments

``contact_opt_changes`` is filled from the opt-out state the conversation events recorded so far, so every
contact's opt-out derives from it from now on (contacts.optout).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

UUID = postgresql.UUID(as_uuid=False)
JSONB = postgresql.JSONB()

BACKFILL_OPT = """
INSERT INTO contact_opt_changes (event_id, tenant_id, wa_id, opted_out, at, source)
SELECT 'conversation:' || event_id, tenant_id, substr(conversation_key, 9), (payload->>'opted_out')::boolean, at,
       'conversation'
FROM conversation_events WHERE kind = 'contact_changed' AND conversation_key LIKE 'contact:%'
ON CONFLICT DO NOTHING
"""


def upgrade() -> None:
    op.add_column("contacts", sa.Column("e164", sa.Text()))
    op.add_column("contacts", sa.Column("opt_source", sa.Text()))
    op.add_column("contacts", sa.Column("opt_actor", sa.Text()))
    op.add_column("contacts", sa.Column("last_import_id", UUID))
    op.create_index("ix_contacts_list", "contacts", ["tenant_id", "created_at", "wa_id"])
    op.create_index("uq_contacts_tenant_e164", "contacts", ["tenant_id", "e164"], unique=True,
                    postgresql_where=sa.text("e164 IS NOT NULL"))
    op.create_index("ix_contacts_tags", "contacts", ["tags"], postgresql_using="gin")
    op.create_index("ix_contacts_attributes", "contacts", ["attributes"], postgresql_using="gin")

    op.create_table(
        "contact_opt_changes",
        sa.Column("event_id", sa.Text(), primary_key=True),
        sa.Column("tenant_id", UUID, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("wa_id", sa.Text(), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text()),
        sa.Column("detail", sa.Text()),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_contact_opt_changes_contact", "contact_opt_changes", ["tenant_id", "wa_id", "at"])
    op.execute(BACKFILL_OPT)
    op.execute("UPDATE contacts SET opt_source = 'conversation' WHERE opted_out")

    op.create_table(
        "contact_imports",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("tenant_id", UUID, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("filename", sa.Text()),
        sa.Column("encoding", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("mapping", JSONB, nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("rows", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("invalid", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("duplicates", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("errors", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("error", sa.Text()),
        sa.Column("requested_by", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_contact_imports_tenant", "contact_imports", ["tenant_id", "created_at", "id"])

    op.create_table(
        "segments",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("tenant_id", UUID, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("filter", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("tenant_id", "name", name="uq_segments_tenant_name"),
    )
    op.create_index("ix_segments_tenant", "segments", ["tenant_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_table("segments")
    op.drop_table("contact_imports")
    op.drop_table("contact_opt_changes")
    for index in ("ix_contacts_attributes", "ix_contacts_tags", "uq_contacts_tenant_e164", "ix_contacts_list"):
        op.drop_index(index, table_name="contacts")
    for column in ("last_import_id", "opt_actor", "opt_source", "e164"):
        op.drop_column("contacts", column)
