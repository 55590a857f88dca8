"""send path: accounts with encrypted tokens, API keys, outbound message columns

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('phone_numbers', sa.Column('throughput_mps', sa.Integer(), server_default='80', nullable=False))
    op.add_column('phone_numbers', sa.Column('quality_rating', sa.Text(), nullable=True))
    op.add_column('phone_numbers', sa.Column('messaging_limit_tier', sa.Text(), nullable=True))
    op.create_table(
        'whatsapp_accounts',
        sa.Column('waba_id', sa.Text(), nullable=False),
        sa.Column('tenant_id', sa.UUID(as_uuid=False), nullable=False),
        sa.Column('business_id', sa.Text(), nullable=True),
        sa.Column('name', sa.Text(), nullable=True),
        sa.Column('token_ciphertext', sa.LargeBinary(), nullable=True),
        sa.Column('token_key_id', sa.Text(), nullable=True),
        sa.Column('status', sa.Text(), server_default='connected', nullable=False),
        sa.Column('status_reason', sa.Text(), nullable=True),
        sa.Column('tier_limit', sa.Integer(), nullable=True),
        sa.Column('connected_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id']),
        sa.PrimaryKeyConstraint('waba_id'),
    )
    op.create_index('ix_whatsapp_accounts_tenant_id', 'whatsapp_accounts', ['tenant_id'])
    op.create_table(
        'api_keys',
        sa.Column('id', sa.UUID(as_uuid=False), nullable=False),
        sa.Column('tenant_id', sa.UUID(as_uuid=False), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('prefix', sa.Text(), nullable=False),
        sa.Column('key_hash', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key_hash'),
    )
    op.create_index('ix_api_keys_tenant_id', 'api_keys', ['tenant_id'])
    op.alter_column('messages', 'wamid', existing_type=sa.Text(), nullable=True)
    op.add_column('messages', sa.Column('message_id', sa.Text(), nullable=True))
    op.add_column('messages', sa.Column('idempotency_key', sa.Text(), nullable=True))
    op.add_column('messages', sa.Column('attempts', sa.Integer(), nullable=True))
    op.add_column('messages', sa.Column('ambiguous', sa.Boolean(), nullable=True))
    op.add_column('messages', sa.Column('requested_by', sa.Text(), nullable=True))
    op.create_unique_constraint('uq_messages_tenant_message_id', 'messages', ['tenant_id', 'message_id'])


def downgrade() -> None:
    op.drop_constraint('uq_messages_tenant_message_id', 'messages')
    for column in ('requested_by', 'ambiguous', 'attempts', 'idempotency_key', 'message_id'):
        op.drop_column('messages', column)
    op.alter_column('messages', 'wamid', existing_type=sa.Text(), nullable=False)
    op.drop_table('api_keys')
    op.drop_table('whatsapp_accounts')
    for column in ('messaging_limit_tier', 'quality_rating', 'throughput_mps'):
        op.drop_column('phone_numbers', column)
