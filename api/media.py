"""``/v1/media``: a tenant's media files, uploaded to send or received from customers.

- ``POST /v1/media`` (multipart: ``file``, optional ``type`` overriding the part's content type): the kind
  follows the MIME type (``image/webp`` is a sticker), which must be one Meta takes, and the size is checked
  against the kind's limit (413 naming it; ``schemas.media``); the file goes from the request's spool to the
  media store in chunks. 201 with the id a message then names: ``{"type": "document", "document": {"id": …}}``
  (the dispatcher uploads it to Meta on first use per number).
- ``GET /v1/media/{id}``: the file, with its content type, as an attachment (``nosniff``): only the tenant's
  own (another tenant's id is 404). Inbound media is served once the dispatcher stored it.
- ``GET /v1/media/{id}/info``: its metadata and status (``stored``, or ``failed`` with the reason).
- ``GET/PUT /v1/settings/media``: the tenant's retention in days (admins).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import IO, Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.datastructures import UploadFile

from api.auth import AdminDep, TenantDep
from api.deps import EngineDep, SettingsDep
from api.message_models import MediaRef
from db.tables import media, media_settings
from mediastore import NotFound, ObjectStore, TooLarge
from schemas.media import (
    LIMITS,
    MAX_MEDIA_BYTES,
    MEDIA_KINDS,
    MediaRefused,
    check,
    inbound_media_id,
    is_media_id,
    kind_of,
    media_objects,
    storage_key,
)

router = APIRouter(tags=["media"])
MediaId = Annotated[str, Path(max_length=36, pattern=r"^[0-9a-f-]{36}$")]
CHUNK = 256 * 1024
MAX_FILENAME = 255
UPLOAD_BYTES = MAX_MEDIA_BYTES + 64 * 1024  # the largest file and its multipart framing (api.limits)


class MediaPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {
                "id": "9e1a3c5e-7a9c-4e1a-8c5e-7a9c1e3a5c7e", "origin": "upload", "kind": "image", "status": "stored",
                "mime_type": "image/jpeg", "size_bytes": 184320,
                "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "filename": "receipt.jpg", "wamid": None, "error": None,
                "url": "/v1/media/9e1a3c5e-7a9c-4e1a-8c5e-7a9c1e3a5c7e", "created_at": "2026-12-01T09:14:03Z",
            },
        ]})

    id: str
    origin: Literal["inbound", "upload"]
    kind: str
    status: str
    mime_type: str | None
    size_bytes: int | None
    sha256: str | None
    filename: str | None
    wamid: str | None
    error: str | None
    url: str
    created_at: datetime


class MediaSettings(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"retention_days": 90}]},
        extra="forbid")

    retention_days: int = Field(ge=1, le=3650)


def _store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.media_store
    return store


def _public(row: Any) -> MediaPublic:
    return MediaPublic(id=str(row.id), origin=row.origin, kind=row.kind, status=row.status, mime_type=row.mime_type,
                       size_bytes=row.size_bytes, sha256=row.sha256, filename=row.filename, wamid=row.wamid,
                       error=row.error, url=f"/v1/media/{row.id}", created_at=row.created_at)


def _refused(exc: MediaRefused) -> HTTPException:
    code = status.HTTP_413_CONTENT_TOO_LARGE if exc.too_large else status.HTTP_422_UNPROCESSABLE_CONTENT
    return HTTPException(code, [{"loc": ["body", "file"], "msg": exc.reason,
                                 "type": "too_large" if exc.too_large else "unsupported_type"}])


async def _chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := file.read(CHUNK):
        yield chunk


@router.post("/v1/media", status_code=status.HTTP_201_CREATED,
             responses={413: {"description": "larger than Meta's limit for its kind"},
                        422: {"description": "no file, or a type Meta does not take"}})
async def upload_media(request: Request, principal: TenantDep, engine: EngineDep) -> MediaPublic:
    try:
        form = await request.form(max_files=1, max_fields=4, max_part_size=1024)
    except Exception as exc:  # starlette's MultiPartException and malformed bodies
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the body must be multipart/form-data: {exc}") from exc
    try:
        upload, declared = form.get("file"), form.get("type")
        if not isinstance(upload, UploadFile):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                [{"loc": ["body", "file"], "msg": "a file part named 'file' is required",
                                  "type": "missing"}])
        mime = str(declared or upload.content_type or "").split(";", 1)[0].strip().lower()
        kind = kind_of(mime)
        size = upload.size if upload.size is not None else _size(upload.file)
        try:
            if kind is None:
                raise MediaRefused(f"type {mime or 'unknown'} is not one Meta takes: "
                                   f"{', '.join(sorted(t for k in LIMITS.values() for t in k.types))}")
            check(kind, mime, size)
        except MediaRefused as exc:
            raise _refused(exc) from None
        media_id = str(uuid.uuid4())
        key = storage_key(principal.tenant_id, media_id)
        upload.file.seek(0)
        try:
            stored = await _store(request).put(key, _chunks(upload.file), max_bytes=LIMITS[kind].max_bytes)
        except TooLarge:
            raise _refused(MediaRefused(f"{kind} files may be at most {LIMITS[kind].max_bytes} bytes",
                                        too_large=True)) from None
        filename = (upload.filename or "")[:MAX_FILENAME] or None
        async with engine.begin() as conn:
            row = (await conn.execute(insert(media).values(
                id=media_id, tenant_id=principal.tenant_id, origin="upload", kind=kind, status="stored",
                mime_type=mime, size_bytes=stored.size, sha256=stored.sha256, filename=filename,
                storage_key=key).returning(*media.c))).one()
        return _public(row)
    finally:
        await form.close()


def _size(file: IO[bytes]) -> int:
    file.seek(0, 2)
    return file.tell()


async def _row(engine: Any, tenant_id: str, media_id: str) -> Any:
    async with engine.connect() as conn:
        row = (await conn.execute(select(media).where(media.c.tenant_id == tenant_id,
                                                      media.c.id == media_id))).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "media not found")
    return row


@router.get("/v1/media/{media_id}/info")
async def media_info(media_id: MediaId, principal: TenantDep, engine: EngineDep) -> MediaPublic:
    return _public(await _row(engine, principal.tenant_id, media_id))


@router.get("/v1/media/{media_id}", response_class=StreamingResponse,
            responses={200: {"description": "the file"}, 404: {"description": "no such media of the tenant"},
                       409: {"description": "the file could not be stored (see /info)"}})
async def media_content(media_id: MediaId, principal: TenantDep, engine: EngineDep,
                        request: Request) -> StreamingResponse:
    row = await _row(engine, principal.tenant_id, media_id)
    if row.status != "stored" or row.storage_key is None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"media was not stored: {row.error or row.status}")
    chunks = _store(request).get(row.storage_key)
    try:
        first = await anext(chunks, b"")
    except NotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "media no longer stored") from None

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    name = row.filename or f"{row.id}"
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
               "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"}
    if row.size_bytes is not None:
        headers["Content-Length"] = str(row.size_bytes)
    return StreamingResponse(body(), media_type=row.mime_type or "application/octet-stream", headers=headers)


@router.get("/v1/settings/media")
async def get_media_settings(principal: TenantDep, engine: EngineDep, settings: SettingsDep) -> MediaSettings:
    async with engine.connect() as conn:
        days = (await conn.execute(select(media_settings.c.retention_days).where(
            media_settings.c.tenant_id == principal.tenant_id))).scalar()
    return MediaSettings(retention_days=days or settings.media_retention_days)


@router.put("/v1/settings/media")
async def put_media_settings(body: MediaSettings, principal: AdminDep, engine: EngineDep) -> MediaSettings:
    async with engine.begin() as conn:
        await conn.execute(insert(media_settings).values(tenant_id=principal.tenant_id,
                                                         retention_days=body.retention_days).on_conflict_do_update(
            index_elements=["tenant_id"], set_={"retention_days": body.retention_days, "updated_at": func.now()}))
    return body


async def refuse_media(engine: AsyncEngine, tenant_id: str, message: dict[str, Any]) -> None:
    """422 naming the field when a message (or a template's media parameter) names one of Aerostic's media ids
    that the tenant has not stored, or a file of another kind (Meta's own numeric ids and links pass: the
    dispatcher and Meta judge them)."""
    named = [(where, kind, str(obj["id"])) for where, kind, obj in media_objects(message)
             if is_media_id(str(obj.get("id", "")))]
    if not named:
        return
    async with engine.connect() as conn:
        rows = {str(r.id): r for r in await conn.execute(select(media.c.id, media.c.kind, media.c.status).where(
            media.c.tenant_id == tenant_id, media.c.id.in_([media_id for _, _, media_id in named])))}
    problems = []
    for where, kind, media_id in named:
        row = rows.get(media_id)
        if row is None or row.status != "stored":
            problem = "no stored media of this tenant has this id (upload the file with POST /v1/media)"
        elif row.kind != kind:
            problem = f"this media is a {row.kind} file, not a {kind}"
        else:
            continue
        problems.append({"loc": ["body", *where, "id"], "msg": problem, "type": "value_error"})
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problems)


async def media_refs(conn: AsyncConnection, tenant_id: str, inbound: list[tuple[str | None, str | None]]
                     ) -> dict[str, MediaRef]:
    """The media of inbound messages ``(wamid, type)``, by wamid: ``pending`` until the dispatcher stored it."""
    wamids = {wamid: inbound_media_id(tenant_id, wamid) for wamid, kind in inbound if wamid and kind in MEDIA_KINDS}
    if not wamids:
        return {}
    rows = {str(r.id): r for r in await conn.execute(select(
        media.c.id, media.c.status, media.c.mime_type, media.c.size_bytes, media.c.error).where(
        media.c.tenant_id == tenant_id, media.c.id.in_(list(wamids.values()))))}
    refs = {}
    for wamid, media_id in wamids.items():
        row = rows.get(media_id)
        refs[wamid] = MediaRef(id=media_id, url=f"/v1/media/{media_id}", status=row.status if row else "pending",
                               mime_type=row.mime_type if row else None, size_bytes=row.size_bytes if row else None,
                               error=row.error if row else None)
    return refs
