"""Meta's sending limits, shared by every dispatcher process through Redis (atomic Lua, Redis server clock).

**Per number** (80 msg/s default, 1,000 upgraded, 20 coexistence): GCRA, the virtual-scheduling form of a
token bucket. Each send pushes a theoretical arrival time (TAT) forward by ``T = (1 + margin) / rate``; a send
may go when ``now >= TAT - tolerance``. GCRA admits at most ``floor((L + tolerance) / T) + 1`` sends in any
interval of length ``L``. For ``L = 1 s`` that is below ``rate + 1`` exactly when ``tolerance < margin``, so no
1-second window ever holds more than ``rate`` sends; windows of ``1 s + j`` stay within ``rate`` too while
``j + tolerance < margin``, which absorbs up to 15 ms (defaults) of jitter between our grant and Meta's clock.
Sustained throughput is ``rate / (1 + margin)``, 98 % of the limit. (A bucket of capacity ``rate`` refilled
continuously would admit ``2 * rate`` in the first second.) The small tolerance exists so that a waiter that
wakes a few milliseconds late does not lose its slot, keeping throughput at the full 98 %.

**Per (number, recipient)**: GCRA with one message per 6 s and a burst of 10. Meta lets a pair "borrow" up to
about 45 in a burst, then 1 per 6 s; 10 covers a quick back-and-forth while keeping far from Meta's ceiling,
and the borrowed slots are paid back (after 10 at once the next goes 6 s later, then one per 6 s).

**Portfolio tier**: a sorted set of recipients scored by their last counted send; a recipient already in the
rolling 24 h does not consume budget again.

**Slow-down** after 130429/131056: ``slow_down`` multiplies the number's rate by 0.5 (several errors within
``hold_s`` of each other count once, since they come from the same burst); after ``hold_s`` clean seconds the
rate grows back by a factor 1.1 per second (0.5 → 1 in about 8 s); never below 1 msg/s. ``acquire_number`` applies it.

Acquire methods return 0 when the slot was taken, else the seconds to wait (nothing taken).
``reserve_number`` books a slot up to ``max_wait_s`` ahead instead, so that many concurrent senders on one
number do not stampede Redis each time a slot frees; ``reserve_slots`` books several consecutive ones in one
call (the pacer's: one round trip per ~20 ms of a busy number's slots, not one per send). Booked slots obey
the same bound; they need no tolerance (a late sender keeps its slot), so all of the margin (20 ms) absorbs
jitter, such as senders that wake late from their sleep.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from config import redis_keys
from dispatcher.coalesce import ScriptHost

TIER_WINDOW_S = 24 * 3600
# While one process books a number's replies (marked for REPLY_MARK_S after each), the other processes' bulk bookings
# of the number reach only REPLY_AHEAD_S ahead instead of the pacer's 20 ms: a reply booked by a dispatcher that serves
# the interactive lane alone (``DispatcherSettings.lanes``) otherwise waited behind 20 ms of another's campaign slots
# (reply p50 behind a 20,000 backlog 41-44 ms against 16 idle). Measured with `bench dispatch`'s lanes set-up, split:
# 4 ms gave p99 behind the backlog / idle 1.33-1.43 (four runs) and kept 0.93-0.96 of the campaign's rate; 8 ms
# 1.45-1.51 and 0.97-0.98 (a booking that comes later than its lookahead loses the slots in between).
REPLY_AHEAD_S = 0.004
REPLY_MARK_S = 1.0

_PRELUDE = """
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function factor(key, t, hold, growth)
  local v = redis.call('HMGET', key, 'factor', 'at')
  if not v[1] then return 1.0 end
  local f = tonumber(v[1])
  local idle = t - tonumber(v[2]) - hold
  if idle > 0 then f = f * growth ^ idle end
  if f > 1 then f = 1.0 end
  return f
end
local function effective(rate, f, min_rate)
  local r = rate * f
  if r < min_rate then r = math.min(rate, min_rate) end
  return r
end
-- Books up to ``count`` consecutive slots, the first at most ``ahead`` seconds away and each further one
-- ``interval`` later and also within ``ahead`` (as many single bookings at this instant would): returns
-- {booked, delay of the first, interval}; {0, wait, interval} when even the first is further (nothing booked).
local function gcra(key, t, interval, tolerance, ahead, count)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < t then tat = t end
  local wait = tat - tolerance - t
  if wait > ahead then return {0, tostring(wait), tostring(interval)} end
  local booked = 1
  if count > 1 then
    booked = math.min(count, math.floor((ahead - (tat - t)) / interval) + 1)
    if booked < 1 then booked = 1 end
  end
  if wait < 0 then wait = 0 end
  tat = tat + interval * booked
  redis.call('SET', key, string.format('%.6f', tat), 'PX', math.ceil((tat - t) * 1000) + 1000)
  return {booked, tostring(wait), tostring(interval)}
