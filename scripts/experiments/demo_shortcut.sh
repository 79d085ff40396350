#!/usr/bin/env bash
# The built-in demo with every arm, including the study's ABN design (g(x) * (1 + M(x)) after layer3): the
# quickstart's comparison at the same budget, results copied to the ABN bundle's docs.
#   [EPOCHS=12] bash scripts/experiments/demo_shortcut.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
ensure_venv ""

DATA=demo_data/phantom2d
OUT="${OUT:-runs/experiments/demo_shortcut}"
DOCS=bundles/abn_classification/docs
[ -f "$DATA/labels.csv" ] || python scripts/make_demo_data.py --out "$DATA" --n-train 800 --n-val 200 --n-test 400
python scripts/quickstart.py --data "$DATA" --out "$OUT" --epochs "${EPOCHS:-12}" \
    --arms baseline,rrr,rrr_strong,abn,abn_study,abn_study_long "$@"
mkdir -p "$DOCS/results" "$DOCS/figures"
cp "$OUT/summary.json" "$DOCS/results/.demo_shortcut.json.tmp" && mv "$DOCS/results/.demo_shortcut.json.tmp" "$DOCS/results/demo_shortcut.json"
cp "$OUT/explanations.png" "$DOCS/figures/demo_explanations.png"
python scripts/render_results.py
