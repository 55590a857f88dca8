"""The simulated template endpoints of the Graph API and their ``/_sim`` controls.

Graph (each checks the Bearer token, 190, and its grant of the WABA: unknown → 100 subcode 33, not granted → 200):

- ``GET /{version}/{waba_id}/message_templates``: cursor pages (``limit`` ≤ 100, ``after``; ``next`` while
  more follow), filters ``name`` and ``status``, ``fields`` picks the fields (``id`` always);
- ``POST`` the same path: Meta's creation (error 100 for a bad body, subcode 2388024 when the name exists in
  that language, 4 past ``creations_per_hour`` per WABA) → ``{"id", "status": "PENDING", "category"}``; the
  review follows after ``review_s``: ``message_template_status_update`` APPROVED (or REJECTED with
  ``rejected_reason``);
- ``DELETE`` the same path ``?name=…[&hsm_id=…]``: every language of the name (or the one id), a DELETED
  status webhook each → ``{"success": true}``;
- ``GET /{version}/{template_id}``: one template; ``POST`` the same path edits its components
  (``message_template_components_update`` follows).

Controls: ``PUT /_sim/templates/settings`` (review delay and decision, pacing), ``POST /_sim/templates/status``
(approve, reject, pause, unpause, disable, flag… with the webhook Meta sends), ``/quality``, ``/category``,
``/pacing``, ``GET /_sim/templates/all`` and ``POST /_sim/recipients/marketing-limited`` (131049).
"""

from __future__ import annotations

import asyncio
import base64
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from metasim import payloads
from metasim.calls import Call, Outcome, Refusal, authorised, bearer_token, denied, missing, simulator
from metasim.graph_errors import error_body, graph_error
from metasim.state import Simulator, TemplateSettings, template_id
from metasim.template_models import SimTemplate, creation_problem

router = APIRouter()
admin = APIRouter(prefix="/_sim")
HOUR_S = 3600.0
PAGE_MAX = 100
PAUSE_TITLES = {"PAUSED": "FIRST_PAUSE", "REINSTATED": "UNPAUSE", "DISABLED": "DISABLED"}


# --- Graph -------------------------------------------------------------------------------------------------

async def _answer(request: Request, handler: Callable[[Call], Outcome]) -> Response:
    raw = await request.body()
    query = dict(request.query_params)
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = raw.decode("utf-8", "replace")
    call = Call(simulator(request), query, body, bearer_token({k.lower(): v for k, v in request.headers.items()},
                                                              query))
    try:
        status, content = handler(call)
    except Refusal as refusal:
        status, content = refusal.outcome
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def _granted(call: Call, waba_id: str, method: str) -> None:
    access = authorised(call)
    if waba_id in access.waba_ids:
        return
    known = {n.waba_id for n in call.sim.numbers.values()} | {t.waba_id for t in call.sim.templates.values()}
    raise denied() if waba_id in known else missing(method, waba_id)


@router.api_route("/{version:graph_version}/{waba_id}/message_templates", methods=["GET", "POST", "DELETE"])
async def message_templates(version: str, waba_id: str, request: Request) -> Response:
    handlers = {"GET": _list, "POST": _create, "DELETE": _delete}
    handler = handlers[request.method]
    return await _answer(request, lambda call: handler(call, waba_id))


@router.api_route("/{version:graph_version}/{template_id}", methods=["GET", "POST"])
async def one_template(version: str, template_id: str, request: Request) -> Response:
    def handler(call: Call) -> Outcome:
        authorised(call)
        template = call.sim.template_by_id(template_id)
        if template is None:
            raise missing(request.method.lower(), template_id)
        _granted(call, template.waba_id, request.method.lower())
        if request.method == "POST":
            return _edit(call, template)
        return 200, _fields(template.listed(), call.query.get("fields"))
    return await _answer(request, handler)


def _edit(call: Call, template: SimTemplate) -> Outcome:
    """An edit of the components (``POST /{template_id}``): the template is reviewed again; Meta sends
    ``message_template_components_update`` with the new texts."""
    body = call.body if isinstance(call.body, dict) else {}
    problem = creation_problem({**template.listed(), "components": body.get("components"),
                                "parameter_format": template.parameter_format})
    if problem is not None:
        status, error = graph_error(100, "Invalid parameter")
        error["error"]["error_user_msg"] = problem
        return status, error
    template.components = body["components"]
    spawn(call.sim, post_components(call.sim, template))
    return 200, {"success": True}


