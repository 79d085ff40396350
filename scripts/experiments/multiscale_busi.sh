#!/usr/bin/env bash
# Multi-scale ABN and expert correction on BUSI benign vs malignant, on the leak-free split
# (configs/datasets/busi_binary_dedup.json, fold 0, the fixed test set), each model trained until its
# validation AUC has not improved for PATIENCE epochs (at most MAX_EPOCHS); lesion masks stand in for the
# expert's corrected maps.
#  1. Maps, per backbone: Grad-CAM and Grad-CAM++ on a plain ResNet, the single-scale ABN, the multi-scale ABN
#     and the multi-scale ABN fine-tuned on every training image's corrected map; Deletion, Insertion, map
#     MSE on the test set (scripts/experiments/busi_maps.py -> busi_maps.json).
#  2. Active learning, on the first backbone: one multi-scale ABN per seed (seed 0 is step 1's); each strategy
#     ranks its training images, it is fine-tuned on the corrected maps of the top 10 %, 20 %, ... 100 %
#     (fine-tuning seed and random pick = the seed) and scored on the test set; mean ± sd over the seeds
#     (scripts/experiments/busi_active_learning.py -> busi_active_learning.json and its curves).
#
#   [BACKBONES="resnet18 resnet34"] [SEEDS="0 1 2"] [SIZE=128] [MAX_EPOCHS=60] [PATIENCE=10] [FT_EPOCHS=15] \
#   [MAP_WEIGHTS=10] [FT_LR=0.001] [FRACTIONS="0.1 0.2 ... 1.0"] bash scripts/experiments/multiscale_busi.sh
# The full run, in the background, with a log (a second launch refuses while one runs: one job at a time):
#   mkdir -p runs/experiments && nohup bash scripts/experiments/multiscale_busi.sh >> runs/experiments/multiscale_busi.log 2>&1 &
# Smoke test of the whole chain (about 6 min; results stay in the run folder):
#   BACKBONES=resnet18 SEEDS="0 1" SIZE=64 MAX_EPOCHS=1 FT_EPOCHS=1 FRACTIONS="0.5 1.0" STEPS=4 EXTRA="--limit 24" \
#   OUT=runs/experiments/multiscale_busi_smoke bash scripts/experiments/multiscale_busi.sh
# Only a run at the issue's budget (>= 128 px, early stopping, >= 3 seeds, 10 % steps, no EXTRA) writes the
# docs' results files in bundles/multiscale_abn_correction/docs/results/; others write them into OUT.
#
# Resumable: a step whose test evaluation exists is skipped, a killed training resumes from its last epoch
# (its early-stopping count too, from checkpoints/early_stopping.json), a sweep reuses every fine-tune
# evaluated after its checkpoint.
# Rerun the same command after an interruption. All runs log to one MLflow store, $OUT/mlruns.db.
#
# Runtime measured on the 2-core machine (bf16 fast path), 128 px, training and test evaluation of each model:
# step 1 about 30 min (ResNet18 2-4 min a model, early stopping at epoch 19-33; ResNet34 3-8 min, epoch
# 33-43; each fine-tune on every map about 2 min); step 2, per seed, 30 fine-tunes of about 100 s (3
# strategies x 10 fractions), about 55 min, plus 3 min to train the seed's model: about 3 h in all, over
# several sessions if need be. $OUT/runtime.txt has the times of the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
ensure_venv ""
export TQDM_DISABLE=1  # the bundles write to log files: no progress bars there

BACKBONES="${BACKBONES:-resnet18 resnet34}"
SEEDS="${SEEDS:-0 1 2}"
SIZE="${SIZE:-128}"
MAX_EPOCHS="${MAX_EPOCHS:-60}"
PATIENCE="${PATIENCE:-10}"
FT_EPOCHS="${FT_EPOCHS:-15}"
MAP_WEIGHTS="${MAP_WEIGHTS:-10}"
FT_LR="${FT_LR:-0.001}"
FRACTIONS="${FRACTIONS:-0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0}"
STEPS="${STEPS:-20}"
DATASET="${DATASET:-configs/datasets/busi_binary_dedup.json}"
OUT="${OUT:-runs/experiments/multiscale_busi-${SIZE}px}"
A=bundles/abn_classification/configs
M=bundles/multiscale_abn_correction/configs

mkdir -p "$OUT" runs/experiments
exec 9> runs/experiments/.multiscale_busi.lock
flock -n 9 || { echo "multiscale_busi.sh is already running (runs/experiments/.multiscale_busi.lock): one job at a time" >&2; exit 1; }
STORE="sqlite:///$(cd "$OUT" && pwd)/mlruns.db"
# shellcheck disable=SC2206  # EXTRA is a word list of --key value overrides
COMMON=(--spatial_size "[$SIZE, $SIZE]" --faithfulness_steps "$STEPS" --tracking_uri "$STORE" ${EXTRA:-})
TRAINING=(--max_epochs "$MAX_EPOCHS" --early_stop_patience "$PATIENCE")
FINETUNING=(--max_epochs "$FT_EPOCHS" --map_weights "$MAP_WEIGHTS" --learning_rate "$FT_LR")

results=$OUT figures=$OUT
read -ra seeds <<< "$SEEDS"
read -ra fractions <<< "$FRACTIONS"
if [ "$SIZE" -ge 128 ] && [ "$PATIENCE" -gt 0 ] && [ "${#seeds[@]}" -ge 3 ] && [ "${#fractions[@]}" -ge 10 ] \
    && [ "$DATASET" = configs/datasets/busi_binary_dedup.json ] && [ -z "${EXTRA:-}" ]; then
    results=bundles/multiscale_abn_correction/docs/results figures=bundles/multiscale_abn_correction/docs/figures
