#!/usr/bin/env bash
# BUSI on the leak-free split (configs/datasets/busi_splits_dedup.json): 3-fold cross-validation of every arm
# (python -m monai_xai.crossval: train on two folds, validate on the third, test on the fixed test set), then
# the results file the bundle README's tables are rendered from (scripts/experiments/busi_results.py).
#   [TASK="busi_binary_dedup busi_dedup"] [EPOCHS=40] [SIZE=128] [ARMS="..."] bash scripts/experiments/abn_busi.sh
# The full run, in the background, with a log (a second launch refuses while one runs: one job at a time):
#   mkdir -p runs/experiments && nohup bash scripts/experiments/abn_busi.sh >> runs/experiments/abn_busi.log 2>&1 &
# Smoke test of the whole chain, all arms on 40 images per split (about 70 s an arm; results stay in the run folder):
#   TASK=busi_binary_dedup EPOCHS=1 SIZE=64 EXTRA="--limit 40" OUT=runs/experiments/busi_smoke bash scripts/experiments/abn_busi.sh
#
# An arm is a mode and an ABN architecture (monai_xai.networks.factory); each gets its own folder
# $OUT/<task>/<arm> and log $OUT/<task>/<arm>.log, all runs log to one MLflow store, $OUT/mlruns.db.
# ARMS defaults to the six the results need; the extras abn_gated (dynamic α) and rrr are added with e.g.
# ARMS="abn_gated rrr" and join the results file once all their folds are evaluated.
#
# Resumable: crossval reuses a fold whose val and test evaluations are newer than its best.pt, and a fold
# killed mid-training resumes from checkpoints/latest.pt (ResumableCheckpointer: model, optimiser, LR
# schedule and epoch; best.json keeps the best validation score, the MLflow run is continued). Rerun the
# same command after an interruption.
#
# Runtime, measured on the 2-core AVX-512 BF16 machine (bf16 fast path), binary task at 128 px, 40 epochs:
#   conventional 1016 s for its 3 folds (about 5.6 min per fold, training, validation and both evaluations).
#   Six arms x 3 folds x 2 tasks: about 3.5 h; the 3-class task has about 20 % more images.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
ensure_venv ""
export TQDM_DISABLE=1  # the bundles write to log files: no progress bars there

TASK="${TASK:-busi_binary_dedup busi_dedup}"
EPOCHS="${EPOCHS:-40}"
SIZE="${SIZE:-128}"
REQUIRED="baseline plain conventional dynamic abn_narrow abn_compact"
OPTIONAL="abn_gated rrr"
ARMS="${ARMS:-$REQUIRED}"
OUT="${OUT:-runs/experiments/abn_busi-${SIZE}px-${EPOCHS}ep}"
B=bundles/abn_classification/configs
ALPHA="--alpha_schedule step --alpha_high 0.9 --alpha_low 0.1"

# crossval arguments of an arm. Grad-CAM++ reads layer3 (size/16 cells: 8x8 at 128 px; layer4 has 4x4), named
# as CAMSaliency sees the network (wrapped as `network`): the ResNet's own layer3; the ABN's features end with
# layer3; abn_gated's features end at layer1, so its layer3 is in the perception branch.
arm_args() {
    case "$1" in
        baseline | rrr) echo "--mode $1 --cam_layer network.layer3" ;;
        plain | conventional) echo "--mode $1 --architecture abn --cam_layer network.features.layer3" ;;
        dynamic) echo "--mode dynamic --architecture abn $ALPHA --cam_layer network.features.layer3" ;;
        abn_narrow | abn_compact) echo "--mode dynamic --architecture $1 $ALPHA --cam_layer network.features.layer3" ;;
        abn_gated) echo "--mode dynamic --architecture abn_gated $ALPHA --cam_layer network.perception_branch.layer3" ;;
        *) echo "unknown arm '$1' (known: $REQUIRED $OPTIONAL)" >&2; return 1 ;;
    esac
}
for arm in $ARMS; do arm_args "$arm" > /dev/null; done

mkdir -p "$OUT" runs/experiments
exec 9> runs/experiments/.abn_busi.lock
flock -n 9 || { echo "abn_busi.sh is already running (runs/experiments/.abn_busi.lock): one job at a time" >&2; exit 1; }
STORE="sqlite:///$(cd "$OUT" && pwd)/mlruns.db"

for task in $TASK; do
    case "$task" in
        busi_binary_dedup) name=busi_binary ;;
        busi_dedup) name=busi_3class ;;
        *) name="" ;;
    esac
    mkdir -p "$OUT/$task"
    # Only the dedup tasks at the issue's budget (>= 40 epochs, >= 128 px, all images) replace the docs' results.
    dest="$OUT/$task/results.json"
    figure="$OUT/$task/learning_curves.png"
    if [ -n "$name" ] && [ "$EPOCHS" -ge 40 ] && [ "$SIZE" -ge 128 ] && [ -z "${EXTRA:-}" ]; then
        dest="bundles/abn_classification/docs/results/$name.json"
        figure="bundles/abn_classification/docs/figures/${name}_curves.png"
    fi
    for arm in $ARMS; do
        dir="$OUT/$task/$arm"
        # wall_s.json: the wall time of the invocation that completed the arm; "resumed" when it continued an
        # interrupted one, whose earlier part is not counted. An arm complete before is only re-read.
        if [ -f "$dir/crossval_summary.json" ]; then resumed=""; elif [ -d "$dir" ]; then resumed=true; else resumed=false; fi
        echo "$(date '+%F %T') $task/$arm: start"
        start=$SECONDS
        # shellcheck disable=SC2046,SC2086  # arm_args and EXTRA are word lists
        python -m monai_xai.crossval --config_file "['$B/train.json','configs/datasets/$task.json']" \
            --evaluate_file "$B/evaluate.json" --output_dir "$dir" $(arm_args "$arm") \
            --saliency_baselines '["gradcampp"]' --max_epochs "$EPOCHS" --spatial_size "[$SIZE, $SIZE]" \
            --tracking_uri "$STORE" ${EXTRA:-} >> "$dir.log" 2>&1 || { tail -30 "$dir.log"; exit 1; }
        if [ -n "$resumed" ]; then
            printf '{"seconds": %d, "resumed": %s}\n' $((SECONDS - start)) "$resumed" > "$dir/wall_s.json"
        fi
        echo "$(date '+%F %T') $task/$arm: done in $((SECONDS - start)) s"
    done
    # shellcheck disable=SC2086  # REQUIRED and OPTIONAL are word lists
    python scripts/experiments/busi_results.py --runs "$OUT/$task" --dataset_config "configs/datasets/$task.json" \
        --arms $REQUIRED --optional_arms $OPTIONAL --epochs "$EPOCHS" --spatial_size "$SIZE" "$SIZE" \
        --gradcampp_layer layer3 --tracking_uri "$STORE" --out "$dest" --figure "$figure"
done
echo "tables: paste the results blocks into bundles/abn_classification/docs/README.md, then python scripts/render_results.py"
