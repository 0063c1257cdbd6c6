#!/usr/bin/env bash
# Create .venv (if missing) and install sharin into it. Sourced by the other scripts.
#   SHARIN_EXTRAS: pip extras to install, e.g. "test,mnist"
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${SHARIN_VENV:-$repo/.venv}
if ! command -v git >/dev/null 2>&1; then
    echo "installing git (projects are git repositories)"
    apt-get update -qq && apt-get install -y -qq git >/dev/null
fi
# the browser UI is built from webapp/ when its bundle is missing (Node.js >= 20.19 and npm)
if [ ! -f "$repo/src/sharin/interfaces/server/static/index.html" ] && [ -z "${SHARIN_NO_WEBAPP:-}" ] \
    && ! command -v npm >/dev/null 2>&1; then
    echo "installing Node.js and npm (the browser UI is built with them)"
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
fi
extras=${SHARIN_EXTRAS:-}
spec="$repo"
[ -n "$extras" ] && spec="$repo[$extras]"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$spec"
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
