#!/usr/bin/env bash
# Install the console's browser libraries from npm (versions pinned by console-vendor/package-lock.json)
# and copy the files the console serves to api/console/static/vendor/. Needs node and npm (Debian's nodejs/npm).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "npm is required for the console's libraries (apt-get install nodejs npm)" >&2; exit 1
  fi
fi
npm ci --prefix console-vendor --ignore-scripts --no-audit --no-fund --silent
npm run --prefix console-vendor --silent vendor
