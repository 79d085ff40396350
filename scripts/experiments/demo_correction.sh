#!/usr/bin/env bash
# Corrections fix a shortcut (issue 15): the multi-scale ABN trained on the demo phantoms without map
# supervision, then fine-tuned on the lesion masks of each active-learning strategy's top 10/20/30/50/100 %
# of the training images, the extractor frozen (arm `branches`) or not (arm `whole`), each scored on the
# shortcut-free test set (scripts/experiments/demo_correction.py has the details).
#   [EPOCHS=12] [SIZE=64] [FT_EPOCHS=15] [MAP_WEIGHTS=10] [FT_LR=0.001] bash scripts/experiments/demo_correction.sh
# The full run, in the background, with a log (a second launch refuses while one runs: one job at a time):
#   mkdir -p runs/experiments && nohup bash scripts/experiments/demo_correction.sh >> runs/experiments/demo_correction.log 2>&1 &
# Smoke test of the whole chain on 48/16/32 phantoms, one epoch each, one strategy and two fractions (about
# 3.5 min under load; results stay in the run folder; without --strategies/--fractions: all 30 fine-tunes):
#   DATA=runs/experiments/demo_correction_smoke/data N_TRAIN=48 N_VAL=16 N_TEST=32 EPOCHS=1 FT_EPOCHS=1 \
#   OUT=runs/experiments/demo_correction_smoke bash scripts/experiments/demo_correction.sh --batch_size 16 \
#   --strategies random --fractions 0.1 0.2
# Extra arguments go to demo_correction.py: its options (--strategies, --fractions, --arms, --checkpoint) or
# bundle overrides for every run (--key value). Only a run at the default budget or above (data, epochs,
# size, no extra arguments) writes the docs' results file,
# bundles/multiscale_abn_correction/docs/results/demo_correction.json; others write $OUT/demo_correction.json.
#
# Resumable: the training resumes from its last epoch, the evaluation and the records are reused when newer
# than the checkpoint, and each arm's sweep reuses every fine-tune evaluated after its last checkpoint.
# Rerun the same command after an interruption.
#
# Runtime: 1 training of EPOCHS epochs + 2 arms x 3 strategies x 5 fractions = 30 fine-tunes of FT_EPOCHS
# epochs, each with its test evaluation: 12 + 30 x 15 = 462 epochs of 800 training + 200 validation images.
# Measured on the 2-core machine while it also ran a BUSI cross-validation (this job at nice 19): a training
# epoch 170 s, a `branches` fine-tuning epoch 119 s (a `whole` one costs about a training epoch), 19 s per
# fine-tune for its setup and test evaluation: about 19 h at that rate. Alone on the machine it should take
# about 1.5 h: demo_shortcut.sh's 6 arms x 12 epochs on the same images took 881 s (about 11 s an epoch, and
# the multi-scale network's training step is as fast as the ABN's). Run it alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
ensure_venv ""
export TQDM_DISABLE=1  # the bundles write to the log: no progress bars there

EPOCHS="${EPOCHS:-12}"
SIZE="${SIZE:-64}"
FT_EPOCHS="${FT_EPOCHS:-15}"
MAP_WEIGHTS="${MAP_WEIGHTS:-10}"
FT_LR="${FT_LR:-0.001}"
DATA="${DATA:-demo_data/phantom2d}"
N_TRAIN="${N_TRAIN:-800}" N_VAL="${N_VAL:-200}" N_TEST="${N_TEST:-400}"
OUT="${OUT:-runs/experiments/demo_correction-${SIZE}px-${EPOCHS}ep-ft${FT_EPOCHS}}"

mkdir -p "$OUT" runs/experiments
exec 9> runs/experiments/.demo_correction.lock
flock -n 9 || { echo "demo_correction.sh is already running (runs/experiments/.demo_correction.lock): one job at a time" >&2; exit 1; }

# the phantoms of scripts/experiments/demo_shortcut.sh (same counts, seed 0)
[ -f "$DATA/labels.csv" ] || python scripts/make_demo_data.py --out "$DATA" \
    --n-train "$N_TRAIN" --n-val "$N_VAL" --n-test "$N_TEST" --seed 0

dest="$OUT/demo_correction.json"
if [ "$EPOCHS" -ge 12 ] && [ "$SIZE" -ge 64 ] && [ "$FT_EPOCHS" -ge 15 ] && [ "$DATA" = demo_data/phantom2d ] \
    && [ "$N_TRAIN" -ge 800 ] && [ "$N_VAL" -ge 200 ] && [ "$N_TEST" -ge 400 ] && [ $# -eq 0 ]; then
    dest=bundles/multiscale_abn_correction/docs/results/demo_correction.json
fi
echo "$(date '+%F %T') demo_correction: $OUT -> $dest"
start=$SECONDS
python scripts/experiments/demo_correction.py --data "$DATA" --out "$OUT" --results "$dest" --epochs "$EPOCHS" \
    --size "$SIZE" --ft_epochs "$FT_EPOCHS" --map_weights "$MAP_WEIGHTS" --ft_learning_rate "$FT_LR" "$@"
echo "$(date '+%F %T') demo_correction: done in $((SECONDS - start)) s"
if [ "$dest" != "$OUT/demo_correction.json" ]; then
    python scripts/render_results.py
fi
