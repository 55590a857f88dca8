"""each tenant may have its own request rate on the tenant API (NULL: the platform's default)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('tenants', sa.Column('api_rate_per_s', sa.Float(), nullable=True))
    op.add_column('tenants', sa.Column('api_rate_burst', sa.Integer(), nullable=True))
    op.create_check_constraint('ck_tenants_api_rate', 'tenants',
                               'api_rate_per_s IS NULL OR api_rate_per_s > 0')
    op.create_check_constraint('ck_tenants_api_burst', 'tenants',
                               'api_rate_burst IS NULL OR api_rate_burst >= 1')


def downgrade() -> None:
    op.drop_constraint('ck_tenants_api_burst', 'tenants', type_='check')
    op.drop_constraint('ck_tenants_api_rate', 'tenants', type_='check')
    op.drop_column('tenants', 'api_rate_burst')
    op.drop_column('tenants', 'api_rate_per_s')
