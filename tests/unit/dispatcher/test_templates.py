"""dispatcher.templates: paged sync, creations within Meta's hourly limit, Meta's refusals (real Redis, mock Graph)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import redis.asyncio as aioredis

from dispatcher.graph import GraphClient
from dispatcher.templates import TemplateWorker
from schemas.templates import CREATION_LIMIT_CODE, TemplateRequest, TemplateResult


class Published:
    """Stands in for the producer: keeps what was sent."""

    def __init__(self) -> None:
        self.results: list[TemplateResult] = []

    async def send(self, _topic: str, value: bytes, _key: Any) -> None:
        self.results.append(TemplateResult.decode(value))


class Worker(TemplateWorker):
    async def _token(self, request: TemplateRequest) -> str:
        return "tok"


def worker(handler: Any, redis: aioredis.Redis, *, per_hour: int = 100) -> tuple[Worker, Published, list[Any]]:
    calls: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        result: httpx.Response = handler(request)
        return result

    published = Published()
    instance = Worker.__new__(Worker)
    instance.graph = GraphClient("http://graph.test", "v23.0", transport=httpx.MockTransport(record))
    instance.redis, instance.producer = redis, published  # type: ignore[assignment]
    instance.retry_base_s, instance.creations_per_hour = 0.0, per_hour
    instance.results_topic = "templates.results"
    return instance, published, calls


def request(action: str, uid: str, n: int = 0, **fields: Any) -> TemplateRequest:
    return TemplateRequest(event_id=f"{uid}-{n}", request_id=f"{uid}-{n}", tenant_id="t1", waba_id=f"w-{uid}",
                           action=action, requested_by="test", requested_at=datetime.now(UTC), **fields)


async def test_sync_follows_the_cursor_and_lists_every_key(redis_client: aioredis.Redis, uid: str) -> None:
    def meta(req: httpx.Request) -> httpx.Response:
        after = req.url.params.get("after")
        if after is None:
            return httpx.Response(200, json={"data": [{"id": "1", "name": "a", "language": "en_US"}],
                                             "paging": {"cursors": {"after": "C1"}, "next": "https://x"}})
        assert after == "C1" and req.url.params["limit"] == "100"
        return httpx.Response(200, json={"data": [{"id": "2", "name": "b", "language": "pt_BR"}],
                                         "paging": {"cursors": {"after": "C2"}}})

    instance, published, calls = worker(meta, redis_client)
    final = await instance.handle(request("sync", uid))
    assert len(calls) == 2 and [r.outcome for r in published.results] == ["page", "page"]
    assert final.outcome == "synced" and final.seen == [("a", "en_US"), ("b", "pt_BR")]
    assert final.fetched_at <= published.results[0].fetched_at  # the listing is dated by its first page


async def test_creations_stop_at_the_hourly_limit_before_meta(redis_client: aioredis.Redis, uid: str) -> None:
    def meta(req: httpx.Request) -> httpx.Response:
        body = json.loads(req.content)
        return httpx.Response(200, json={"id": f"id-{body['name']}", "status": "PENDING", "category": "UTILITY"})

    instance, _, calls = worker(meta, redis_client, per_hour=2)
    body = {"name": "n", "language": "en_US", "category": "UTILITY", "components": [{"type": "BODY", "text": "x"}]}
    first = await instance.handle(request("create", uid, 1, template=body))
    second = await instance.handle(request("create", uid, 2, template={**body, "name": "m"}))
    third = await instance.handle(request("create", uid, 3, template={**body, "name": "o"}))
    assert (first.outcome, first.meta_id, first.status) == ("created", "id-n", "PENDING")
    assert second.outcome == "created" and len(calls) == 2
    assert third.outcome == "failed" and third.error_code == CREATION_LIMIT_CODE
    assert "2 template creations" in (third.error_message or "")


async def test_metas_refusal_becomes_a_failed_result(redis_client: aioredis.Redis, uid: str) -> None:
    def meta(_req: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "Invalid parameter", "type": "OAuthException",
                                                   "code": 100, "error_subcode": 2388024,
                                                   "error_data": {"details": "already exists"}}})

    instance, _, calls = worker(meta, redis_client)
    failed = await instance.handle(request("create", uid, template={"name": "n", "language": "en_US"}))
    assert failed.outcome == "failed" and failed.error_code == 100 and len(calls) == 1
    deleted = await instance.handle(request("delete", uid, 2, name="n"))
    assert deleted.outcome == "failed" and calls[-1].method == "DELETE" and calls[-1].url.params["name"] == "n"
