#!/usr/bin/env bash
# Install (if needed) and run the whole test suite. Real-data tests skip when ../shared/data is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv test
exec python -m pytest -n 2 -p no:cacheprovider "$@"
