"""The ``aerostic`` command: every process and operator tool of the platform."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from aerostic.dlq import add_commands as add_dlq_commands
from bench.steps import DEFAULT_RATES
from config.logs import configure
from config.settings import (
    AiSettings,
    CampaignsSettings,
    CoreSettings,
    DelivererSettings,
    DispatcherSettings,
    IngressSettings,
    ProjectorSettings,
    StreamsSettings,
)

Handler = Callable[[argparse.Namespace], int]
S = TypeVar("S", bound=CoreSettings)


def _observed(settings: S) -> S:
    """A long-running process's settings, once its secrets are masked in its logs, its CPU priority lowered by
    ``AEROSTIC_CPU_NICE`` and its metrics served (on ``AEROSTIC_METRICS_PORT``, if set), with its start-up heap
    frozen."""
    from broker.metrics_http import serve_metrics
    from config.logs import protect_settings

    protect_settings(settings)
    if settings.cpu_nice:
        os.nice(settings.cpu_nice)  # before the metrics server's and the clients' threads: they inherit it
    serve_metrics(settings.metrics_port, settings.metrics_host)
    _freeze_heap()
    return settings


def _freeze_heap() -> None:
    """Move the objects made so far (the role's modules, imported by now) out of the garbage collector's reach.

    They live as long as the process, and scanning them made every full collection stop the dispatcher's event
    loop for 87-103 ms under load (measured), while collecting nothing.
    """
    gc.collect()
    gc.freeze()


SHUTDOWN_GRACE_S = 5
# A full collection waits for this many middle-generation ones instead of CPython's 10, in the two processes whose
# pauses show as a campaign's lost sends (the pacer makes up at most 25 ms). The simulator keeps its request log (up to
# 50,000 entries of decoded JSON, none of them cyclic), so each full collection scans it: 30-62 ms pauses every ~4.7 s
# during a campaign, each one a dip of 30-60 sends in that second at the dispatcher (measured). The dispatcher's
# own full collections, over up to 10,000 requests held in memory, paused its event loop 13-26 ms every ~7 s at
# 1,000 sends a second, collecting 0-27 objects: each one a gap of 21-36 ms between two of a campaign's sends.
FULL_COLLECTION_AFTER = 1000


def _rare_full_collections() -> None:
    """Full collections ``FULL_COLLECTION_AFTER`` times rarer than CPython's default (see there)."""
    young, middle, _old = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)


def _ingress(args: argparse.Namespace) -> int:
    import uvicorn

    from aerostic.web import create_app

    # Streams that never end on their own (the live feed's) must not hold a graceful shutdown forever: requests
    # still running after this long are cancelled (a live stream's browser reconnects to another replica).
    uvicorn.run(create_app(_observed(IngressSettings())), host=args.host, port=args.port, loop="uvloop",
                http="httptools", access_log=False, log_level="warning", log_config=None, backlog=4096,
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S, proxy_headers=False)  # the app applies them (aerostic.web)
    return 0


def _streams(_args: argparse.Namespace) -> int:
    from streams.main import run

    run(_observed(StreamsSettings()))
    return 0


def _campaigns(_args: argparse.Namespace) -> int:
    from streams.main import run_campaigns

    run_campaigns(_observed(CampaignsSettings()))
    return 0


def _projector(_args: argparse.Namespace) -> int:
    from projector.consumer import run

    run(_observed(ProjectorSettings()))
    return 0


def _ai(_args: argparse.Namespace) -> int:
    from aiworker.worker import run

    run(_observed(AiSettings()))
    return 0


def _migrate(_args: argparse.Namespace) -> int:
    from db.migrate import upgrade
    from dispatcher.idempotency import mark_epoch

    settings = CoreSettings()
    upgrade(settings.database_url.get_secret_value())
    mark_epoch(settings.redis_url.get_secret_value())
    return 0


def _topics_create(_args: argparse.Namespace) -> int:
    from stack.topics import create_topics

    settings = CoreSettings()
    created = create_topics(settings.kafka_bootstrap_servers, settings.topic_prefix)
    print(f"created {len(created)} topics")
    return 0


