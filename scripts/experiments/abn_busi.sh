#!/usr/bin/env bash
# BUSI (../shared/data/busi_256, fixed splits.json): 3-fold CV of four arms, each evaluated on its
# fold's validation part and on the fixed test set; then a side-by-side table from MLflow.
#   TASK=busi_binary|busi  EPOCHS=6  SIZE=64  [MODES="plain dynamic"]  [ARCH=abn_compact]  bash scripts/experiments/abn_busi.sh
# ARCH picks the ABN variant (monai_xai.networks.factory.ABN_ARCHITECTURES); a non-default one gets its own
# output folder and MLflow store, so its arms never mix with the default architecture's.
# A fold whose evaluation is already there is reused, so an interrupted experiment picks up where it stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
ensure_venv ""

TASK="${TASK:-busi_binary}"
EPOCHS="${EPOCHS:-6}"
SIZE="${SIZE:-64}"
ARCH="${ARCH:-abn}"
OUT="${OUT:-runs/experiments/$TASK-${SIZE}px-${EPOCHS}ep$([ "$ARCH" = abn ] || echo "-$ARCH")}"
B=bundles/abn_classification/configs
STORE="sqlite:///$(pwd)/$OUT/mlruns.db"
mkdir -p "$OUT"
for mode in ${MODES:-baseline plain conventional dynamic}; do
    start=$SECONDS
    python -m monai_xai.crossval --config_file "['$B/train.json','configs/datasets/$TASK.json']" \
        --evaluate_file "$B/evaluate.json" --output_dir "$OUT/$mode" --mode "$mode" --architecture "$ARCH" \
        --max_epochs "$EPOCHS" --spatial_size "[$SIZE, $SIZE]" --tracking_uri "$STORE" > "$OUT/$mode.log" 2>&1 \
        || { tail -30 "$OUT/$mode.log"; exit 1; }
    echo "$mode: 3 folds trained and evaluated in $((SECONDS - start)) s" | tee -a "$OUT/runtime.txt"
done
python scripts/compare_runs.py --tracking_uri "$STORE" --experiment abn_classification --out "$OUT/compare.md" \
    --metrics test_image_accuracy test_image_auc test_image_sensitivity test_image_specificity \
    test_attention_pointing_game test_attention_energy_inside_mask test_attention_map_iou \
    test_gradcampp_pointing_game test_gradcampp_energy_inside_mask test_gradcampp_map_iou
