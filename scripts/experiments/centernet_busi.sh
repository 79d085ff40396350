#!/usr/bin/env bash
# CenterNet and SimSiam on BUSI lesion boxes, on the leak-free split (configs/datasets/busi_splits_dedup.json:
# no near-duplicate group straddles the test set and the folds; fold 0 validates, its test set is reported),
# at a budget that can show what the self-supervised pretraining is worth:
#  1. data: COCO boxes (one per lesion-mask component) of exactly the split's images, and the split they follow
#     ($OUT/data/boxes_coco.json, $OUT/data/boxes_coco.splits.json; scripts/make_coco_from_masks.py
#     --split_file). Near-duplicates are all kept, in the part the split puts their group in; the images stay
#     in $DATA (the bundles get it as --image_dir).
#  2. SimSiam pretraining of the ResNet18 encoder on fold 0's training images only (never validation or test),
#     SIMSIAM_EPOCHS epochs at SIMSIAM_SIZE, on the fast path (the bundles' --amp true: bf16 autocast on CPU);
#     MLflow gets the loss and the collapse monitor's z_std_ratio every epoch.
#  3. k-NN probe of the frozen SimSiam encoder against a random one, normal/benign/malignant, on the same
#     training images as neighbours (scripts/experiments/knn_probe.py -> $OUT/knn_probe.json).
#  4. four arms at SIZE, each trained until its validation mAP has not improved for PATIENCE epochs (at most
#     MAX_EPOCHS; ValidationEarlyStopping), its best epoch evaluated on the test set (COCO AP, the IoU-0.25
#     confusion matrix with a None row and column at the score threshold of the best validation F1, chosen
#     on the validation split and stored beside the checkpoint as checkpoints/best.score_threshold.json,
#     per class):
#       random_init | simsiam_frozen | simsiam_progressive (one more stage every INTERVAL epochs) | retinanet
#  5. $OUT/tables.md (scripts/experiments/centernet_tables.py) and the results file with the SimSiam and
#     validation curves (scripts/experiments/centernet_results.py).
#
#   [SIZE=192] [SIMSIAM_SIZE=128] [SIMSIAM_EPOCHS=200] [MAX_EPOCHS=80] [PATIENCE=10] [INTERVAL=2] [K=20] \
#   [WORKERS=2] [LIMIT=] [EXTRA="--key value ..."] bash scripts/experiments/centernet_busi.sh
# The full run, in the background, with a log (a second launch refuses while one runs: one job at a time):
#   mkdir -p runs/experiments && nohup bash scripts/experiments/centernet_busi.sh >> runs/experiments/centernet_busi.log 2>&1 &
# Smoke test of the whole chain (40 images per part, 1 epoch each; results stay in the run folder):
#   SIZE=64 SIMSIAM_SIZE=64 SIMSIAM_EPOCHS=1 MAX_EPOCHS=1 PATIENCE=1 LIMIT=40 OUT=runs/experiments/centernet_busi_smoke \
#   bash scripts/experiments/centernet_busi.sh
# LIMIT (at least SimSiam's batch of 32) samples each part for the bundles and the probe; EXTRA adds bundle
# overrides to every training and evaluation. Only a run at the issue's budget (SIZE >= 192, SIMSIAM_SIZE >= 128,
# SIMSIAM_EPOCHS >= 200, PATIENCE > 0, the default split, no LIMIT or EXTRA) writes the docs' results,
# bundles/centernet_detection/docs/results/busi.json and docs/figures/busi_curves.png, and copies each arm's
# test overlays and confusion matrix to docs/figures/busi_<arm>_{overlays,confusion}.png (the README shows
# them); others write busi.json and busi_curves.png into OUT. PATIENCE=0 trains every arm for MAX_EPOCHS.
#
# Resumable across sessions: rerun the same command. A step whose output exists is skipped (the data,
# simsiam/encoder.pt, knn_probe.json, an arm's eval_test/metrics.json at a threshold chosen on validation: an older
# one, whose threshold the test split chose, is evaluated again); a killed SimSiam or detector training
# resumes from its checkpoints/latest.pt (model, optimiser, LR schedule, freeze policy, epoch; the MLflow run
# is continued; the early-stopping count goes on from checkpoints/early_stopping.json, so a resumed arm stops
# after the same epoch as an uninterrupted one),
# and an arm whose training finished (<arm>/train_done) goes straight to its evaluation. All runs log to one
# MLflow store, $OUT/mlruns.db; wall times go to $OUT/runtime.txt and each step's wall_s.json.
#
# Runtime estimate for the full run on the 2-core CPU (bf16 fast path), not measured end to end: the ABN bundle
# trains its ~340 benign/malignant training images at 128 px in about 8.4 s an epoch, validation included
# (abn_busi.sh: 1016 s for 3 folds x 40 epochs), and the bare CenterNet and SimSiam steps are a little faster
# than the ABN's at 128 px (docs: fast_path_speedups), so:
#   SimSiam, 200 epochs x 384 image pairs at 128 px (about 9 s an epoch):         about 30 min (25-40)
#   COCO files and the k-NN probe:                                                about 3 min
#   CenterNet at 192 px (2.25x the pixels, 406 images: about 20 s an epoch with validation): 13-27 min per
#     arm for 40-80 epochs (early stopping decides), the frozen arm less (no backward pass through the backbone)
#   RetinaNet, about 3x CenterNet's time (detector_throughput.py): 40-80 min
# In all about 2.5 h (2 to 3.5 h); every step is resumable, so the run can be spread over several sessions.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
ensure_venv ""
export TQDM_DISABLE=1  # the bundles write to log files: no progress bars there

