"""Request and response models of ``/v1/contacts``, ``/v1/contacts/imports`` and ``/v1/segments``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from contacts.phones import check_region
from contacts.segments import SegmentFilter
from contacts.store import MAX_ATTRIBUTES, MAX_TAGS

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
AttributeKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
AttributeValue = Annotated[str, StringConstraints(max_length=1000)]
Attributes = Annotated[dict[AttributeKey, AttributeValue], Field(max_length=MAX_ATTRIBUTES)]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Region = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=2)]


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


class ContactCreate(BaseModel):
    """A contact by phone number (any usual form; ``region`` for a number written without its country code)."""

    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=1, max_length=64)
    region: Region | None = None
    name: Name | None = None
    tags: Tags = Field(default_factory=list)
    attributes: Attributes = Field(default_factory=dict)

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        return _unique(tags)

    @field_validator("region")
    @classmethod
    def _region(cls, region: str | None) -> str | None:
        return check_region(region)


class ContactUpdate(BaseModel):
    """Changes to a contact: tags added and removed, attributes set and removed, the name."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    add_tags: Tags = Field(default_factory=list)
    remove_tags: Tags = Field(default_factory=list)
    attributes: Attributes = Field(default_factory=dict)
    remove_attributes: Annotated[list[AttributeKey], Field(max_length=MAX_ATTRIBUTES)] = Field(default_factory=list)


class OptChange(BaseModel):
    """An admin's opt-out or opt-in, with why."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class ContactPublic(BaseModel):
    id: str
    wa_id: str
    phone: str | None = Field(description="E.164; null when the WhatsApp id is no phone number and the customer "
                                          "shared none")
    user_id: str | None = Field(None, description="the customer's business-scoped user id (BSUID), when Meta gave it")
    username: str | None = Field(None, description="the customer's WhatsApp username: who they are without a number")
    name: str | None
    tags: list[str]
    attributes: dict[str, Any]
    opted_out: bool
    opted_out_at: datetime | None
    opt_source: str | None = Field(description="keyword | rule | meta | admin | conversation")
    opt_actor: str | None
    created_at: datetime
    updated_at: datetime


class OptChangePublic(BaseModel):
    opted_out: bool
    at: datetime
    source: str
    actor: str | None
    detail: str | None


class ImportRowError(BaseModel):
    line: int
    reason: str
    value: str | None = None


class ImportPublic(BaseModel):
    id: str
    status: str = Field(description="running | completed | failed")
    filename: str | None
    encoding: str
    size_bytes: int
    bytes_read: int
    progress: float = Field(description="share of the file read, 0 to 1")
    mapping: dict[str, Any]
    rows: int
    created: int
    updated: int
    invalid: int
    duplicates: int
    errors: list[ImportRowError] = Field(description="the first invalid rows with their line and reason")
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class SegmentCreate(BaseModel):
    """A named audience: a filter on tags and attributes (see ``contacts.segments``)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    filter: SegmentFilter


class SegmentPublic(BaseModel):
    id: str
    name: str
    filter: SegmentFilter
    created_at: datetime
    updated_at: datetime


class SegmentCount(BaseModel):
    count: int
