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

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {"phone": "+1 555 123 4567", "name": "Maria Lopez", "tags": ["vip"], "attributes": {"city": "Austin"}},
            {"phone": "0151 2345678", "region": "DE", "name": "Jonas Weber"},
        ]},
        extra="forbid")

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

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "name": "Maria Lopez", "add_tags": ["newsletter"], "remove_tags": ["trial"],
                "attributes": {"plan": "gold"}, "remove_attributes": ["coupon"],
            },
        ]},
        extra="forbid")

    name: Name | None = None
    add_tags: Tags = Field(default_factory=list)
    remove_tags: Tags = Field(default_factory=list)
    attributes: Attributes = Field(default_factory=dict)
    remove_attributes: Annotated[list[AttributeKey], Field(max_length=MAX_ATTRIBUTES)] = Field(default_factory=list)


class OptChange(BaseModel):
    """An admin's opt-out or opt-in, with why."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "asked by phone to stop marketing messages"}]},
        extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class ContactPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "a7c3e1f9-4b2d-4e6a-8c0b-1d2e3f4a5b6c", "wa_id": "15551234567", "phone": "+15551234567",
                "user_id": None, "username": None, "name": "Maria Lopez", "tags": ["vip", "newsletter"],
                "attributes": {"city": "Austin"}, "opted_out": False, "opted_out_at": None, "opt_source": None,
                "opt_actor": None, "created_at": "2026-11-02T09:58:00Z", "updated_at": "2026-12-01T09:14:03Z",
            },
        ]})

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
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {"opted_out": True, "at": "2026-12-01T09:14:03Z", "source": "keyword", "actor": None, "detail": "STOP"},
        ]})

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
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "6e8a0c2e-4b6d-4f8a-9c1e-3b5d7f9a1c3e", "status": "completed", "filename": "customers.csv",
                "encoding": "utf-8", "size_bytes": 48213, "bytes_read": 48213, "progress": 1.0,
                "mapping": {"phone": "Phone", "name": "Full name", "tags": "Tags"}, "rows": 1000, "created": 950,
                "updated": 40, "invalid": 7, "duplicates": 3,
                "errors": [{"line": 18, "reason": "not a phone number", "value": "n/a"}], "error": None,
                "created_at": "2026-12-01T09:14:03Z", "finished_at": "2026-12-01T09:14:05Z",
            },
        ]})

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

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "name": "VIPs in Austin",
                "filter": {
                    "tags_all": ["vip"], "tags_any": [], "tags_none": ["churned"],
                    "attributes": [{"key": "city", "op": "eq", "value": "Austin"}], "include_opted_out": False,
                },
            },
        ]},
        extra="forbid")

    name: Name
    filter: SegmentFilter


class SegmentPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "0d2f4b6d-8f0a-4c2e-9b4d-6f8a0c2e4b6d", "name": "VIPs in Austin",
                "filter": {
                    "tags_all": ["vip"], "tags_any": [], "tags_none": ["churned"],
                    "attributes": [{"key": "city", "op": "eq", "value": "Austin"}], "include_opted_out": False,
                },
                "created_at": "2026-11-21T10:00:00Z", "updated_at": "2026-11-21T10:00:00Z",
            },
        ]})

    id: str
    name: str
    filter: SegmentFilter
    created_at: datetime
    updated_at: datetime


class SegmentCount(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"count": 128}]})

    count: int
