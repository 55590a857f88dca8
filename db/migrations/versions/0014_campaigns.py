"""campaigns: reserved for the campaigns work in progress (filled by its owner; removed if unused)

Revision ID: 0014
Revises: 0013
"""

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
