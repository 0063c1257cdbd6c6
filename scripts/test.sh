#!/usr/bin/env bash
# Install everything the tests need and run all of them: lint, types, and the pytest suite
# (including the real TensorFlow MNIST example). Extra arguments go to pytest.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARIN_EXTRAS=test,mnist source "$repo/scripts/setup.sh"
cd "$repo"
if [ -z "${MNIST_NPZ:-}" ] && [ -f "$repo/../shared/datasets/mnist/mnist.npz" ]; then
    export MNIST_NPZ="$repo/../shared/datasets/mnist/mnist.npz"
fi
export SHARIN_REQUIRE_ALL=1   # a test that cannot find what it needs fails instead of skipping
ruff check src tests benchmarks
ruff format --check src tests benchmarks
mypy
# the real schedulers and the SSH host that tests/services use (README, Test services)
if [ "$(id -u)" = 0 ] || [ "${SHARIN_SERVICES:-}" = 1 ]; then
    bash "$repo/scripts/services/up.sh"
    source "$repo/scripts/services/env.sh"
fi
# the browser UI: its unit tests (Vitest; Node's packages from the lock file) and, for the
# browser tests (tests/web), Debian's Chromium that Playwright drives
if ! command -v npm >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -x /usr/bin/chromium ]; then
    echo "installing chromium (the browser tests drive it)"
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
npm --prefix "$repo/webapp" ci --no-audit --no-fund
npm --prefix "$repo/webapp" test
npm --prefix "$repo/webapp" run build   # the browser tests test the sources as they are
python -m pytest "$@"
