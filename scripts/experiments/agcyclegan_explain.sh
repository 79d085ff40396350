#!/usr/bin/env bash
# AG-CycleGAN counterfactual explanations at full budget (bundles/agcyclegan_explainer), per task:
#  1. LR range test of the classifier (--run_id lr_find: classifier/lr_range_test/lr_range_test.json);
#  2. classifier: the ResNet18 classifier, cyclical SGD between the suggested base_lr and max_lr (with the
#     momentum and weight decay of the suggested pair), until the validation loss has not fallen for PATIENCE
#     validations (at most CLS_EPOCHS epochs); its checkpoint of the lowest validation loss is the classifier
#     explained;
#  3. judge: a classifier of another family, train_judge.json's judge_def (DenseNet121 behind a nearest-
#     neighbour resize to at least 32 px, the smallest input it takes), trained on the training split like the
#     classifier (the same recipe with its own LR range test, judge_densenet121_lr_find) into
#     judge_densenet121/ (MLflow run <task>_judge_densenet121-<fingerprint>): an independent judge of the
#     translations and the controls, which no GAN trains against (the earlier seed-1 copy of the classifier,
#     judge/, shared the classifier's architecture, data and learning rate);
#  4. gan: the AG-CycleGAN with the study's loss (adversarial + cycle + attention sparsity) on the classifier's
#     frozen encoder, until val_flip_rate_min (the validation flip rate of the weaker direction) has not risen
#     for GAN_PATIENCE validations (at most GAN_EPOCHS epochs), into gan/;
#  5. gan_guided: the same with train_guided.json, the classifier-guided loss (+ LAMBDA_CLS x the frozen
#     classifier's cross-entropy of each translation against its target class), into gan_guided/;
#  6. evaluate_judge_densenet121, evaluate_guided_judge_densenet121: the test set explained with each arm's
#     gan{,_guided}/checkpoints/best.pt (the GAN of the highest val_flip_rate_min) into eval_test{,_guided}/,
#     each translation and both controls also judged by the judge, flip rates with bootstrap intervals, the
#     controls decided by paired intervals, the KID of the translations in the judge's features (new step
#     names, so that a run folder evaluated with the seed-1 judge is evaluated again);
#  7. the results file (scripts/experiments/agcyclegan_results.py: both arms, the one whose weaker direction
#     flipped more on validation on top); at the end summary.md of all tasks and arms in OUT.
# Tasks: pneumoniamnist (PneumoniaMNIST 28x28, normal <-> pneumonia, the whole training set), adrenalmnist3d
# (AdrenalMNIST3D 28^3, normal <-> hyperplasia), busi (BUSI benign <-> malignant at SIZE px on the leak-free
# split configs/datasets/busi_binary_dedup.json: fold 0 validates, the fixed test set tests; the lesion masks
# only score the attention maps).
#
#   [TASKS="pneumoniamnist adrenalmnist3d busi"] [CLS_EPOCHS=100] [PATIENCE=10] [GAN_EPOCHS=100] [GAN_PATIENCE=10] \
#   [LAMBDA_CLS=1.0] [SIZE=128] [N_PANELS=16] [WORKERS=<bundle default>] [LIMIT=] [EXTRA=] \
#   bash scripts/experiments/agcyclegan_explain.sh
# The full run, in the background, with a log (a second launch refuses while one runs: one job at a time):
#   mkdir -p runs/experiments && nohup bash scripts/experiments/agcyclegan_explain.sh >> runs/experiments/agcyclegan_explain.log 2>&1 &
# Smoke test of the whole chain, 64 items per split (an estimate: 15-25 min, mostly start-up, caching and the
# test panels of both arms; results stay in the run folder):
#   LIMIT=64 CLS_EPOCHS=2 PATIENCE=1 GAN_EPOCHS=2 GAN_PATIENCE=1 SIZE=64 N_PANELS=4 EXTRA="--lr_test_iters 5" \
#   OUT=runs/experiments/agcyclegan_smoke bash scripts/experiments/agcyclegan_explain.sh
# LIMIT caps every split at a seeded sample of that many items; EXTRA is a word list of --key value overrides
# given last to every bundle run (it overrides the script's own values, the results file records the script's).
# Only a run at full budget (no LIMIT, no EXTRA, CLS_EPOCHS and GAN_EPOCHS >= 100, PATIENCE and GAN_PATIENCE
# >= 10; busi also SIZE >= 128) writes the docs' results files bundles/agcyclegan_explainer/docs/results/
# <task>.json, copies each arm's best and worst panels per direction into bundles/agcyclegan_explainer/docs/
# figures/<task>_<arm>_{best,worst}_from_{0,1}.png (the README shows them) and then runs
# scripts/render_results.py; others write $OUT/results/<task>.json and leave the panels in the run folder.
#
# Resumable: each step writes $OUT/<task>/<step>.done once it succeeded and is skipped while that file exists
# (outputs are no proof: best.pt and models/model.pt are written before training ends, and a training stopped
# early never reaches its last epoch); a killed training resumes from its checkpoints/latest.pt (and its
# early-stopping count from checkpoints/early_stopping.json, so it stops after the same epoch as an
# uninterrupted one). Rerun the same command after an interruption; to redo a task, delete
# $OUT/<task> (its earlier MLflow runs stay in the store). A run folder from before the guided arm or the
# DenseNet121 judge resumes with the new steps (judge_densenet121_lr_find, judge_densenet121, gan_guided, and
# both evaluations under their new names, which overwrite eval_test{,_guided}/); the classifier and GANs are
# kept. One MLflow store, $OUT/mlruns.db; a log
# per step, $OUT/<task>/<step>.log; wall times in $OUT/runtime.txt (a step that follows an interrupted attempt
# counts only its own part, and says so).
#
# Runtime, an ESTIMATE (no run at this budget yet): scaled from the measured times on the 2-core machine with
# the bf16 fast path (ResNet18 training at 28 px about 22 s per 4708 images, at 128 px on BUSI about 4 s an
# epoch; the AG-CycleGAN's bare generator step at 128 px about 30 pairs/s, abn_classification's
# train_throughput.json) and, for AdrenalMNIST3D, from the loaded one-thread runs in the bundle README.
# LR range tests 2-8 min each, two a task (classifier and judge). The DenseNet121 judge takes about 2-3 times
# the classifier's time (a heavier network, at 32 px instead of 28 on the MedMNIST tasks); the guided GAN
# doubles the GAN time and a bit more (one more classifier forward and backward per generator step); both
# evaluations take the judge's forwards (of the translations and of both controls) and the bootstrap intervals. If early stopping ends each training after 20-60 epochs: pneumoniamnist 1-3 h,
# adrenalmnist3d 1-4 h, busi 0.5-1 h: about 3-8 h in all; at most about 18 h if every training runs to its
# epoch cap. Still an estimate: the epoch times in the first step logs give a better figure.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
ensure_venv ""
export TQDM_DISABLE=1  # the bundles write to log files: no progress bars there
# no OMP_NUM_THREADS: experiments run alone on the machine, torch uses every core

