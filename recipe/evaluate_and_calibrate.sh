#!/usr/bin/env bash
# Evaluate and calibrate a weights file in one go (README: "Evaluate and calibrate"); `make calibrate` runs it.
#
#   1. validation clips: real clips of the held-out VALIDATION identities (never the dev set), re-encoded,
#      plus fakes synthesised from them (`synth`, a fresh seed: half SBI, half face swap), under data/calib/
#   2. evaluate --clips on them (through analyze_video), 3. calibrate on those scores (sidecar),
#   4. evaluate --clips on the dev set with its manifest, before (raw) and after calibration, and store
#      metrics.devset in the sidecar (--update-sidecar). The tensor file is never changed.
#   With the dev set restored and REAL_WORLD_FPR set (default 0.10; empty: off), the dev set is scored first
#   and its REAL clips may raise the threshold (`calibrate --real-world`; its fakes are never used), then
#   step 4 re-reads those scores at the new threshold.
#
# Re-runs resume: finished steps and already scored clips are skipped (outputs are keyed by the weights'
# sha256). Environment: WEIGHTS, VAL_IDS (comma-separated identity folders under GRID and CREMAD),
# GRID, CREMAD, DEVSET, MANIFEST, PER_ID (max real clips per identity), MAX_REAL, FRAMES, SEED.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
WEIGHTS=${WEIGHTS:-weights/resnext50_lstm.faces-families-residual-next-stills800_20.safetensors}
# Validation identities of the bundled default (its sidecar's trained_on names them). CREMA-D actors go
# in the same list (e.g. VAL_IDS=s5,s16,1015): each id is looked up under GRID, then under CREMAD.
VAL_IDS=${VAL_IDS:-s5,s16,s20,s30,s33}
GRID=${GRID:-../shared/data/grid}
CREMAD=${CREMAD:-../shared/data/cremad}
DEVSET=${DEVSET:-data/devset}
MANIFEST=${MANIFEST:-../shared/devset/MANIFEST.tsv}
PER_ID=${PER_ID:-18}
MAX_REAL=${MAX_REAL:-40}
FRAMES=${FRAMES:-60}   # the product's default (detector.pipeline.DEFAULT_FRAMES): calibrate at the reading users get
SEED=${SEED:-1}   # training fakes used seed 0: validation fakes here are fresh draws
REAL_WORLD_FPR=${REAL_WORLD_FPR-0.10}

SHA=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['weights_sha256'][:12])" "${WEIGHTS%.*}.json")
OUT=data/eval/$SHA
CAL=data/calib/$(echo "$VAL_IDS" | tr ',' '_')_seed$SEED
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
DF=("$PY" -m detector)

# 1. validation clips: one fake per real clip, alternating SBI / swap, at most MAX_REAL real clips --------
GRID=$GRID CREMAD=$CREMAD PY=$PY bash recipe/grid_clips.sh "$VAL_IDS" "$SEED" "$PER_ID" "$MAX_REAL" one "$CAL/val"

# 2. score the validation clips ---------------------------------------------------------------------
nice -n 10 "${DF[@]}" evaluate --clips "$CAL/val" --weights "$WEIGHTS" --frames "$FRAMES" \
    --json-out "$OUT/val.json" --roc "$OUT/val_roc.png" \
    --data "held-out validation identities ${VAL_IDS} (real, re-encoded) + SBI/face-swap fakes made from them (synth --seed $SEED)"

# 3. calibrate on them (and on the dev set's real clips, with REAL_WORLD_FPR) --------------------------
# the dev set's scoring, shared by steps 3 and 4 (the second re-reads the stored margins: seconds)
DEV_EVAL=(nice -n 10 "${DF[@]}" evaluate --clips "$DEVSET" --manifest "$MANIFEST" --weights "$WEIGHTS" --frames "$FRAMES"
          --json-out "$OUT/devset.json" --data "public dev set (../shared/devset, 74 clips)")
REAL_WORLD=()
if [ -n "$REAL_WORLD_FPR" ] && [ -d "$DEVSET/real" ]; then
    "${DEV_EVAL[@]}" > /dev/null
    REAL_WORLD=(--real-world "$OUT/devset.json" --real-world-fpr "$REAL_WORLD_FPR")
fi
"${DF[@]}" calibrate --scores "$OUT/val.json" --weights "$WEIGHTS" --target-fpr "${TARGET_FPR:-0.05}" \
    "${REAL_WORLD[@]}" | tee "$OUT/calibrate.txt"

# 4. the dev set (its fakes never used for fitting), stored in the sidecar ------------------------------
if [ -d "$DEVSET/real" ]; then
    "${DEV_EVAL[@]}" --roc "$OUT/devset_roc.png" --update-sidecar | tee "$OUT/devset.txt"
else
    echo "no $DEVSET/real: restore the dev set first (DEVELOPERS.md); skipped the dev-set step" >&2
fi
echo "outputs in $OUT"
