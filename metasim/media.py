"""Meta's media endpoints, simulated: uploads, ``GET /{media-id}``, expiring download URLs that need the token.

- ``POST /{v}/{phone_number_id}/media`` (multipart ``file``, ``type``, ``messaging_product=whatsapp``) →
  ``{"id": …}``; a type Meta does not take, or a file over its kind's limit, → 131053 with the reason.
- ``GET /{v}/{media-id}[?phone_number_id=]`` → ``{"messaging_product", "url", "mime_type", "sha256",
  "file_size", "id"}``; the token must grant the media's WABA (else 190), an unknown id answers 100.
- ``DELETE /{v}/{media-id}`` → ``{"success": true}``.
- The URL (``/whatsapp_business/attachments/?mid=…&ext=…&hash=…``, like Meta's lookaside) serves the bytes to
  the same Bearer token for ``url_ttl_s`` (5 minutes by default, Meta's observed lifetime); expired → 404,
  no or another WABA's token → 401. ``POST /_sim/media/{id}/expire-urls`` expires every URL issued so far.
- Simulated customers' image, video, audio, document and sticker messages carry ids of real stored bytes
  (seeded with ``POST /_sim/media`` or generated), and a send naming a media ``id`` the WABA does not have
  is refused with 131009.

Limits (Meta's media reference): image jpeg/png 5 MB, video mp4/3gpp and audio aac/amr/mpeg/mp4/ogg 16 MB,
documents (text, PDF, Office) 100 MB, stickers webp 500 KB. The store is bounded (``MAX_ITEMS``, oldest out).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from metasim.graph_errors import error_body
from metasim.limits import token_refusal

if TYPE_CHECKING:
    from metasim.send_models import SendRequest
    from metasim.state import Number, Simulator

MB = 1024 * 1024
DOCUMENTS = ("text/plain", "application/pdf", "application/msword", "application/vnd.ms-excel",
             "application/vnd.ms-powerpoint",
             "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             "application/vnd.openxmlformats-officedocument.presentationml.presentation")
TYPES: dict[str, tuple[str, int]] = {
    "image/jpeg": ("image", 5 * MB), "image/png": ("image", 5 * MB), "image/webp": ("sticker", 500 * 1024),
    "video/mp4": ("video", 16 * MB), "video/3gpp": ("video", 16 * MB),
    **{t: ("audio", 16 * MB) for t in ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg")},
    **{t: ("document", 100 * MB) for t in DOCUMENTS},
}
DEFAULT_TYPES = {"image": "image/jpeg", "video": "video/mp4", "audio": "audio/ogg", "document": "application/pdf",
                 "sticker": "image/webp"}
MEDIA_KINDS = frozenset(DEFAULT_TYPES)
MAX_ITEMS = 2000
URL_TTL_S = 300.0
ATTACHMENTS = "/whatsapp_business/attachments/"
MEDIA_PATH = re.compile(r"/(?P<version>v\d+\.\d+)/(?P<id>[0-9]+)/?")
UPLOAD_PATH = re.compile(r"/(?P<version>v\d+\.\d+)/(?P<number>[^/]+)/media/?")


@dataclass(slots=True)
class SimMedia:
    id: str
    waba_id: str
    phone_number_id: str
    mime_type: str
    data: bytes
    sha256: str  # base64, as Meta gives it
    filename: str | None = None


class MediaBank:
    """The simulator's media: ids → bytes, and the URLs issued for them."""

    def __init__(self, clock: Callable[[], float], *, url_ttl_s: float = URL_TTL_S) -> None:
        self.clock, self.url_ttl_s = clock, url_ttl_s
        self.items: OrderedDict[str, SimMedia] = OrderedDict()
        self.expired_before: dict[str, float] = {}
        self.expire_next: dict[str, int] = {}  # URLs still to be issued already expired (the tests' control)
        self.downloads: list[dict[str, Any]] = []  # every URL fetch: id, status (inspection)
        self._key = secrets.token_bytes(32)

    def add(self, data: bytes, mime_type: str, number: Number, filename: str | None = None) -> SimMedia:
        media_id = str(secrets.randbelow(9 * 10**15) + 10**15)
        item = SimMedia(media_id, number.waba_id, number.phone_number_id, mime_type, data,
                        base64.b64encode(hashlib.sha256(data).digest()).decode(), filename)
        self.items[media_id] = item
        while len(self.items) > MAX_ITEMS:
            self.items.popitem(last=False)
        return item

    def url(self, item: SimMedia, base: str) -> str:
        issued = self.clock()
        if self.expire_next.get(item.id):
            self.expire_next[item.id] -= 1
            issued -= self.url_ttl_s + 1
        return f"{base}{ATTACHMENTS}?mid={item.id}&ext={issued:.6f}&hash={self._sign(item.id, issued)}"

    def _sign(self, media_id: str, issued: float) -> str:
        return hmac.new(self._key, f"{media_id}:{issued:.6f}".encode(), hashlib.sha256).hexdigest()[:32]

    def expire_urls(self, media_id: str, *, following: int = 0) -> None:
        self.expired_before[media_id] = self.clock()
        self.expire_next[media_id] = following

    def fetch(self, sim: Simulator, query: str, token: str) -> Response:
        params = {k: v[0] for k, v in parse_qs(query).items()}
        media_id, issued_text, signature = params.get("mid", ""), params.get("ext", ""), params.get("hash", "")
        status, response = self._fetch(sim, media_id, issued_text, signature, token)
        self.downloads.append({"id": media_id, "status": status, "time": self.clock()})
        del self.downloads[:-MAX_ITEMS]
        return response

    def _fetch(self, sim: Simulator, media_id: str, issued_text: str, signature: str,
               token: str) -> tuple[int, Response]:
        item = self.items.get(media_id)
        try:
            issued = float(issued_text)
        except ValueError:
            issued = -1.0
        if item is None or issued < 0 or not hmac.compare_digest(signature, self._sign(media_id, issued)):
            return 404, Response(b"Not Found", 404, media_type="text/plain")
        if token_refusal(sim, token) is not None or item.waba_id not in sim.tokens.get(token, set()):
            return 401, Response(b"Unauthorized", 401, media_type="text/plain")
        if self.clock() > issued + self.url_ttl_s or issued <= self.expired_before.get(media_id, -1.0):
            return 404, Response(b"URL signature expired", 404, media_type="text/plain")
        return 200, Response(item.data, 200, media_type=item.mime_type)

    def send_problem(self, number: Number, message: SendRequest) -> tuple[int, dict[str, Any]] | None:
        """131009 when the message (or a template's media parameter) names a media id this WABA does not have
        (links are fetched by Meta)."""
        if message.type not in MEDIA_KINDS and message.template is None:
            return None
        body = message.model_dump(exclude_none=True)
        objects = [body.get(message.type)] if message.type in MEDIA_KINDS else []
        for component in body.get("template", {}).get("components", []):
            objects += [p.get(p.get("type")) for p in component.get("parameters", []) if p.get("type") in MEDIA_KINDS]
        for media in objects:
            media_id = media.get("id") if isinstance(media, dict) else None
            if media_id is None:
                continue
            item = self.items.get(media_id)
            if item is None or item.waba_id != number.waba_id:
                return error_body(131009, details=f"Media id {media_id} was not found for this business")
        return None


