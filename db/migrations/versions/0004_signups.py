"""Embedded Signup attempts; what Meta says about each connected number

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'signups',
        sa.Column('attempt_id', sa.Text(), nullable=False),
        sa.Column('tenant_id', sa.UUID(as_uuid=False), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('step', sa.Text(), nullable=True),
        sa.Column('error_code', sa.Integer(), nullable=True),
        sa.Column('error_message', sa.Text(), nullable=True),
        sa.Column('reconnected', sa.Boolean(), nullable=True),
        sa.Column('result', postgresql.JSONB(), nullable=True),
        sa.Column('requested_by', sa.Text(), nullable=True),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id']),
        sa.PrimaryKeyConstraint('attempt_id'),
    )
    op.create_index('ix_signups_tenant', 'signups', ['tenant_id', 'updated_at'])
    op.add_column('phone_numbers', sa.Column('verified_name', sa.Text(), nullable=True))
    op.add_column('phone_numbers', sa.Column('throughput_level', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('phone_numbers', 'throughput_level')
    op.drop_column('phone_numbers', 'verified_name')
    op.drop_table('signups')
