#!/usr/bin/env bash
# Install, then run the whole local stack with a demo tenant (Ctrl-C stops everything).
# Its temporary data directory is removed when it stops; --keep-data keeps it (AEROSTIC_DEV_KEEP_DATA=1).
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
for arg in "$@"; do
  if [ "$arg" = "--keep-data" ]; then export AEROSTIC_DEV_KEEP_DATA=1; else args+=("$arg"); fi
done
./scripts/install.sh
exec "$PWD/.venv/bin/aerostic" dev "${args[@]+"${args[@]}"}"