end
"""

# KEYS: bucket, slowdown, replies mark. ARGV: rate, margin, tolerance, hold, growth, min_rate, ahead, count, reply
# (1: a reply's booking, which marks the number as the booking process's for reply_mark ms; 0: a bulk one, which
# books at most reply_ahead seconds ahead while another process's mark is on the number), reply_ahead, reply_mark,
# the booking process. Returns gcra's three and the lookahead applied.
_NUMBER = _PRELUDE + """
local t = now()
local f = factor(KEYS[2], t, tonumber(ARGV[4]), tonumber(ARGV[5]))
local rate = effective(tonumber(ARGV[1]), f, tonumber(ARGV[6]))
local ahead = tonumber(ARGV[7])
if ARGV[9] == '1' then
  redis.call('SET', KEYS[3], ARGV[12], 'PX', ARGV[11])
elseif ahead > tonumber(ARGV[10]) then
  local mark = redis.call('GET', KEYS[3])
  if mark and mark ~= ARGV[12] then ahead = tonumber(ARGV[10]) end
end
local r = gcra(KEYS[1], t, (1 + tonumber(ARGV[2])) / rate, tonumber(ARGV[3]), ahead, tonumber(ARGV[8]))
r[4] = tostring(ahead)
return r
"""

# KEYS: slowdown. ARGV: rate, hold, growth, min_rate.
_EFFECTIVE = _PRELUDE + """
local f = factor(KEYS[1], now(), tonumber(ARGV[2]), tonumber(ARGV[3]))
return tostring(effective(tonumber(ARGV[1]), f, tonumber(ARGV[4])))
"""

# KEYS: slowdown. ARGV: multiplier, hold, growth, floor factor. Returns the factor now in force.
_SLOW_DOWN = _PRELUDE + """
local t = now()
local hold, growth = tonumber(ARGV[2]), tonumber(ARGV[3])
local at = redis.call('HGET', KEYS[1], 'at')
if at and t - tonumber(at) < hold then return redis.call('HGET', KEYS[1], 'factor') end
local f = math.max(factor(KEYS[1], t, hold, growth) * tonumber(ARGV[1]), tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'factor', tostring(f), 'at', string.format('%.6f', t))
redis.call('PEXPIRE', KEYS[1], math.ceil((hold + math.log(1 / f) / math.log(growth) + 1) * 1000))
return tostring(f)
"""

# KEYS: pair bucket. ARGV: interval, tolerance.
_PAIR = _PRELUDE + """
return gcra(KEYS[1], now(), tonumber(ARGV[1]), tonumber(ARGV[2]), 0, 1)
"""

# KEYS: pair bucket. ARGV: seconds, tolerance. Pushes the next allowed send at least ``seconds`` away.
_PENALIZE = _PRELUDE + """
local t = now()
local target = t + tonumber(ARGV[1]) + tonumber(ARGV[2])
if tonumber(redis.call('GET', KEYS[1]) or '0') < target then
  redis.call('SET', KEYS[1], string.format('%.6f', target), 'PX', math.ceil((target - t) * 1000) + 1000)
