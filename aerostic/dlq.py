"""``aerostic dlq list|show|replay``: the operator's view of the dead-letter topics."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence

from config.settings import CoreSettings
from schemas.catalogue import GROUPS
from schemas.dead_letter import DeadLetter

LATEST = 10


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = sub.add_parser("dlq", help="dead letters: records a consumer group set aside").add_subparsers(
        dest="action", required=True)
    listing = dlq.add_parser("list", help="how many dead letters each group has, and its latest ones")
    listing.add_argument("group", nargs="?", choices=GROUPS)
    listing.set_defaults(func=_list)
    show = dlq.add_parser("show", help="one dead letter in full (error, source position, the record)")
    show.add_argument("group", choices=GROUPS)
    show.add_argument("offset", type=int)
    show.set_defaults(func=_show)
    replay = dlq.add_parser("replay", help="put dead letters back on their source topic (after a fix)")
    replay.add_argument("group", choices=GROUPS)
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--offset", type=int, action="append", help="a dead letter's offset (repeatable)")
    which.add_argument("--all", action="store_true", help="every dead letter of the group")
    replay.set_defaults(func=_replay)


def describe(offset: int, letter: DeadLetter) -> str:
    """One line: where the letter is, where it came from, and why."""
    return (f"{offset:>6}  {letter.failed_at:%Y-%m-%d %H:%M:%S}  {letter.source_topic}[{letter.partition}]"
            f"@{letter.offset}  {letter.error_type}: {letter.error.splitlines()[0][:120] if letter.error else ''}")


def _list(args: argparse.Namespace) -> int:
    from broker.dead_letters import read_letters

    settings = CoreSettings()
    for group in [args.group] if args.group else GROUPS:
        letters = read_letters(settings, group)
        print(f"{group}: {len(letters)} dead letter{'s' if len(letters) != 1 else ''}")
        for offset, letter in letters[-LATEST:]:
            print("  " + describe(offset, letter))
    return 0


def as_dict(letter: DeadLetter) -> dict[str, object]:
    """The letter for people: the record's key and value as text where they are UTF-8."""
    shown: dict[str, object] = letter.model_dump(mode="json", exclude={"key_b64", "value_b64"})
    for name, raw in (("key", letter.key), ("value", letter.value)):
        if raw is None:
            shown[name] = None
            continue
        try:
            shown[name] = raw.decode()
        except UnicodeDecodeError:
            shown[name + "_b64"] = letter.key_b64 if name == "key" else letter.value_b64
    return shown


def _show(args: argparse.Namespace) -> int:
    from broker.dead_letters import read_letters

    found = dict(read_letters(CoreSettings(), args.group))
    if args.offset not in found:
        print(f"no dead letter at offset {args.offset} of {args.group}")
        return 2
    print(json.dumps(as_dict(found[args.offset]), indent=2, ensure_ascii=False))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from broker.dead_letters import replay
    from broker.producer import AsyncProducer

    settings = CoreSettings()
    offsets: Sequence[int] | None = args.offset

    async def run() -> int:
        async with AsyncProducer(settings.kafka_bootstrap_servers) as producer:
            return await replay(settings, producer, args.group, None if args.all else set(offsets or ()))

    count = asyncio.run(run())
    print(f"replayed {count} dead letter{'s' if count != 1 else ''} of {args.group}")
    return 0 if count or args.all else 2
