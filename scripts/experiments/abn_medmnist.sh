#!/usr/bin/env bash
# MedMNIST at 28x28 (no masks): ABN `plain` vs the plain ResNet18 (`baseline`), trained on the official train
# split, best epoch on validation AUC, scored on the test split, then the results file the ABN docs' table is
# rendered from (scripts/experiments/medmnist_results.py), beside the MedMNIST v2 paper's ResNet-18 (28).
#   [DATASETS="pneumoniamnist breastmnist"] bash scripts/experiments/abn_medmnist.sh
# Budget per dataset, EPOCHS_<DATASET> and STEM_<DATASET>: PneumoniaMNIST 10 epochs with the standard stem
# (4708 training images), BreastMNIST 60 epochs with the small stem (546 training images). The small stem is
# the 3x3 stride-1 convolution without max-pool of ResNets for 28x28 inputs (as in the MedMNIST paper's
# ResNet-18 (28)), about 16x the compute of the standard one, which leaves layer1 7x7 positions.
# Resumable: an evaluated run is reused; a killed training resumes from its checkpoints/latest.pt.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
ensure_venv ""
export TQDM_DISABLE=1  # the bundles write to log files: no progress bars there

DATASETS="${DATASETS:-pneumoniamnist breastmnist}"
# Only the default run folder feeds the docs' table; any other OUT keeps its results beside its runs.
DEST=bundles/abn_classification/docs/results/medmnist.json
[ -n "${OUT:-}" ] && DEST="$OUT/medmnist.json"
OUT="${OUT:-runs/experiments/medmnist}"
B=bundles/abn_classification/configs
for ds in $DATASETS; do
    epochs_var="EPOCHS_${ds^^}" stem_var="STEM_${ds^^}"
    case "$ds" in
        breastmnist) epochs="${!epochs_var:-60}" stem="${!stem_var:-small}" ;;
        *) epochs="${!epochs_var:-10}" stem="${!stem_var:-standard}" ;;
    esac
    for mode in baseline plain; do
        run="$OUT/$ds/$mode"
        mkdir -p "$run"
        if [ -f "$run/eval_test/metrics.json" ] && [ "$run/eval_test/metrics.json" -nt "$run/checkpoints/best.pt" ]; then
            echo "$ds $mode: evaluated before, reused"
            continue
        fi
        start=$SECONDS
        train="'$B/train.json','configs/datasets/$ds.json'"
        for configs in "[$train]" "[$train,'$B/evaluate.json']"; do
            python -m monai.bundle run --config_file "$configs" --mode "$mode" --max_epochs "$epochs" \
                --stem "$stem" --output_dir "$run" --batch_size 64 \
                --tracking_uri "sqlite:///$(pwd)/$OUT/mlruns.db" >> "$run/log.txt" 2>&1 \
                || { tail -30 "$run/log.txt"; exit 1; }
        done
        printf '{"epochs": %d, "stem": "%s", "batch_size": 64, "seconds": %d}\n' \
            "$epochs" "$stem" $((SECONDS - start)) > "$run/budget.json"
        echo "$ds $mode ($epochs epochs, $stem stem): trained and evaluated in $((SECONDS - start)) s"
    done
done
# shellcheck disable=SC2086  # DATASETS is a word list
python scripts/experiments/medmnist_results.py --runs "$OUT" --datasets $DATASETS \
    --out "$DEST"
