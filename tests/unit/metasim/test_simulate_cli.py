"""``aerostic simulate``'s customer: a number, ``@username`` (no number), or a number with ``--username``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from aerostic.cli import main
from metasim import customer


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The bodies ``simulate`` posts to the simulator's customer API (which answers with a wamid)."""
    bodies: list[dict[str, Any]] = []

    def post(url: str, *, json: dict[str, Any], timeout: float) -> httpx.Response:
        assert url == "http://sim.test/_sim/customers/messages"
        bodies.append(json)
        return httpx.Response(200, json={"wamid": f"wamid.{len(bodies)}"}, request=httpx.Request("POST", url))

    monkeypatch.setattr(customer.httpx, "post", post)
    return bodies


def _simulate(*args: str) -> int:
    return main(["simulate", "--sim", "http://sim.test", *args])


def test_a_username_only_customer_writes_without_a_number(posted: list[dict[str, Any]],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert _simulate("text", "PN1", "@maria.silva", "hello") == 0
    assert posted == [{"phone_number_id": "PN1", "username": "maria.silva", "name": "Customer", "type": "text",
                       "text": "hello"}]
    assert capsys.readouterr().out.strip() == "wamid.1"


def test_a_customer_by_number_with_and_without_a_username(posted: list[dict[str, Any]]) -> None:
    assert _simulate("text", "PN1", "+15550001111", "hi") == 0
    assert _simulate("text", "PN1", "15550001111", "hi", "--username", "@maria_s") == 0
    assert [(b.get("from"), b.get("username")) for b in posted] == [("15550001111", None),
                                                                     ("15550001111", "maria_s")]


@pytest.mark.parametrize(("customer_arg", "extra", "error"), [
    ("@ab", [], "a username is 3-35"),
    ("@maria silva", [], "a username is 3-35"),
    ("@" + "m" * 36, [], "a username is 3-35"),
    ("maria", [], "the customer's number (digits) or @username"),
    ("1555-000", [], "the customer's number (digits) or @username"),
    ("15550001111", ["--username", "a!"], "a username is 3-35"),
])
def test_a_bad_customer_is_refused_before_anything_is_sent(
        customer_arg: str, extra: list[str], error: str, posted: list[dict[str, Any]],
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _simulate("text", "PN1", customer_arg, "hi", *extra)
    assert exited.value.code == 2
    assert error in capsys.readouterr().err
    assert posted == []


def test_a_username_given_twice_is_refused(posted: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    assert _simulate("text", "PN1", "@maria", "hi", "--username", "other") == 2
    assert "give the username once" in capsys.readouterr().err
    assert posted == []


def test_the_cli_checks_usernames_as_the_simulator_does() -> None:
    from aerostic.cli import _USERNAME
    from metasim.app import CustomerMessage

    field = CustomerMessage.model_fields["username"]
    patterns = [getattr(m, "pattern", None) for m in field.metadata]
    assert f"^{_USERNAME.pattern}$" in patterns
