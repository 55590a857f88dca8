#!/usr/bin/env bash
# Install, then lint, type-check and run the whole test suite (unit + integration against the
# real broker, PostgreSQL and Redis that the test session starts).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest -q --durations=30 "$@"  # the slowest tests, to keep the run short
