#!/usr/bin/env bash
# Install (if needed), generate the built-in phantom data, and show a planted shortcut being caught and avoided:
# a plain ResNet18, the same ResNet trained with "Right for the Right Reasons", and the attention-supervised
# gated ABN, each trained with the ABN bundle and judged on the shortcut-free test set by its accuracy and by
# where its explanation points (scripts/quickstart.py). Writes runs/quickstart/summary.json and a figure.
set -euo pipefail
QUICKSTART_T0="$(date +%s)"
export QUICKSTART_T0
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv ""

DATA=demo_data/phantom2d
[ -f "$DATA/labels.csv" ] || python scripts/make_demo_data.py --out "$DATA" --n-train 800 --n-val 200 --n-test 400
python scripts/quickstart.py --data "$DATA" --out "${OUT:-runs/quickstart}" --epochs "${EPOCHS:-12}" "$@"