def _tenants_create(args: argparse.Namespace) -> int:
    from tenants.commands import create_tenant

    print(asyncio.run(create_tenant(CoreSettings(), args.name)))
    return 0


def _numbers_attach(args: argparse.Namespace) -> int:
    import getpass

    from broker.producer import AsyncProducer
    from tenants.commands import attach_number
    from vault.cipher import Vault

    token: str | None = None
    vault = None
    if args.token:
        token = getpass.getpass("Meta access token: ") if args.token == "-" else args.token  # noqa: S105 - "-" means prompt
        vault = Vault.from_spec(DispatcherSettings().vault_keys.get_secret_value())
    settings = CoreSettings()

    async def attach() -> int:
        async with AsyncProducer(settings.kafka_bootstrap_servers) as producer:
            return await attach_number(
                settings, producer, tenant_id=args.tenant_id, phone_number_id=args.phone_number_id,
                waba_id=args.waba_id, display_phone_number=args.display_number, throughput_mps=args.throughput,
                token=token, vault=vault, business_id=args.business_id, tier_limit=args.tier)

    replayed = asyncio.run(attach())
    print(f"attached {args.phone_number_id} to {args.tenant_id}; replayed {replayed} held events")
    return 0


def _dispatcher(_args: argparse.Namespace) -> int:
    from dispatcher.service import run

    settings = _observed(DispatcherSettings())
    _rare_full_collections()
    run(settings)
    return 0


def _deliverer(_args: argparse.Namespace) -> int:
    from deliverer.service import run

    run(_observed(DelivererSettings()))
    return 0


def _metasim(args: argparse.Namespace) -> int:
    from metasim.server import run
    from metasim.state import SimConfig

    _freeze_heap()  # a pause of Meta's stand-in would show as one of the dispatcher's
    _rare_full_collections()
    run(SimConfig(), host=args.host, port=args.port)
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    from tenants.api_keys import create_key_for

    key_id, secret = asyncio.run(create_key_for(CoreSettings(), tenant_id=args.tenant_id, name=args.name))
    print(f"key id {key_id}; the key is shown once:\n{secret}")
    return 0


def _media(args: argparse.Namespace) -> int:
    from mediastore.retention import run_with

    tenant_id = args.tenant_id if args.action == "purge" else None
    print(f"{asyncio.run(run_with(CoreSettings(), tenant_id))} media files deleted")
    return 0


def _users_create(args: argparse.Namespace) -> int:
    import getpass
    import os

    from tenants.users import create_user_for

    password = os.environ.get("AEROSTIC_NEW_USER_PASSWORD") or getpass.getpass("Password: ")
    try:
        user_id = asyncio.run(create_user_for(CoreSettings(), tenant_id=args.tenant_id, email=args.email,
                                              password=password, role=args.role))
    except (LookupError, ValueError) as exc:
        print(f"not created: {exc}", file=sys.stderr)
        return 2
    print(user_id)
    return 0


def _vault_generate(args: argparse.Namespace) -> int:
    from vault.cipher import generate_key_spec

    print(generate_key_spec(args.key_id))
    return 0


def _vault_rotate(_args: argparse.Namespace) -> int:
    from sqlalchemy.ext.asyncio import create_async_engine

    from vault.cipher import Vault
    from vault.rotate import rotate

    settings = DispatcherSettings()

    async def main() -> int:
        engine = create_async_engine(settings.database_url.get_secret_value())
        try:
            return await rotate(engine, Vault.from_spec(settings.vault_keys.get_secret_value()))
        finally:
            await engine.dispose()

    print(f"re-encrypted {asyncio.run(main())} tokens under the newest key")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from broker.producer import AsyncProducer
    from tenants.lookup import owner_of
    from tenants.replay import replay_unroutable

    settings = CoreSettings()
    tenant_id = asyncio.run(owner_of(settings, args.phone_number_id))
    if tenant_id is None:
        print(f"{args.phone_number_id} belongs to no tenant; attach it first", file=sys.stderr)
        return 2

    async def replay(tenant: str) -> int:
        async with AsyncProducer(settings.kafka_bootstrap_servers) as producer:
            return await replay_unroutable(settings, producer, {args.phone_number_id}, tenant_id=tenant)

    count = asyncio.run(replay(tenant_id))
    print(f"replayed {count} held events for {args.phone_number_id}")
    return 0