TASKS="${TASKS:-pneumoniamnist adrenalmnist3d busi}"
CLS_EPOCHS="${CLS_EPOCHS:-100}"
PATIENCE="${PATIENCE:-10}"
GAN_EPOCHS="${GAN_EPOCHS:-100}"
GAN_PATIENCE="${GAN_PATIENCE:-10}"
LAMBDA_CLS="${LAMBDA_CLS:-1.0}"
SIZE="${SIZE:-128}"
N_PANELS="${N_PANELS:-16}"
OUT="${OUT:-runs/experiments/agcyclegan-cls${CLS_EPOCHS}p${PATIENCE}-gan${GAN_EPOCHS}p${GAN_PATIENCE}-busi${SIZE}px${LIMIT:+-limit$LIMIT}}"
B=bundles/agcyclegan_explainer/configs
JUDGE=judge_densenet121  # train_judge.json's folder for its default judge_architecture, DenseNet121
DOCS_RESULTS=bundles/agcyclegan_explainer/docs/results
DOCS_FIGURES=bundles/agcyclegan_explainer/docs/figures

task_setup() {  # task_setup <task>: sets fragment (dataset config), side (image side) and overrides (array)
    case "$1" in
        pneumoniamnist) fragment=configs/datasets/pneumoniamnist.json side=28 overrides=() ;;
        adrenalmnist3d)  # 3D: smaller batches
            fragment=configs/datasets/adrenalmnist3d.json side=28
            overrides=(--batch_size 32 --gan_batch_size 8 --val_batch_size 16) ;;
        busi)  # the bundle's default dataset_path is the PneumoniaMNIST file
            fragment=configs/datasets/busi_binary_dedup.json side=$SIZE
            overrides=(--dataset_path ../shared/data/busi_256/labels.csv --spatial_size "[$SIZE, $SIZE]") ;;
        *) echo "unknown task '$1' (known: pneumoniamnist adrenalmnist3d busi)" >&2; return 1 ;;
    esac
}
for task in $TASKS; do task_setup "$task"; done

