"""The topic catalogue: the single source of truth for every Kafka topic.

Each entry names the topic, what its key is, the model of its values, its partition count,
retention and cleanup policy. The launcher creates topics from here; producers and consumers
look names up here (with the deployment's optional prefix) instead of spelling them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from schemas import dead_letter, events, signup

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic: name, key description, value model, partitions, retention and cleanup."""

    name: str
    key: str
    value: type[BaseModel] | None
    partitions: int
    retention_ms: int = 7 * DAY_MS
    compacted: bool = False

    def full_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"

    def config(self) -> dict[str, str]:
        if self.compacted:
            return {"cleanup.policy": "compact"}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms)}


WEBHOOKS_RAW = TopicSpec("wa.webhooks.raw", "first phone_number_id in the body, else WABA id",
                         None, partitions=6, retention_ms=30 * DAY_MS)
INBOUND = TopicSpec("wa.inbound", "conversation key", events.InboundMessage, partitions=6)
STATUSES = TopicSpec("wa.statuses", "conversation key", events.StatusUpdate, partitions=6)
UNROUTABLE = TopicSpec("wa.unroutable", "phone_number_id", events.UnroutableEvent, partitions=3,
                       retention_ms=-1)
ACCOUNT_EVENTS = TopicSpec("wa.account.events", "WABA id", events.AccountEvent, partitions=3,
                           retention_ms=30 * DAY_MS)
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
CAMPAIGNS_PROGRESS = TopicSpec("campaigns.progress", "campaign id", None, partitions=3)
SIGNUP_REQUESTS = TopicSpec("signup.requests", "tenant id", signup.SignupRequest, partitions=3)
SIGNUP_RESULTS = TopicSpec("signup.results", "tenant id", signup.SignupResult, partitions=3)

# The consumer groups, and one dead-letter topic each: records a group's handling raised on for a reason of
# their own, set aside so the group goes on (``aerostic dlq`` lists, shows and replays them).
ROUTER_GROUP = "aerostic-router"
CONVERSATIONS_GROUP = "aerostic-conversations"
PROJECTOR_GROUP = "aerostic-projector"
AI_GROUP = "aerostic-ai"
DISPATCHER_GROUP = "aerostic-dispatcher"
SIGNUP_GROUP = "aerostic-dispatcher-signup"
GROUPS: tuple[str, ...] = (ROUTER_GROUP, CONVERSATIONS_GROUP, PROJECTOR_GROUP, AI_GROUP, DISPATCHER_GROUP,
                           SIGNUP_GROUP)
DEAD_LETTERS: dict[str, TopicSpec] = {
    group: TopicSpec(f"dlq.{group}", "the source record's key", dead_letter.DeadLetter, partitions=1,
                     retention_ms=-1)
    for group in GROUPS
}


def dead_letters(group: str) -> TopicSpec:
    """The dead-letter topic of ``group`` (a group outside the catalogue has none: a programming error)."""
    return DEAD_LETTERS[group]


CATALOGUE: tuple[TopicSpec, ...] = (
    WEBHOOKS_RAW, INBOUND, STATUSES, UNROUTABLE, ACCOUNT_EVENTS, TENANTS_DIRECTORY,
    CONVERSATIONS_COMMANDS, CONVERSATIONS_EVENTS, AI_REQUESTS, AI_DECISIONS,
    OUTBOUND_INTERACTIVE, OUTBOUND_BULK, OUTBOUND_RETRY, OUTBOUND_RESULTS,
    CAMPAIGNS_COMMANDS, CAMPAIGNS_PROGRESS, SIGNUP_REQUESTS, SIGNUP_RESULTS,
    *DEAD_LETTERS.values(),
)


def conversation_key(phone_number_id: str, wa_id: str) -> str:
    """The key of everything about one conversation: ``"{phone_number_id}:{wa_id}"``."""
    return f"{phone_number_id}:{wa_id}"
