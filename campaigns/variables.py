"""Template variables of a campaign, mapped per recipient from contact fields or CSV columns, with defaults.

Variables are keyed by the template's ``Variable.ref`` (``body.1``, ``body.first_name``, ``header``,
``button.0``); ``templates.sending.send_components`` turns the values into Meta's send components.

A mapping entry names its source: ``wa_id`` or ``profile_name`` (the contact's fields), ``attribute:<name>``
(a contact attribute), ``column:<name>`` (a column of the campaign's CSV) or ``text:<value>`` (a constant);
``default`` is used when the source is empty. A variable with neither is an error for that recipient.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_VARIABLES = 50
MAX_VALUE_CHARS = 1024
FIELDS = ("wa_id", "profile_name")
SOURCE_KINDS = ("attribute", "column", "text")


class VariableSource(BaseModel):
    """Where one template variable comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1, max_length=200)
    default: str | None = Field(default=None, max_length=MAX_VALUE_CHARS)

    @field_validator("source")
    @classmethod
    def _known(cls, value: str) -> str:
        kind, sep, name = value.partition(":")
        if value in FIELDS or (sep and kind in SOURCE_KINDS and (name or kind == "text")):
            return value
        raise ValueError(f"source must be one of {', '.join(FIELDS)}, attribute:<name>, column:<name> or text:<value>")


class MissingVariable(ValueError):
    """A recipient has no value (and the mapping no default) for a variable."""


def resolve(mapping: Mapping[str, VariableSource], contact: Mapping[str, Any],
            row: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each variable's value for one recipient: ``contact`` has ``wa_id``, ``profile_name``, ``attributes``."""
    values: dict[str, str] = {}
    attributes = contact.get("attributes") or {}
    for name, spec in mapping.items():
        kind, _, key = spec.source.partition(":")
        if spec.source in FIELDS:
            raw: Any = contact.get(spec.source)
        elif kind == "attribute":
            raw = attributes.get(key)
        elif kind == "column":
            raw = (row or {}).get(key)
        else:
            raw = key
        value = "" if raw is None else str(raw).strip()
        if not value:
            if spec.default is None:
                raise MissingVariable(f"no value for variable {name!r} ({spec.source}) and no default")
            value = spec.default
        values[name] = value[:MAX_VALUE_CHARS]
    return values

