"""Plumbing of the simulated onboarding Graph calls: the version path segment, the call log, per-step faults,
the Bearer check and JSON answers.

Each route hands ``graph_call`` its step and a handler; the handler returns ``(status, body)`` or raises
``Refusal`` with a Graph error. A fault set for the step (``POST /_sim/signup/faults``) answers before
anything else, the token check included. Every call lands in ``Signup.log`` (``GET /_sim/signup/requests``),
not in the send log, so ``GET /_sim/requests`` keeps listing sends only.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request, Response
from starlette.convertors import Convertor, register_url_convertor

from metasim.graph_errors import CATALOGUE, error_body, graph_error
from metasim.limits import token_refusal
from metasim.signup_models import SignupFault, Step
from metasim.state import Simulator

Outcome = tuple[int, dict[str, Any]]
UNSUPPORTED = ("Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing "
               "permissions, or does not support this operation. Please read the Graph API documentation at "
               "https://developers.facebook.com/docs/graph-api")


class GraphVersion(Convertor[str]):
    """``{version:graph_version}`` matches ``v23.0`` and the like only, so Graph routes never shadow ``/_sim``."""

    regex = r"v\d+\.\d+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("graph_version", GraphVersion())


class Refusal(Exception):
    """A Graph error answer raised from inside a handler."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome[1]["error"]["message"])
        self.outcome = outcome


@dataclass(frozen=True, slots=True)
class Call:
    """One Graph call as a handler sees it."""

    sim: Simulator
    query: dict[str, str]
    body: Any
    token: str


@dataclass(frozen=True, slots=True)
class Access:
    """What a live Bearer token grants."""

    token: str
    waba_ids: frozenset[str]
    business_ids: frozenset[str]


def simulator(request: Request) -> Simulator:
    sim: Simulator = request.app.state.sim
    return sim


async def graph_call(request: Request, step: Step, handler: Callable[[Call], Outcome]) -> Response:
    """Log the call, answer a fault set for ``step`` or else the handler's outcome, as JSON."""
    sim = simulator(request)
    raw = await request.body()
    query = dict(request.query_params)
    headers = {k.lower(): v for k, v in request.headers.items()}
    entry: dict[str, Any] = {"time": sim.now(), "method": request.method, "path": request.url.path, "query": query,
                             "headers": headers, "body": _body(raw, headers), "step": step, "status": None,
                             "response": None, "fault": False}
    sim.signup.record(entry)
    fault = sim.signup.take_fault(step)
    if fault is not None:
        entry["fault"] = True
        outcome = fault_answer(fault)
    else:
        try:
            outcome = handler(Call(sim, query, entry["body"], bearer_token(headers, query)))
        except Refusal as refusal:
            outcome = refusal.outcome
    entry["status"], entry["response"] = outcome
    return Response(orjson.dumps(outcome[1]), status_code=outcome[0], media_type="application/json")


def _body(raw: bytes, headers: dict[str, str]) -> Any:
    if not raw:
        return None
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


def bearer_token(headers: dict[str, str], query: dict[str, str]) -> str:
    """The Bearer token, or Graph's ``access_token`` query parameter."""
    header = headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return query.get("access_token", "")


def fault_answer(fault: SignupFault) -> Outcome:
    """The Graph error a fault injects: the catalogue's body where it knows the code, else a platform error."""
    if fault.code in CATALOGUE and fault.message is None:
        status, body = error_body(fault.code)
    else:
        status, body = graph_error(fault.code, fault.message or f"(#{fault.code}) An unexpected error occurred",
                                   http_status=CATALOGUE[fault.code].http_status if fault.code in CATALOGUE else 500)
    if fault.error_subcode is not None:
        body["error"]["error_subcode"] = fault.error_subcode
    return fault.http_status or status, body


def authorised(call: Call) -> Access:
    """The grant of the call's token; raises ``Refusal`` (190, HTTP 401) like the send endpoint does."""
    refusal = token_refusal(call.sim, call.token)
    if refusal is not None:
        raise Refusal(refusal)
    wabas = call.sim.tokens[call.token]
    return Access(call.token, frozenset(wabas), frozenset(call.sim.signup.businesses_of(call.token, wabas)))


def missing(method: str, object_id: str) -> Refusal:
    """Graph's answer for an object id it does not know (code 100, subcode 33)."""
    return Refusal(graph_error(100, UNSUPPORTED.format(method=method, id=object_id), subcode=33,
                               kind="GraphMethodException"))


def denied() -> Refusal:
    """``(#200) Permissions error`` (HTTP 403): the object exists but the token was not granted it."""
    return Refusal(error_body(200))


def paged(data: list[dict[str, Any]]) -> Outcome:
    """A one-page Graph list with cursor paging (no ``next``)."""
    if not data:
        return 200, {"data": []}
    before, after = (base64.urlsafe_b64encode(str(item["id"]).encode()).decode().rstrip("=")
                     for item in (data[0], data[-1]))
    return 200, {"data": data, "paging": {"cursors": {"before": before, "after": after}}}
