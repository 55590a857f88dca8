"""The dispatcher's rebalance callbacks run on the polling thread: they rebind the assignment, never mutate the set
the event loop may be iterating."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from config.settings import DispatcherSettings
from dispatcher.service import Dispatcher
from vault.cipher import Vault, generate_key_spec


async def test_callbacks_replace_the_assignment_instead_of_mutating_it() -> None:
    keys = generate_key_spec("unit-1")
    dispatcher = Dispatcher(DispatcherSettings(environment="test", kafka_bootstrap_servers="127.0.0.1:1",
                                               vault_keys=keys), Vault.from_spec(keys))
    try:
        dispatcher._on_assign(dispatcher.consumer, [TopicPartition("outbound.bulk", 0),
                                                    TopicPartition("outbound.bulk", 1)])
        seen_by_the_loop = dispatcher._assigned
        dispatcher._on_revoke(dispatcher.consumer, [TopicPartition("outbound.bulk", 1)])
        assert seen_by_the_loop == {("outbound.bulk", 0), ("outbound.bulk", 1)}  # untouched while iterated
        assert dispatcher._assigned == {("outbound.bulk", 0)}
        dispatcher._on_assign(dispatcher.consumer, [TopicPartition("outbound.bulk", 2)])
        assert dispatcher._assigned == {("outbound.bulk", 0), ("outbound.bulk", 2)}
        assert dispatcher._revoked == [{("outbound.bulk", 1)}]
    finally:
        await dispatcher.graph.aclose()
        await dispatcher.redis.aclose()
        await dispatcher.engine.dispose()


async def test_signup_template_and_media_workers_are_built_only_where_they_run() -> None:
    from prometheus_client import REGISTRY

    from dispatcher.media import MediaWorker
    from dispatcher.signup_worker import SignupWorker
    from dispatcher.templates import TemplateWorker
    from schemas.catalogue import DISPATCHER_GROUP, MEDIA_GROUP, SIGNUP_GROUP, TEMPLATES_GROUP

    keys = generate_key_spec("unit-1")
    built = {}
    for lanes in ("all", "bulk", "interactive"):
        dispatcher = Dispatcher(DispatcherSettings(environment="test", kafka_bootstrap_servers="127.0.0.1:1",
                                                   vault_keys=keys, lanes=lanes), Vault.from_spec(keys))
        built[lanes] = [type(worker) for worker in dispatcher.side_workers]
        for worker in dispatcher.side_workers:
            worker.consumer.close()
        await dispatcher.graph.aclose()
        await dispatcher.redis.aclose()
        await dispatcher.engine.dispose()
    assert built == {"all": [SignupWorker, TemplateWorker, MediaWorker],
                     "bulk": [SignupWorker, TemplateWorker, MediaWorker], "interactive": []}
    # Each group a process is in shows its assignments from the start, at 0 until the first (``stop_in_turn``).
    for group in (DISPATCHER_GROUP, SIGNUP_GROUP, TEMPLATES_GROUP, MEDIA_GROUP):
        assert REGISTRY.get_sample_value("aerostic_consumer_assignments_total", {"group": group}) is not None