def _answer(outcome: tuple[int, dict[str, Any]]) -> Response:
    return Response(orjson.dumps(outcome[1]), outcome[0], media_type="application/json")


def _token(scope: Scope) -> str:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    header = headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return parse_qs(scope.get("query_string", b"").decode("latin-1")).get("access_token", [""])[0]


def _base(scope: Scope) -> str:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    host = headers.get("host") or "{}:{}".format(*scope["server"])
    return f"{scope.get('scheme', 'http')}://{host}"


class MediaPath:
    """Bare ASGI in front of the app: the media endpoints above; everything else passes through."""

    def __init__(self, app: ASGIApp, sim: Simulator, bank: MediaBank) -> None:
        self.app, self.sim, self.bank = app, sim, bank

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._route(scope, receive) if scope["type"] == "http" else None
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive) -> Response | None:
        path, method = scope["path"], scope["method"]
        if path == ATTACHMENTS and method == "GET":
            return self.bank.fetch(self.sim, scope.get("query_string", b"").decode("latin-1"), _token(scope))
        if (upload := UPLOAD_PATH.fullmatch(path)) and method == "POST":
            return await self._upload(scope, receive, upload["number"])
        found = MEDIA_PATH.fullmatch(path)
        if found is None or found["id"] not in self.bank.items or method not in ("GET", "DELETE"):
            return None
        item = self.bank.items[found["id"]]
        token = _token(scope)
        if (refusal := token_refusal(self.sim, token)) is not None:
            return _answer(refusal)
        if item.waba_id not in self.sim.tokens[token]:
            return _answer(error_body(190, details=f"The access token does not grant access to media {item.id}."))
        if method == "DELETE":
            del self.bank.items[item.id]
            return _answer((200, {"success": True}))
        return _answer((200, {"messaging_product": "whatsapp", "url": self.bank.url(item, _base(scope)),
                              "mime_type": item.mime_type, "sha256": item.sha256,
                              "file_size": str(len(item.data)), "id": item.id}))

    async def _upload(self, scope: Scope, receive: Receive, phone_number_id: str) -> Response:
        from metasim.limits import authorise

        number, refusal = authorise(self.sim, _token(scope), phone_number_id)
        if refusal is not None or number is None:
            return _answer(refusal or error_body(100))
        form = await StarletteRequest(scope, receive).form(max_files=1, max_fields=10)
        try:
            upload, declared = form.get("file"), form.get("type")
            if form.get("messaging_product") != "whatsapp":
                return _answer(error_body(100, details="messaging_product must be whatsapp"))
            if upload is None or isinstance(upload, str):
                return _answer(error_body(100, details="The parameter file is required"))
            mime = str(declared or upload.content_type or "").split(";", 1)[0].strip().lower()
            if mime not in TYPES:
                return _answer(error_body(131053, details=f"Uploaded file type {mime or 'unknown'} is not supported"))
            kind, limit = TYPES[mime]
            data = await upload.read(limit + 1)
            if len(data) > limit:
                return _answer(error_body(131053, details=f"File is larger than the {limit // 1024} KB limit of "
                                                          f"{kind} files ({mime})"))
            item = self.bank.add(data, mime, number, upload.filename)
        finally:
            await form.close()
        return _answer((200, {"id": item.id}))


