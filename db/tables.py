"""PostgreSQL tables (SQLAlchemy Core), the system of record people query.

Writers: ``tenants`` by the platform API and commands; ``phone_numbers`` and ``whatsapp_accounts``
by the dispatcher's Embedded Signup (and the operator's ``numbers attach``);
everything else by the projector. Every row that belongs to a tenant carries ``tenant_id``
and every query filters on it. The migration in ``db/migrations`` creates exactly these.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

tenants = Table(
    "tenants", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The tenant's own request rate on the tenant API; NULL: the platform's default (api.ratelimit).
    Column("api_rate_per_s", Float),
    Column("api_rate_burst", Integer),
    CheckConstraint("api_rate_per_s IS NULL OR api_rate_per_s > 0", name="ck_tenants_api_rate"),
    CheckConstraint("api_rate_burst IS NULL OR api_rate_burst >= 1", name="ck_tenants_api_burst"),
)

phone_numbers = Table(
    "phone_numbers", metadata,
    Column("phone_number_id", Text, primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("waba_id", Text),
    Column("display_phone_number", Text),
    Column("status", Text, nullable=False, server_default="connected"),
    Column("attached_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("throughput_mps", Integer, nullable=False, server_default="80"),  # 80 | 1000 | 20 (coexistence)
    Column("quality_rating", Text),
    Column("messaging_limit_tier", Text),
    Column("verified_name", Text),
    Column("throughput_level", Text),  # Meta's throughput.level: STANDARD | HIGH | NOT_APPLICABLE
)

# One WhatsApp Business Account connected by a tenant, with its encrypted access token.
# Writer: the dispatcher (signup) and the operator commands; only the dispatcher decrypts.
whatsapp_accounts = Table(
    "whatsapp_accounts", metadata,
    Column("waba_id", Text, primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("business_id", Text),
    Column("name", Text),
    Column("token_ciphertext", LargeBinary),
    Column("token_key_id", Text),
    Column("status", Text, nullable=False, server_default="connected"),  # connected | needs_reauth | disconnected
    Column("status_reason", Text),
    Column("tier_limit", Integer),  # unique template recipients per 24 h outside the window; NULL = unlimited
    Column("connected_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("prefix", Text, nullable=False),
    Column("key_hash", LargeBinary, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

contacts = Table(
    "contacts", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("wa_id", Text, nullable=False),
    Column("profile_name", Text),
    Column("profile_name_at", DateTime(timezone=True)),  # the time of the inbound message that gave it
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("tags", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("opted_out", Boolean, nullable=False, server_default=false()),  # campaigns skip opted-out contacts
    Column("opted_out_at", DateTime(timezone=True)),
    # Contacts' API and imports (migration 0013): the number as entered, normalised (E.164; NULL for a contact
    # first met by its message, whose number is its wa_id), who or what last opted it out or in, the last import.
    Column("e164", Text),
    Column("opt_source", Text),  # keyword | rule | meta | admin | conversation
    Column("opt_actor", Text),
    Column("last_import_id", UUID(as_uuid=False)),
    # What Meta names the person by besides ``wa_id`` (their one identity; migration 0018): number, BSUID, username.
    Column("phone", Text),
    Column("user_id", Text),
    Column("username", Text),
    UniqueConstraint("tenant_id", "wa_id", name="uq_contacts_tenant_wa_id"),
)

conversations = Table(
    "conversations", metadata,
    Column("key", Text, primary_key=True),  # "{phone_number_id}:{wa_id}"
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("phone_number_id", Text, nullable=False),
    Column("wa_id", Text, nullable=False),
    Column("last_message_at", DateTime(timezone=True)),
    Column("last_inbound_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The state machine (writer: the projector, from the processor's ConversationChanged events).
    Column("state", Text, nullable=False, server_default="bot"),  # bot | queued | agent | closed
    Column("assignee_id", Text),
    Column("team", Text),
    Column("handoff_reason", Text),
    Column("version", Integer, nullable=False, server_default="0"),
    Column("state_changed_at", DateTime(timezone=True)),
    Index("ix_conversations_inbox", "tenant_id", "state", "state_changed_at"),
    Index("ix_conversations_activity", "tenant_id", text("coalesce(last_message_at, created_at) DESC"),
          text("key DESC")),  # the inbox's order
)

messages = Table(
    "messages", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("wamid", Text),  # NULL while an outbound message waits for Meta's answer
    Column("message_id", Text),  # Aerostic's id of an outbound message (the send API's answer)
    Column("idempotency_key", Text),
    Column("conversation_key", Text, nullable=False),
    Column("direction", Text, nullable=False),  # inbound | outbound
    Column("type", Text),
    Column("text", Text),
    Column("payload", JSONB),
    Column("sent_at", DateTime(timezone=True)),
    Column("status", Text),
    Column("status_at", DateTime(timezone=True)),
    Column("error_code", Integer),
    Column("error_title", Text),
    Column("error_details", Text),
    Column("attempts", Integer),
    Column("ambiguous", Boolean),
    Column("requested_by", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The dispatcher's verdict (outcome, wamid, error, ambiguous, completed_at); status, status_at and
    # error_* are merged from it and the wamid's statuses (projector.merge).
    Column("result", JSONB),
    UniqueConstraint("tenant_id", "wamid", name="uq_messages_tenant_wamid"),
    UniqueConstraint("tenant_id", "message_id", name="uq_messages_tenant_message_id"),
    Index("ix_messages_conversation", "tenant_id", "conversation_key", "sent_at"),
    Index("ix_messages_idempotency_key", "tenant_id", "idempotency_key"),
    Index("ix_messages_conversation_id", "tenant_id", "conversation_key", "id"),  # the inbox's preview, unread (0019)
)

# The send API's ledger (api.send_ledger): each accepted message, and the client's idempotency key for it,
# until the projector's ``messages`` row takes over; kept ``LEDGER_TTL_S`` (a key may be reused after that).
api_sends = Table(
    "api_sends", metadata,
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), primary_key=True),
    Column("message_id", Text, primary_key=True),
    Column("idempotency_key", Text),
    Column("conversation_key", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("command", JSONB),  # the command while its key is reserved and not yet acknowledged by the broker
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "idempotency_key", name="uq_api_sends_idempotency_key"),
    Index("ix_api_sends_created_at", "created_at"),
)

message_statuses = Table(
    "message_statuses", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("wamid", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_at", DateTime(timezone=True), nullable=False),
    Column("applied", Boolean, nullable=False),
    Column("error_code", Integer),
    Column("payload", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("error_title", Text),
    Column("error_details", Text),
    UniqueConstraint("tenant_id", "wamid", "status", name="uq_statuses_tenant_wamid_status"),
)

account_events = Table(
    "account_events", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False, unique=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("waba_id", Text, nullable=False),
    Column("phone_number_id", Text),
    Column("field", Text, nullable=False),
    Column("event", Text),
    Column("payload", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

# People who sign in to a tenant's account (the console). Emails are stored lower-cased and are unique
# across all tenants, so login needs only an email. Writer: the tenant API and the operator commands.
users = Table(
    "users", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("email", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False),  # admin | agent
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("disabled_at", DateTime(timezone=True)),
)

# Console sessions: only sha256(token) is stored, like API keys.
sessions = Table(
    "sessions", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    Column("user_id", UUID(as_uuid=False), ForeignKey("users.id"), nullable=False, index=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

# Embedded Signup attempts, one row per OAuth state nonce. Writer: the projector (pending from
# ``signup.requests``, the outcome from ``signup.results``); the console reads the latest.
signups = Table(
    "signups", metadata,
    Column("attempt_id", Text, primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("status", Text, nullable=False),  # pending | connected | failed
    Column("step", Text),
    Column("error_code", Integer),
    Column("error_message", Text),
    Column("reconnected", Boolean),
    Column("result", JSONB),
    Column("requested_by", Text),
    Column("requested_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_signups_tenant", "tenant_id", "updated_at"),
)


# --- conversations: configuration (writer: the tenant API) ---------------------------------------

tenant_settings = Table(
    "tenant_settings", metadata,
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), primary_key=True),
    Column("timezone", Text, nullable=False, server_default="UTC"),
    Column("business_hours", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("ai_provider", Text, nullable=False, server_default="offline"),  # offline | openai | off
    Column("ai_threshold", Float, nullable=False, server_default="0.7"),
    Column("ai_small_talk", JSONB),  # ai.small_talk.SmallTalk; NULL: the default replies
    Column("waiting", JSONB),  # automations.waiting.WaitingReplies; NULL: the defaults
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

automation_rules = Table(
    "automation_rules", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("stop", Boolean, nullable=False, server_default=false()),
    Column("trigger", JSONB, nullable=False),
    Column("conditions", JSONB, nullable=False),
    Column("actions", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_automation_rules_tenant", "tenant_id", "position"),
)

knowledge_entries = Table(
    "knowledge_entries", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("keywords", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# An agent is a user who takes conversations; presence lives in Redis (it expires without a heartbeat).
agents = Table(
    "agents", metadata,
    Column("user_id", UUID(as_uuid=False), ForeignKey("users.id"), primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("display_name", Text),
    Column("capacity", Integer, nullable=False, server_default="5"),
    Column("teams", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

conversation_notes = Table(
    "conversation_notes", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("conversation_key", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_conversation_notes", "tenant_id", "conversation_key", "created_at"),
)

# Each user's read marker per conversation (migration 0019; writer: the inbox API when the user opens the thread):
# the highest ``messages.id`` seen, never lowered; the inbox counts the customer's messages above it as unread.
conversation_reads = Table(
    "conversation_reads", metadata,
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("user_id", UUID(as_uuid=False), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("conversation_key", Text, nullable=False),
    Column("last_read_id", BigInteger, nullable=False),
    Column("read_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant_id", "user_id", "conversation_key", name="pk_conversation_reads"),
)

# --- conversations: history (writer: the projector) ----------------------------------------------

rule_executions = Table(
    "rule_executions", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False, unique=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("rule_id", Text, nullable=False),
    Column("rule_name", Text, nullable=False),
    Column("conversation_key", Text, nullable=False),
    Column("trigger_event", Text, nullable=False),
    Column("actions", JSONB, nullable=False),
    Column("stopped", Boolean, nullable=False),
    Column("executed_at", DateTime(timezone=True), nullable=False),
    Index("ix_rule_executions_tenant", "tenant_id", "rule_id", "executed_at"),
)

conversation_events = Table(
    "conversation_events", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False, unique=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("conversation_key", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_conversation_events", "tenant_id", "conversation_key", "id"),
    Index("ix_conversation_events_kind", "tenant_id", "kind", "at"),  # the AI's knowledge gaps
)

# The conversation processor's state of each conversation with its version (writer: the processor, in the
# same step as its Redis copy; a write never replaces a newer version): what survives Redis losing its data.
conversation_state = Table(
    "conversation_state", metadata,
    Column("conversation_key", Text, primary_key=True),  # "{phone_number_id}:{wa_id}"
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("state", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


# Where each dead letter came from and why (projector.dead_letters); the records stay in their topics.
dead_letters = Table(
    "dead_letters", metadata,
    Column("event_id", Text, primary_key=True),
    Column("consumer_group", Text, nullable=False),
    Column("source_topic", Text, nullable=False),
    Column("source_partition", Integer, nullable=False),
    Column("source_offset", BigInteger, nullable=False),
    Column("part", Text),
    Column("error_type", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False),
    Index("ix_dead_letters_group_failed_at", "consumer_group", "failed_at"),
)


# --- campaigns (writers: the API for campaigns and their CSV rows; the campaign stream processors for the
# recipients and a campaign's progress columns) ---------------------------------------------------------------
campaigns = Table(
    "campaigns", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("state", Text, nullable=False, server_default="draft"),  # campaigns.states.CampaignState
    Column("state_reason", Text),
    Column("phone_number_id", Text, nullable=False),
    Column("template_name", Text, nullable=False),
    Column("template_language", Text, nullable=False),
    Column("template_category", Text, nullable=False, server_default="marketing"),
    Column("parameter_format", Text, nullable=False, server_default="positional"),
    Column("audience", JSONB, nullable=False),  # {"kind": "segment"|"csv"|"retarget", ...}
    Column("variables", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("schedule", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("send_at", DateTime(timezone=True)),
    Column("audience_size", Integer),
    Column("expanded", Integer, nullable=False, server_default="0"),
    Column("expanded_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("launched_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    # The expander's next page, held until the campaign's sends need it (an encoded CampaignJob; 0024).
    Column("paced_until", DateTime(timezone=True)),
    Column("paced_job", Text),
    Index("ix_campaigns_tenant_created", "tenant_id", "created_at", "id"),
    Index("ix_campaigns_due", "state", "send_at"),
    Index("ix_campaigns_paced", "paced_until", postgresql_where=text("paced_until IS NOT NULL")),
)

# A CSV audience's rows as uploaded (line order), normalised, with the problem that skips a row.
campaign_audience_rows = Table(
    "campaign_audience_rows", metadata,
    Column("campaign_id", UUID(as_uuid=False), ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("wa_id", Text),
    Column("raw", Text, nullable=False),
    Column("columns", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("problem", Text),  # invalid_number | duplicate
)

# One row per campaign and contact (``contact`` is the wa_id, or ``line:<n>`` for a CSV row without one).
campaign_recipients = Table(
    "campaign_recipients", metadata,
    Column("campaign_id", UUID(as_uuid=False), ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("contact", Text, primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("wa_id", Text),
    Column("seq", Integer, nullable=False),  # position in the audience
    Column("state", Text, nullable=False),  # campaigns.states.RecipientState
    Column("rank", SmallInteger, nullable=False),
    Column("reason", Text),  # skip reason, or why a queued recipient waits
    Column("error_code", Integer),
    Column("error_title", Text),
    Column("message_id", Text),
    Column("wamid", Text),
    Column("ambiguous", Boolean, nullable=False, server_default=false()),
    Column("queued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("submitted_at", DateTime(timezone=True)),
    Column("sent_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("read_at", DateTime(timezone=True)),
    Column("replied_at", DateTime(timezone=True)),
    Column("failed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_campaign_recipients_state", "campaign_id", "state", "seq"),
    Index("ix_campaign_recipients_page", "campaign_id", "seq"),
    Index("ix_campaign_recipients_contact", "tenant_id", "wa_id", "submitted_at"),
)

# Signed counts of a campaign's recipients by state and detail (reason, or error code as text), written by
# triggers on campaign_recipients in the writer's transaction and folded by the funnel worker (migration 0022;
# campaigns.store.state_counts reads them, fold_tallies folds them).
campaign_recipient_tallies = Table(
    "campaign_recipient_tallies", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("campaign_id", UUID(as_uuid=False), ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("state", Text, nullable=False),
    Column("detail", Text),
    Column("n", BigInteger, nullable=False),
    Index("ix_campaign_recipient_tallies_campaign", "campaign_id"),
)


# --- contacts: opt-out history, imports, segments (migration 0013) ------------------------------

# Every opt-out and opt-in of a contact, whoever made it (writers: the projector for STOP/START, rules and Meta's
# user_preferences webhooks; the tenant API for an admin's). A contact's opted_out is its latest (by time, then
# event id), so the order the changes are written in does not matter (contacts.optout).
contact_opt_changes = Table(
    "contact_opt_changes", metadata,
    Column("event_id", Text, primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("wa_id", Text, nullable=False),
    Column("opted_out", Boolean, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("source", Text, nullable=False),
    Column("actor", Text),
    Column("detail", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_contact_opt_changes_contact", "tenant_id", "wa_id", "at"),
)

# CSV imports and their progress (writer: the tenant API process that received the file).
contact_imports = Table(
    "contact_imports", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("status", Text, nullable=False),  # running | completed | failed
    Column("filename", Text),
    Column("encoding", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("mapping", JSONB, nullable=False),
    Column("bytes_read", BigInteger, nullable=False, server_default="0"),
    Column("rows", Integer, nullable=False, server_default="0"),
    Column("created", Integer, nullable=False, server_default="0"),
    Column("updated", Integer, nullable=False, server_default="0"),
    Column("invalid", Integer, nullable=False, server_default="0"),
    Column("duplicates", Integer, nullable=False, server_default="0"),
    Column("errors", JSONB, nullable=False, server_default=text("'[]'::jsonb")),  # the first invalid rows
    Column("error", Text),
    Column("requested_by", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Index("ix_contact_imports_tenant", "tenant_id", "created_at", "id"),
)

# Saved audiences: a filter on tags and attributes (contacts.segments). Writer: the tenant API.
segments = Table(
    "segments", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("filter", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "name", name="uq_segments_tenant_name"),
    Index("ix_segments_tenant", "tenant_id", "created_at", "id"),
)

# Contacts' lists, lookups by number and segment filters (JSONB containment on tags and attributes).
Index("ix_contacts_list", contacts.c.tenant_id, contacts.c.created_at, contacts.c.wa_id)
Index("uq_contacts_tenant_e164", contacts.c.tenant_id, contacts.c.e164, unique=True,
      postgresql_where=contacts.c.e164.isnot(None))
Index("ix_contacts_tags", contacts.c.tags, postgresql_using="gin")
Index("ix_contacts_attributes", contacts.c.attributes, postgresql_using="gin")

# --- tenants' outbound webhooks (writers: the API for endpoints and redelivery requests, the deliverer for the rest)

webhook_endpoints = Table(
    "webhook_endpoints", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("events", JSONB, nullable=False, server_default=text("'[]'::jsonb")),  # [] = every event
    Column("enabled", Boolean, nullable=False, server_default=true()),  # the tenant's switch
    # Signing secrets (whsec_…): the current one, and the previous one until its overlap ends (both sign).
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text),
    Column("previous_secret_until", DateTime(timezone=True)),
    # Set by the deliverer: failing since (cleared by a success), disabled (410, or failing for too long) and why.
    Column("failing_since", DateTime(timezone=True)),
    Column("disabled_at", DateTime(timezone=True)),
    Column("disabled_reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_webhook_endpoints_tenant", "tenant_id", "created_at", "id"),
)

# One row per event some endpoint subscribed to: the exact body delivered (and signed).
webhook_events = Table(
    "webhook_events", metadata,
    Column("event_id", Text, primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("type", Text, nullable=False),
    Column("ordering_key", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_webhook_events_tenant", "tenant_id", "recorded_at"),
)

# The durable queue and delivery log: one row per (endpoint, event, origin); origin is "live" or a redelivery id.
webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("seq", BigInteger, Identity(), nullable=False, unique=True),  # order within an ordering key
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("endpoint_id", UUID(as_uuid=False), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
           nullable=False),
    Column("event_id", Text, ForeignKey("webhook_events.event_id"), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("ordering_key", Text, nullable=False),
    Column("origin", Text, nullable=False),
    Column("state", Text, nullable=False, server_default="pending"),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("response_status", Integer),
    Column("latency_ms", Integer),
    Column("last_error", Text),
    Column("finished_at", DateTime(timezone=True)),
    UniqueConstraint("endpoint_id", "event_id", "origin", name="uq_webhook_deliveries_event"),
    CheckConstraint("state IN ('pending', 'delivered', 'dead')", name="ck_webhook_deliveries_state"),
    Index("ix_webhook_deliveries_head", "endpoint_id", "ordering_key", "seq",
          postgresql_where=text("state = 'pending'")),
    Index("ix_webhook_deliveries_log", "endpoint_id", "created_at", "id"),
)

# Which record first named a conversation or contact, and which opted a contact out: the guard of the
# conversation.created, contact.created and contact.opted_out events (a replay of that record gives them again).
webhook_subjects = Table(
    "webhook_subjects", metadata,
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), primary_key=True),
    Column("subject", Text, primary_key=True),  # "conversation:{key}" | "contact:{wa_id}"
    Column("first_source", Text, nullable=False),
    Column("opted_out", Boolean, nullable=False, server_default=false()),
    Column("opted_out_source", Text),
)

# Redelivery requests (one event, or a time range read again from Kafka), carried out by the deliverer.
webhook_redeliveries = Table(
    "webhook_redeliveries", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("endpoint_id", UUID(as_uuid=False), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
           nullable=False),
    Column("event_id", Text),
    Column("since", DateTime(timezone=True), nullable=False),
    Column("until", DateTime(timezone=True), nullable=False),
    Column("state", Text, nullable=False, server_default="requested"),  # requested | done | failed
    Column("events", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Column("requested_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("done_at", DateTime(timezone=True)),
    Index("ix_webhook_redeliveries_state", "state", "requested_at"),
)

# --- templates (writer: the projector, from templates.results and the template webhooks) ----------

# The per-WABA template registry: one row per (WABA, name, language), its id derived from those
# (templates.registry.template_id). ``status_at`` is Meta's time of the fact the status comes from (a webhook's
# entry time, a sync's fetch time), so an older fact never overwrites a newer one.
message_templates = Table(
    "message_templates", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("waba_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("language", Text, nullable=False),
    Column("meta_id", Text),
    Column("category", Text, nullable=False),
    Column("status", Text, nullable=False),  # SUBMITTING | PENDING | APPROVED | REJECTED | PAUSED | DISABLED | …
    Column("status_reason", Text),
    Column("quality", Text),  # GREEN | YELLOW | RED | UNKNOWN
    Column("previous_category", Text),
    Column("parameter_format", Text, nullable=False, server_default="positional"),
    Column("components", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("request_id", Text),
    Column("error_code", Integer),
    Column("error_message", Text),
    Column("status_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "waba_id", "name", "language", name="uq_message_templates_key"),
    Index("ix_message_templates_tenant", "tenant_id", "name", "language"),
)

# The last registry sync of each WABA; a WABA synced at least once has a registry that knows all its templates.
template_syncs = Table(
    "template_syncs", metadata,
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), primary_key=True),
    Column("waba_id", Text, primary_key=True),
    Column("request_id", Text, nullable=False),
    Column("status", Text, nullable=False),  # done | failed
    Column("templates", Integer),
    Column("error_code", Integer),
    Column("error_message", Text),
    Column("synced_at", DateTime(timezone=True)),  # the last successful sync
    Column("finished_at", DateTime(timezone=True), nullable=False),
)

# --- media (0016) -------------------------------------------------------------------------------------------
# Media files in the media store (mediastore/, key ``{tenant_id}/{id}``): ``inbound`` rows are written by the
# projector from the dispatcher's ``media.results`` (the id derives from the message's wamid), ``upload`` rows by
# the API's ``POST /v1/media``; the dispatcher's pruner deletes both past their tenant's retention.
media = Table(
    "media", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("origin", Text, nullable=False),  # inbound | upload
    Column("kind", Text, nullable=False),  # image | video | audio | document | sticker
    Column("status", Text, nullable=False),  # stored | failed
    Column("mime_type", Text),
    Column("size_bytes", BigInteger),
    Column("sha256", Text),
    Column("filename", Text),
    Column("storage_key", Text),
    Column("wamid", Text),
    Column("phone_number_id", Text),
    Column("conversation_key", Text),
    Column("error_code", Integer),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("origin IN ('inbound', 'upload')", name="ck_media_origin"),
    CheckConstraint("status IN ('stored', 'failed')", name="ck_media_status"),
    Index("ix_media_tenant", "tenant_id", "created_at"),
    Index("ix_media_wamid", "tenant_id", "wamid"),
)

# A tenant's media retention in days (no row: AEROSTIC_MEDIA_RETENTION_DAYS).
media_settings = Table(
    "media_settings", metadata,
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), primary_key=True),
    Column("retention_days", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("retention_days BETWEEN 1 AND 3650", name="ck_media_settings_retention"),
)

# Every identity a customer was seen with (a number or a BSUID) → the person's one identity (migration 0018;
# schemas.identity). Written once, never re-pointed.
contact_identities = Table(
    "contact_identities", metadata,
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("identity", Text, nullable=False),
    Column("canonical", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant_id", "identity", name="pk_contact_identities"),
    Index("ix_contact_identities_canonical", "tenant_id", "canonical"),
)

canned_responses = Table(
    "canned_responses", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", UUID(as_uuid=False), ForeignKey("tenants.id"), nullable=False),
    Column("shortcut", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "shortcut", name="uq_canned_responses_shortcut"),
    CheckConstraint("char_length(text) BETWEEN 1 AND 4096", name="ck_canned_responses_text"),
)

# The dashboards' range queries (migration 0021; api.dashboard_queries): messages by time, and each
# conversation's state changes by state and time (closes, hand-offs).
Index("ix_messages_tenant_time", messages.c.tenant_id, messages.c.sent_at,
      postgresql_include=["direction", "status"])
# The early rows (statuses' wamids before their message is known) by idempotency key (migration 0023;
# projector.settle._REPORTED): the plan of that per-message lookup at every table size.
Index("ix_messages_early_by_key", messages.c.tenant_id, messages.c.idempotency_key, postgresql_include=["wamid"],
      postgresql_where=text("message_id IS NULL AND wamid IS NOT NULL"))
Index("ix_conversation_events_states", conversation_events.c.tenant_id, conversation_events.c.conversation_key,
      text("(payload ->> 'state')"), conversation_events.c.at,
      postgresql_where=text("kind = 'conversation_changed'"))
