"""Agents' presence and the assignment of conversations, shared through Redis.

Every agent has a hash (capacity, open conversations, last assignment time, teams) and a presence
key (``online``/``away``) that expires unless the console keeps sending heartbeats. ``pick``
chooses, atomically, an online agent with spare capacity (of the team, when one is named): fewest
open conversations first, then the one assigned least recently (round robin); nobody free puts
the conversation in the team's queue. ``claim`` gives an agent who came online or freed capacity
the oldest waiting conversation of its teams (or of nobody's team). Scripts touch keys derived
from their arguments, so they assume one Redis (not a cluster); those keys' shapes come from
``config.redis_keys`` (the scripts get each as the text around its id).
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from config.redis_keys import agent, agent_presence, around, handoff_queue, tenant_agents

PRESENCE_STATUSES = ("online", "away", "offline")

_PICK = """
local team, now = ARGV[1], tonumber(ARGV[2])
local presence_head, presence_tail, agent_head, agent_tail = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local best, best_open, best_last = nil, nil, nil
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('GET', presence_head .. id .. presence_tail) == 'online' then
    local h = redis.call('HMGET', agent_head .. id .. agent_tail, 'capacity', 'open', 'last', 'teams')
    local capacity, open, last = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0
    local member = team == '' or string.find(',' .. (h[4] or '') .. ',', ',' .. team .. ',', 1, true)
    if open < capacity and member then
      if best == nil or open < best_open or (open == best_open and (last < best_last or
          (last == best_last and id < best))) then
        best, best_open, best_last = id, open, last
      end
    end
  end
end
if best then
  local key = agent_head .. best .. agent_tail
  redis.call('HINCRBY', key, 'open', 1)
  redis.call('HSET', key, 'last', ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[3])
  return best
end
redis.call('ZADD', KEYS[2], 'NX', now, ARGV[3])
return false
"""

_CLAIM = """
local now, queue_head, queue_tail = ARGV[1], ARGV[2], ARGV[3]
if redis.call('GET', KEYS[2]) ~= 'online' then return false end
local h = redis.call('HMGET', KEYS[1], 'capacity', 'open', 'teams')
if (tonumber(h[2]) or 0) >= (tonumber(h[1]) or 0) then return false end
local queues = {queue_head .. queue_tail}
for team in string.gmatch(h[3] or '', '[^,]+') do
  table.insert(queues, queue_head .. team .. queue_tail)
end
local best_queue, best_member, best_score = nil, nil, nil
for _, queue in ipairs(queues) do
  local head = redis.call('ZRANGE', queue, 0, 0, 'WITHSCORES')
  if head[1] and (best_score == nil or tonumber(head[2]) < best_score) then
    best_queue, best_member, best_score = queue, head[1], tonumber(head[2])
  end
end
if best_queue == nil then return false end
redis.call('ZREM', best_queue, best_member)
redis.call('HINCRBY', KEYS[1], 'open', 1)
redis.call('HSET', KEYS[1], 'last', now)
return best_member
"""

_RELEASE = """
local open = tonumber(redis.call('HGET', KEYS[1], 'open') or '0')
if open > 0 then redis.call('HINCRBY', KEYS[1], 'open', -1) end
return math.max(open - 1, 0)
"""


class Assigner:
    """Presence, capacity and queues of a deployment's agents."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pick = redis.register_script(_PICK)
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)

    async def configure(self, tenant_id: str, agent_id: str, *, capacity: int, teams: list[str]) -> None:
        """Make ``agent_id`` assignable with ``capacity`` open conversations in ``teams``."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(tenant_agents(tenant_id), agent_id)
            pipe.hset(agent(tenant_id, agent_id), mapping={"capacity": capacity, "teams": ",".join(teams)})
            await pipe.execute()

    async def remove(self, tenant_id: str, agent_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.srem(tenant_agents(tenant_id), agent_id)
            pipe.delete(agent_presence(tenant_id, agent_id))
            await pipe.execute()

    async def set_presence(self, tenant_id: str, agent_id: str, status: str, *, ttl_s: int) -> None:
        """``online``/``away`` for ``ttl_s`` seconds (renewed by each heartbeat); ``offline`` at once."""
        if status not in PRESENCE_STATUSES:
            raise ValueError(f"unknown presence {status!r}")
        key = agent_presence(tenant_id, agent_id)
        if status == "offline":
            await self.redis.delete(key)
        else:
            await self.redis.set(key, status, ex=ttl_s)

    async def presence(self, tenant_id: str, agent_id: str) -> str:
        value = await self.redis.get(agent_presence(tenant_id, agent_id))
        return (value.decode() if isinstance(value, bytes) else str(value)) if value else "offline"

    async def open_count(self, tenant_id: str, agent_id: str) -> int:
        value = await self.redis.hget(agent(tenant_id, agent_id), "open")
        return int(value or 0)

    async def pick(self, tenant_id: str, conversation_key: str, *, team: str | None = None) -> str | None:
        """An online agent with room (capacity reserved), or None and the conversation waits in the queue."""
        found = await self._pick(keys=[tenant_agents(tenant_id), handoff_queue(tenant_id, team or "")],
                                 args=[team or "", time.time(), conversation_key,
                                       *around(lambda a: agent_presence(tenant_id, a)),
                                       *around(lambda a: agent(tenant_id, a))])
        return _text(found)

    async def claim(self, tenant_id: str, agent_id: str) -> str | None:
        """The oldest waiting conversation ``agent_id`` may take (capacity reserved), or None."""
        found = await self._claim(keys=[agent(tenant_id, agent_id), agent_presence(tenant_id, agent_id)],
                                  args=[time.time(), *around(lambda t: handoff_queue(tenant_id, t))])
        return _text(found)

    async def release(self, tenant_id: str, agent_id: str) -> int:
        """One conversation of ``agent_id`` is no longer open; returns how many remain."""
        return int(await self._release(keys=[agent(tenant_id, agent_id)]))

    async def reserve(self, tenant_id: str, agent_id: str) -> None:
        """Count one more open conversation for ``agent_id`` (a manual assignment ignores capacity)."""
        await self.redis.hincrby(agent(tenant_id, agent_id), "open", 1)

    async def requeue(self, tenant_id: str, conversation_key: str, team: str | None, since: float) -> None:
        """Put a conversation back in its queue at its original place (a claim that could not be handed on)."""
        await self.redis.zadd(handoff_queue(tenant_id, team or ""), {conversation_key: since}, nx=True)

    async def unqueue(self, tenant_id: str, conversation_key: str, team: str | None) -> None:
        await self.redis.zrem(handoff_queue(tenant_id, team or ""), conversation_key)

    async def queued(self, tenant_id: str, team: str | None = None) -> list[str]:
        """The waiting conversations of one queue, oldest first."""
        return [_text(m) or "" for m in await self.redis.zrange(handoff_queue(tenant_id, team or ""), 0, -1)]


def _text(value: object) -> str | None:
    if value is None or value is False:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
