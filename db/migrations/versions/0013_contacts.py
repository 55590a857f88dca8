"""contacts: reserved for the contacts work in progress (filled by its owner; removed if unused)

Revision ID: 0013
Revises: 0012
"""

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
