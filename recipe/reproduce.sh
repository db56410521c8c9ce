#!/usr/bin/env bash
# Rebuild the shipped default from ../shared-style inputs: `make reproduce` (config: recipe/default.env).
#
#   0. pack      `deepfake-forensics pack DATA --next`: real-face stills + speaker clips (+ successors)
#   1. train     `deepfake-forensics train-residual PACK --init INIT --freeze-stream ...`: a fresh LSTM +
#                head on the frozen backbone + residual stream of INIT (the shipped file)
#   2. evaluate  recipe/evaluate_and_calibrate.sh on the new weights: validation clips, calibration,
#      + calibrate   the dev set when restored (data/devset; its fakes are never used for fitting)
#
# Wall time measured on 2 shared vCPUs, no GPU (docs/training.md): pack ~1 min; train ~60 min (clips
# ~15, cached features ~35, steps ~9); evaluate + calibrate ~40 min. Each step resumes where it stopped.
# Every variable of recipe/default.env can be overridden from the environment (SEED=1 make reproduce).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-recipe/default.env}
# shellcheck source=recipe/default.env
source "$CONFIG"

PY=${PY:-.venv/bin/python}
DF=("$PY" -m detector)
OUT=$RUN/$OUT_NAME.safetensors
[ -d "$DATA" ] || { echo "no $DATA: point DATA at a folder with faces/, grid/, cremad/ and MANIFEST.tsv" >&2; exit 2; }
[ -f "$INIT" ] || { echo "no $INIT: the shipped weights come with the checkout" >&2; exit 2; }

if [ ! -f "$PACK/pack.json" ]; then
    nice -n 10 "${DF[@]}" pack "$DATA" --out "$PACK" --next --frames "$FRAMES" --max-clips "$MAX_CLIPS"
fi
if [ ! -f "$OUT" ]; then
    resume=(); [ -f "$RUN/checkpoint.pt" ] && resume=(--resume)
    nice -n 10 "${DF[@]}" train-residual "$PACK" --init "$INIT" --freeze-stream --run "$RUN" --out "$OUT" \
        --families "$FAMILIES" --pseudo-train "$PSEUDO_TRAIN" --batch "$BATCH" --rgb-drop "$RGB_DROP" \
        --residual-drop "$RESIDUAL_DROP" --rgb-l2 "$RGB_L2" --seed "$SEED" --budget-min "$BUDGET_MIN" \
        "${resume[@]}"
fi
WEIGHTS=$OUT VAL_IDS=$VAL_IDS TARGET_FPR=$TARGET_FPR REAL_WORLD_FPR=$REAL_WORLD_FPR PY=$PY \
    bash recipe/evaluate_and_calibrate.sh
echo "rebuilt $OUT; compare with the shipped file: python -m detector.training.compare_evals (docs/training.md)"
