#!/usr/bin/env bash
# Active-learning sweep on a trained multi-scale ABN run (BUSI benign vs malignant by default): fine-tune on
# the top fractions of each strategy's ranking and print the table. With OUT other than PRETRAINED, the
# pretrained checkpoint and correction records are linked into OUT, so several fine-tuning settings can be
# swept from one trained model without retraining it.
#   PRETRAINED=runs/experiments/multiscale-busi-64px-6ep/resnet18/multiscale \
#   OUT=runs/experiments/multiscale-busi-64px-6ep-ft15-w10/resnet18/multiscale \
#   FT_EPOCHS=15 MAP_WEIGHTS=10 FT_LR=0.001 FRACTIONS="0.1 0.3 0.5 1.0" bash scripts/experiments/multiscale_sweep.sh
# STRATEGY_ARGS (JSON) gives strategies their arguments, e.g. '{"random": {"seed": 1}}' for another random
# pick; extra arguments are bundle overrides for every fine-tune and evaluation (--tracking_uri, --limit 24).
# Combinations already evaluated are reused, so an interrupted sweep picks up where it stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
ensure_venv ""
export TQDM_DISABLE=1  # the bundles write to log files: no progress bars there

PRETRAINED="${PRETRAINED:?set PRETRAINED to a multi-scale run with checkpoints/ and correction/}"
OUT="${OUT:-$PRETRAINED}"
NETWORK="${NETWORK:-resnet18}"
SIZE="${SIZE:-64}"
FT_EPOCHS="${FT_EPOCHS:-3}"
MAP_WEIGHTS="${MAP_WEIGHTS:-1.0}"
FT_LR="${FT_LR:-0.0003}"
FRACTIONS="${FRACTIONS:-0.1 0.3 0.5 1.0}"
SEED="${SEED:-0}"  # fine-tuning seed (batch order, augmentation); the random pick follows STRATEGY_ARGS
STRATEGY_ARGS="${STRATEGY_ARGS:-{\}}"
DATASET="${DATASET:-configs/datasets/busi_binary.json}"
A=bundles/abn_classification/configs
M=bundles/multiscale_abn_correction/configs

for needed in checkpoints/best.pt correction/records.csv; do
    [ -f "$PRETRAINED/$needed" ] || { echo "missing $PRETRAINED/$needed (train.json, then collect.json)" >&2; exit 1; }
done
mkdir -p "$OUT"
if [ "$(realpath "$OUT")" != "$(realpath "$PRETRAINED")" ]; then
    for linked in checkpoints correction; do
        ln -sfn "$(realpath "$PRETRAINED/$linked")" "$OUT/$linked"
    done
fi
start=$SECONDS
python -m monai_xai.active_learning.sweep \
    --config_file "['$A/train.json','$M/train.json','$DATASET']" --finetune_file "$M/finetune.json" \
    --evaluate_file "['$A/evaluate.json','$M/evaluate.json']" --output_dir "$OUT" --fractions $FRACTIONS \
    --backbone "$NETWORK" --spatial_size "[$SIZE, $SIZE]" --max_epochs "$FT_EPOCHS" --map_weights "$MAP_WEIGHTS" \
    --learning_rate "$FT_LR" --seed "$SEED" --strategy_args "$STRATEGY_ARGS" --faithfulness_methods "[]" "$@" \
    >> "$OUT/sweep_log.txt" 2>&1 \
    || { tail -30 "$OUT/sweep_log.txt"; exit 1; }
echo "$NETWORK active-learning sweep of $OUT (fine-tuning $FT_EPOCHS epochs, map weight $MAP_WEIGHTS, lr $FT_LR, seed $SEED):" \
    "$((SECONDS - start)) s"
cat "$OUT/sweep/sweep.md"