end
return 1
"""

# KEYS: tier set. ARGV: wa_id, limit, window seconds. 1 = may send, 0 = budget exhausted.
_RESERVE = _PRELUDE + """
local t = now()
local window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', t - window))
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not known and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], string.format('%.6f', t), ARGV[1])
redis.call('EXPIRE', KEYS[1], window + 60)
return 1
"""


@dataclass(frozen=True, slots=True)
class Slots:
    """Slots booked at once: ``booked`` of them, from ``delay_s`` from now, ``interval_s`` apart, booked at most
    ``ahead_s`` ahead (shorter than asked while another process's replies wait for the number: ``reserve_slots``)."""

    booked: int
    delay_s: float
    interval_s: float
    ahead_s: float = 0.0


@dataclass(frozen=True, slots=True)
class SlowDownPolicy:
    """How a number backs off after 130429/131056 and probes back up."""

    multiplier: float = 0.5
    hold_s: float = 1.0
    growth_per_s: float = 1.1
    min_rate: float = 1.0
    floor_factor: float = 0.001

    def __post_init__(self) -> None:
        if not (0 < self.multiplier < 1 and self.growth_per_s > 1 and 0 < self.floor_factor <= 1):
            raise ValueError("need 0 < multiplier < 1, growth_per_s > 1 and 0 < floor_factor <= 1")


class RateLimiter:
    """Number, pair and portfolio limits on one shared Redis."""

    def __init__(self, redis: ScriptHost, *, margin: float = 0.02, tolerance_s: float = 0.005,
                 pair_interval_s: float = 6.0, pair_burst: int = 10,
                 slowdown: SlowDownPolicy | None = None, reply_ahead_s: float = REPLY_AHEAD_S,
                 reply_mark_s: float = REPLY_MARK_S) -> None:
        if not 0 <= tolerance_s < margin:
            raise ValueError("tolerance_s must be below margin, or a 1-second window could exceed the rate")
        if pair_burst < 1 or pair_interval_s <= 0:
            raise ValueError("pair_burst must be >= 1 and pair_interval_s > 0")
        self.margin = margin
        self.tolerance_s = tolerance_s
        self.pair_interval_s = pair_interval_s
        self.pair_burst = pair_burst
        self.slowdown = slowdown or SlowDownPolicy()
        self.reply_ahead_s = reply_ahead_s
        self.reply_mark_s = reply_mark_s
        self.owner = uuid.uuid4().hex  # this process, in a number's replies mark
        self._number = redis.register_script(_NUMBER)
        self._effective = redis.register_script(_EFFECTIVE)
        self._slow_down = redis.register_script(_SLOW_DOWN)
        self._pair = redis.register_script(_PAIR)
        self._penalize = redis.register_script(_PENALIZE)
        self._reserve = redis.register_script(_RESERVE)

    async def acquire_number(self, phone_number_id: str, rate: float) -> float:
        """Take a slot of the number's throughput (``rate`` msg/s, slow-down applied): 0, or seconds to wait."""
        slots = await self._book_number(phone_number_id, rate, 0.0, self.tolerance_s, 1)
        return 0.0 if slots.booked else slots.delay_s

    async def reserve_number(self, phone_number_id: str, rate: float, *, max_wait_s: float = 1.0) -> float | None:
        """Book the number's next slot if it is at most ``max_wait_s`` away: the delay to sleep before sending.

        None when the next slot is further away (nothing booked). Unlike polling ``acquire_number``, many
        concurrent senders never stampede: each call books a distinct slot.
        """
        slots = await self.reserve_slots(phone_number_id, rate, 1, max_wait_s=max_wait_s)
        return slots.delay_s if slots.booked else None

    async def reserve_slots(self, phone_number_id: str, rate: float, count: int, *,
                            max_wait_s: float, reply: bool = False) -> Slots:
        """Book up to ``count`` of the number's next slots, all at most ``max_wait_s`` away, in one call.

        The booked slots are ``delay_s``, ``delay_s + interval_s``, ... from now; none when the next slot is
        further away than ``max_wait_s`` (then ``delay_s`` is its distance). A ``reply``'s booking marks the number
        for ``reply_mark_s``; meanwhile the bulk bookings of every other process (``owner``) reach at most
        ``reply_ahead_s`` ahead, so a reply booked by one process waits behind at most that much of another's campaign
        (within a process, the pacer hands its booked slots to replies first).
        """
        return await self._book_number(phone_number_id, rate, max(0.0, max_wait_s), 0.0, max(1, count), reply)

    async def _book_number(self, phone_number_id: str, rate: float, ahead: float, tolerance: float,
                           count: int, reply: bool = False) -> Slots:
        if rate <= 0:
            raise ValueError("rate must be positive")
        s = self.slowdown
        keys = [redis_keys.number_bucket(phone_number_id), redis_keys.lane_slowdown(phone_number_id),
                redis_keys.number_replies(phone_number_id)]
        booked, wait, interval, applied = await self._number(keys=keys, args=[
            rate, self.margin, tolerance, s.hold_s, s.growth_per_s, s.min_rate, ahead, count, int(reply),
            self.reply_ahead_s, max(1, round(self.reply_mark_s * 1000)), self.owner])
        return Slots(int(booked), float(wait), float(interval), float(applied))

    async def acquire_pair(self, phone_number_id: str, wa_id: str) -> float:
        """Take a slot of the (number, recipient) pair: 0, or seconds to wait."""
        tolerance = (self.pair_burst - 1) * self.pair_interval_s
        keys = [redis_keys.pair_bucket(phone_number_id, wa_id)]
        booked, wait, _ = await self._pair(keys=keys, args=[self.pair_interval_s, tolerance])
        return 0.0 if int(booked) == 1 else float(wait)

    async def penalize_pair(self, phone_number_id: str, wa_id: str, seconds: float) -> None:
        """Hold the pair for at least ``seconds`` (after a 131056), then resume at one per interval, no burst."""
        keys = [redis_keys.pair_bucket(phone_number_id, wa_id)]
        await self._penalize(keys=keys, args=[max(0.0, seconds), (self.pair_burst - 1) * self.pair_interval_s])

    async def reserve_recipient(self, business_id: str, wa_id: str, tier_limit: int | None) -> bool:
        """Count ``wa_id`` in the portfolio's rolling 24 h budget; False when a new recipient would exceed it."""
        if tier_limit is None:
            return True
        keys = [redis_keys.portfolio_recipients(business_id)]
        return int(await self._reserve(keys=keys, args=[wa_id, tier_limit, TIER_WINDOW_S])) == 1

    async def slow_down(self, phone_number_id: str) -> float:
        """Cut the number's rate after Meta's 130429/131056; returns the factor now in force."""
        s = self.slowdown
        keys = [redis_keys.lane_slowdown(phone_number_id)]
        return float(await self._slow_down(keys=keys, args=[s.multiplier, s.hold_s, s.growth_per_s,
                                                            s.floor_factor]))

    async def effective_rate(self, phone_number_id: str, rate: float) -> float:
        """The number's rate now, after any slow-down and its recovery."""
        s = self.slowdown
        keys = [redis_keys.lane_slowdown(phone_number_id)]
        return float(await self._effective(keys=keys, args=[rate, s.hold_s, s.growth_per_s, s.min_rate]))
