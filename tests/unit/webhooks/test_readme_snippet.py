"""The README's verification snippet verifies what the deliverer signs (and refuses another secret)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from webhooks.signing import generate_secret, headers

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def _snippet() -> Any:
    section = README.split("## Tenant webhooks", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 - the README's own example
    return namespace["verify"]


def test_the_readme_snippet_verifies_a_delivery_signed_during_a_rotation() -> None:
    verify = _snippet()
    old, new, body = generate_secret(), generate_secret(), b'{"id":"evt_1","type":"message.sent"}'
    sent = headers([new, old], "evt_1", int(time.time()), body)
    verify(new, sent, body)
    verify(old, sent, body)
    with pytest.raises(ValueError, match="signature"):
        verify(generate_secret(), sent, body)
    with pytest.raises(ValueError, match="signature"):
        verify(new, sent, body + b" ")
    with pytest.raises(ValueError, match="stale"):
        verify(new, headers([new], "evt_1", int(time.time()) - 600, body), body)