def _dev(args: argparse.Namespace) -> int:
    from stack.dev import run_dev

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return run_dev(stop, ingress_port=args.port, sim_port=args.sim_port, exit_after_ready=args.smoke,
                   keep_data=args.keep_data, scale=dict(args.scale))


def _scale_item(value: str) -> tuple[str, int]:
    """One ``--scale ROLE=N`` (checked by ``stack.scale.parse_scale``)."""
    from stack.scale import parse_scale

    ((role, count),) = parse_scale([value]).items()
    return role, count


def _add_scale(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", type=_scale_item, action="append", default=[], metavar="ROLE=N",
                        help="run N processes of a role (streams, campaigns, projector, ai, dispatcher, deliverer; "
                             "replies: dispatchers for the interactive lane alone, the others then sending the rest)")


_USERNAME = re.compile(r"[A-Za-z0-9._]{3,35}")  # Meta's usernames, as the simulator checks them
_NUMBER = re.compile(r"\+?[0-9]{6,15}")


def _customer(value: str) -> tuple[str | None, str | None]:
    """``simulate``'s customer: a number (wa_id) or ``@username`` (a username-only customer, no number)."""
    if value.startswith("@"):
        if not _USERNAME.fullmatch(value[1:]):
            raise argparse.ArgumentTypeError(f"{value!r}: a username is 3-35 letters, digits, '.' or '_'")
        return None, value[1:]
    if not _NUMBER.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r}: give the customer's number (digits) or @username")
    return value.lstrip("+"), None


def _username(value: str) -> str:
    return str(_customer("@" + value.removeprefix("@"))[1])


def _simulate(args: argparse.Namespace) -> int:
    from metasim.customer import send

    wa_id, username = args.customer
    if username is not None and args.username is not None:
        print("give the username once: @username alone, or a number with --username", file=sys.stderr)
        return 2
    print(send(args.sim, phone_number_id=args.phone_number_id, wa_id=wa_id, username=username or args.username,
               kind=args.kind, name=args.name, text=args.text, payload=args.payload, id=args.id, title=args.title))
    return 0


def _bench_ingress(args: argparse.Namespace) -> int:
    from bench.ingress import main as bench_main

    return bench_main(duration=args.duration, connections=args.connections, rounds=args.rounds)


def _bench_e2e(args: argparse.Namespace) -> int:
    from bench.e2e import main as bench_main

    return bench_main(rates=tuple(args.rates), seconds=args.seconds, drain_s=args.drain, budget_s=args.budget,
                      relay=not args.no_relay, scale=dict(args.scale), pg_stats=args.pg_stats,
                      cpu_rate=args.cpu_rate)


def _bench_ai(args: argparse.Namespace) -> int:
    from bench.ai import main as bench_main

    return bench_main(threshold=args.threshold)


def _eval_ai(args: argparse.Namespace) -> int:
    from ai.eval_cli import EvalInputError, main, provider_named, read_knowledge, read_questions
    from ai.openai_provider import OpenAIConfig
    from bench.clinc import load
    from config.settings import AiSettings

    try:
        if args.clinc:
            kb, questions = load(args.per_entry)
        elif args.knowledge and args.questions:
            kb, questions = read_knowledge(args.knowledge), read_questions(args.questions)
        else:
            raise EvalInputError("give --knowledge and --questions, or --clinc")
        config = None
        if args.provider == "openai":
            settings = AiSettings()
            if settings.openai_base_url:
                config = OpenAIConfig(base_url=settings.openai_base_url, model=settings.openai_model,
                                      api_key=settings.openai_api_key, timeout_s=settings.timeout_s)
        provider = provider_named(args.provider, config)
    except EvalInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return main(provider, kb, questions, args.threshold, as_json=args.json)


