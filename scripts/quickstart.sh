#!/usr/bin/env bash
# Install (if needed), generate the built-in phantom data, and show a planted shortcut being caught and avoided:
# a plain ResNet18, the same ResNet trained with "Right for the Right Reasons", and the attention-supervised
# gated ABN, each trained with the ABN bundle and judged on the shortcut-free test set by its accuracy and by
# where its explanation points (scripts/quickstart.py). Writes runs/quickstart/summary.json and a figure.
# BUDGET=quick (default: 6 epochs on 800/100/400 phantoms in demo_data/phantom2d_quick, no overlay figures)
# or full (the published demo's: 12 epochs, 800/200/400 in demo_data/phantom2d); EPOCHS, DATA and OUT change
# one setting; other arguments go to scripts/quickstart.py (e.g. --n-train 800). summary.json's `timing`
# holds the install (QUICKSTART_T0 to T1), the phantoms and each arm's training, evaluation and explanation.
set -euo pipefail
QUICKSTART_T0="$(date +%s)"
export QUICKSTART_T0
cd "$(dirname "$0")/.."
source scripts/_venv.sh
# --no-compile: byte-compiling every installed module (torch, sympy, mlflow, ...) is most of a first install
# on a few cores; Python compiles what the run imports on first use (it measured 151 s -> 66 s for the
# install, +12 s for the first imports). The test venv (scripts/test.sh) compiles as usual: its many
# processes would each compile the modules again where PYTHONDONTWRITEBYTECODE keeps the results unwritten.
ensure_venv "" --no-compile
QUICKSTART_T1="$(date +%s)"
export QUICKSTART_T1

python scripts/quickstart.py --budget "${BUDGET:-quick}" --out "${OUT:-runs/quickstart}" \
    ${DATA:+--data "$DATA"} ${EPOCHS:+--epochs "$EPOCHS"} "$@"
