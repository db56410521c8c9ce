#!/usr/bin/env bash
# Build the identity-held-out clip folders a default is calibrated and tested on (issue 15), as video files
# that go through analyze_video like a user's upload:
#
#   data/val_all:  GRID validation speakers s5,s16,s20,s30,s33 (40 real clips, re-encoded, + one SBI or
#                  face-swap fake each, synth --seed 1) + 140 stills of held-out validation people as real
#                  pseudo-clips + one paired fake each of seven families (clipset --split val --seed 0)
#   data/test_all: GRID test speakers s4,s25,s27,s31,s34 (every real clip + both fakes, synth --seed 2)
#                  + 175 stills of other held-out people (clipset --split test --seed 1)
#
# Needs ../shared/data (GRID clips and face stills) and the pack (`deepfake-forensics pack ../shared/data
# --out data/pack`). Links, not copies; finished parts are skipped on a re-run. ~15 min on 2 cores.
#
#   bash recipe/heldout_clips.sh [val|test|both]
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data}
PACK=${PACK:-data/pack}
FAMILIES=sbi,region,swap,resynth,warp,animate,reenact
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

build() {  # split ids seed per_id n_stills stills_seed max_real fakes(one|both)
    local split=$1 ids=$2 seed=$3 per_id=$4 n=$5 sseed=$6 max_real=$7 fakes=$8
    local grid=data/calib/$(echo "$ids" | tr ',' '_')_seed$seed/$split stills=data/clips_$split out=data/${split}_all
    GRID=$DATA/grid PY=$PY WORKERS=1 bash recipe/grid_clips.sh "$ids" "$seed" "$per_id" "$max_real" "$fakes" "$grid"
    if [ ! -d "$stills/real" ]; then
        nice -n 10 "$PY" -m detector clipset "$PACK" "$DATA/faces" --split "$split" --seed "$sseed" --n "$n" \
            --families "$FAMILIES" --out "$stills"
    fi
    "$PY" - "$grid" "$stills" "$out" <<'EOF'
import os, sys
from pathlib import Path
grid, stills, out = (Path(a) for a in sys.argv[1:4])
n = {"real": 0, "fake": 0}
for source, root in (("grid", grid), ("stills", stills)):
    for f in sorted(root.rglob("*.mp4")):
        # real/X -> real/<source>/X; fake/<family>/X -> fake/<family>/<source>/X (the family stays the
        # first folder under fake/, which is where evaluate --clips reads it)
        label, *rest = f.relative_to(root).parts
        keep = 0 if label == "real" else 1
        dst = out.joinpath(label, *rest[:keep], source, *rest[keep:])
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            os.symlink(f.resolve(), dst)
        n[label] += 1
print(f"{out}: {n['real']} real + {n['fake']} fake clips")
EOF
}

what=${1:-both}
if [ "$what" = val ] || [ "$what" = both ]; then build val s5,s16,s20,s30,s33 1 18 140 0 40 one; fi
if [ "$what" = test ] || [ "$what" = both ]; then build test s4,s25,s27,s31,s34 2 12 175 1 100000 both; fi