def _fields(item: dict[str, Any], fields: str | None) -> dict[str, Any]:
    if not fields:
        return item
    wanted = {f.strip() for f in fields.split(",")} | {"id"}
    return {k: v for k, v in item.items() if k in wanted}


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def _offset(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except ValueError:
        raise Refusal(graph_error(100, "Invalid parameter: after is not a valid cursor")) from None


def _list(call: Call, waba_id: str) -> Outcome:
    _granted(call, waba_id, "get")
    listed = [t for t in call.sim.templates.values() if t.waba_id == waba_id
              and (not call.query.get("name") or t.name == call.query["name"])
              and (not call.query.get("status") or t.status == call.query["status"].upper())]
    try:
        limit = max(1, min(PAGE_MAX, int(call.query.get("limit", "25"))))
    except ValueError:
        raise Refusal(graph_error(100, "Invalid parameter: limit must be a number")) from None
    start = _offset(call.query["after"]) if call.query.get("after") else 0
    page = listed[start:start + limit]
    body: dict[str, Any] = {"data": [_fields(t.listed(), call.query.get("fields")) for t in page]}
    if page:
        body["paging"] = {"cursors": {"before": _cursor(start), "after": _cursor(start + len(page))}}
        if start + len(page) < len(listed):
            body["paging"]["next"] = f"/{waba_id}/message_templates?limit={limit}&after={_cursor(start + len(page))}"
    return 200, body


def _create(call: Call, waba_id: str) -> Outcome:
    _granted(call, waba_id, "post")
    sim, body = call.sim, call.body
    problem = creation_problem(body)
    if problem is not None:
        status, error = graph_error(100, "Invalid parameter")
        error["error"]["error_user_msg"] = problem
        return status, error
    key = (waba_id, body["name"], body["language"])
    if key in sim.templates:
        status, error = graph_error(100, "Invalid parameter", subcode=2388024)
        error["error"].update(error_user_title="Message template already exists",
                              error_user_msg=f"There is already {body['language']} content for this template.")
        return status, error
    now, settings = sim.now(), sim.template_settings
    recent = sim.template_creations.setdefault(waba_id, deque())
    while recent and recent[0] <= now - HOUR_S:
        recent.popleft()
    if len(recent) >= settings.creations_per_hour:
        return error_body(4)
    recent.append(now)
    template = sim.add_template(SimTemplate(
        id=template_id(), waba_id=waba_id, name=body["name"], language=body["language"], category=body["category"],
        status="PENDING", parameter_format=body.get("parameter_format", "positional"),
        components=body["components"], created_at=now))
    spawn(sim, _review(sim, template.id, settings.review_s))
    return 200, {"id": template.id, "status": "PENDING", "category": template.category}


def _delete(call: Call, waba_id: str) -> Outcome:
    _granted(call, waba_id, "delete")
    sim, name, hsm_id = call.sim, call.query.get("name"), call.query.get("hsm_id")
    if not name:
        return graph_error(100, "(#100) The parameter name is required")
    doomed = [k for k, t in sim.templates.items() if t.waba_id == waba_id and t.name == name
              and (not hsm_id or t.id == hsm_id)]
    if not doomed:
        status, error = graph_error(100, "Invalid parameter", subcode=2593002)
        error["error"]["error_user_msg"] = f"Message template {name} was not found."
        return status, error
    for key in doomed:
        template = sim.templates.pop(key)
        template.status = "DELETED"
        spawn(sim, post_status(sim, template, "DELETED"))
    return 200, {"success": True}


# --- review and webhooks -----------------------------------------------------------------------------------

def spawn(sim: Simulator, coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` in the background, kept referenced until done."""
    task = asyncio.get_running_loop().create_task(coro)
    sim.background.add(task)
    task.add_done_callback(sim.background.discard)


async def _review(sim: Simulator, template_id: str, delay_s: float) -> None:
    await asyncio.sleep(delay_s)
    template = sim.template_by_id(template_id)
    if template is None or template.status != "PENDING":
        return
    decision = sim.template_settings.decision
    template.status = decision
    if decision == "REJECTED":
        template.rejected_reason = sim.template_settings.rejected_reason
    await post_status(sim, template, decision)


def _envelope(sim: Simulator, waba_id: str, field: str, value: dict[str, Any]) -> dict[str, Any]:
    body = payloads.envelope(waba_id, [{"field": field, "value": value}])
    body["entry"][0]["time"] = int(sim.now())
    return body


def _about(template: SimTemplate) -> dict[str, Any]:
    return {"message_template_id": int(template.id), "message_template_name": template.name,
            "message_template_language": template.language}


async def post_status(sim: Simulator, template: SimTemplate, event: str, *, reason: str | None = None,
                      title: str | None = None) -> bool:
    """``message_template_status_update`` as Meta sends it for ``event``."""
    value: dict[str, Any] = {"event": event, **_about(template),
                             "reason": reason or (template.rejected_reason if event == "REJECTED" else "NONE"),
                             "message_template_category": template.category}
    if event == "REJECTED":
        value["rejection_info"] = {"reason": value["reason"], "recommendation": "Review the template guidelines."}
    title = title or PAUSE_TITLES.get(event)
    if title is not None:
        value["other_info"] = {"title": title, "description": f"Template {template.name} {event.lower()}."}
    if event in ("DISABLED", "FLAGGED"):
        value["disable_info"] = {"disable_date": int(sim.now()) + (0 if event == "DISABLED" else 7 * 86400)}
    return await sim.webhooks.post_account(_envelope(sim, template.waba_id, "message_template_status_update", value))


async def post_components(sim: Simulator, template: SimTemplate) -> bool:
    """``message_template_components_update``: the edited template's texts, as Meta sends them."""
    value: dict[str, Any] = dict(_about(template))
    for component in template.components:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER" and component.get("text"):
            value["message_template_title"] = component["text"]
        elif kind == "BODY":
            value["message_template_element"] = component.get("text", "")
        elif kind == "FOOTER":
            value["message_template_footer"] = component.get("text", "")
        elif kind == "BUTTONS":
            value["message_template_buttons"] = [
                {"message_template_button_type": b.get("type"), "message_template_button_text": b.get("text")}
                for b in component.get("buttons") or [] if isinstance(b, dict)]
    body = _envelope(sim, template.waba_id, "message_template_components_update", value)
    return await sim.webhooks.post_account(body)


async def post_quality(sim: Simulator, template: SimTemplate, previous: str) -> bool:
    value = {"previous_quality_score": previous, "new_quality_score": template.quality, **_about(template)}
    return await sim.webhooks.post_account(_envelope(sim, template.waba_id, "message_template_quality_update", value))


async def post_category(sim: Simulator, template: SimTemplate, previous: str) -> bool:
    value = {**_about(template), "previous_category": previous, "new_category": template.category}
    return await sim.webhooks.post_account(_envelope(sim, template.waba_id, "template_category_update", value))


# --- /_sim controls ----------------------------------------------------------------------------------------

class TemplateRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    waba_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    language: str = Field(min_length=1)


class StatusChange(TemplateRef):
    """A status event (APPROVED, REJECTED, PAUSED, REINSTATED, DISABLED, FLAGGED, …) and its webhook."""

    event: str = Field(pattern=r"^[A-Z_]{1,32}$")
    reason: str | None = None
    title: str | None = None


class QualityChange(TemplateRef):
    score: Literal["GREEN", "YELLOW", "RED", "UNKNOWN"]


class CategoryChange(TemplateRef):
    category: Literal["MARKETING", "UTILITY", "AUTHENTICATION"]


class Pacing(TemplateRef):
    paced: bool = True


class Recipient(BaseModel):
    wa_id: str = Field(min_length=1)
    limited: bool = True


def _template(request: Request, ref: TemplateRef) -> tuple[Simulator, SimTemplate]:
    sim = simulator(request)
    template = sim.template(ref.waba_id, ref.name, ref.language)
    if template is None:
        raise HTTPException(404, f"no template {ref.name} ({ref.language}) in WABA {ref.waba_id}")
    return sim, template


@admin.get("/templates/all")
async def all_templates(request: Request) -> list[dict[str, Any]]:
    return [{**t.listed(), "waba_id": t.waba_id, "paced": t.paced} for t in simulator(request).templates.values()]


@admin.put("/templates/settings")
async def template_settings(changes: dict[str, Any], request: Request) -> TemplateSettings:
    sim = simulator(request)
    try:
        sim.template_settings = TemplateSettings.model_validate({**sim.template_settings.model_dump(), **changes})
    except ValidationError as exc:
        raise HTTPException(422, exc.errors(include_url=False, include_context=False)) from None
    return sim.template_settings


@admin.post("/templates/status")
async def change_status(change: StatusChange, request: Request) -> dict[str, Any]:
    """Set the template's status as Meta would (a pause also turns its quality RED) and send the webhooks."""
    sim, template = _template(request, change)
    if change.event == "PAUSED" and template.quality != "RED":
        previous, template.quality = template.quality, "RED"
        await post_quality(sim, template, previous)
    status = {"REINSTATED": "APPROVED", "UNPAUSED": "APPROVED", "FLAGGED": "APPROVED"}.get(change.event, change.event)
    template.status = status
    if change.event == "REJECTED":
        template.rejected_reason = change.reason or sim.template_settings.rejected_reason
    delivered = await post_status(sim, template, change.event, reason=change.reason, title=change.title)
    return {"status": template.status, "webhook_delivered": delivered}


@admin.post("/templates/quality")
async def change_quality(change: QualityChange, request: Request) -> dict[str, Any]:
    sim, template = _template(request, change)
    previous, template.quality = template.quality, change.score
    return {"quality": template.quality, "webhook_delivered": await post_quality(sim, template, previous)}


@admin.post("/templates/category")
async def change_category(change: CategoryChange, request: Request) -> dict[str, Any]:
    sim, template = _template(request, change)
    previous, template.category = template.category, change.category
    return {"category": template.category, "webhook_delivered": await post_category(sim, template, previous)}


@admin.post("/templates/pacing")
async def change_pacing(change: Pacing, request: Request) -> dict[str, Any]:
    sim, template = _template(request, change)
    template.paced = change.paced
    sim.template_sends[(template.waba_id, template.name, template.language)] = 0
    return {"paced": template.paced}


@admin.post("/recipients/marketing-limited")
async def marketing_limited(recipient: Recipient, request: Request) -> dict[str, Any]:
    """Meta's per-user marketing limit: MARKETING templates to ``wa_id`` fail with 131049 (a failed status)."""
    sim = simulator(request)
    if recipient.limited:
        sim.marketing_limited.add(recipient.wa_id)
    else:
        sim.marketing_limited.discard(recipient.wa_id)
    return {"wa_id": recipient.wa_id, "limited": recipient.limited}
