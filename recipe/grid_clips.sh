#!/usr/bin/env bash
# Real clips of held-out speakers + synthetic fakes made from them, as a clip folder of links (shared by
# evaluate_and_calibrate.sh and heldout_clips.sh, so validation and test are built the same way):
#
#   bash recipe/grid_clips.sh IDS SEED PER_ID MAX_REAL FAKES DEST
#
# IDS: comma-separated identity folders, each looked up under $GRID, then under $CREMAD. `synth --seed SEED
# --max-per-identity PER_ID` writes data/calib/<ids>_seed<SEED>/synth once (skipped when its manifest
# exists). DEST gets real/<id>/x.mp4 for at most MAX_REAL real clips and, per real clip, FAKES=one fake
# (alternating SBI and face swap) or FAKES=both. Environment: PY, GRID, CREMAD, WORKERS (synth --workers).
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# = 6 ] || { echo "usage: $0 IDS SEED PER_ID MAX_REAL one|both DEST" >&2; exit 2; }
IDS=$1 SEED=$2 PER_ID=$3 MAX_REAL=$4 FAKES=$5 DEST=$6
PY=${PY:-.venv/bin/python}
GRID=${GRID:-../shared/data/grid}
CREMAD=${CREMAD:-../shared/data/cremad}
CAL=data/calib/$(echo "$IDS" | tr ',' '_')_seed$SEED
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

if [ ! -f "$CAL/synth/manifest.jsonl" ]; then
    rm -rf "$CAL/src"
    for id in ${IDS//,/ }; do
        src=$GRID/$id; [ -d "$src" ] || src=$CREMAD/$id
        [ -d "$src" ] || { echo "identity $id not found under $GRID or $CREMAD" >&2; exit 2; }
        mkdir -p "$CAL/src/$id"
        for f in "$src"/*; do ln -sf "$(realpath "$f")" "$CAL/src/$id/"; done
    done
    nice -n 10 "$PY" -m detector synth --real "$CAL/src" --out "$CAL/synth" --seed "$SEED" \
        --max-per-identity "$PER_ID" ${WORKERS:+--workers "$WORKERS"}
fi
"$PY" - "$CAL/synth" "$MAX_REAL" "$FAKES" "$DEST" <<'EOF'
import json, os, sys
from pathlib import Path
synth, max_real, fakes, dest = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
rows = [json.loads(x) for x in (synth / "manifest.jsonl").read_text().splitlines()]
have = {r["path"] for r in rows}
reals = sorted(r["path"] for r in rows if r["label"] == 0)[:max_real]
n_fake = 0
for i, p in enumerate(reals):
    rel = p.removeprefix("real/")
    pick = [f"fake/{m}/{rel}" for m in (("sbi", "swap") if i % 2 == 0 else ("swap", "sbi"))]
    pick = [f for f in pick if f in have][: None if fakes == "both" else 1]
    if not pick:
        raise SystemExit(f"{synth}: no synthetic fake of {p}")
    n_fake += len(pick)
    for q in [p] + pick:
        dst = dest / q
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            os.symlink((synth / q).resolve(), dst)
print(f"{dest}: {len(reals)} real + {n_fake} fake clips")
EOF
