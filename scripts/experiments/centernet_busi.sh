#!/usr/bin/env bash
# BUSI lesion boxes (../shared/data/busi_256/boxes_coco.json, fixed splits.json; fold 0 validation picks the
# best epoch, the fixed test set is reported): SimSiam pretraining of the ResNet18 encoder, then four arms
#   random init | SimSiam + frozen backbone | SimSiam + progressive unfreezing | MONAI RetinaNet (random init)
# each trained, evaluated on the test set and summarised in tables (AP, IoU-0.25 confusion matrix, per class).
#   SIZE=128 EPOCHS=8 PRETRAIN_EPOCHS=10 INTERVAL=1 bash scripts/experiments/centernet_busi.sh
# An arm whose evaluation is already there is reused, so an interrupted experiment picks up where it stopped.
# Each arm's models/model.pt (best val_mAP, for the standalone inference.json) stays in the arm's folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
ensure_venv ""
export TQDM_DISABLE=1  # the bundles write to log files: no progress bars there

SIZE="${SIZE:-128}"
EPOCHS="${EPOCHS:-8}"
PRETRAIN_EPOCHS="${PRETRAIN_EPOCHS:-10}"
INTERVAL="${INTERVAL:-1}"
WORKERS="${WORKERS:-1}"
OUT="${OUT:-runs/experiments/centernet_busi-${SIZE}px-${EPOCHS}ep}"
B=bundles/centernet_detection/configs
DATA="${DATA:-../shared/data/busi_256}"
COMMON=(--dataset_dir "$DATA" --spatial_size "[$SIZE, $SIZE]" --num_workers "$WORKERS" --pretrain_dir "$OUT/simsiam")
mkdir -p "$OUT"

bundle() {  # bundle LOG CONFIGS... -- ARGS...
    local log="$1"; shift
    python -m monai.bundle run --meta_file "$B/metadata.json" --logging_file "$B/logging.conf" "$@" > "$log" 2>&1 \
        || { tail -30 "$log"; exit 1; }
}

if [ ! -f "$OUT/simsiam/encoder.pt" ]; then
    start=$SECONDS
    bundle "$OUT/simsiam.log" --config_file "$B/pretrain_simsiam.json" "${COMMON[@]}" \
        --output_dir "$OUT/simsiam" --max_epochs "$PRETRAIN_EPOCHS"
    echo "simsiam: $PRETRAIN_EPOCHS epochs in $((SECONDS - start)) s" | tee -a "$OUT/runtime.txt"
fi

run_arm() {  # run_arm NAME EXTRA_CONFIG ARGS...
    local name="$1" extra="$2"; shift 2
    [ -f "$OUT/$name/eval_test/metrics.json" ] && return
    local configs="'$B/train.json'${extra:+,'$extra'}"
    local start=$SECONDS
    bundle "$OUT/$name.train.log" --config_file "[$configs]" "${COMMON[@]}" --output_dir "$OUT/$name" \
        --model_dir "$OUT/$name/models" --max_epochs "$EPOCHS" "$@"
    bundle "$OUT/$name.eval.log" --config_file "[$configs,'$B/evaluate.json']" "${COMMON[@]}" \
        --output_dir "$OUT/$name" --max_epochs "$EPOCHS" "$@"
    echo "$name: $EPOCHS epochs trained and evaluated in $((SECONDS - start)) s" | tee -a "$OUT/runtime.txt"
}

run_arm random "" --init random --freeze_policy all
run_arm simsiam_frozen "" --init simsiam --freeze_policy frozen
run_arm simsiam_progressive "" --init simsiam --freeze_policy progressive_epochs --unfreeze_interval "$INTERVAL"
run_arm retinanet "$B/retinanet.json"

python scripts/experiments/centernet_tables.py --out "$OUT/tables.md" \
    --arm "CenterNet, random init=$OUT/random" \
    --arm "CenterNet, SimSiam + frozen backbone=$OUT/simsiam_frozen" \
    --arm "CenterNet, SimSiam + progressive unfreezing=$OUT/simsiam_progressive" \
    --arm "RetinaNet (MONAI), random init=$OUT/retinanet"
