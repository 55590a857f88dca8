"""media: stored media files (inbound, downloaded by the dispatcher; uploaded through the API) and each
tenant's retention

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

UUID = sa.UUID(as_uuid=False)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'media',
        sa.Column('id', UUID, primary_key=True),
        sa.Column('tenant_id', UUID, sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('origin', sa.Text(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('mime_type', sa.Text()),
        sa.Column('size_bytes', sa.BigInteger()),
        sa.Column('sha256', sa.Text()),
        sa.Column('filename', sa.Text()),
        sa.Column('storage_key', sa.Text()),
        sa.Column('wamid', sa.Text()),
        sa.Column('phone_number_id', sa.Text()),
        sa.Column('conversation_key', sa.Text()),
        sa.Column('error_code', sa.Integer()),
        sa.Column('error', sa.Text()),
        sa.Column('created_at', TS, server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', TS, server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("origin IN ('inbound', 'upload')", name='ck_media_origin'),
        sa.CheckConstraint("status IN ('stored', 'failed')", name='ck_media_status'),
    )
    op.create_index('ix_media_tenant', 'media', ['tenant_id', 'created_at'])
    op.create_index('ix_media_wamid', 'media', ['tenant_id', 'wamid'])
    op.create_table(
        'media_settings',
        sa.Column('tenant_id', UUID, sa.ForeignKey('tenants.id'), primary_key=True),
        sa.Column('retention_days', sa.Integer(), nullable=False),
        sa.Column('updated_at', TS, server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint('retention_days BETWEEN 1 AND 3650', name='ck_media_settings_retention'),
    )


def downgrade() -> None:
    op.drop_table('media_settings')
    op.drop_index('ix_media_wamid', table_name='media')
    op.drop_index('ix_media_tenant', table_name='media')
    op.drop_table('media')
