"""Enums of Meta's values, each tolerant of values Meta adds later.

An unknown value becomes ``UNKNOWN`` with a warning instead of failing validation
(the approach of pywa's ``StrEnum._missing_``); the raw value stays in the payload.
"""

from __future__ import annotations

import enum
import logging

log = logging.getLogger(__name__)

# Meta's throughput levels (messages/s) and messaging-limit tiers (unique business-initiated recipients per
# moving 24 h; None: unlimited): the dispatcher applies them, the console shows them.
THROUGHPUT_MPS = {"STANDARD": 80, "HIGH": 1000, "COEXISTENCE": 20}
TIER_LIMITS: dict[str, int | None] = {"TIER_50": 50, "TIER_250": 250, "TIER_1K": 1000, "TIER_2K": 2000,
                                      "TIER_10K": 10_000, "TIER_100K": 100_000, "TIER_UNLIMITED": None}


class TolerantEnum(enum.StrEnum):
    """A string enum whose unknown values map to ``UNKNOWN``."""

    @classmethod
    def _missing_(cls, value: object) -> TolerantEnum:
        log.warning("unknown %s value %r from Meta; treated as UNKNOWN", cls.__name__, value)
        return cls("UNKNOWN")


class MessageType(TolerantEnum):
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACTS = "contacts"
    REACTION = "reaction"
    INTERACTIVE = "interactive"
    BUTTON = "button"
    ORDER = "order"
    SYSTEM = "system"
    REQUEST_WELCOME = "request_welcome"
    UNSUPPORTED = "unsupported"
    EDIT = "edit"
    REVOKE = "revoke"
    UNKNOWN = "UNKNOWN"


class InteractiveType(TolerantEnum):
    BUTTON_REPLY = "button_reply"
    LIST_REPLY = "list_reply"
    NFM_REPLY = "nfm_reply"
    CALL_PERMISSION_REPLY = "call_permission_reply"
    UNKNOWN = "UNKNOWN"


class StatusValue(TolerantEnum):
    ACCEPTED = "accepted"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"
    DELETED = "deleted"
    UNKNOWN = "UNKNOWN"


class ChangeField(TolerantEnum):
    MESSAGES = "messages"
    ACCOUNT_UPDATE = "account_update"
    MESSAGE_TEMPLATE_STATUS_UPDATE = "message_template_status_update"
    MESSAGE_TEMPLATE_QUALITY_UPDATE = "message_template_quality_update"
    MESSAGE_TEMPLATE_COMPONENTS_UPDATE = "message_template_components_update"
    TEMPLATE_CATEGORY_UPDATE = "template_category_update"
    PHONE_NUMBER_QUALITY_UPDATE = "phone_number_quality_update"
    PHONE_NUMBER_NAME_UPDATE = "phone_number_name_update"
    CALLS = "calls"
    SMB_MESSAGE_ECHOES = "smb_message_echoes"
    USER_PREFERENCES = "user_preferences"
    GROUP_LIFECYCLE_UPDATE = "group_lifecycle_update"
    GROUP_SETTINGS_UPDATE = "group_settings_update"
    GROUP_PARTICIPANTS_UPDATE = "group_participants_update"
    UNKNOWN = "UNKNOWN"
