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
