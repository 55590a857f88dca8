"""The simulator's ASGI app: Meta's ``/{version}/{phone_number_id}/messages`` plus the ``/_sim`` admin API.

Embedded Signup (the OAuth dialog, the code exchange and the onboarding calls, with their ``/_sim/signup``
admin API) comes from ``dialog.py``, ``oauth.py``, ``onboarding.py`` and ``signup_admin.py``.

``create_app(config)`` builds it; ``app.state.sim`` is the ``Simulator``. The order of the send
checks is documented in ``limits.py``. The send endpoint and a simulated customer's message are the hot
paths, so ``SimApp`` answers them as bare ASGI (``GraphPath``) before FastAPI's middleware, routing and
dependency machinery, as the ingress does for webhooks; ``/_sim/...`` (numbers, tokens, templates, faults,
webhook settings, simulated customers, log and counts) is plain FastAPI (a customer's message that fails
validation goes there too, for FastAPI's 422).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from typing import Any, Literal
from urllib.parse import parse_qs

import httpx
import orjson
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from metasim import dialog, media, oauth, onboarding, payloads, signup_admin, templates
from metasim.callbacks import Route, WebhookSettings, addressed, billing, delivery_chain, failure_chain
from metasim.customers import Customer
from metasim.faults import Action, Decision, DroppedResponse, FaultSpec
from metasim.graph_errors import error_body, graph_error, status_error
from metasim.limits import Verdict, authorise, check_send, commit
from metasim.send_models import InvalidSend, SendRequest, StatusRequest, validate_send
from metasim.state import Number, NumberCreate, SimConfig, Simulator, Template

VERSION = re.compile(r"v(\d+)\.(\d+)")
GRAPH_PATH = re.compile(r"/(?P<version>[^/]+)/(?P<number>[^/]+)/messages/?")
Outcome = tuple[int, dict[str, Any]]
admin = APIRouter(prefix="/_sim")


def create_app(config: SimConfig, *, clock: Callable[[], float] | None = None,
               transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The simulator app; ``transport`` replaces the webhook client's (tests), ``clock`` the time source."""
    sim = Simulator(config, transport=transport, **({"clock": clock} if clock else {}))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sim.webhooks.start()
        try:
            yield
        finally:
            await sim.webhooks.stop()

    app = SimApp(title="Aerostic Meta simulator", lifespan=lifespan, docs_url="/_sim/docs",
                 openapi_url="/_sim/openapi.json")
    app.state.sim = sim
    app.state.media = media.MediaBank(sim.now, url_ttl_s=config.media_url_ttl_s)
    app.include_router(admin)
    app.include_router(media.admin)
    app.include_router(signup_admin.router)
    app.include_router(templates.admin)
    # Versioned paths only (no /_sim clash); templates last: its GET /{version}/{template_id} takes what is left.
    for graph in (oauth.router, dialog.router, onboarding.router, templates.router):
        app.include_router(graph)
    app.add_exception_handler(StarletteHTTPException, _graph_http_error)
    app.add_exception_handler(RequestValidationError, _graph_validation_error)
    app.add_middleware(media.MediaPath, sim=sim, bank=app.state.media)
    app.fast = GraphPath(sim, app.state.media)
    return app


def _graph(request: Request) -> bool:
    return not request.url.path.startswith("/_sim")


async def _graph_http_error(request: Request, exc: Exception) -> Response:
    """Graph answers what it does not route with its own error shape (``GraphMethodException``, code 100,
    subcode 33), never a framework's ``{"detail": …}``; the ``/_sim`` admin API keeps FastAPI's."""
    assert isinstance(exc, StarletteHTTPException)
    if not _graph(request):
        return await http_exception_handler(request, exc)
    parts = [p for p in request.url.path.split("/") if p]
    object_id = parts[1] if len(parts) > 1 and VERSION.fullmatch(parts[0]) else (parts[0] if parts else "")
    if exc.status_code in (404, 405):
        return _json(*graph_error(100, UNSUPPORTED.format(method=request.method.lower(), id=object_id),
                                  subcode=33, kind="GraphMethodException"))
    return _json(*error_body(100, details=str(exc.detail)))


