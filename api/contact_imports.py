"""CSV imports of contacts: ``/v1/contacts/imports`` (tenant admins).

``POST /v1/contacts/imports`` takes the CSV as the request body (``--data-binary @contacts.csv``, at most
``MAX_FILE_BYTES``, 413 past it) and the mapping as query parameters: ``phone_column`` (else the first column
named phone, mobile, number, whatsapp…), ``name_column``, ``tags_column`` (tags separated by ``;``, ``|`` or
``,``), ``attribute`` (repeated, ``Column`` or ``Column:key``; without any, every other column becomes an
attribute named after its header), ``tag`` (repeated: added to every contact), ``region`` (for numbers without
their country code). The body is spooled to a temporary file as it arrives (never held in memory), its encoding
told on the way (UTF-8 with or without BOM, else Windows-1252), its header checked against the mapping (422
naming the parameter), then the import runs in this process and the answer is 202 with the import.
``GET /v1/contacts/imports/{id}`` shows its progress and, at the end, the counts and the invalid rows.
A tenant runs one import at a time (409).
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from sqlalchemy import select

from api.auth import AdminDep, TenantDep
from api.contact_models import ImportPublic, ImportRowError
from api.deps import EngineDep
from api.pages import Page, PageDep, keyset, page_of
from contacts import importer
from contacts.csv_import import MAX_FILE_BYTES, BadHeader, Mapping, Rows, Spool, TooLarge, resolve
from contacts.phones import check_region
from db.tables import contact_imports

router = APIRouter(tags=["contacts"])  # mounted under /v1 by api.contacts

ImportId = Annotated[uuid.UUID, Path()]
Column = Annotated[str, Query(min_length=1, max_length=100)]
MAX_ATTRIBUTE_PARAMS = 100
MAX_TAG_PARAMS = 10
_running: set[asyncio.Task[None]] = set()  # held so they are not collected before they finish


def _public(row: Any) -> ImportPublic:
    state, error = importer.status_of(row)
    progress = 1.0 if state == "completed" else (min(row.bytes_read / row.size_bytes, 1.0) if row.size_bytes else 0.0)
    return ImportPublic(
        id=str(row.id), status=state, filename=row.filename, encoding=row.encoding, size_bytes=row.size_bytes,
        bytes_read=row.bytes_read, progress=round(progress, 4), mapping=row.mapping, rows=row.rows,
        created=row.created, updated=row.updated, invalid=row.invalid, duplicates=row.duplicates,
        errors=[ImportRowError.model_validate(e) for e in row.errors], error=error, created_at=row.created_at,
        finished_at=row.finished_at)


def _invalid(field: str, message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                         [{"loc": ["query", field], "msg": message, "type": "value_error"}])


def _mapping(phone_column: str | None, name_column: str | None, tags_column: str | None,
             attribute: list[str] | None, tag: list[str] | None, region: str | None) -> Mapping:
    try:
        region = check_region(region)
    except ValueError as exc:
        raise _invalid("region", str(exc)) from exc
    attributes: dict[str, str] | None = None
    if attribute:
        attributes = {}
        for spec in attribute:
            column, _, key = spec.partition(":")
            if not column.strip() or (key and not key.strip()):
                raise _invalid("attribute", f"{spec!r} is not 'Column' or 'Column:key'")
            attributes[column.strip()] = (key or column).strip()
    tags = tuple(dict.fromkeys(t.strip() for t in tag or () if t.strip()))
    return Mapping(phone=phone_column, name=name_column, tags_column=tags_column, attributes=attributes, tags=tags,
                   region=region)


@router.post("/contacts/imports", status_code=status.HTTP_202_ACCEPTED,
             responses={409: {"description": "an import of this tenant is running"},
                        413: {"description": f"the file is larger than {MAX_FILE_BYTES} bytes"}})
async def start_import(
    request: Request, principal: AdminDep, engine: EngineDep,
    phone_column: Column | None = None, name_column: Column | None = None, tags_column: Column | None = None,
    attribute: Annotated[list[str] | None, Query(max_length=MAX_ATTRIBUTE_PARAMS)] = None,
    tag: Annotated[list[str] | None, Query(max_length=MAX_TAG_PARAMS)] = None,
    region: Annotated[str | None, Query(min_length=2, max_length=2)] = None,
    filename: Annotated[str | None, Query(max_length=200)] = None,
) -> ImportPublic:
    """Import the CSV in the body; 202 with the import, whose progress ``GET /v1/contacts/imports/{id}`` shows."""
    for values, name, limit in ((attribute, "attribute", 200), (tag, "tag", 100)):
        if any(len(v) > limit for v in values or ()):
            raise _invalid(name, f"each {name} is at most {limit} characters")
    mapping = _mapping(phone_column, name_column, tags_column, attribute, tag, region)
    tenant = principal.tenant_id
    async with engine.connect() as conn:
        if await _running_import(conn, tenant):
            raise HTTPException(status.HTTP_409_CONFLICT, "an import is already running for this tenant")
    path = FilePath(tempfile.gettempdir()) / f"aerostic-import-{uuid.uuid4()}.csv"
    spool = Spool(path)
    try:
        async for chunk in request.stream():
            spool.write(chunk)
        encoding = spool.close()
    except TooLarge as exc:
        spool.discard()
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from exc
    except BaseException:
        spool.discard()
        raise
    try:
        rows = Rows(path, encoding)
        columns = await asyncio.to_thread(lambda: resolve(rows.header(), mapping))
    except BadHeader as exc:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise _invalid(exc.field, str(exc)) from exc
    import_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        row = (await conn.execute(contact_imports.insert().values(
            id=import_id, tenant_id=tenant, status="running", filename=filename, encoding=encoding,
            size_bytes=spool.size, mapping=mapping.as_dict(), requested_by=principal.actor)
            .returning(*contact_imports.c))).one()
    task = asyncio.create_task(_run(engine, import_id, tenant, rows, columns, path))
    _running.add(task)
    task.add_done_callback(_running.discard)
    return _public(row)


async def _run(engine: Any, import_id: str, tenant: str, rows: Rows, columns: Any, path: FilePath) -> None:
    try:
        await importer.run(engine, import_id, tenant, rows, columns)
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


async def _running_import(conn: Any, tenant: str) -> bool:
    fresh = datetime.now(UTC) - importer.STALE_AFTER
    found = await conn.scalar(select(contact_imports.c.id).where(
        contact_imports.c.tenant_id == tenant, contact_imports.c.status == "running",
        contact_imports.c.updated_at >= fresh).limit(1))
    return found is not None


@router.get("/contacts/imports")
async def list_imports(principal: TenantDep, engine: EngineDep, page: PageDep) -> Page[ImportPublic]:
    """The tenant's imports, newest first."""
    query = select(contact_imports).where(contact_imports.c.tenant_id == principal.tenant_id)
    async with engine.connect() as conn:
        rows = list(await conn.execute(keyset(query, contact_imports.c.created_at, contact_imports.c.id, page,
                                              newest_first=True)))
    shown, cursor = page_of(rows, page, lambda r: (r.created_at, str(r.id)))
    return Page(items=[_public(r) for r in shown], next_cursor=cursor)


@router.get("/contacts/imports/{import_id}", responses={404: {"description": "the tenant has no such import"}})
async def get_import(import_id: ImportId, principal: TenantDep, engine: EngineDep) -> ImportPublic:
    """One import: its progress while it runs, then its counts and invalid rows."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(contact_imports).where(
            contact_imports.c.tenant_id == principal.tenant_id, contact_imports.c.id == str(import_id)))).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "import not found")
    return _public(row)
