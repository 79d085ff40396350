#!/usr/bin/env bash
# AG-CycleGAN counterfactual explanations on real data: for each task, train the ResNet18 classifier, then the
# AG-CycleGAN on its frozen encoder, then explain the test set; finally one summary table (summary.md).
#   TASKS="pneumonia busi adrenal3d"  CLS_EPOCHS=3  GAN_EPOCHS=3  N_PANELS=16  [LIMIT=1000]  bash scripts/experiments/agcyclegan_explain.sh
# LIMIT caps every split at a seeded sample of that many items (a CPU budget; the test sets here are smaller).
# pneumonia: PneumoniaMNIST 28x28 normal <-> pneumonia; busi: BUSI benign <-> malignant at 64x64 (masks only
# score the attention maps); adrenal3d: AdrenalMNIST3D 28^3 normal <-> hyperplasia. A finished step is not
# rerun (delete its folder to redo it); an interrupted one resumes from its last epoch. Each task's GAN training
# writes its models/model.pt (classifier + GAN, for the standalone inference.json) under its own folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
ensure_venv ""
export TQDM_DISABLE=1  # the bundles write to log files: no progress bars there

# one thread per process unless told otherwise: on a shared host, spin-waiting OpenMP threads slow every step
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
CLS_EPOCHS="${CLS_EPOCHS:-3}"
GAN_EPOCHS="${GAN_EPOCHS:-3}"
N_PANELS="${N_PANELS:-16}"
WORKERS="${WORKERS:-1}"
OUT="${OUT:-runs/experiments/agcyclegan-cls${CLS_EPOCHS}-gan${GAN_EPOCHS}}"
B=bundles/agcyclegan_explainer/configs
mkdir -p "$OUT"

task_args() {
    case "$1" in
        pneumonia) echo "configs/datasets/pneumoniamnist.json" ;;
        busi) echo "configs/datasets/busi_binary.json --spatial_size [64,64] --dataset_path ../shared/data/busi_256/labels.csv" ;;
        adrenal3d) echo "configs/datasets/adrenalmnist3d.json --batch_size 32 --gan_batch_size 8 --val_batch_size 16" ;;
        *) echo "unknown task $1" >&2; exit 1 ;;
    esac
}

step() {  # step <task> <name> <done-file> <extra config> <args...>
    local task=$1 name=$2 done=$3 extra=$4; shift 4
    if [ -f "$done" ]; then echo "$task/$name: done before, kept"; return; fi
    local start=$SECONDS configs="'$B/train.json','$fragment'"
    [ -n "$extra" ] && configs="$configs,'$B/$extra.json'"
    python -m monai.bundle run --config_file "[$configs]" --meta_file "$B/metadata.json" \
        --logging_file "$B/logging.conf" --output_dir "$OUT/$task" --model_dir "$OUT/$task/models" --num_workers "$WORKERS" \
        --max_epochs "$CLS_EPOCHS" --gan_epochs "$GAN_EPOCHS" ${LIMIT:+--limit "$LIMIT"} $overrides "$@" > "$OUT/$task/$name.log" 2>&1 \
        || { tail -30 "$OUT/$task/$name.log"; exit 1; }
    echo "$task/$name: $((SECONDS - start)) s" | tee -a "$OUT/runtime.txt"
}

for task in ${TASKS:-pneumonia busi adrenal3d}; do
    read -r fragment overrides <<< "$(task_args "$task")"
    mkdir -p "$OUT/$task"
    step "$task" classifier "$OUT/$task/classifier/checkpoints/best.pt" train_classifier
    step "$task" gan "$OUT/$task/gan/figures/samples_epoch$(printf %03d "$GAN_EPOCHS").png" ""
    step "$task" evaluate "$OUT/$task/eval_test/metrics.json" evaluate --n_panels "$N_PANELS"
done
python scripts/experiments/agcyclegan_summary.py "$OUT" | tee "$OUT/summary.md"
