#!/usr/bin/env bash
# MedMNIST at 28x28 (no masks): ABN plain vs plain ResNet18, trained on the official train split,
# best epoch chosen on val, scored on test; printed beside the MedMNIST v2 paper's ResNet-18 (28).
#   EPOCHS=10  [DATASETS="pneumoniamnist breastmnist"]  bash scripts/experiments/abn_medmnist.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
ensure_venv ""
export TQDM_DISABLE=1  # the bundles write to log files: no progress bars there

EPOCHS="${EPOCHS:-10}"
OUT="${OUT:-runs/experiments/medmnist-${EPOCHS}ep}"
B=bundles/abn_classification/configs
for ds in ${DATASETS:-pneumoniamnist breastmnist}; do
    for mode in baseline plain; do
        run="$OUT/$ds/$mode"
        mkdir -p "$run"
        start=$SECONDS
        train="'$B/train.json','configs/datasets/$ds.json'"
        for configs in "[$train]" "[$train,'$B/evaluate.json']"; do
            python -m monai.bundle run --config_file "$configs" --mode "$mode" --max_epochs "$EPOCHS" \
                --output_dir "$run" --batch_size 64 >> "$run/log.txt" 2>&1 || { tail -30 "$run/log.txt"; exit 1; }
        done
        echo "$ds $mode: trained and evaluated in $((SECONDS - start)) s" | tee -a "$OUT/runtime.txt"
    done
    python scripts/summarize_runs.py "$OUT/$ds/baseline" "$OUT/$ds/plain" | sed -n '1,6p'
done
echo
echo "MedMNIST v2 paper, ResNet-18 (28): PneumoniaMNIST ACC 0.854 AUC 0.944; BreastMNIST ACC 0.863 AUC 0.901"
