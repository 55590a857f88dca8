"""tenant_webhooks: tenants' endpoints, the events and delivery log of the webhook deliverer, redelivery requests

``webhook_subjects`` starts with every conversation and contact already known, so only new ones get a
``conversation.created`` / ``contact.created`` event.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

UUID = sa.UUID(as_uuid=False)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'webhook_endpoints',
        sa.Column('id', UUID, primary_key=True),
        sa.Column('tenant_id', UUID, sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('description', sa.Text(), server_default='', nullable=False),
        sa.Column('events', postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column('secret', sa.Text(), nullable=False),
        sa.Column('previous_secret', sa.Text()),
        sa.Column('previous_secret_until', TS),
        sa.Column('failing_since', TS),
        sa.Column('disabled_at', TS),
        sa.Column('disabled_reason', sa.Text()),
        sa.Column('created_at', TS, server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', TS, server_default=sa.text('now()'), nullable=False),
    )
    op.create_index('ix_webhook_endpoints_tenant', 'webhook_endpoints', ['tenant_id', 'created_at', 'id'])
    op.create_table(
        'webhook_events',
        sa.Column('event_id', sa.Text(), primary_key=True),
        sa.Column('tenant_id', UUID, sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('type', sa.Text(), nullable=False),
        sa.Column('ordering_key', sa.Text(), nullable=False),
        sa.Column('recorded_at', TS, nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
    )
    op.create_index('ix_webhook_events_tenant', 'webhook_events', ['tenant_id', 'recorded_at'])
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', UUID, primary_key=True),
        sa.Column('seq', sa.BigInteger(), sa.Identity(), nullable=False, unique=True),
        sa.Column('tenant_id', UUID, sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('endpoint_id', UUID, sa.ForeignKey('webhook_endpoints.id', ondelete='CASCADE'), nullable=False),
        sa.Column('event_id', sa.Text(), sa.ForeignKey('webhook_events.event_id'), nullable=False),
        sa.Column('event_type', sa.Text(), nullable=False),
        sa.Column('ordering_key', sa.Text(), nullable=False),
        sa.Column('origin', sa.Text(), nullable=False),
        sa.Column('state', sa.Text(), server_default='pending', nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('next_attempt_at', TS, server_default=sa.text('now()'), nullable=False),
        sa.Column('created_at', TS, server_default=sa.text('now()'), nullable=False),
        sa.Column('last_attempt_at', TS),
        sa.Column('response_status', sa.Integer()),
        sa.Column('latency_ms', sa.Integer()),
        sa.Column('last_error', sa.Text()),
        sa.Column('finished_at', TS),
        sa.UniqueConstraint('endpoint_id', 'event_id', 'origin', name='uq_webhook_deliveries_event'),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'dead')", name='ck_webhook_deliveries_state'),
    )
    op.create_index('ix_webhook_deliveries_head', 'webhook_deliveries', ['endpoint_id', 'ordering_key', 'seq'],
                    postgresql_where=sa.text("state = 'pending'"))
    op.create_index('ix_webhook_deliveries_log', 'webhook_deliveries', ['endpoint_id', 'created_at', 'id'])
    op.create_table(
        'webhook_subjects',
        sa.Column('tenant_id', UUID, sa.ForeignKey('tenants.id'), primary_key=True),
        sa.Column('subject', sa.Text(), primary_key=True),
        sa.Column('first_source', sa.Text(), nullable=False),
        sa.Column('opted_out', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('opted_out_source', sa.Text()),
    )
    op.create_table(
        'webhook_redeliveries',
        sa.Column('id', UUID, primary_key=True),
        sa.Column('tenant_id', UUID, sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('endpoint_id', UUID, sa.ForeignKey('webhook_endpoints.id', ondelete='CASCADE'), nullable=False),
        sa.Column('event_id', sa.Text()),
        sa.Column('since', TS, nullable=False),
        sa.Column('until', TS, nullable=False),
        sa.Column('state', sa.Text(), server_default='requested', nullable=False),
        sa.Column('events', sa.Integer(), server_default='0', nullable=False),
        sa.Column('error', sa.Text()),
        sa.Column('requested_at', TS, server_default=sa.text('now()'), nullable=False),
        sa.Column('done_at', TS),
    )
    op.create_index('ix_webhook_redeliveries_state', 'webhook_redeliveries', ['state', 'requested_at'])
    op.execute("INSERT INTO webhook_subjects (tenant_id, subject, first_source) "
               "SELECT tenant_id, 'conversation:' || key, 'before-0015' FROM conversations ON CONFLICT DO NOTHING")
    op.execute("INSERT INTO webhook_subjects (tenant_id, subject, first_source, opted_out) "
               "SELECT tenant_id, 'contact:' || wa_id, 'before-0015', opted_out FROM contacts ON CONFLICT DO NOTHING")


def downgrade() -> None:
    for table in ('webhook_redeliveries', 'webhook_subjects', 'webhook_deliveries', 'webhook_events',
                  'webhook_endpoints'):
        op.drop_table(table)