SIZE="${SIZE:-192}"
SIMSIAM_SIZE="${SIMSIAM_SIZE:-128}"
SIMSIAM_EPOCHS="${SIMSIAM_EPOCHS:-200}"
MAX_EPOCHS="${MAX_EPOCHS:-80}"
PATIENCE="${PATIENCE:-10}"
INTERVAL="${INTERVAL:-2}"
K="${K:-20}"
WORKERS="${WORKERS:-2}"
LIMIT="${LIMIT:-}"
DATA="${DATA:-../shared/data/busi_256}"
SPLIT="${SPLIT:-configs/datasets/busi_splits_dedup.json}"
OUT="${OUT:-runs/experiments/centernet_busi-${SIZE}px}"
FOLD=0
B=bundles/centernet_detection/configs
COCO="$OUT/data/boxes_coco.json"
COCO_SPLIT="$OUT/data/boxes_coco.splits.json"

mkdir -p "$OUT" runs/experiments
exec 9> runs/experiments/.centernet_busi.lock
flock -n 9 || { echo "centernet_busi.sh is already running (runs/experiments/.centernet_busi.lock): one job at a time" >&2; exit 1; }
STORE="sqlite:///$(cd "$OUT" && pwd)/mlruns.db"
COMMON=(--dataset busi_dedup --coco_file "$COCO" --image_dir "$DATA" --split_file "$COCO_SPLIT" --fold "$FOLD"
    --num_workers "$WORKERS" --tracking_uri "$STORE")
PROBE_LIMIT=()
if [ -n "$LIMIT" ]; then
    COMMON+=(--limit "$LIMIT")
    PROBE_LIMIT=(--limit "$LIMIT")
fi
# shellcheck disable=SC2206  # EXTRA is a word list of --key value overrides
COMMON+=(${EXTRA:-})

results="$OUT/busi.json" figures=(--figure "$OUT/busi_curves.png")
if [ "$SIZE" -ge 192 ] && [ "$SIMSIAM_SIZE" -ge 128 ] && [ "$SIMSIAM_EPOCHS" -ge 200 ] && [ "$PATIENCE" -gt 0 ] \
    && [ "$SPLIT" = configs/datasets/busi_splits_dedup.json ] && [ -z "$LIMIT" ] && [ -z "${EXTRA:-}" ]; then
    results=bundles/centernet_detection/docs/results/busi.json
    figures=(--figures_dir bundles/centernet_detection/docs/figures)  # the curves, overlays, confusion matrices
fi

run_logged() {  # run_logged <log> <command...>: append its output to the log; on failure show the log's end
    local log="$1"
    shift
    "$@" >> "$log" 2>&1 || { tail -30 "$log"; exit 1; }
}

bundle() {  # bundle <log> [--key value ...]
    local log="$1"
    shift
    run_logged "$log" python -m monai.bundle run --meta_file "$B/metadata.json" --logging_file "$B/logging.conf" "$@"
}

wall() {  # wall <json> <start> <resumed>: the step's wall time; resumed: it continued an interrupted run
    printf '{"seconds": %d, "resumed": %s}\n' $((SECONDS - $2)) "$3" > "$1"
}

# 1. the split's COCO boxes (the split file is written last: its presence means both are complete)
if [ ! -f "$COCO_SPLIT" ]; then
    mkdir -p "$OUT/data"
    run_logged "$OUT/data.log" python scripts/make_coco_from_masks.py --csv "$DATA/labels.csv" \
        --classes benign malignant --dedup_distance -1 --split_file "$SPLIT" --out "$COCO"
    tail -2 "$OUT/data.log"
fi

