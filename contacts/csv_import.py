"""Reading a contacts CSV of any size as a stream: encoding, header mapping, one row at a time (pure; no database).

The upload is spooled to a file as it arrives (``Spool``: size bounded, encoding detected on the way: UTF-8 with
or without BOM, else Windows-1252), then read back row by row (``rows``), never whole. ``Mapping`` says which
column is the phone number, the name, the tags, and which columns become which attributes; ``parse`` turns
one row into a ``Parsed`` contact or an ``Invalid`` with the reason. ``merge`` folds a duplicate row into the
first (attributes: later non-empty values win; tags: union; name: the later non-empty).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from contacts.phones import InvalidNumber, normalise

MAX_FILE_BYTES = 50 * 1024 * 1024  # about 500,000 rows of a few columns
MAX_COLUMNS = 200
MAX_HEADER = 100  # characters of a column name
MAX_VALUE = 1000  # characters of an attribute value (what the API allows)
MAX_NAME = 200
MAX_TAG = 100
MAX_ROW_TAGS = 20
MAX_ATTRIBUTES = 100
PHONE_HEADERS = ("phone", "phone number", "phone_number", "mobile", "mobile number", "number", "whatsapp",
                 "whatsapp number", "wa_id", "msisdn", "contact number")
NAME_HEADERS = ("name", "full name", "full_name", "contact name")
TAGS_HEADERS = ("tags", "tag", "labels")
TAG_SEPARATORS = re.compile(r"[;|,]")
csv.field_size_limit(64 * 1024)  # a longer field is an unreadable row, not a memory sink


class TooLarge(ValueError):
    """The upload passed ``MAX_FILE_BYTES``."""


class BadHeader(ValueError):
    """The header does not fit the mapping (``field`` names the parameter at fault)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Spool:
    """Writes an upload to ``path`` chunk by chunk, counting its size and telling its encoding."""

    def __init__(self, path: Path, limit: int = MAX_FILE_BYTES) -> None:
        self.path, self.limit, self.size = path, limit, 0
        self._file: IO[bytes] = path.open("wb")
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._is_utf8 = True
        self._head = b""

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise TooLarge(f"the file is larger than {self.limit // (1024 * 1024)} MiB")
        if len(self._head) < 3:
            self._head += chunk[:3]
        if self._is_utf8:
            try:
                self._utf8.decode(chunk)
            except UnicodeDecodeError:
                self._is_utf8 = False
        self._file.write(chunk)

    def close(self) -> str:
        """Finish the file; its encoding: ``utf-8-sig`` (a BOM), ``utf-8``, else ``cp1252``."""
        self._file.close()
        if self._is_utf8:
            try:
                self._utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                self._is_utf8 = False
        if self._head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig" if self._is_utf8 else "cp1252"
        return "utf-8" if self._is_utf8 else "cp1252"

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class Counting(io.RawIOBase):
    """A binary file that counts the bytes read from it (how far an import has gone)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.read_bytes = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.read_bytes += n or 0
        return n or 0

    def close(self) -> None:
        self.raw.close()
        super().close()


def slug(header: str) -> str:
    """An attribute key from a column name: ``"First Name"`` → ``"first_name"``."""
    key = re.sub(r"[^\w]+", "_", header.strip().casefold()).strip("_")
    return key[:MAX_HEADER] or "column"


@dataclass(frozen=True)
class Mapping:
    """How columns become a contact: by column name (case-insensitive) as given, or found from usual names."""

    phone: str | None = None
    name: str | None = None
    tags_column: str | None = None
    attributes: dict[str, str] | None = None  # column → attribute key; None: every other column, by its slug
    tags: tuple[str, ...] = ()  # added to every contact imported
    region: str | None = None  # for numbers written without their country code

    def as_dict(self) -> dict[str, Any]:
        return {"phone": self.phone, "name": self.name, "tags_column": self.tags_column,
                "attributes": self.attributes, "tags": list(self.tags), "region": self.region}


@dataclass(frozen=True)
class Columns:
    """The mapping resolved against one file's header: column indexes."""

    width: int
    phone: int
    name: int | None
    tags: int | None
    attributes: tuple[tuple[int, str], ...]
    fixed_tags: tuple[str, ...]
    region: str | None


