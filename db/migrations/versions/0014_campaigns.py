"""campaigns: campaigns, their CSV audience rows and their recipients (one row per campaign and contact)

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'campaigns',
        sa.Column('id', sa.UUID(as_uuid=False), primary_key=True),
        sa.Column('tenant_id', sa.UUID(as_uuid=False), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('state', sa.Text(), nullable=False, server_default='draft'),
        sa.Column('state_reason', sa.Text()),
        sa.Column('phone_number_id', sa.Text(), nullable=False),
        sa.Column('template_name', sa.Text(), nullable=False),
        sa.Column('template_language', sa.Text(), nullable=False),
        sa.Column('template_category', sa.Text(), nullable=False, server_default='marketing'),
        sa.Column('parameter_format', sa.Text(), nullable=False, server_default='positional'),
        sa.Column('audience', postgresql.JSONB(), nullable=False),
        sa.Column('variables', postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column('schedule', postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column('send_at', sa.DateTime(timezone=True)),
        sa.Column('audience_size', sa.Integer()),
        sa.Column('expanded', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('expanded_at', sa.DateTime(timezone=True)),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False, server_default=sa.text('now()')),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False, server_default=sa.text('now()')),
        sa.Column('launched_at', sa.DateTime(timezone=True)),
        sa.Column('finished_at', sa.DateTime(timezone=True)),
        sa.Index('ix_campaigns_tenant_created', 'tenant_id', 'created_at', 'id'),
        sa.Index('ix_campaigns_due', 'state', 'send_at'),
    )
    op.create_table(
        'campaign_audience_rows',
        sa.Column('campaign_id', sa.UUID(as_uuid=False), sa.ForeignKey('campaigns.id', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('line', sa.Integer(), primary_key=True),
        sa.Column('wa_id', sa.Text()),
        sa.Column('raw', sa.Text(), nullable=False),
        sa.Column('columns', postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column('problem', sa.Text()),
    )
    op.create_table(
        'campaign_recipients',
        sa.Column('campaign_id', sa.UUID(as_uuid=False), sa.ForeignKey('campaigns.id', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('contact', sa.Text(), primary_key=True),
        sa.Column('tenant_id', sa.UUID(as_uuid=False), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('wa_id', sa.Text()),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('state', sa.Text(), nullable=False),
        sa.Column('rank', sa.SmallInteger(), nullable=False),
        sa.Column('reason', sa.Text()),
        sa.Column('error_code', sa.Integer()),
        sa.Column('error_title', sa.Text()),
        sa.Column('message_id', sa.Text()),
        sa.Column('wamid', sa.Text()),
        sa.Column('ambiguous', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False, server_default=sa.text('now()')),
        sa.Column('submitted_at', sa.DateTime(timezone=True)),
        sa.Column('sent_at', sa.DateTime(timezone=True)),
        sa.Column('delivered_at', sa.DateTime(timezone=True)),
        sa.Column('read_at', sa.DateTime(timezone=True)),
        sa.Column('replied_at', sa.DateTime(timezone=True)),
        sa.Column('failed_at', sa.DateTime(timezone=True)),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False, server_default=sa.text('now()')),
        sa.Index('ix_campaign_recipients_state', 'campaign_id', 'state', 'seq'),
        sa.Index('ix_campaign_recipients_page', 'campaign_id', 'seq'),
        sa.Index('ix_campaign_recipients_contact', 'tenant_id', 'wa_id', 'submitted_at'),
    )


def downgrade() -> None:
    op.drop_table('campaign_recipients')
    op.drop_table('campaign_audience_rows')
    op.drop_table('campaigns')