fi

bundle() {  # bundle <log> <config list> [--key value ...]
    local log="$1" configs="$2"
    shift 2
    python -m monai.bundle run --config_file "$configs" --logging_file "$A/logging.conf" "$@" >> "$log" 2>&1 \
        || { tail -30 "$log"; exit 1; }
}

train_eval() {  # train_eval <label> <run dir> <train configs> <extra eval configs> --output_dir <dir> [--key value ...]
    # skipped once <run dir>/eval_test holds the test evaluation (the run dir is the output dir, or for a
    # fine-tune its finetune/<name> folder below it)
    local label="$1" dir="$2" train="$3" extra="$4"
    shift 4
    [ -f "$dir/eval_test/metrics.json" ] && return
    mkdir -p "$dir"
    local start=$SECONDS
    echo "$(date '+%F %T') $label: start"
    bundle "$dir/log.txt" "[$train]" "$@"
    bundle "$dir/log.txt" "[$train,'$A/evaluate.json'$extra]" "$@"
    echo "$label: $((SECONDS - start)) s" | tee -a "$OUT/runtime.txt"
}

collect() {  # collect <multi-scale run dir> <backbone> [--key value ...]: the records the strategies rank
    local dir="$1" net="$2"
    shift 2
    [ -f "$dir/correction/records.csv" ] && return
    bundle "$dir/log.txt" "[$multi,'$M/collect.json']" --backbone "$net" --output_dir "$dir" "${COMMON[@]}" "$@"
}

single="'$A/train.json','$DATASET'"
multi="'$A/train.json','$M/train.json','$DATASET'"
for net in $BACKBONES; do
    base="$OUT/$net/gradcam_resnet" abn="$OUT/$net/abn" ms="$OUT/$net/multiscale"
    train_eval "$net plain ResNet" "$base" "$single" "" --output_dir "$base" --mode baseline --backbone "$net" "${TRAINING[@]}" \
        "${COMMON[@]}" --saliency_baselines "['gradcam','gradcampp']" --faithfulness_methods "['gradcam','gradcampp']" \
        --cam_layer network.layer3
    train_eval "$net single-scale ABN" "$abn" "$single" "" --output_dir "$abn" --mode plain --backbone "$net" "${TRAINING[@]}" \
        "${COMMON[@]}" --saliency_baselines "[]" --faithfulness_methods "['attention']"
    train_eval "$net multi-scale ABN" "$ms" "$multi" ",'$M/evaluate.json'" --output_dir "$ms" --backbone "$net" "${TRAINING[@]}" \
        "${COMMON[@]}"
    collect "$ms" "$net"
    train_eval "$net multi-scale fine-tuned on every map" "$ms/finetune/mask_all_1.0" \
        "$multi,'$M/finetune.json'" ",'$M/evaluate.json'" --backbone "$net" --output_dir "$ms" "${FINETUNING[@]}" \
        "${COMMON[@]}"
done
python scripts/experiments/busi_maps.py "$OUT" --results "$results/busi_maps.json" --spatial_size "$SIZE" \
    --faithfulness_steps "$STEPS" --max_epochs "$MAX_EPOCHS" --patience "$PATIENCE" --ft_epochs "$FT_EPOCHS" \
    --map_weights "$MAP_WEIGHTS" --ft_learning_rate "$FT_LR"

first="${BACKBONES%% *}"
for seed in "${seeds[@]}"; do
    pretrained="$OUT/$first/multiscale"
    if [ "$seed" != 0 ]; then
        pretrained="$OUT/$first/multiscale_seed$seed"
        train_eval "$first multi-scale ABN, seed $seed" "$pretrained" "$multi" ",'$M/evaluate.json'" \
            --output_dir "$pretrained" --backbone "$first" --seed "$seed" "${TRAINING[@]}" "${COMMON[@]}" --faithfulness_methods "[]"
        collect "$pretrained" "$first" --seed "$seed"
    fi
    sweep="$OUT/active_learning/seed$seed"
    mkdir -p "$sweep"
    ln -sfn "$(realpath "$pretrained")" "$sweep/pretrained"
    PRETRAINED="$pretrained" OUT="$sweep" NETWORK="$first" SIZE="$SIZE" FT_EPOCHS="$FT_EPOCHS" \
        MAP_WEIGHTS="$MAP_WEIGHTS" FT_LR="$FT_LR" FRACTIONS="$FRACTIONS" SEED="$seed" DATASET="$DATASET" \
        STRATEGY_ARGS="{\"random\": {\"seed\": $seed}}" \
        bash scripts/experiments/multiscale_sweep.sh --tracking_uri "$STORE" ${EXTRA:-} | tee -a "$OUT/runtime.txt"
done
python scripts/experiments/busi_active_learning.py --runs "$OUT/active_learning" \
    --out "$results/busi_active_learning.json" --figure "$figures/busi_active_learning.png" \
    --tracking_uri "$STORE" --dataset "$(basename "$DATASET" .json)" --backbone "$first" --spatial_size "$SIZE" \
    --max_epochs "$MAX_EPOCHS" --patience "$PATIENCE" --ft_epochs "$FT_EPOCHS" --map_weights "$MAP_WEIGHTS" \
    --ft_learning_rate "$FT_LR"
[ "$results" = "$OUT" ] || python scripts/render_results.py
