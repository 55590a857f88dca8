"""media: reserved for the media work in progress (filled by its owner; removed if unused)

Revision ID: 0016
Revises: 0015
"""

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
