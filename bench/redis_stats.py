"""Redis's own count of the commands it ran (``INFO commandstats``): what a bench's phase cost Redis, per unit."""

from __future__ import annotations

from redis.asyncio import Redis


async def redis_commands(url: str) -> dict[str, int]:
    """How many times Redis has run each command so far."""
    redis = Redis.from_url(url)
    try:
        stats = await redis.info("commandstats")
    finally:
        await redis.aclose()
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def per_unit(before: dict[str, int], after: dict[str, int], units: int, unit: str) -> str:
    """One line: the commands run between ``before`` and ``after`` per ``unit`` (of ``units``), by command."""
    each = {name: (n - before.get(name, 0)) / max(units, 1) for name, n in after.items()}
    shown = ", ".join(f"{name} {n:.2f}" for name, n in sorted(each.items(), key=lambda kv: -kv[1]) if n >= 0.01)
    return f"Redis commands per {unit}: {sum(each.values()):.2f} ({shown})"