mkdir -p "$OUT" runs/experiments
exec 9> runs/experiments/.agcyclegan_explain.lock
flock -n 9 || { echo "agcyclegan_explain.sh is already running (runs/experiments/.agcyclegan_explain.lock): one job at a time" >&2; exit 1; }
STORE="sqlite:///$(cd "$OUT" && pwd)/mlruns.db"

full=""
if [ -z "${LIMIT:-}" ] && [ -z "${EXTRA:-}" ] && [ "$CLS_EPOCHS" -ge 100 ] && [ "$GAN_EPOCHS" -ge 100 ] \
    && [ "$PATIENCE" -ge 10 ] && [ "$GAN_PATIENCE" -ge 10 ]; then
    full=true
fi

step() {  # step <task> <step> <config list> [--key value ...]: one bundle run, skipped once <step>.done exists
    local task="$1" name="$2" configs="$3"
    shift 3
    local dir="$OUT/$task" note=""
    if [ -f "$dir/$name.done" ]; then echo "$task/$name: done before, kept"; return; fi
    [ -f "$dir/$name.log" ] && note=" (after an interrupted attempt, whose time is not counted)"
    echo "$(date '+%F %T') $task/$name: start"
    local start=$SECONDS
    # shellcheck disable=SC2086  # EXTRA is a word list of --key value overrides
    python -m monai.bundle run --config_file "$configs" --meta_file "$B/metadata.json" --logging_file "$B/logging.conf" \
        --output_dir "$dir" --model_dir "$dir/models" --tracking_uri "$STORE" "${overrides[@]}" \
        ${WORKERS:+--num_workers "$WORKERS"} ${LIMIT:+--limit "$LIMIT"} "$@" ${EXTRA:-} >> "$dir/$name.log" 2>&1 \
        || { tail -30 "$dir/$name.log"; exit 1; }
    touch "$dir/$name.done"
    echo "$task/$name: $((SECONDS - start)) s$note" | tee -a "$OUT/runtime.txt"
}

tested_checkpoint() {  # tested_checkpoint <task> <gan folder>: best (the highest val_flip_rate_min) or latest
    # best.pt is absent only when a validation direction had no images
    if [ -f "$OUT/$1/$2/checkpoints/best.pt" ]; then echo best; return; fi
    echo "$1: no $2/checkpoints/best.pt (no validation flip rate in one direction): explaining latest.pt" >&2
    echo latest
}

lr_suggestion() {  # lr_suggestion <lr_range_test.json>: "base_lr max_lr momentum weight_decay" of the best pair
    python -c 'import json, sys; b = json.load(open(sys.argv[1]))["best"]; print(b["base_lr"], b["max_lr"], b["momentum"], b["weight_decay"])' "$1"
}

