"""waiting acknowledgement, business hours, canned responses (helper: silence): reserved; no change yet

Revision ID: 0020
Revises: 0019
"""

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
