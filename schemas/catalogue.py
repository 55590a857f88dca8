"""The topic catalogue: the single source of truth for every Kafka topic.

Each entry names the topic, what its key is, the model of its values, its partition count,
retention and cleanup policy. The launcher creates topics from here; producers and consumers
look names up here (with the deployment's optional prefix) instead of spelling them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from schemas import campaigns, dead_letter, events, media, presence, signup, templates

DAY_MS = 24 * 3600 * 1000

# Record sizes (``max.message.bytes``; the broker's own default is about 1 MiB). The ingress accepts webhooks
# up to WEBHOOK_MAX_BYTES (IngressSettings.max_body_bytes may lower that, never raise it); a topic that carries
# a webhook, or one event of it, takes that plus headroom for the key and the batch framing; a dead letter
# carries a record base64-encoded (4/3 of it) in an envelope. Producers may write the largest of these.
RECORD_DEFAULT_BYTES = 1024 * 1024
RECORD_HEADROOM_BYTES = 64 * 1024
WEBHOOK_MAX_BYTES = 3 * 1024 * 1024
WEBHOOK_RECORD_BYTES = WEBHOOK_MAX_BYTES + RECORD_HEADROOM_BYTES
DEAD_LETTER_RECORD_BYTES = -(-WEBHOOK_RECORD_BYTES // 3) * 4 + RECORD_HEADROOM_BYTES


@dataclass(frozen=True)
class TopicSpec:
    """One topic: name, key description, value model, partitions, retention, cleanup and largest record."""

    name: str
    key: str
    value: type[BaseModel] | None
    partitions: int
    retention_ms: int = 7 * DAY_MS
    compacted: bool = False
    max_message_bytes: int = RECORD_DEFAULT_BYTES

    def full_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"

    def config(self) -> dict[str, str]:
        size = {"max.message.bytes": str(self.max_message_bytes)}
        if self.compacted:
            return {"cleanup.policy": "compact", **size}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms), **size}


WEBHOOKS_RAW = TopicSpec("wa.webhooks.raw", "first phone_number_id in the body, else WABA id",
                         None, partitions=6, retention_ms=30 * DAY_MS, max_message_bytes=WEBHOOK_RECORD_BYTES)
INBOUND = TopicSpec("wa.inbound", "conversation key", events.InboundMessage, partitions=6,
                    max_message_bytes=WEBHOOK_RECORD_BYTES)
STATUSES = TopicSpec("wa.statuses", "conversation key", events.StatusUpdate, partitions=6,
                     max_message_bytes=WEBHOOK_RECORD_BYTES)
UNROUTABLE = TopicSpec("wa.unroutable", "phone_number_id", events.UnroutableEvent, partitions=3,
                       retention_ms=-1, max_message_bytes=WEBHOOK_RECORD_BYTES)
ACCOUNT_EVENTS = TopicSpec("wa.account.events", "WABA id", events.AccountEvent, partitions=3,
                           retention_ms=30 * DAY_MS, max_message_bytes=WEBHOOK_RECORD_BYTES)
TENANTS_DIRECTORY = TopicSpec("tenants.directory", "phone_number_id", events.DirectoryEntry,
                              partitions=3, compacted=True)

# Topics of later stages are catalogued now so the launcher creates the whole set once.
CONVERSATIONS_COMMANDS = TopicSpec("conversations.commands", "conversation key", None, partitions=6)
CONVERSATIONS_EVENTS = TopicSpec("conversations.events", "conversation key", None, partitions=6)
AI_REQUESTS = TopicSpec("ai.requests", "conversation key", None, partitions=6)
AI_DECISIONS = TopicSpec("ai.decisions", "conversation key", None, partitions=6)
OUTBOUND_INTERACTIVE = TopicSpec("outbound.interactive", "conversation key", None, partitions=6)
OUTBOUND_BULK = TopicSpec("outbound.bulk", "conversation key", None, partitions=6)
OUTBOUND_RETRY = TopicSpec("outbound.retry", "conversation key", None, partitions=6)
OUTBOUND_RESULTS = TopicSpec("outbound.results", "conversation key", None, partitions=6)
CAMPAIGNS_COMMANDS = TopicSpec("campaigns.commands", "campaign id", None, partitions=3)
CAMPAIGNS_PROGRESS = TopicSpec("campaigns.progress", "campaign id", campaigns.CampaignProgress, partitions=3)
CAMPAIGNS_RECIPIENTS = TopicSpec("campaigns.recipients", "{tenant id}:{contact}", campaigns.RecipientRecord,
                                 partitions=6)
SIGNUP_REQUESTS = TopicSpec("signup.requests", "tenant id", signup.SignupRequest, partitions=3)
SIGNUP_RESULTS = TopicSpec("signup.results", "tenant id", signup.SignupResult, partitions=3)
TEMPLATES_REQUESTS = TopicSpec("templates.requests", "WABA id", templates.TemplateRequest, partitions=3)
TEMPLATES_RESULTS = TopicSpec("templates.results", "WABA id", templates.TemplateResult, partitions=3)
MEDIA_REQUESTS = TopicSpec("media.requests", "conversation key", media.MediaRequest, partitions=3)
MEDIA_RESULTS = TopicSpec("media.results", "conversation key", media.MediaResult, partitions=3)
# Agents' presence changes, for the console's live feed (api.live); short-lived facts, a day is plenty.
AGENTS_PRESENCE = TopicSpec("agents.presence", "tenant id", presence.AgentPresence, partitions=3, retention_ms=DAY_MS)

# The consumer groups, and one dead-letter topic each: records a group's handling raised on for a reason of
# their own, set aside so the group goes on (``aerostic dlq`` lists, shows and replays them).
ROUTER_GROUP = "aerostic-router"
CONVERSATIONS_GROUP = "aerostic-conversations"
PROJECTOR_GROUP = "aerostic-projector"
AI_GROUP = "aerostic-ai"
DISPATCHER_GROUP = "aerostic-dispatcher"
SIGNUP_GROUP = "aerostic-dispatcher-signup"
TEMPLATES_GROUP = "aerostic-dispatcher-templates"
CAMPAIGN_EXPANDER_GROUP = "aerostic-campaign-expander"
CAMPAIGN_RECIPIENTS_GROUP = "aerostic-campaign-recipients"
CAMPAIGN_FUNNEL_GROUP = "aerostic-campaign-funnel"
DELIVERER_GROUP = "aerostic-deliverer"  # tenants' outbound webhooks
MEDIA_GROUP = "aerostic-dispatcher-media"  # media.requests → Meta → the media store (dispatcher)
GROUPS: tuple[str, ...] = (ROUTER_GROUP, CONVERSATIONS_GROUP, PROJECTOR_GROUP, AI_GROUP, DISPATCHER_GROUP,
                           SIGNUP_GROUP, TEMPLATES_GROUP, CAMPAIGN_EXPANDER_GROUP, CAMPAIGN_RECIPIENTS_GROUP,
                           CAMPAIGN_FUNNEL_GROUP, DELIVERER_GROUP, MEDIA_GROUP)
DEAD_LETTERS: dict[str, TopicSpec] = {
    group: TopicSpec(f"dlq.{group}", "the source record's key", dead_letter.DeadLetter, partitions=1,
                     retention_ms=-1, max_message_bytes=DEAD_LETTER_RECORD_BYTES)
    for group in GROUPS
}


def dead_letters(group: str) -> TopicSpec:
    """The dead-letter topic of ``group`` (a group outside the catalogue has none: a programming error)."""
    return DEAD_LETTERS[group]


CATALOGUE: tuple[TopicSpec, ...] = (
    WEBHOOKS_RAW, INBOUND, STATUSES, UNROUTABLE, ACCOUNT_EVENTS, TENANTS_DIRECTORY,
    CONVERSATIONS_COMMANDS, CONVERSATIONS_EVENTS, AI_REQUESTS, AI_DECISIONS,
    OUTBOUND_INTERACTIVE, OUTBOUND_BULK, OUTBOUND_RETRY, OUTBOUND_RESULTS,
    CAMPAIGNS_COMMANDS, CAMPAIGNS_PROGRESS, CAMPAIGNS_RECIPIENTS, SIGNUP_REQUESTS, SIGNUP_RESULTS,
    TEMPLATES_REQUESTS, TEMPLATES_RESULTS, MEDIA_REQUESTS, MEDIA_RESULTS, AGENTS_PRESENCE, *DEAD_LETTERS.values(),
)
MAX_RECORD_BYTES = max(spec.max_message_bytes for spec in CATALOGUE)  # what a producer may have to write


def conversation_key(phone_number_id: str, wa_id: str) -> str:
    """The key of everything about one conversation: ``"{phone_number_id}:{wa_id}"``."""
    return f"{phone_number_id}:{wa_id}"
