#!/usr/bin/env bash
# Install, then run the whole local stack with a demo tenant (Ctrl-C stops everything).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
exec .venv/bin/aerostic dev "$@"
