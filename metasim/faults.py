"""Fault injection per phone number: latency, 5xx answers, dropped connections, accept-then-hang.

One seeded ``random.Random`` per number makes a run reproducible. A single draw per request picks
at most one action, so the rates add up (their sum must not exceed 1):

- ``error_5xx_rate``: answer a Graph error with a 5xx status (codes 131000, 2, 131016 by default);
  the message is not accepted.
- ``drop_connection_rate``: start the answer and close the connection without a body; the message
  is not accepted (the client cannot tell, which is the point).
- ``timeout_after_accept_rate``: accept and record the message (webhooks follow), then hang for
  ``hang_s`` and close without answering: the ambiguous "did Meta take it?" case.

``latency_ms`` delays every request to the number before the rest of the checks run.
"""

from __future__ import annotations

import asyncio
import enum
import random
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from metasim.graph_errors import CATALOGUE

DEFAULT_5XX_CODES = (131000, 2, 131016)


class FaultSpec(BaseModel):
    """What goes wrong for one phone number (``POST /_sim/faults/{phone_number_id}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_5xx_rate: float = Field(0.0, ge=0, le=1)
    latency_ms: float = Field(0.0, ge=0)
    timeout_after_accept_rate: float = Field(0.0, ge=0, le=1)
    drop_connection_rate: float = Field(0.0, ge=0, le=1)
    hang_s: float = Field(30.0, ge=0, description="how long an accepted request hangs before the close")
    error_codes: tuple[int, ...] = Field(DEFAULT_5XX_CODES, min_length=1)
    seed: int | None = None

    @model_validator(mode="after")
    def _rates_fit(self) -> FaultSpec:
        if self.error_5xx_rate + self.timeout_after_accept_rate + self.drop_connection_rate > 1 + 1e-9:
            raise ValueError("the fault rates add up to more than 1")
        if any(code not in CATALOGUE or CATALOGUE[code].http_status < 500 for code in self.error_codes):
            raise ValueError(f"error_codes must be 5xx Graph codes, e.g. {list(DEFAULT_5XX_CODES)}")
        return self


class Action(enum.Enum):
    NONE = "none"
    ERROR_5XX = "error_5xx"
    DROP = "drop_connection"
    HANG = "timeout_after_accept"


@dataclass(frozen=True, slots=True)
class Decision:
    """The fault chosen for one request."""

    action: Action = Action.NONE
    latency_s: float = 0.0
    error_code: int = 0
    hang_s: float = 0.0


NO_FAULT = Decision()


class Faults:
    """The fault specs of every number, each with its own seeded random source."""

    def __init__(self, seed: int | None = None) -> None:
        self._seed = seed
        self._specs: dict[str, tuple[FaultSpec, random.Random]] = {}

    def set(self, phone_number_id: str, spec: FaultSpec) -> None:
        seed = spec.seed if spec.seed is not None else self._seed
        self._specs[phone_number_id] = (spec, random.Random(seed))  # noqa: S311 - simulation, not crypto

    def clear(self, phone_number_id: str) -> bool:
        return self._specs.pop(phone_number_id, None) is not None

    def get(self, phone_number_id: str) -> FaultSpec | None:
        entry = self._specs.get(phone_number_id)
        return entry[0] if entry else None

    def all(self) -> dict[str, FaultSpec]:
        return {number: spec for number, (spec, _rng) in self._specs.items()}

    def decide(self, phone_number_id: str) -> Decision:
        """Draw the fault for one request to ``phone_number_id``."""
        entry = self._specs.get(phone_number_id)
        if entry is None:
            return NO_FAULT
        spec, rng = entry
        latency = spec.latency_ms / 1000
        draw = rng.random()
        if draw < spec.error_5xx_rate:
            return Decision(Action.ERROR_5XX, latency, error_code=rng.choice(spec.error_codes))
        draw -= spec.error_5xx_rate
        if draw < spec.drop_connection_rate:
            return Decision(Action.DROP, latency)
        draw -= spec.drop_connection_rate
        if draw < spec.timeout_after_accept_rate:
            return Decision(Action.HANG, latency, hang_s=spec.hang_s)
        return Decision(Action.NONE, latency)


class DroppedResponse(Response):
    """An ASGI response that starts (200, a promised body) and ends without sending it.

    Under uvicorn the server then closes the connection, so the client sees a protocol error
    rather than an answer. ``hang_s`` first keeps the client waiting past its timeout.
    """

    def __init__(self, hang_s: float = 0.0) -> None:
        super().__init__(status_code=200, media_type="application/json")
        self.hang_s = hang_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hang_s > 0:
            await asyncio.sleep(self.hang_s)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")]})