def customer_media(bank: MediaBank, number: Number, kind: str, media_id: str | None, *,
                   caption: str | None, filename: str | None) -> dict[str, Any]:
    """The ``type`` and media object of a simulated customer's media message (generated bytes without an id)."""
    if media_id is not None:
        item = bank.items.get(media_id)
        if item is None:
            raise HTTPException(404, f"unknown media id {media_id}")
    else:
        item = bank.add(secrets.token_bytes(2048), DEFAULT_TYPES[kind], number, filename)
    media: dict[str, Any] = {"mime_type": item.mime_type, "sha256": item.sha256, "id": item.id}
    if caption and kind in ("image", "video", "document"):
        media["caption"] = caption
    if kind == "document":
        media["filename"] = filename or item.filename or "file.pdf"
    if kind == "audio":
        media["voice"] = item.mime_type == "audio/ogg"
    if kind == "sticker":
        media["animated"] = False
    return {"type": kind, kind: media}


# --- /_sim ---------------------------------------------------------------------------------------------------

admin = APIRouter(prefix="/_sim/media")


class MediaSeed(BaseModel):
    """Bytes a simulated customer will send (any type: customers' documents can be anything)."""

    model_config = ConfigDict(extra="forbid")

    phone_number_id: str
    mime_type: str = Field(min_length=3, max_length=255)
    content_b64: str = Field(max_length=150 * MB)
    filename: str | None = None


def _bank(request: Request) -> MediaBank:
    bank: MediaBank = request.app.state.media
    return bank


@admin.post("")
async def seed(spec: MediaSeed, request: Request) -> dict[str, Any]:
    number = request.app.state.sim.numbers.get(spec.phone_number_id)
    if number is None:
        raise HTTPException(404, f"unknown phone_number_id {spec.phone_number_id}")
    item = _bank(request).add(base64.b64decode(spec.content_b64), spec.mime_type, number, spec.filename)
    return {"id": item.id, "sha256": item.sha256, "file_size": len(item.data)}


@admin.get("/{media_id}")
async def inspect(media_id: str, request: Request) -> dict[str, Any]:
    item = _bank(request).items.get(media_id)
    if item is None:
        raise HTTPException(404, "unknown media id")
    downloads = [d for d in _bank(request).downloads if d["id"] == media_id]
    return {"id": item.id, "waba_id": item.waba_id, "phone_number_id": item.phone_number_id,
            "mime_type": item.mime_type, "file_size": len(item.data), "sha256": item.sha256,
            "filename": item.filename, "content_b64": base64.b64encode(item.data).decode(), "downloads": downloads}


class Expiry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    following: int = Field(0, ge=0, le=100, description="the next N URLs issued are expired already")


@admin.post("/{media_id}/expire-urls")
async def expire(media_id: str, request: Request, spec: Expiry | None = None) -> dict[str, Any]:
    """Every URL issued for this media so far stops working at once (Meta's expire after about 5 minutes),
    and so do the next ``following`` ones."""
    if media_id not in _bank(request).items:
        raise HTTPException(404, "unknown media id")
    following = spec.following if spec else 0
    _bank(request).expire_urls(media_id, following=following)
    return {"expired": True, "following": following}