async def _graph_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not _graph(request):
        return await request_validation_exception_handler(request, exc)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    return _json(*error_body(100, details=f"({where}) {first.get('msg', 'invalid parameter')}"))


UNSUPPORTED = ("Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing "
               "permissions, or does not support this operation. Please read the Graph API documentation at "
               "https://developers.facebook.com/docs/graph-api")


class GraphPath:
    """``POST /{version}/{phone_number_id}/messages`` and ``POST /_sim/customers/messages`` as bare ASGI."""

    def __init__(self, sim: Simulator, bank: media.MediaBank) -> None:
        self.sim = sim
        self.bank = bank

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Answer a hot-path request; else the ``receive`` to pass on with the request (its body replayed if
        read here)."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return receive
        path = scope["path"]
        if path == CUSTOMER_MESSAGES:
            raw = await _body(receive)
            try:
                message = CustomerMessage.model_validate_json(raw) if _json_body(scope) else None
            except ValidationError:
                message = None
            if message is None:  # FastAPI's own parsing and 422
                return _replay(raw, receive)
            try:
                response = _json(200, await post_customer_message(self.sim, self.bank, message))
            except HTTPException as exc:
                response = _json(exc.status_code, {"detail": exc.detail})
            await response(scope, receive, send)
            return None
        match = GRAPH_PATH.fullmatch(path)
        if match is None or match["version"] == "_sim":
            return receive
        raw = await _body(receive)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        response = await send_message(self.sim, self.bank, scope, headers, raw, match["version"], match["number"])
        await response(scope, receive, send)
        return None


class SimApp(FastAPI):
    """FastAPI, with ``fast`` (``GraphPath``) answering the hot paths before any middleware."""

    fast: GraphPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast is not None:
            passed = await self.fast.handle(scope, receive, send)
            if passed is None:
                return
            receive = passed
        await super().__call__(scope, receive, send)


CUSTOMER_MESSAGES = "/_sim/customers/messages"


async def _body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(raw: bytes, receive: Receive) -> Receive:
    """``receive`` giving the already-read body first."""
    pending = [{"type": "http.request", "body": raw, "more_body": False}]

    async def replayed() -> Any:
        return pending.pop() if pending else await receive()

    return replayed


def _json_body(scope: Scope) -> bool:
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    return content_type.split(b";")[0].strip().lower() == b"application/json"


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def send_message(sim: Simulator, bank: media.MediaBank, scope: Scope, headers: dict[str, str], raw: bytes,
                       version: str, phone_number_id: str) -> Response:
    """Meta's send endpoint: every request, answered or not, goes to the log."""
    entry: dict[str, Any] = {
        "time": sim.now(), "method": "POST", "path": scope["path"], "headers": headers,
        "body": _decoded(raw), "phone_number_id": phone_number_id, "recipient": None,
        "biz_opaque_callback_data": None, "status": None, "response": None, "fault": None}
    sim.log.append(entry)
    token = _token(headers, scope.get("query_string", b""))
    outcome, fault = await _process(sim, token, version, phone_number_id, entry, bank)
    if outcome is not None:
        entry["status"], entry["response"] = outcome
        if outcome[0] != 200:
            sim.counts.errors[str(outcome[1]["error"]["code"])] += 1
    if fault is not None:
        entry["fault"] = fault.action.value
        return DroppedResponse(fault.hang_s)
    assert outcome is not None
    return _json(*outcome)