# 2. SimSiam on fold 0's training images (pretrain_simsiam.json reads splits['train'] only)
if [ ! -f "$OUT/simsiam/encoder.pt" ]; then
    resumed=false
    [ -d "$OUT/simsiam" ] && resumed=true
    start=$SECONDS
    echo "$(date '+%F %T') simsiam: start"
    bundle "$OUT/simsiam.log" --config_file "$B/pretrain_simsiam.json" "${COMMON[@]}" --output_dir "$OUT/simsiam" \
        --spatial_size "[$SIMSIAM_SIZE, $SIMSIAM_SIZE]" --max_epochs "$SIMSIAM_EPOCHS" --run_name simsiam
    wall "$OUT/simsiam/wall_s.json" "$start" "$resumed"
    echo "simsiam: $SIMSIAM_EPOCHS epochs in $((SECONDS - start)) s" | tee -a "$OUT/runtime.txt"
fi

# 3. k-NN probe of the frozen encoders
if [ ! -f "$OUT/knn_probe.json" ]; then
    start=$SECONDS
    run_logged "$OUT/knn_probe.log" python scripts/experiments/knn_probe.py --csv "$DATA/labels.csv" \
        --split_file "$SPLIT" --fold "$FOLD" --encoder "$OUT/simsiam/encoder.pt" --spatial_size "$SIMSIAM_SIZE" \
        --k "$K" --num_workers "$WORKERS" "${PROBE_LIMIT[@]}" --out "$OUT/knn_probe.json"
    tail -3 "$OUT/knn_probe.log"
    echo "knn_probe: $((SECONDS - start)) s" | tee -a "$OUT/runtime.txt"
fi

# 4. the arms: train until validation mAP stops improving, then evaluate best.pt on the test set (the score
#    threshold chosen on the validation split first, evaluate.json's ScoreThresholdFitter)
run_arm() {  # run_arm <name> <extra config or ""> [--key value ...]
    local name="$1" extra="$2"
    shift 2
    local dir="$OUT/$name"
    # evaluated with the threshold chosen on validation (an older evaluation chose it on the test split: redo it)
    grep -qs '"threshold_split": "val"' "$dir/eval_test/metrics.json" && return
    local configs="'$B/train.json'${extra:+,'$extra'}" resumed=false start=$SECONDS
    [ -d "$dir" ] && resumed=true
    local args=("${COMMON[@]}" --spatial_size "[$SIZE, $SIZE]" --output_dir "$dir" --model_dir "$dir/models"
        --pretrain_dir "$OUT/simsiam" --max_epochs "$MAX_EPOCHS" --early_stop_patience "$PATIENCE" --run_name "$name" "$@")
    echo "$(date '+%F %T') $name: start"
    if [ ! -f "$dir/train_done" ]; then
        bundle "$OUT/$name.train.log" --config_file "[$configs]" "${args[@]}"
        touch "$dir/train_done"
    fi
    bundle "$OUT/$name.eval.log" --config_file "[$configs,'$B/evaluate.json']" "${args[@]}"
    wall "$dir/wall_s.json" "$start" "$resumed"
    echo "$name: trained and evaluated in $((SECONDS - start)) s" | tee -a "$OUT/runtime.txt"
}

run_arm random_init "" --init random --freeze_policy all
run_arm simsiam_frozen "" --init simsiam --freeze_policy frozen
run_arm simsiam_progressive "" --init simsiam --freeze_policy progressive_epochs --unfreeze_interval "$INTERVAL"
run_arm retinanet "$B/retinanet.json"

# 5. tables and the results file
python scripts/experiments/centernet_tables.py --out "$OUT/tables.md" \
    --arm "CenterNet, random init=$OUT/random_init" \
    --arm "CenterNet, SimSiam + frozen backbone=$OUT/simsiam_frozen" \
    --arm "CenterNet, SimSiam + progressive unfreezing=$OUT/simsiam_progressive" \
    --arm "RetinaNet (MONAI), random init=$OUT/retinanet" > /dev/null
python scripts/experiments/centernet_results.py "$OUT" --split "$SPLIT" --tracking_uri "$STORE" \
    --results "$results" "${figures[@]}" --spatial_size "$SIZE" --simsiam_spatial_size "$SIMSIAM_SIZE" \
    --simsiam_epochs "$SIMSIAM_EPOCHS" --max_epochs "$MAX_EPOCHS" --early_stop_patience "$PATIENCE" \
    --unfreeze_interval "$INTERVAL" "${PROBE_LIMIT[@]}"
echo "tables: $OUT/tables.md; results: $results"
[ "$results" = "$OUT/busi.json" ] || python scripts/render_results.py
