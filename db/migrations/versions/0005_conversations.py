"""conversations: state machine, contacts' tags and opt-out, automation rules, knowledge base, agents

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

JSONB = postgresql.JSONB()


def _now() -> sa.TextClause:
    return sa.text('now()')


def upgrade() -> None:
    op.create_table(
        'tenant_settings',
        sa.Column('tenant_id', sa.UUID(as_uuid=False), sa.ForeignKey('tenants.id'), primary_key=True),
        sa.Column('timezone', sa.Text(), server_default='UTC', nullable=False),
        sa.Column('business_hours', JSONB, server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column('ai_provider', sa.Text(), server_default='offline', nullable=False),
        sa.Column('ai_threshold', sa.Float(), server_default='0.7', nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=_now(), nullable=False),
    )
    op.create_table(
        'automation_rules',
        sa.Column('id', sa.UUID(as_uuid=False), primary_key=True),
        sa.Column('tenant_id', sa.UUID(as_uuid=False), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column('stop', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('trigger', JSONB, nullable=False),
        sa.Column('conditions', JSONB, nullable=False),
        sa.Column('actions', JSONB, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=_now(), nullable=False),
    )
    op.create_index('ix_automation_rules_tenant', 'automation_rules', ['tenant_id', 'position'])
    op.create_table(
        'rule_executions',
        sa.Column('id', sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column('event_id', sa.Text(), nullable=False, unique=True),
        sa.Column('tenant_id', sa.UUID(as_uuid=False), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('rule_id', sa.Text(), nullable=False),
        sa.Column('rule_name', sa.Text(), nullable=False),
        sa.Column('conversation_key', sa.Text(), nullable=False),
        sa.Column('trigger_event', sa.Text(), nullable=False),
        sa.Column('actions', JSONB, nullable=False),
        sa.Column('stopped', sa.Boolean(), nullable=False),
        sa.Column('executed_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_rule_executions_tenant', 'rule_executions', ['tenant_id', 'rule_id', 'executed_at'])
    op.create_table(
        'knowledge_entries',
        sa.Column('id', sa.UUID(as_uuid=False), primary_key=True),
        sa.Column('tenant_id', sa.UUID(as_uuid=False), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('question', sa.Text(), nullable=False),
        sa.Column('answer', sa.Text(), nullable=False),
        sa.Column('keywords', JSONB, server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=_now(), nullable=False),
    )
    op.create_index('ix_knowledge_entries_tenant', 'knowledge_entries', ['tenant_id'])
    op.create_table(
        'agents',
        sa.Column('user_id', sa.UUID(as_uuid=False), sa.ForeignKey('users.id'), primary_key=True),
        sa.Column('tenant_id', sa.UUID(as_uuid=False), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('display_name', sa.Text(), nullable=True),
        sa.Column('capacity', sa.Integer(), server_default='5', nullable=False),
        sa.Column('teams', JSONB, server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=_now(), nullable=False),
    )
    op.create_index('ix_agents_tenant', 'agents', ['tenant_id'])
    op.create_table(
        'conversation_notes',
        sa.Column('id', sa.UUID(as_uuid=False), primary_key=True),
        sa.Column('tenant_id', sa.UUID(as_uuid=False), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('conversation_key', sa.Text(), nullable=False),
        sa.Column('author', sa.Text(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=_now(), nullable=False),
    )
    op.create_index('ix_conversation_notes', 'conversation_notes', ['tenant_id', 'conversation_key', 'created_at'])
    op.create_table(
        'conversation_events',
        sa.Column('id', sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column('event_id', sa.Text(), nullable=False, unique=True),
        sa.Column('tenant_id', sa.UUID(as_uuid=False), sa.ForeignKey('tenants.id'), nullable=False),
        sa.Column('conversation_key', sa.Text(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('payload', JSONB, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_conversation_events', 'conversation_events', ['tenant_id', 'conversation_key', 'id'])
    op.add_column('conversations', sa.Column('state', sa.Text(), server_default='bot', nullable=False))
    op.add_column('conversations', sa.Column('assignee_id', sa.Text(), nullable=True))
    op.add_column('conversations', sa.Column('team', sa.Text(), nullable=True))
    op.add_column('conversations', sa.Column('handoff_reason', sa.Text(), nullable=True))
    op.add_column('conversations', sa.Column('version', sa.Integer(), server_default='0', nullable=False))
    op.add_column('conversations', sa.Column('state_changed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_conversations_inbox', 'conversations', ['tenant_id', 'state', 'state_changed_at'])
    op.add_column('contacts', sa.Column('tags', JSONB, server_default=sa.text("'[]'::jsonb"), nullable=False))
    op.add_column('contacts', sa.Column('attributes', JSONB, server_default=sa.text("'{}'::jsonb"),
                                        nullable=False))
    op.add_column('contacts', sa.Column('opted_out', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('contacts', sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in ('opted_out_at', 'opted_out', 'attributes', 'tags'):
        op.drop_column('contacts', column)
    op.drop_index('ix_conversations_inbox', 'conversations')
    for column in ('state_changed_at', 'version', 'handoff_reason', 'team', 'assignee_id', 'state'):
        op.drop_column('conversations', column)
    for table in ('conversation_events', 'conversation_notes', 'agents', 'knowledge_entries', 'rule_executions',
                  'automation_rules', 'tenant_settings'):
        op.drop_table(table)
