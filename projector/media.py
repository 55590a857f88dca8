"""``media.results`` → the ``media`` table: an inbound message's media, stored or failed.

The row's id derives from (tenant, wamid), so a redelivered or repeated result replaces the same row; a
``stored`` result is never overwritten by a later ``failed`` one (a retry that failed after one that worked).
"""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import media
from schemas.media import MediaResult


async def write_media_result(conn: AsyncConnection, result: MediaResult) -> None:
    values = {
        "status": result.outcome, "mime_type": result.mime_type, "size_bytes": result.size_bytes,
        "sha256": result.sha256, "filename": result.filename, "storage_key": result.storage_key,
        "error_code": result.error_code, "error": result.error, "updated_at": func.now()}
    statement = insert(media).values(
        id=result.media_id, tenant_id=result.tenant_id, origin="inbound", kind=result.media_kind,
        wamid=result.wamid, phone_number_id=result.phone_number_id, conversation_key=result.conversation_key,
        **values)
    await conn.execute(statement.on_conflict_do_update(
        index_elements=["id"], set_=values,
        where=(media.c.tenant_id == result.tenant_id) & ((media.c.status != "stored") | (statement.excluded.status
                                                                                          == "stored"))))
