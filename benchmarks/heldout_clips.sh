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
#   bash benchmarks/heldout_clips.sh [val|test|both]
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data}
PACK=${PACK:-data/pack}
FAMILIES=sbi,region,swap,resynth,warp,animate,reenact
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
DF=("$PY" -m detector)

build() {  # split ids seed per_id n_stills stills_seed max_real both_fakes
    local split=$1 ids=$2 seed=$3 per_id=$4 n=$5 sseed=$6 max_real=$7 both=$8
    local cal=data/calib/$(echo "$ids" | tr ',' '_')_seed$seed stills=data/clips_$split out=data/${split}_all
    if [ ! -f "$cal/synth/manifest.jsonl" ]; then
        rm -rf "$cal/src"
        for id in ${ids//,/ }; do
            mkdir -p "$cal/src/$id"
            for f in "$DATA/grid/$id"/*; do ln -sf "$(realpath "$f")" "$cal/src/$id/"; done
        done
        nice -n 10 "${DF[@]}" synth --real "$cal/src" --out "$cal/synth" --seed "$seed" \
            --max-per-identity "$per_id" --workers 1
    fi
    if [ ! -d "$stills/real" ]; then
        nice -n 10 "${DF[@]}" clipset "$PACK" "$DATA/faces" --split "$split" --seed "$sseed" --n "$n" \
            --families "$FAMILIES" --out "$stills"
    fi
    "$PY" - "$cal/synth" "$stills" "$out" "$max_real" "$both" <<'EOF'
import json, os, sys
from pathlib import Path
synth, stills, out, max_real, both = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
rows = [json.loads(x) for x in (synth / "manifest.jsonl").read_text().splitlines()]
have = {r["path"] for r in rows}
reals = sorted(r["path"] for r in rows if r["label"] == 0)[:max_real]
links = []
for i, p in enumerate(reals):
    rel = p.removeprefix("real/")
    order = ("sbi", "swap") if i % 2 == 0 else ("swap", "sbi")
    fakes = [f"fake/{m}/{rel}" for m in order if f"fake/{m}/{rel}" in have]
    links += [(synth / q, Path("grid") / q) for q in [p] + (fakes if both else fakes[:1])]
links += [(f, Path("stills") / f.relative_to(stills)) for f in sorted(stills.rglob("*.mp4"))]
n = {"real": 0, "fake": 0}
for src, rel in links:
    # grid/real/X -> real/grid/X; stills/fake/<family>/X -> fake/<family>/stills/X (the family stays the
    # first folder under fake/, which is where evaluate --clips reads it)
    source, label, rest = rel.parts[0], rel.parts[1], rel.parts[2:]
    dst = out / label / source / Path(*rest) if label == "real" else out / label / rest[0] / source / Path(*rest[1:])
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        os.symlink(src.resolve(), dst)
    n[label] += 1
print(f"{out}: {n['real']} real + {n['fake']} fake clips")
EOF
}

what=${1:-both}
if [ "$what" = val ] || [ "$what" = both ]; then build val s5,s16,s20,s30,s33 1 18 140 0 40 0; fi
if [ "$what" = test ] || [ "$what" = both ]; then build test s4,s25,s27,s31,s34 2 12 175 1 100000 1; fi
