#!/usr/bin/env bash
# Stage 1 of issue 15's recipe on a lent GPU machine (`device` run), as one command that fits its 10 minutes.
#
# Here, first:  deepfake-forensics pack-compact data/pack --out data/carry   (10.2 MB; checkout + carry < 64 MiB)
# Device run:   carry ["data/carry"], command `bash recipe/device_stage1.sh`, timeout_s 560.
# It fine-tunes the default's ResNeXt50 on the pack's paired frames (train-pack --stage1-only: the default's
# residual stream and clip stage ride along untouched) and brings back, through $OUT, the weights in 15-MiB
# parts (files from the device are at most 16 MiB), the frame head, the sidecar and the logs. Back here:
#   cat OUT/NAME.safetensors.part-* > runs/gpu/NAME.safetensors  (the sidecar's sha256 checks the reassembly)
#   deepfake-forensics train-residual data/pack_next --init runs/gpu/NAME.safetensors --freeze-stream ...
# Knobs (environment): INIT, NAME, MIN (budget, minutes), WORKERS, BATCH, LR, EVERY.
set -euo pipefail
# The weights to start from: the shipped default unless INIT names others (one definition: detector.weights).
W=${INIT:-$(python3 -c "from detector.weights import DEFAULT_WEIGHTS; print(DEFAULT_WEIGHTS)")}
NAME=${NAME:-resnext50_lstm.gpu-stage1}
OUT=${OUT:?set OUT to the folder that comes back}
rm -rf runs/gpu  # a warm machine keeps ignored outputs between calls: a finished stage1.pt would end a new run at once
mkdir -p runs/gpu
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
nproc
python3 -c "import torch, cv2, numpy; print('torch', torch.__version__, 'cv2', cv2.__version__, 'numpy', numpy.__version__)"
PYTHONUNBUFFERED=1 python3 -m detector train-pack data/carry --run runs/gpu --budget-min "${MIN:-7.2}" \
    --workers "${WORKERS:-14}" --frame-batch "${BATCH:-256}" --lr "${LR:-4e-4}" --eval-every "${EVERY:-400}" \
    --init "$W" --stage1-only --out "runs/gpu/out/$NAME.safetensors" 2>&1 | tee runs/gpu/train.txt
split -b 15M "runs/gpu/out/$NAME.safetensors" "$OUT/$NAME.safetensors.part-"
cp "runs/gpu/out/$NAME.json" "runs/gpu/out/$NAME.frame_head.safetensors" runs/gpu/log.jsonl runs/gpu/train.txt "$OUT/"
ls -la "$OUT"
