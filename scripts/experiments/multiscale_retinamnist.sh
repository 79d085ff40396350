#!/usr/bin/env bash
# RetinaMNIST DR grading (5 grades, 28x28 RGB fundus, no masks): plain ResNet18, ResNet18 + ABN (no map
# supervision) and the multi-scale ABN, each trained on the official train split, its best epoch chosen on val
# accuracy, scored on test; then the results file of quadratic weighted kappa (from the written
# predictions), accuracy and AUC beside the MedMNIST v2 paper's ResNet-18 (28) (retinamnist_results.py).
# Only a run at the default budget or above (>= 10 epochs, standard stem, no extra arguments) writes the
# docs' file, bundles/multiscale_abn_correction/docs/results/retinamnist.json; others write $OUT/retinamnist.json.
#   EPOCHS=10  [BATCH=64]  [STEM=standard]  [OUT=runs/experiments/retinamnist-10ep]  \
#   bash scripts/experiments/multiscale_retinamnist.sh [--key value ...]   # extra bundle overrides, e.g. --limit 32
# An arm whose test evaluation exists is skipped, so an interrupted experiment picks up where it stopped.
# STEM=monai (stride-1 7x7 stem) keeps four times the positions through the network at about four times the cost.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
ensure_venv ""
export TQDM_DISABLE=1  # the bundles write to log files: no progress bars there

EPOCHS="${EPOCHS:-10}"
BATCH="${BATCH:-64}"
STEM="${STEM:-standard}"
OUT="${OUT:-runs/experiments/retinamnist-${EPOCHS}ep}"
A=bundles/abn_classification/configs
M=bundles/multiscale_abn_correction/configs
D=configs/datasets/retinamnist.json
COMMON=(--max_epochs "$EPOCHS" --batch_size "$BATCH" --stem "$STEM" "$@")

arm() {  # arm <folder> <train configs> <extra eval configs> [--key value ...]
    local run="$OUT/$1" train="$2" extra="$3"
    shift 3
    [ -f "$run/eval_test/predictions.csv" ] && { echo "$(basename "$run"): done, skipped"; return; }
    mkdir -p "$run"
    local start=$SECONDS
    for configs in "[$train]" "[$train,'$A/evaluate.json'$extra]"; do
        python -m monai.bundle run --config_file "$configs" --logging_file "$A/logging.conf" --output_dir "$run" \
            "$@" >> "$run/log.txt" 2>&1 || { tail -30 "$run/log.txt"; exit 1; }
    done
    echo "$(basename "$run"): trained and evaluated in $((SECONDS - start)) s" | tee -a "$OUT/runtime.txt"
}

mkdir -p "$OUT"
single="'$A/train.json','$D'"
arm baseline "$single" "" --mode baseline "${COMMON[@]}"
arm plain "$single" "" --mode plain "${COMMON[@]}"
arm multiscale "'$A/train.json','$M/train.json','$D'" ",'$M/evaluate.json'" "${COMMON[@]}"
dest="$OUT/retinamnist.json"
if [ "$EPOCHS" -ge 10 ] && [ "$STEM" = standard ] && [ $# -eq 0 ]; then
    dest=bundles/multiscale_abn_correction/docs/results/retinamnist.json
fi
python scripts/experiments/retinamnist_results.py "$OUT" --results "$dest" --epochs "$EPOCHS" --batch_size "$BATCH" \
    --stem "$STEM"
[ "$dest" = "$OUT/retinamnist.json" ] || python scripts/render_results.py
