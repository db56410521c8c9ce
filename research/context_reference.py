"""Diagnostic: does scoring a face *relative to its own frame* remove the dev set's global confound?

Why: `probe_frames.py --untrained 20` showed that untrained networks rank this dev set's real and fake clips
anywhere from 0.30 to 0.69, because the clip sets differ globally (camera, codec, sharpness, colour). A
score that subtracts the same network's response to a non-face patch of the same frames (same camera,
same codec, same resampling) should cancel that part, and leave what differs between the face and its
surroundings: what a face swap or a lip-sync pastes in. If it works, two things follow, both measured here:
the chance band of untrained networks narrows (the dev set becomes a sharper instrument), and the shipped
model's relative score ranks the dev set better than its raw score (a change of inference, no training).

Context patches: the product's face crop window (FaceConfig margin) moved by one window width to the left,
to the right and down (the torso), kept where it lies wholly inside the frame, resized like the face crop
(112 px, INTER_AREA). A clip's context score is the mean over its valid patches; clips with no valid patch
are left out of both questions (counted and printed). Nothing here is fitted to the dev set.

Measured (AMD EPYC, 2 vCPU): only 28 of the 74 clips have room for a context patch (7 of 36 real, 21 of 38
fake): most real clips are face-tight (LRS2, VoxCeleb-style driving videos). On those 28 the untrained
band barely narrows (0.33-0.71 -> 0.31-0.65) and the default ranks them worse relative to context (0.755
-> 0.694, intervals ±0.25): no inference change follows, and a context reference cannot serve a
face-tight clip at all.

    python research/context_reference.py cache            # once: data/devset_context.npz (needs data/devset)
    python research/context_reference.py score            # untrained band + the default, raw vs relative
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from research.devset_quick import CACHE  # noqa: E402

CONTEXT = ROOT / "data" / "devset_context.npz"
SHIFTS = ((-1.0, 0.0), (1.0, 0.0), (0.0, 1.0))  # left, right, below, in crop-window widths


def context_crops(path: str, frames: int) -> tuple[np.ndarray, np.ndarray] | None:
    """uint8 (frames, 3, 112, 112, 3) RGB patches beside/below the main face, and bool (frames, 3) validity."""
    from detector.faces import FaceConfig, crop_box
    from detector.training.prepare import main_face
    from detector.video import probe, read_frames, sample_indices

    info = probe(path)
    imgs, _ = read_frames(path, sample_indices(info.frame_count, frames), info)
    tr = main_face(imgs)  # the same track as the face cache's (clip_crops)
    if tr is None:
        return None
    cfg = FaceConfig()
    size = cfg.crop_size
    out = np.zeros((frames, len(SHIFTS), size, size, 3), np.uint8)
    ok = np.zeros((frames, len(SHIFTS)), bool)
    for t, (p, b) in enumerate(zip(tr.positions[:frames], tr.boxes[:frames])):
        h, w = imgs[p].shape[:2]
        x0, y0, x1, y1 = crop_box(b, imgs[p].shape, cfg.margin)
        s = x1 - x0
        for k, (dx, dy) in enumerate(SHIFTS):
            a0, b0 = int(x0 + dx * s), int(y0 + dy * s)
            if a0 < 0 or b0 < 0 or a0 + s > w or b0 + s > h:
                continue
            patch = imgs[p][b0:b0 + s, a0:a0 + s]
            out[t, k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_LINEAR)
            ok[t, k] = True
    n = min(frames, len(tr.positions))
    if n < frames:  # a short track repeats its last frame, as devset_quick's face crops do
        out[n:], ok[n:] = out[n - 1], ok[n - 1]
    return out, ok


def cache(devset: Path) -> None:
    """Context patches at the frames of the face cache (its T), for its clips, in its order."""
    d = np.load(CACHE)
    frames = d["crops"].shape[1]
    ctx, ok = [], []
    for i, (lf, label) in enumerate(zip(d["path"], d["label"])):
        r = context_crops(str(devset / str(lf).removeprefix("clips/")), frames)
        assert r is not None, f"{lf}: the face cache found a face here; the context pass must too"
        ctx.append(r[0])
        ok.append(r[1])
        print(f"{i + 1}/{len(d['path'])} {Path(str(lf)).name}: {r[1].any(0).sum()} of {len(SHIFTS)} sides valid "
              f"({'fake' if label else 'real'})", flush=True)
    np.savez(CONTEXT, ctx=np.stack(ctx), ok=np.stack(ok))


def _context_mean(ctx: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """ctx (N, K) per-side clip scores, ok (N, K) validity (at least one side per clip) -> (N,) mean of the valid."""
    return (ctx * ok).sum(1) / ok.sum(1)


@torch.no_grad()
def score() -> None:
    """Both questions on the clips whose frames have room for a context patch (the others cannot use it)."""
    from research.probe_frames import FrameNet, _logits

    from detector.training.evaluate import roc_auc, roc_auc_ci
    from detector.weights import DEFAULT_WEIGHTS, load_weights

    d, c = np.load(CACHE), np.load(CONTEXT)
    ok_all = c["ok"].all(1)  # (N, K): a side counts when it is inside the frame in every sampled frame
    has = ok_all.any(1)
    x, y, ctx, ok = d["crops"][has], d["label"][has], c["ctx"][has], ok_all[has]
    n, t, k = ctx.shape[:3]
    print(f"clips with room for a context patch: {has.sum()} of {len(has)} ({(y == 0).sum()} real of "
          f"{(d['label'] == 0).sum()}, {(y == 1).sum()} fake of {(d['label'] == 1).sum()}); the rest are face-tight")
    raw_band, rel_band = [], []
    for seed in range(20):
        torch.manual_seed(seed)
        net = FrameNet()
        pf = _logits(net, x.reshape(-1, *x.shape[2:])).reshape(n, t).mean(1)
        pc = _logits(net, ctx.reshape(-1, *ctx.shape[3:])).reshape(n, t, k).mean(1)
        raw_band.append(roc_auc(y, pf))
        rel_band.append(roc_auc(y, pf - _context_mean(pc, ok)))
    for name, b in (("face", raw_band), ("face - context", rel_band)):
        a = np.sort(b)
        print(f"20 untrained FrameNets, {name}: min {a[0]:.3f}, median {np.median(a):.3f}, max {a[-1]:.3f}")

    model, _ = load_weights(DEFAULT_WEIGHTS)

    def clip_logit(frames_u8):  # (B, T, S, S, 3) uint8 -> (B,) logit of p_fake
        v = torch.from_numpy(np.ascontiguousarray(frames_u8)).permute(0, 1, 4, 2, 3).contiguous()
        lg = torch.cat([model(v[i:i + 8]) for i in range(0, len(v), 8)])
        return (lg[:, 1] - lg[:, 0]).numpy()

    face = clip_logit(x)
    ctx_l = np.stack([clip_logit(ctx[:, :, j]) for j in range(k)], 1)  # (n, K)
    ref = _context_mean(ctx_l, ok)
    for name, p in (("face", face), ("context alone", ref), ("face - context", face - ref)):
        lo, hi = roc_auc_ci(y, p)
        print(f"default, {name}: ROC-AUC {roc_auc(y, p):.3f} [{lo:.2f}-{hi:.2f}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("--devset", type=Path, default=ROOT / "data" / "devset")
    sub.add_parser("score")
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.cmd == "cache":
        cache(a.devset)
    else:
        score()


if __name__ == "__main__":
    main()