async def _process(sim: Simulator, token: str, version: str, phone_number_id: str, entry: dict[str, Any],
                   bank: media.MediaBank) -> tuple[Outcome | None, Decision | None]:
    """Steps 1-6 of the order in ``limits.py``, then 7-12; a ``Decision`` means "do not answer"."""
    match = VERSION.fullmatch(version)
    if match is None:
        return error_body(100, message=f"Unknown path components: /{version}/{phone_number_id}/messages"), None
    number, refusal = authorise(sim, token, phone_number_id)
    if refusal is not None or number is None:
        return refusal, None
    decision = sim.faults.decide(phone_number_id)
    if decision.latency_s:
        await asyncio.sleep(decision.latency_s)
    if decision.action is Action.ERROR_5XX:
        return error_body(decision.error_code), None
    if decision.action is Action.DROP:
        return None, decision
    try:
        message = validate_send(entry["body"] if isinstance(entry["body"], dict | list) else None)
    except InvalidSend as exc:
        return error_body(100, details=str(exc)), None
    if isinstance(message, StatusRequest):
        return (200, {"success": True}), None
    if (unknown_media := bank.send_problem(number, message)) is not None:
        return unknown_media, None
    customer = _customer(sim, number, message)
    wa_id, marker = (customer.key if customer else message.wa_id), message.biz_opaque_callback_data
    entry["recipient"], entry["biz_opaque_callback_data"] = wa_id, marker
    now = sim.now()
    verdict = check_send(sim, number, message, now, wa_id=wa_id)
    if verdict.error is not None:
        return error_body(verdict.error, details=verdict.details), None
    commit(sim, number, wa_id, verdict, now)
    wamid = payloads.new_wamid()
    sim.count_accepted(wa_id, marker)
    sim.customers.sent(number.phone_number_id, wa_id, wamid)
    _schedule_statuses(sim, number, wa_id, marker, wamid, verdict, now, major=int(match.group(1)),
                       contact=customer.status_contact() if customer else None)
    held = "held_for_quality_assessment" if verdict.held else "accepted"
    named: dict[str, Any] = {"input": message.to or message.recipient}
    if message.recipient is None:
        named["wa_id"] = wa_id
    else:  # addressed by BSUID: the user id, and the number only if the customer shared one
        named |= {"wa_id": customer.phone} if customer and customer.phone else {}
        named["user_id"] = message.recipient
    body = {"messaging_product": "whatsapp", "contacts": [named], "messages": [{"id": wamid, "message_status": held}]}
    return (200, body), (decision if decision.action is Action.HANG else None)


def _customer(sim: Simulator, number: Number, message: SendRequest) -> Customer | None:
    """The customer a send names: by BSUID (``recipient``), or by number (met now if never seen)."""
    if message.recipient_type != "individual":
        return None
    if message.recipient is not None:
        return sim.customers.find(number.business_id, message.recipient)
    phone = sim.customers.wa_id_of(message.wa_id)  # the account Meta knows the dialled number by
    return sim.customers.find(number.business_id, phone) \
        or sim.customers.meet(number.business_id, phone=phone, username=None)


def _token(headers: dict[str, str], query: bytes) -> str:
    """The Bearer token, or Graph's ``access_token`` query parameter."""
    header = headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return parse_qs(query.decode("latin-1")).get("access_token", [""])[0]


def _schedule_statuses(sim: Simulator, number: Number, wa_id: str, marker: str | None, wamid: str,
                       verdict: Verdict, now: float, *, major: int, contact: dict[str, Any] | None) -> None:
    """Queue the status webhooks of an accepted message (conversation objects only before v24.0)."""
    settings = sim.webhooks.settings
    if verdict.failure is not None:
        sim.counts.failed_statuses[str(verdict.failure)] += 1
    if not settings.enabled:  # none would be posted
        return
    route = Route(number.waba_id, number.phone_number_id, number.display_phone_number)
    if verdict.failure is not None:
        chain = failure_chain(settings, wamid, wa_id, error=status_error(verdict.failure),
                              callback_data=marker)
    else:
        key = f"{number.phone_number_id}:{wa_id}:{verdict.category}".encode()
        bill = billing(verdict.category, free=verdict.free, conversation_id=hashlib.md5(key).hexdigest(),  # noqa: S324
                       expires_at=int(now + sim.config.window_s), with_conversation=major < 24)
        chain = delivery_chain(settings, wamid, wa_id, callback_data=marker, bill=bill)
    chain = addressed(chain, contact)
    if verdict.held and chain:  # pacing: held for the quality assessment, then delivered
        chain[0] = (chain[0][0] + sim.template_settings.pacing_hold_s, chain[0][1])
    sim.webhooks.chain(route, chain, epoch=now)