def _bench_live(args: argparse.Namespace) -> int:
    from bench.live import main as bench_main

    return bench_main(clients=args.clients, rate=args.rate, seconds=args.seconds)


def _bench_campaign(args: argparse.Namespace) -> int:
    from bench.campaign import main as bench_main

    return bench_main(contacts=args.contacts, pg_stats=args.pg_stats)


def _bench_dispatch(args: argparse.Namespace) -> int:
    from bench.dispatch import main as bench_main

    return bench_main(bulk=args.bulk, max_count=args.sends, seconds=args.seconds, interactive=args.replies,
                      scale=dict(args.scale), meta_latency_ms=args.meta_latency_ms)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aerostic", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the whole local stack with a demo tenant")
    dev.add_argument("--port", type=int, default=8000, help="ingress port")
    dev.add_argument("--sim-port", type=int, default=8090, help="Meta simulator port")
    dev.add_argument("--smoke", action="store_true", help="exit once a message went each way")
    dev.add_argument("--keep-data", action="store_true", default=None,
                     help="keep the stack's data directory when it stops (also AEROSTIC_DEV_KEEP_DATA=1)")
    _add_scale(dev)
    dev.set_defaults(func=_dev)

    ingress = sub.add_parser("ingress", help="run the webhook ingress (HTTP)")
    ingress.add_argument("--host", default="0.0.0.0")
    ingress.add_argument("--port", type=int, default=8000)
    ingress.set_defaults(func=_ingress)
    sub.add_parser("streams", help="run the stream worker (router, conversations)").set_defaults(func=_streams)
    sub.add_parser("campaigns", help="run the campaign worker (expander, recipients, funnel, scheduler)"
                   ).set_defaults(func=_campaigns)
    sub.add_parser("projector", help="run the PostgreSQL projector").set_defaults(func=_projector)
    sub.add_parser("ai", help="run the AI worker (ai.requests -> ai.decisions)").set_defaults(func=_ai)
    sub.add_parser("migrate", help="apply migrations, mark Redis's epoch").set_defaults(func=_migrate)

    topics = sub.add_parser("topics", help="Kafka topics").add_subparsers(dest="action", required=True)
    topics.add_parser("create", help="create every catalogued topic").set_defaults(func=_topics_create)

    tenants = sub.add_parser("tenants", help="tenants").add_subparsers(dest="action", required=True)
    create = tenants.add_parser("create", help="create a tenant and print its id")
    create.add_argument("name")
    create.set_defaults(func=_tenants_create)

    numbers = sub.add_parser("numbers", help="phone numbers").add_subparsers(dest="action", required=True)
    attach = numbers.add_parser("attach", help="give a phone number to a tenant")
    attach.add_argument("tenant_id")
    attach.add_argument("phone_number_id")
    attach.add_argument("--waba-id")
    attach.add_argument("--display-number")
    attach.add_argument("--throughput", type=int, default=80, choices=(20, 80, 1000),
                        help="messages per second (80 standard, 1000 upgraded, 20 coexistence)")
    attach.add_argument("--token", help="the WABA's Meta access token, stored encrypted ('-' to prompt)")
    attach.add_argument("--business-id", help="the business portfolio (for its template tier)")
    attach.add_argument("--tier", type=int, help="unique template recipients per 24 h (omit for unlimited)")
    attach.set_defaults(func=_numbers_attach)

    sub.add_parser("dispatcher", help="run the dispatcher (the only caller of Meta)").set_defaults(func=_dispatcher)
    sub.add_parser("deliverer", help="run the webhook deliverer (tenants' own endpoints)").set_defaults(
        func=_deliverer)
    metasim = sub.add_parser("metasim", help="run the Meta simulator (Graph API, webhooks, customers)")
    metasim.add_argument("--host", default="127.0.0.1")
    metasim.add_argument("--port", type=int, default=8090)
    metasim.set_defaults(func=_metasim)

    keys = sub.add_parser("keys", help="tenant API keys").add_subparsers(dest="action", required=True)
    keys_create = keys.add_parser("create", help="create an API key for a tenant (shown once)")
    keys_create.add_argument("tenant_id")
    keys_create.add_argument("--name", default="default")
    keys_create.set_defaults(func=_keys_create)

    users = sub.add_parser("users", help="tenant users").add_subparsers(dest="action", required=True)
    users_create = users.add_parser("create", help="create a console user (password prompted, never in argv)")
    users_create.add_argument("tenant_id")
    users_create.add_argument("email")
    users_create.add_argument("--role", choices=("admin", "agent"), default="admin")
    users_create.set_defaults(func=_users_create)

    vault = sub.add_parser("vault", help="the token vault").add_subparsers(dest="action", required=True)
    generate = vault.add_parser("generate-key", help="print a new key entry for AEROSTIC_VAULT_KEYS")
    generate.add_argument("key_id")
    generate.set_defaults(func=_vault_generate)
    vault.add_parser("rotate", help="re-encrypt every token under the newest key").set_defaults(func=_vault_rotate)

    add_dlq_commands(sub)

    media = sub.add_parser("media", help="stored media files").add_subparsers(dest="action", required=True)
    media.add_parser("prune", help="delete media past each tenant's retention").set_defaults(func=_media)
    purge = media.add_parser("purge", help="delete every media file of a tenant (its data being deleted)")
    purge.add_argument("tenant_id")
    purge.set_defaults(func=_media)

    replay = sub.add_parser("replay-unroutable", help="re-feed held events of a now-attached number")
    replay.add_argument("phone_number_id")
    replay.set_defaults(func=_replay)

    simulate = sub.add_parser("simulate", help="a simulated customer writes to a business number (via metasim)")
    simulate.add_argument("kind", choices=("text", "button", "button-reply", "list-reply", "image", "video", "audio",
                                           "document", "sticker"))
    simulate.add_argument("phone_number_id")
    simulate.add_argument("customer", type=_customer,
                          help="the customer's number, or @username for a customer without one (a BSUID only)")
    simulate.add_argument("--username", type=_username, help="the username of a customer given by number")
    simulate.add_argument("text", nargs="?", help="the text, button text or caption")
    simulate.add_argument("--payload", help="button payload")
    simulate.add_argument("--id", help="id of the chosen reply button or list row")
    simulate.add_argument("--title", help="title of the chosen reply button or list row")
    simulate.add_argument("--name", default="Customer")
    simulate.add_argument("--sim", default="http://127.0.0.1:8090", help="the Meta simulator's URL")
    simulate.set_defaults(func=_simulate)

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="target", required=True)
    bench_e2e = bench.add_parser("e2e", help="customer question to AI answer latency through the whole pipeline")
    bench_e2e.add_argument("--rates", type=int, nargs="+", default=list(DEFAULT_RATES),
                           help="stepped rates, in order; stepping stops after the first failing step")
    bench_e2e.add_argument("--seconds", type=float, default=5.0, help="length of each step's sending")
    bench_e2e.add_argument("--drain", type=float, default=10.0, help="seconds a step waits for late answers")
    bench_e2e.add_argument("--budget", type=float, default=300.0, help="the whole run's time budget (seconds)")
    bench_e2e.add_argument("--no-relay", action="store_true", help="skip the bare relay baseline")
    bench_e2e.add_argument("--cpu-rate", type=int, default=40,
                           help="the rate of the per-process CPU step (cpu_ms_per_q is defined at 40/s)")
    bench_e2e.add_argument("--pg-stats", action="store_true",
                           help="load pg_stat_statements and print PostgreSQL's costliest statements after the steps")
    _add_scale(bench_e2e)
    bench_e2e.set_defaults(func=_bench_e2e)
    bench_ingress = bench.add_parser("ingress", help="webhook ingress throughput and latency")
    bench_ingress.add_argument("--duration", type=float, default=5.0, help="seconds measured a round, per server")
    bench_ingress.add_argument("--rounds", type=int, default=5,
                               help="rounds of the ceiling and the ingress (which goes first alternates)")
    bench_ingress.add_argument("--connections", type=int, default=64)
    bench_ingress.set_defaults(func=_bench_ingress)
    bench_campaign = bench.add_parser("campaign", help="a campaign at 1,000 msg/s beside a customer conversation")
    bench_campaign.add_argument("--contacts", type=int, default=20_000, help="audience size (the issue's: 100000)")
    bench_campaign.add_argument("--pg-stats", action="store_true",
                                help="load pg_stat_statements; print PostgreSQL's costliest statements of the campaign")
    bench_campaign.set_defaults(func=_bench_campaign)
    bench_dispatch = bench.add_parser("dispatch", help="dispatcher throughput, limit accuracy and lane priority")
    bench_dispatch.add_argument("--sends", type=int, default=5_000,
                                help="sends of the limits-off and ceiling runs (the issue's long run: 20000)")
    bench_dispatch.add_argument("--seconds", type=int, default=5,
                                help="length of each rate-limited run (long run: 10)")
    bench_dispatch.add_argument("--bulk", type=int, default=20_000,
                                help="bulk backlog behind interactive sends (long run: 100000)")
    bench_dispatch.add_argument("--replies", type=int, default=500,
                                help="interactive replies timed idle and behind the backlog (each way)")
    bench_dispatch.add_argument("--meta-latency-ms", type=float, default=250,
                                help="how late the simulator answers for rate1000_meta (Meta: about 100-350 ms)")
    _add_scale(bench_dispatch)
    bench_dispatch.set_defaults(func=_bench_dispatch)
    bench_live = bench.add_parser("live", help="the console's live feed: delivery to N clients, webhook p99 beside it")
    bench_live.add_argument("--clients", type=int, default=200)
    bench_live.add_argument("--rate", type=int, default=100, help="customers' webhooks per second")
    bench_live.add_argument("--seconds", type=float, default=60.0, help="length of the run with clients")
    bench_live.set_defaults(func=_bench_live)
    bench_ai = bench.add_parser("ai", help="AI accuracy, precision and latency on CLINC150, against BM25")
    bench_ai.add_argument("--threshold", type=float, default=0.70)
    bench_ai.set_defaults(func=_bench_ai)

    evaluate = sub.add_parser("eval", help="evaluations").add_subparsers(dest="target", required=True)
    eval_ai = evaluate.add_parser("ai", help="an AI provider on a knowledge base and labelled questions")
    eval_ai.add_argument("--knowledge", type=Path, help="JSON list of {question, answer, keywords?}")
    eval_ai.add_argument("--questions", type=Path, help="JSON list of {text, answer|null} (null: out of scope)")
    eval_ai.add_argument("--clinc", action="store_true", help="the bundled CLINC150 small split instead")
    eval_ai.add_argument("--per-entry", type=int, default=None, help="CLINC150: training questions per intent")
    eval_ai.add_argument("--provider", choices=("offline", "lexical", "openai"), default="offline")
    eval_ai.add_argument("--threshold", type=float, default=0.70)
    eval_ai.add_argument("--json", action="store_true", help="print the report as JSON")
    eval_ai.set_defaults(func=_eval_ai)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure(args.command, verbose=args.verbose)  # the role: ingress, streams, dispatcher…
    except ValueError as exc:
        print(f"aerostic {args.command}: refusing to start: {exc}", file=sys.stderr)
        return 2
    handler: Handler = args.func
    try:
        return handler(args)
    except ValidationError as exc:
        if not exc.title.endswith("Settings") and exc.title != "SimConfig":
            raise
        print(f"aerostic {args.command}: refusing to start: {settings_errors(exc)}", file=sys.stderr)
        return 2


def settings_errors(exc: ValidationError) -> str:
    """The reasons of a settings class's ``ValidationError``, one line each (they name the variables)."""
    lines = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        where = ".".join(str(part) for part in error["loc"])
        lines.append(f"{where}: {message}" if where else message)
    return "\n  ".join(lines)


if __name__ == "__main__":
    sys.exit(main())