def resolve(header: list[str], mapping: Mapping) -> Columns:
    """The columns of ``mapping`` in ``header``; ``BadHeader`` naming the parameter at fault."""
    names = [h.strip() for h in header]
    if not any(names):
        raise BadHeader("file", "the file has no header row")
    if len(names) > MAX_COLUMNS:
        raise BadHeader("file", f"the file has {len(names)} columns; at most {MAX_COLUMNS}")
    folded = [n.casefold() for n in names]

    def find(param: str, given: str | None, usual: tuple[str, ...], required: bool) -> int | None:
        if given is not None:
            if given.strip().casefold() not in folded:
                raise BadHeader(param, f"no column {given!r} in the header ({', '.join(names)[:300]})")
            return folded.index(given.strip().casefold())
        found = next((folded.index(u) for u in usual if u in folded), None)
        if found is None and required:
            raise BadHeader(param, f"no phone column found in the header ({', '.join(names)[:300]}); "
                                   "name it with phone_column")
        return found

    phone = find("phone_column", mapping.phone, PHONE_HEADERS, True)
    assert phone is not None
    name = find("name_column", mapping.name, NAME_HEADERS, False)
    tags = find("tags_column", mapping.tags_column, TAGS_HEADERS, False)
    taken = {phone, name, tags}
    if mapping.attributes is None:
        attributes = tuple((i, slug(n)) for i, n in enumerate(names) if i not in taken and n)
    else:
        attributes = tuple((i, key) for column, key in mapping.attributes.items()
                           if (i := find("attribute", column, (), True)) is not None)
    if len(attributes) > MAX_ATTRIBUTES:
        raise BadHeader("attribute", f"{len(attributes)} attribute columns; at most {MAX_ATTRIBUTES}")
    keys = [key for _, key in attributes]
    if len(set(keys)) != len(keys):
        raise BadHeader("attribute", "two columns give the same attribute: " +
                        ", ".join(sorted({k for k in keys if keys.count(k) > 1})))
    return Columns(len(names), phone, name, tags, attributes, mapping.tags, mapping.region)


@dataclass
class Parsed:
    """One row's contact."""

    e164: str
    name: str | None
    tags: list[str]
    attributes: dict[str, str]
    line: int
    merged: int = 0  # rows merged into this one

    def merge(self, other: Parsed) -> None:
        """Fold a later row for the same number into this one."""
        self.name = other.name or self.name
        self.tags = [*self.tags, *(t for t in other.tags if t not in self.tags)]
        self.attributes.update({k: v for k, v in other.attributes.items() if v != ""})
        self.merged += 1


@dataclass(frozen=True)
class Invalid:
    line: int
    reason: str
    value: str | None = None


@dataclass
class Rows:
    """The rows of a spooled file, read as a stream: ``header`` first, then ``(line, fields)``."""

    path: Path
    encoding: str
    _counting: Counting | None = field(default=None, init=False)

    @property
    def bytes_read(self) -> int:
        return self._counting.read_bytes if self._counting else 0

    def header(self) -> list[str]:
        with self.path.open("r", encoding=self.encoding, errors="replace", newline="") as text:
            return next(csv.reader(text), [])

    def __iter__(self) -> Iterator[tuple[int, list[str]] | Invalid]:
        self._counting = Counting(self.path.open("rb"))
        with io.TextIOWrapper(io.BufferedReader(self._counting), encoding=self.encoding, errors="replace",
                              newline="") as text:
            reader = csv.reader(text)
            line = reader.line_num + 1
            try:
                next(reader)  # the header
            except (StopIteration, csv.Error):
                return
            while True:
                line = reader.line_num + 1
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield Invalid(line, f"unreadable CSV: {exc}")
                    continue
                if fields and any(f.strip() for f in fields):
                    yield line, fields


def parse(columns: Columns, line: int, fields: list[str]) -> Parsed | Invalid:
    """One row as a contact, or why it cannot be one."""
    if len(fields) > columns.width and any(f.strip() for f in fields[columns.width:]):
        return Invalid(line, f"{len(fields)} fields where the header has {columns.width}")
    fields = fields + [""] * (columns.width - len(fields))
    raw = fields[columns.phone].strip()
    if not raw:
        return Invalid(line, "no phone number")
    try:
        e164 = normalise(raw, columns.region)
    except InvalidNumber as exc:
        return Invalid(line, str(exc), raw[:100])
    name = fields[columns.name].strip() if columns.name is not None else ""
    if len(name) > MAX_NAME:
        return Invalid(line, f"name longer than {MAX_NAME} characters")
    tags = list(columns.fixed_tags)
    if columns.tags is not None:
        for tag in (t.strip() for t in TAG_SEPARATORS.split(fields[columns.tags])):
            if len(tag) > MAX_TAG:
                return Invalid(line, f"tag longer than {MAX_TAG} characters")
            if tag and tag not in tags:
                tags.append(tag)
    if len(tags) > MAX_ROW_TAGS + len(columns.fixed_tags):
        return Invalid(line, f"more than {MAX_ROW_TAGS} tags")
    attributes: dict[str, str] = {}
    for index, key in columns.attributes:
        value = fields[index].strip()
        if len(value) > MAX_VALUE:
            return Invalid(line, f"value of {key!r} longer than {MAX_VALUE} characters")
        if value:
            attributes[key] = value
    return Parsed(e164=e164, name=name or None, tags=tags, attributes=attributes, line=line)