def _decoded(raw: bytes) -> Any:
    """The JSON body, or its text when it is not JSON (kept for the log and refused as error 100)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


# --- admin API -------------------------------------------------------------------------------------

class TokenGrant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1)
    waba_id: str = Field(min_length=1)
    replace: bool = Field(False, description="revoke the WABA's other tokens")


class TokenRef(BaseModel):
    token: str


class Recipient(BaseModel):
    wa_id: str = Field(min_length=1)


class CustomerMessage(BaseModel):
    """A simulated customer's message to a business number."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    phone_number_id: str
    from_: str | None = Field(None, alias="from", pattern=r"^\+?[0-9][0-9 \-]*$",
                              description="the customer's number (wa_id); absent for a username-only customer")
    username: str | None = Field(None, pattern=r"^[A-Za-z0-9._]{3,35}$",
                                 description="the customer's WhatsApp username (then `from` may be absent)")
    name: str = "Customer"
    type: Literal["text", "button", "interactive_button_reply", "interactive_list_reply", "image", "video", "audio",
                  "document", "sticker"] = "text"
    text: str | None = None
    payload: str | None = None
    id: str | None = None
    title: str | None = None
    description: str | None = None
    context_id: str | None = Field(None, description="wamid of our message this replies to")
    media_id: str | None = Field(None, description="media seeded with POST /_sim/media (else bytes are generated)")
    filename: str | None = None
    timestamp: int | None = Field(None, description="epoch s; in the past to simulate an old conversation")

    @model_validator(mode="after")
    def _someone(self) -> CustomerMessage:
        if self.from_ is None and self.username is None:
            raise ValueError("a customer needs a number ('from'), a username, or both")
        return self


def _sim(request: Request) -> Simulator:
    sim: Simulator = request.app.state.sim
    return sim


@admin.get("/health")
async def health(request: Request) -> dict[str, Any]:
    sim = _sim(request)
    return {"status": "ok", "numbers": len(sim.numbers), "pending_webhooks": sim.webhooks.pending}


@admin.post("/numbers")
async def add_number(spec: NumberCreate, request: Request) -> dict[str, Any]:
    return asdict(_sim(request).add_number(spec))


@admin.post("/tokens")
async def add_token(grant: TokenGrant, request: Request) -> dict[str, Any]:
    _sim(request).add_token(grant.token, grant.waba_id, replace=grant.replace)
    return {"token": grant.token, "waba_id": grant.waba_id}


@admin.post("/tokens/revoke")
async def revoke_token(ref: TokenRef, request: Request) -> dict[str, bool]:
    if not _sim(request).revoke(ref.token):
        raise HTTPException(404, "unknown token")
    return {"revoked": True}


@admin.post("/templates")
async def add_template(template: Template, request: Request) -> Template:
    _sim(request).add_template(template)
    return template


@admin.post("/recipients/undeliverable")
async def undeliverable(recipient: Recipient, request: Request) -> dict[str, Any]:
    _sim(request).undeliverable.add(recipient.wa_id)
    return {"wa_id": recipient.wa_id, "undeliverable": True}


class WaIdAlias(BaseModel):
    """A number whose WhatsApp account Meta knows by another id (``contacts[].wa_id`` of a send to it)."""

    model_config = ConfigDict(extra="forbid")

    number: str = Field(pattern=r"^[0-9]{6,15}$", description="the number as a business dials it (digits)")
    wa_id: str = Field(pattern=r"^[0-9]{6,15}$", description="the WhatsApp id Meta answers with")


@admin.post("/customers/wa_ids")
async def set_wa_id(alias: WaIdAlias, request: Request) -> dict[str, str]:
    _sim(request).customers.set_wa_id(alias.number, alias.wa_id)
    return {"number": alias.number, "wa_id": alias.wa_id}


@admin.post("/faults/{phone_number_id}")
async def set_faults(phone_number_id: str, spec: FaultSpec, request: Request) -> FaultSpec:
    _sim(request).faults.set(phone_number_id, spec)
    return spec


