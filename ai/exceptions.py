"""Errors of the AI agent.

    AIError              root: the provider could not produce an answer; the agent hands the conversation over
    ├── ModelError       the model server failed or answered something unusable (HTTP error, bad JSON, empty reply)
    └── ModelTimeout     the model server did not answer in time

Messages are written for the hand-off reason that agents read; they never contain the API key.
"""

from __future__ import annotations


class AIError(Exception):
    """Root of every error of the AI agent."""


class ModelError(AIError):
    """The model server answered with an error or with something that is not a usable decision."""


class ModelTimeout(AIError):
    """The model server did not answer within the timeout."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"model timed out after {timeout_s:.1f} s")
        self.timeout_s = timeout_s
