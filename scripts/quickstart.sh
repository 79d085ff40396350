#!/usr/bin/env bash
# Install (if needed), generate the built-in phantom data, and compare a plain ResNet18 with an
# attention-supervised ABN (dynamic alpha) on it: train, evaluate on the shortcut-free test set,
# and print where the checkpoints, metrics, figures and MLflow runs are.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv ""

EPOCHS="${EPOCHS:-3}"
OUT="${OUT:-runs/quickstart}"
DATA=demo_data/phantom2d
BUNDLE=bundles/abn_classification/configs

[ -f "$DATA/labels.csv" ] || python scripts/make_demo_data.py --out "$DATA" --n-train 800 --n-val 200 --n-test 400
for mode in baseline dynamic; do
    mkdir -p "$OUT/$mode"
    log="$OUT/$mode/quickstart.log"
    echo "=== $mode: training ${EPOCHS} epochs, then evaluating on the test set (log: $log) ==="
    python -m monai.bundle run --config_file "$BUNDLE/train.json" --dataset_dir "$DATA" --mode "$mode" \
        --max_epochs "$EPOCHS" --output_dir "$OUT/$mode" > "$log" 2>&1 || { tail -40 "$log"; exit 1; }
    grep -E "Epoch\[[0-9]+\] Metrics -- val" "$log" | sed -E 's/.*Epoch\[([0-9]+)\] Metrics -- /  epoch \1: /' | cut -c1-150 || true
    python -m monai.bundle run --config_file "['$BUNDLE/train.json','$BUNDLE/evaluate.json']" \
        --dataset_dir "$DATA" --mode "$mode" --output_dir "$OUT/$mode" >> "$log" 2>&1 || { tail -40 "$log"; exit 1; }
done
python scripts/summarize_runs.py "$OUT"/*/
