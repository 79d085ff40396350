#!/usr/bin/env bash
# Install (if needed) and run the whole test suite; arguments go to pytest (e.g. -m "not slow"). The 15
# slowest tests are listed before the summary line: the suite must stay under 20 minutes in CI.
# Real-data tests skip when ../shared/data is absent; the deploy and browser tests skip, with the reason in
# the summary, until .ci/run has set up .venv-deploy and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv test
exec python -m pytest -n 2 -p no:cacheprovider -rs --durations=15 "$@"
