"""templates: the per-WABA template registry and the last sync of each WABA

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'message_templates',
        sa.Column('id', sa.UUID(as_uuid=False), primary_key=True),
        sa.Column('tenant_id', sa.UUID(as_uuid=False), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('waba_id', sa.Text(), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('language', sa.Text(), nullable=False),
        sa.Column('meta_id', sa.Text()),
        sa.Column('category', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('status_reason', sa.Text()),
        sa.Column('quality', sa.Text()),
        sa.Column('previous_category', sa.Text()),
        sa.Column('parameter_format', sa.Text(), nullable=False, server_default='positional'),
        sa.Column('components', postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column('request_id', sa.Text()),
        sa.Column('error_code', sa.Integer()),
        sa.Column('error_message', sa.Text()),
        sa.Column('status_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.UniqueConstraint('tenant_id', 'waba_id', 'name', 'language', name='uq_message_templates_key'),
    )
    op.create_index('ix_message_templates_tenant', 'message_templates', ['tenant_id', 'name', 'language'])
    op.create_table(
        'template_syncs',
        sa.Column('tenant_id', sa.UUID(as_uuid=False), sa.ForeignKey('tenants.id'), primary_key=True),
        sa.Column('waba_id', sa.Text(), primary_key=True),
        sa.Column('request_id', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('templates', sa.Integer()),
        sa.Column('error_code', sa.Integer()),
        sa.Column('error_message', sa.Text()),
        sa.Column('synced_at', sa.DateTime(timezone=True)),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('template_syncs')
    op.drop_index('ix_message_templates_tenant', table_name='message_templates')
    op.drop_table('message_templates')