written=""
for task in $TASKS; do
    task_setup "$task"
    dir="$OUT/$task"
    mkdir -p "$dir"
    data="'$B/train.json','$fragment'"
    step "$task" lr_find "[$data,'$B/train_classifier.json']" --run_id lr_find
    suggestion=$(lr_suggestion "$dir/classifier/lr_range_test/lr_range_test.json")  # fails here if unreadable
    read -r base_lr max_lr momentum weight_decay <<< "$suggestion"
    echo "$task: LR range test: cyclical SGD $base_lr - $max_lr, momentum $momentum, weight decay $weight_decay"
    classifier_args=(--max_epochs "$CLS_EPOCHS" --early_stop_patience "$PATIENCE" --base_lr "$base_lr"
        --max_lr "$max_lr" --momentum "$momentum" --weight_decay "$weight_decay")
    step "$task" classifier "[$data,'$B/train_classifier.json']" "${classifier_args[@]}"
    # the judge: its own network (judge_def), folder ($JUDGE/) and MLflow run, its own LR range test
    judge_configs="[$data,'$B/train_classifier.json','$B/train_judge.json']"
    step "$task" "${JUDGE}_lr_find" "$judge_configs" --run_id lr_find
    suggestion=$(lr_suggestion "$dir/$JUDGE/lr_range_test/lr_range_test.json")  # fails here if unreadable
    read -r j_base_lr j_max_lr j_momentum j_weight_decay <<< "$suggestion"
    echo "$task: judge's LR range test: cyclical SGD $j_base_lr - $j_max_lr, momentum $j_momentum," \
        "weight decay $j_weight_decay"
    step "$task" "$JUDGE" "$judge_configs" --max_epochs "$CLS_EPOCHS" --early_stop_patience "$PATIENCE" \
        --base_lr "$j_base_lr" --max_lr "$j_max_lr" --momentum "$j_momentum" --weight_decay "$j_weight_decay"
    gan_args=(--gan_epochs "$GAN_EPOCHS" --gan_early_stop_patience "$GAN_PATIENCE")
    step "$task" gan "[$data]" "${gan_args[@]}"
    step "$task" gan_guided "[$data,'$B/train_guided.json']" "${gan_args[@]}" --lambda_cls "$LAMBDA_CLS"
    checkpoint=$(tested_checkpoint "$task" gan) guided_checkpoint=$(tested_checkpoint "$task" gan_guided)
    eval_args=(--judge_checkpoint "$dir/$JUDGE/checkpoints/best.pt" --n_panels "$N_PANELS")
    step "$task" "evaluate_$JUDGE" "[$data,'$B/evaluate.json']" \
        --gan_checkpoint "$dir/gan/checkpoints/$checkpoint.pt" "${eval_args[@]}"
    step "$task" "evaluate_guided_$JUDGE" "[$data,'$B/train_guided.json','$B/evaluate.json']" \
        --gan_checkpoint "$dir/gan_guided/checkpoints/$guided_checkpoint.pt" "${eval_args[@]}"
    results="$OUT/results" figures=()
    if [ -n "$full" ] && { [ "$task" != busi ] || [ "$SIZE" -ge 128 ]; }; then
        results=$DOCS_RESULTS figures=(--figures_dir "$DOCS_FIGURES") written=true
    fi
    python scripts/experiments/agcyclegan_results.py "$dir" --task "$task" --out "$results/$task.json" "${figures[@]}" \
        --cls_epochs "$CLS_EPOCHS" --early_stop_patience "$PATIENCE" --gan_epochs "$GAN_EPOCHS" \
        --gan_early_stop_patience "$GAN_PATIENCE" --spatial_size "$side" --base_lr "$base_lr" --max_lr "$max_lr" \
        --momentum "$momentum" --weight_decay "$weight_decay" --gan_checkpoint "$checkpoint" \
        --guided_gan_checkpoint "$guided_checkpoint" --lambda_cls "$LAMBDA_CLS" ${LIMIT:+--limit "$LIMIT"}
done
python scripts/experiments/agcyclegan_summary.py "$OUT" | tee "$OUT/summary.md"
if [ -n "$written" ]; then python scripts/render_results.py; fi
