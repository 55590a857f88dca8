"""``--scale ROLE=N``: parsing, its errors, and the names of a role's processes."""

import argparse
from typing import Any

import pytest

from aerostic.cli import build_parser
from stack.scale import parse_scale, process_names


def test_parse_scale_reads_each_role() -> None:
    assert parse_scale(["dispatcher=2", "streams=3"]) == {"dispatcher": 2, "streams": 3}
    assert parse_scale(None) == {}


@pytest.mark.parametrize("value", ["dispatcher", "ingress=2", "dispatcher=two", "dispatcher=0", "dispatcher=9"])
def test_parse_scale_refuses_what_it_cannot_run(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--scale"):
        parse_scale([value])


def test_process_names_keep_the_first_name() -> None:
    assert process_names("dispatcher", 1) == ["dispatcher"]
    assert process_names("dispatcher", 3) == ["dispatcher", "dispatcher-2", "dispatcher-3"]


def test_the_cli_takes_scale_for_dev_and_the_benches() -> None:
    parser = build_parser()
    assert dict(parser.parse_args(["dev", "--scale", "dispatcher=2"]).scale) == {"dispatcher": 2}
    assert dict(parser.parse_args(["bench", "dispatch", "--scale", "dispatcher=2"]).scale) == {"dispatcher": 2}
    assert dict(parser.parse_args(["bench", "e2e"]).scale) == {}
    with pytest.raises(SystemExit):
        parser.parse_args(["dev", "--scale", "ingress=2"])


def test_the_stack_starts_n_processes_of_a_scaled_role(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from stack.launcher import LocalStack

    started: list[tuple[str, tuple[str, ...], dict[str, str]]] = []

    def spawn(self: LocalStack, name: str, *args: str, env: dict[str, str] | None = None) -> str:
        started.append((name, args, dict(env or {})))
        return name

    monkeypatch.setattr(LocalStack, "spawn", spawn)
    stack = LocalStack(root=tmp_path, scale={"dispatcher": 2})
    stack.metasim_url = "http://127.0.0.1:1"
    first = stack.start_dispatcher(vault_keys="k")
    stack.start_streams()
    assert first == "dispatcher"
    assert [(name, args) for name, args, _ in started] == [
        ("dispatcher", ("dispatcher",)), ("dispatcher-2", ("dispatcher",)), ("streams", ("streams",))]
    assert all(env["AEROSTIC_VAULT_KEYS"] == "k" for name, _, env in started if name.startswith("dispatcher"))


def test_reply_dispatchers_take_the_interactive_lane_and_the_others_the_rest(monkeypatch: pytest.MonkeyPatch,
                                                                             tmp_path: Any) -> None:
    from stack.launcher import LocalStack

    started: dict[str, dict[str, str]] = {}

    def spawn(self: LocalStack, name: str, *args: str, env: dict[str, str] | None = None) -> str:
        assert args == ("dispatcher",)
        started[name] = dict(env or {})
        return name

    monkeypatch.setattr(LocalStack, "spawn", spawn)
    stack = LocalStack(root=tmp_path, scale=parse_scale(["replies=2"]))
    stack.metasim_url = "http://127.0.0.1:1"
    assert stack.start_dispatcher(vault_keys="k") == "dispatcher"
    assert {name: env.get("AEROSTIC_LANES") for name, env in started.items()} == {
        "dispatcher-replies": "interactive", "dispatcher-replies-2": "interactive", "dispatcher": "bulk"}
    assert all(env["AEROSTIC_VAULT_KEYS"] == "k" for env in started.values())
    started.clear()
    LocalStack(root=tmp_path).start_dispatcher(vault_keys="k")  # no replies role: one process sends both lanes
    assert list(started) == ["dispatcher"] and "AEROSTIC_LANES" not in started["dispatcher"]


def test_the_background_roles_niceness_comes_from_the_stacks_environment(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Any) -> None:
    from stack.launcher import BACKGROUND_NICE, LocalStack

    started: dict[str, dict[str, str]] = {}

    def spawn(self: LocalStack, name: str, *args: str, env: dict[str, str] | None = None) -> str:
        started[name] = dict(env or {})
        return name

    monkeypatch.setattr(LocalStack, "spawn", spawn)
    monkeypatch.delenv("AEROSTIC_CPU_NICE", raising=False)
    LocalStack(root=tmp_path).start_projector()
    LocalStack(root=tmp_path, extra_env={"AEROSTIC_CPU_NICE": "3"}).start_deliverer()
    assert started["projector"]["AEROSTIC_CPU_NICE"] == str(BACKGROUND_NICE)
    assert started["deliverer"]["AEROSTIC_CPU_NICE"] == "3"


def test_the_embedded_broker_gets_fewer_partitions_but_one_per_scaled_process(tmp_path: Any) -> None:
    from stack.launcher import EMBEDDED_MAX_PARTITIONS, LocalStack

    stack = LocalStack(root=tmp_path)
    assert stack.partitions_cap() is None  # no broker started by the stack: an adopted one keeps the catalogue's
    stack.services["kafka"] = object()  # type: ignore[assignment]
    assert stack.partitions_cap() == EMBEDDED_MAX_PARTITIONS
    stack.scale = {"dispatcher": 3, "streams": 2}
    assert stack.partitions_cap() == 3
    stack.max_partitions = None
    assert stack.partitions_cap() is None


def test_create_topics_caps_each_topics_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    import stack.topics as topics
    from schemas.catalogue import CATALOGUE

    created: dict[str, int] = {}

    class Admin:
        def __init__(self, config: dict[str, str]) -> None:
            pass

        def list_topics(self, timeout: float) -> Any:
            return argparse.Namespace(topics={})

        def create_topics(self, wanted: list[Any], operation_timeout: float) -> dict[str, Any]:
            done: dict[str, Any] = {}
            for topic in wanted:
                created[topic.topic] = topic.num_partitions
                done[topic.topic] = argparse.Namespace(result=lambda timeout: None)
            return done

    monkeypatch.setattr(topics, "AdminClient", Admin)
    topics.create_topics("broker:9092", "p.", max_partitions=2)
    assert created == {f"p.{spec.name}": min(2, spec.partitions) for spec in CATALOGUE}
    assert max(spec.partitions for spec in CATALOGUE) > 2  # the cap changed something
    created.clear()
    topics.create_topics("broker:9092")
    assert created == {spec.name: spec.partitions for spec in CATALOGUE}
    with pytest.raises(ValueError, match="max_partitions"):
        topics.create_topics("broker:9092", max_partitions=0)