@admin.delete("/faults/{phone_number_id}")
async def clear_faults(phone_number_id: str, request: Request) -> dict[str, bool]:
    return {"cleared": _sim(request).faults.clear(phone_number_id)}


@admin.get("/webhooks")
async def webhook_settings(request: Request) -> WebhookSettings:
    return _sim(request).webhooks.settings


@admin.put("/webhooks")
async def set_webhook_settings(changes: dict[str, Any], request: Request) -> WebhookSettings:
    """Change any subset of the webhook settings; the others keep their value."""
    sender = _sim(request).webhooks
    try:
        sender.settings = WebhookSettings.model_validate({**sender.settings.model_dump(), **changes})
    except ValidationError as exc:
        raise HTTPException(422, exc.errors(include_url=False, include_context=False)) from None
    return sender.settings


@admin.get("/requests")
async def requests(request: Request, phone_number_id: str | None = None,
                   since: float | None = None) -> Response:
    return _json(200, {"data": _sim(request).requests(phone_number_id, since)})


@admin.get("/counts")
async def counts(request: Request) -> dict[str, Any]:
    return _sim(request).summary()


@admin.post("/reset")
async def reset(request: Request) -> dict[str, bool]:
    _sim(request).reset()
    return {"reset": True}


@admin.post("/customers/messages")
async def customer_message(message: CustomerMessage, request: Request) -> dict[str, Any]:
    """Post the customer's message to the callback at once and open their service window (``SimApp`` answers
    a valid request before this route; it keeps the schema and FastAPI's 422 for the others)."""
    return await post_customer_message(_sim(request), request.app.state.media, message)


async def post_customer_message(sim: Simulator, bank: media.MediaBank, message: CustomerMessage) -> dict[str, Any]:
    """Post the customer's message to the callback at once and open their service window."""
    number = sim.numbers.get(message.phone_number_id)
    if number is None:
        raise HTTPException(404, f"unknown phone_number_id {message.phone_number_id}")
    timestamp = message.timestamp if message.timestamp is not None else int(sim.now())
    customer = sim.customers.meet(number.business_id, phone=re.sub(r"\D", "", message.from_ or "") or None,
                                  username=message.username)
    sim.record_inbound(number.phone_number_id, customer.key, timestamp)
    wamid = payloads.new_wamid()
    content = media.customer_media(bank, number, message.type, message.media_id,
                                   caption=message.text, filename=message.filename) \
        if message.type in media.MEDIA_KINDS else _content(message)
    inbound = {**({"from": customer.phone} if customer.phone else {}), "from_user_id": customer.user_id,
               "id": wamid, "timestamp": str(timestamp), **content}
    # A reply names the message it answers; an interactive or button reply always does (Meta's own shape).
    answered = message.context_id or (sim.customers.last_sent(number.phone_number_id, customer.key) or
                                      payloads.new_wamid() if content["type"] in ("interactive", "button") else None)
    if answered:
        inbound["context"] = {"from": number.display_phone_number, "id": answered}
    body = payloads.envelope(number.waba_id, [payloads.messages_change(
        number.phone_number_id, display=number.display_phone_number,
        contacts=[customer.contact(message.name)], messages=[inbound])])
    return {"wamid": wamid, "wa_id": customer.phone, "user_id": customer.user_id,
            "delivered": await sim.webhooks.post_now(body)}


def _content(message: CustomerMessage) -> dict[str, Any]:
    """The ``type`` and its sibling object, shaped like Meta's inbound webhooks."""
    if message.type == "text":
        return {"type": "text", "text": {"body": message.text or ""}}
    if message.type == "button":
        text = message.text or message.payload or ""
        return {"type": "button", "button": {"payload": message.payload or text, "text": text}}
    kind = "button_reply" if message.type == "interactive_button_reply" else "list_reply"
    reply = {"id": message.id or message.payload or "", "title": message.title or message.text or ""}
    if kind == "list_reply" and message.description:
        reply["description"] = message.description
    return {"type": "interactive", "interactive": {"type": kind, kind: reply}}
