"""Reading contact CSVs: encodings (UTF-8 with and without BOM, Windows-1252), header mapping, invalid rows by
line with the reason, duplicate rows merged, the size bound, and that the file is read as a stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from contacts.csv_import import (
    BadHeader,
    Invalid,
    Mapping,
    Parsed,
    Rows,
    Spool,
    TooLarge,
    parse,
    resolve,
    slug,
)
from contacts.importer import _batches


def spool(tmp_path: Path, data: bytes, *, chunk: int = 7, limit: int | None = None) -> Rows:
    path = tmp_path / "upload.csv"
    s = Spool(path, **({"limit": limit} if limit else {}))
    for i in range(0, len(data), chunk):  # small chunks: a multi-byte character is cut between two of them
        s.write(data[i:i + chunk])
    return Rows(path, s.close())


def read(rows: Rows, mapping: Mapping | None = None) -> list[Parsed | Invalid]:
    columns = resolve(rows.header(), mapping or Mapping())
    return [item if isinstance(item, Invalid) else parse(columns, *item) for item in rows]


TEXT = "Phone,Name,City,Tags\n+91 98765 43210,Zoë Ñúñez,Pune,vip;lead\n"


@pytest.mark.parametrize(("data", "encoding"), [
    (TEXT.encode("utf-8"), "utf-8"),
    (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8-sig"),
    (TEXT.encode("cp1252"), "cp1252"),
])
def test_encodings(tmp_path: Path, data: bytes, encoding: str) -> None:
    rows = spool(tmp_path, data)
    assert rows.encoding == encoding
    assert rows.header() == ["Phone", "Name", "City", "Tags"]  # no BOM left in the first column's name
    [contact] = read(rows)
    assert isinstance(contact, Parsed)
    assert (contact.e164, contact.name, contact.attributes, contact.tags) == (
        "+919876543210", "Zoë Ñúñez", {"city": "Pune"}, ["vip", "lead"])


def test_cp1252_smart_quotes_and_euro(tmp_path: Path) -> None:
    rows = spool(tmp_path, "phone,note\n16505551234,“50 €”\n".encode("cp1252"))
    [contact] = read(rows)
    assert rows.encoding == "cp1252" and isinstance(contact, Parsed) and contact.attributes == {"note": "“50 €”"}


def test_invalid_rows_are_reported_by_line_with_the_reason(tmp_path: Path) -> None:
    data = (b"phone,name\n"
            b"16505551234,Ann\n"
            b",No number\n"
            b"12345,Short\n"
            b"\n"  # a blank line is skipped, not an error
            b"abc,Letters\n"
            b'"16505551235","Multi\nline"\n'
            b"16505551236,Too,many,fields\n"
            b"16505551237,Bob\n")
    items = read(spool(tmp_path, data))
    invalid = [(i.line, i.reason) for i in items if isinstance(i, Invalid)]
    assert invalid == [(3, "no phone number"), (4, "too short"), (6, "letters in a phone number"),
                       (9, "4 fields where the header has 2")]
    assert [p.name for p in items if isinstance(p, Parsed)] == ["Ann", "Multi\nline", "Bob"]


def test_mapping_by_column_names_and_keys(tmp_path: Path) -> None:
    data = b"Mobile No,Customer,Plan,Ignored,Labels\n09876543210,Asha,gold,x,a|b\n"
    mapping = Mapping(phone="mobile no", name="Customer", tags_column="labels", attributes={"Plan": "tier"},
                      tags=("imported",), region="IN")
    [contact] = read(spool(tmp_path, data), mapping)
    assert isinstance(contact, Parsed)
    assert (contact.e164, contact.name, contact.attributes, contact.tags) == (
        "+919876543210", "Asha", {"tier": "gold"}, ["imported", "a", "b"])


@pytest.mark.parametrize(("header", "mapping", "field"), [
    ("name,city", Mapping(), "phone_column"),
    ("phone,city", Mapping(phone="mobile"), "phone_column"),
    ("phone,city", Mapping(name="full"), "name_column"),
    ("phone,city", Mapping(attributes={"town": "town"}), "attribute"),
    ("phone,City,city ", Mapping(), "attribute"),  # two columns give the attribute "city"
    ("", Mapping(), "file"),
])
def test_a_header_that_does_not_fit_names_the_parameter(tmp_path: Path, header: str, mapping: Mapping,
                                                        field: str) -> None:
    rows = spool(tmp_path, f"{header}\n1,2\n".encode())
    with pytest.raises(BadHeader) as caught:
        resolve(rows.header(), mapping)
    assert caught.value.field == field


def test_duplicate_rows_are_merged_within_a_batch(tmp_path: Path) -> None:
    data = (b"phone,name,city,tags\n"
            b"+16505551234,Ann,Pune,a\n"
            b"1 650 555 1234,,Goa,b\n"  # the same number written otherwise
            b"16505551235,Bob,,\n")
    rows = spool(tmp_path, data)
    [(batch, invalid, read_rows)] = list(_batches(rows, resolve(rows.header(), Mapping())))
    assert (invalid, read_rows, list(batch)) == ([], 3, ["+16505551234", "+16505551235"])
    ann = batch["+16505551234"]
    assert (ann.name, ann.attributes, ann.tags, ann.merged) == ("Ann", {"city": "Goa"}, ["a", "b"], 1)


def test_the_size_is_bounded_while_it_arrives(tmp_path: Path) -> None:
    with pytest.raises(TooLarge):
        spool(tmp_path, b"phone\n" + b"16505551234\n" * 100, limit=500)


def test_large_files_are_read_as_a_stream(tmp_path: Path) -> None:
    lines = "".join(f"+1650555{i:04d},n{i}\n" for i in range(5000))
    rows = spool(tmp_path, ("phone,name\n" + lines).encode(), chunk=65536)
    columns = resolve(rows.header(), Mapping())
    batches = _batches(rows, columns)
    first, _, count = next(batches)
    assert count == 1000 and len(first) == 1000
    assert 0 < rows.bytes_read < rows.path.stat().st_size  # only part of the file has been read
    total = count + sum(n for _, _, n in batches)
    assert total == 5000 and rows.bytes_read == rows.path.stat().st_size


def test_slugs() -> None:
    assert slug(" First Name ") == "first_name"
    assert slug("E-mail (work)") == "e_mail_work"
    assert slug("!!!") == "column"
