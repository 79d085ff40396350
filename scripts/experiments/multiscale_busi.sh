#!/usr/bin/env bash
# BUSI benign vs malignant (fixed splits.json, fold 0): explanation quality of Grad-CAM and Grad-CAM++ (on a
# plain ResNet), single-scale ABN, and the multi-scale ABN before and after fine-tuning on corrected maps
# (the lesion masks stand in for an expert), per backbone; then an active-learning sweep on the first backbone.
#   BACKBONES="resnet18 resnet34"  EPOCHS=6  FT_EPOCHS=3  SIZE=64  FRACTIONS="0.1 0.3 0.5 1.0"  \
#   bash scripts/experiments/multiscale_busi.sh
# Steps whose outputs exist are skipped, so an interrupted experiment picks up where it stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
ensure_venv ""
export TQDM_DISABLE=1  # the bundles write to log files: no progress bars there

BACKBONES="${BACKBONES:-resnet18 resnet34}"
EPOCHS="${EPOCHS:-6}"
FT_EPOCHS="${FT_EPOCHS:-3}"
SIZE="${SIZE:-64}"
FRACTIONS="${FRACTIONS:-0.1 0.3 0.5 1.0}"
STEPS="${STEPS:-20}"
OUT="${OUT:-runs/experiments/multiscale-busi-${SIZE}px-${EPOCHS}ep}"
A=bundles/abn_classification/configs
M=bundles/multiscale_abn_correction/configs
D=configs/datasets/busi_binary.json
COMMON=(--spatial_size "[$SIZE, $SIZE]" --faithfulness_steps "$STEPS")

bundle() {  # bundle <log> <config list> [--key value ...]
    local log="$1" configs="$2"
    shift 2
    python -m monai.bundle run --config_file "$configs" --logging_file "$A/logging.conf" "$@" >> "$log" 2>&1 \
        || { tail -30 "$log"; exit 1; }
}

train_eval() {  # train_eval <label> <dir> <train configs> <extra eval configs> [--key value ...]
    local label="$1" dir="$2" train="$3" extra="$4"
    shift 4
    local start=$SECONDS
    bundle "$dir/log.txt" "[$train]" --output_dir "$dir" "$@"
    bundle "$dir/log.txt" "[$train,'$A/evaluate.json'$extra]" --output_dir "$dir" "$@"
    echo "$label: $((SECONDS - start)) s" | tee -a "$OUT/runtime.txt"
}

mkdir -p "$OUT"
for net in $BACKBONES; do
    base="$OUT/$net/gradcam_resnet" abn="$OUT/$net/abn" ms="$OUT/$net/multiscale"
    mkdir -p "$base" "$abn" "$ms"
    single="'$A/train.json','$D'"
    multi="'$A/train.json','$M/train.json','$D'"
    [ -f "$base/eval_test/faithfulness.json" ] || train_eval "$net plain ResNet" "$base" "$single" "" \
        --mode baseline --backbone "$net" --max_epochs "$EPOCHS" "${COMMON[@]}" \
        --saliency_baselines "['gradcam','gradcampp']" --faithfulness_methods "['gradcam','gradcampp']"
    [ -f "$abn/eval_test/faithfulness.json" ] || train_eval "$net single-scale ABN" "$abn" "$single" "" \
        --mode plain --backbone "$net" --max_epochs "$EPOCHS" "${COMMON[@]}" --saliency_baselines "[]" --faithfulness_methods "['attention']"
    [ -f "$ms/eval_test/faithfulness.json" ] || train_eval "$net multi-scale ABN" "$ms" "$multi" ",'$M/evaluate.json'" \
        --backbone "$net" --max_epochs "$EPOCHS" "${COMMON[@]}"
    [ -f "$ms/correction/records.csv" ] || bundle "$ms/log.txt" "[$multi,'$M/collect.json']" \
        --backbone "$net" --output_dir "$ms" --spatial_size "[$SIZE, $SIZE]"
    [ -f "$ms/finetune/mask_all_1.0/eval_test/faithfulness.json" ] || train_eval "$net multi-scale fine-tuned" "$ms" \
        "$multi,'$M/finetune.json'" ",'$M/evaluate.json'" --backbone "$net" --max_epochs "$FT_EPOCHS" "${COMMON[@]}"
done

first="${BACKBONES%% *}"
PRETRAINED="$OUT/$first/multiscale" NETWORK="$first" SIZE="$SIZE" FT_EPOCHS="$FT_EPOCHS" FRACTIONS="$FRACTIONS" \
    bash scripts/experiments/multiscale_sweep.sh | tee -a "$OUT/runtime.txt"
python scripts/experiments/multiscale_tables.py "$OUT"
