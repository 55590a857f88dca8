"""campaign tallies: the campaign funnel's counts kept as the recipients change, not counted per read

``campaign_recipient_tallies`` holds signed counts of recipients by (campaign, state, detail), detail being the
skip reason or the error code as text, as ``campaigns.store.state_counts`` groups them. Statement-level triggers
on ``campaign_recipients`` add one row per group a statement changed (inserted +n, deleted -n, updated -n
old +n new), inside the writer's transaction, so the tallies always agree with the recipients. The funnel worker folds
a campaign's rows into one per group (``campaigns.store.fold_tallies``); readers sum what is there. A read costs
the rows written since the last fold, not the campaign's size.

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

TALLY = """
CREATE FUNCTION campaign_recipient_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO campaign_recipient_tallies (campaign_id, state, detail, n)
        SELECT campaign_id, state, COALESCE(reason, error_code::text), count(*) FROM new_rows GROUP BY 1, 2, 3;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO campaign_recipient_tallies (campaign_id, state, detail, n)
        SELECT campaign_id, state, detail, sum(n) FROM (
            SELECT campaign_id, state, COALESCE(reason, error_code::text) AS detail, 1 AS n FROM new_rows
            UNION ALL
            SELECT campaign_id, state, COALESCE(reason, error_code::text), -1 FROM old_rows) AS moves
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0;
    ELSE  -- a campaign deleted with its recipients takes its tallies along (ON DELETE CASCADE)
        INSERT INTO campaign_recipient_tallies (campaign_id, state, detail, n)
        SELECT o.campaign_id, o.state, COALESCE(o.reason, o.error_code::text), -count(*) FROM old_rows o
        WHERE EXISTS (SELECT 1 FROM campaigns c WHERE c.id = o.campaign_id) GROUP BY 1, 2, 3;
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    # Writers wait until the triggers exist: none lands between the backfill's snapshot and the triggers.
    op.execute("LOCK TABLE campaign_recipients IN SHARE ROW EXCLUSIVE MODE")
    op.create_table(
        'campaign_recipient_tallies',
        sa.Column('id', sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column('campaign_id', sa.UUID(as_uuid=False), sa.ForeignKey('campaigns.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('state', sa.Text(), nullable=False),
        sa.Column('detail', sa.Text()),
        sa.Column('n', sa.BigInteger(), nullable=False),
        sa.Index('ix_campaign_recipient_tallies_campaign', 'campaign_id'),
    )
    op.execute("INSERT INTO campaign_recipient_tallies (campaign_id, state, detail, n) "
               "SELECT campaign_id, state, COALESCE(reason, error_code::text), count(*) FROM campaign_recipients "
               "GROUP BY 1, 2, 3")
    op.execute(TALLY)
    for event, tables in (("INSERT", "NEW TABLE AS new_rows"), ("DELETE", "OLD TABLE AS old_rows"),
                          ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows")):
        op.execute(f"CREATE TRIGGER campaign_recipients_tally_{event.lower()} AFTER {event} ON campaign_recipients "
                   f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION campaign_recipient_tally()")


def downgrade() -> None:
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER campaign_recipients_tally_{event} ON campaign_recipients")
    op.execute("DROP FUNCTION campaign_recipient_tally()")
    op.drop_table('campaign_recipient_tallies')
