"""Within-clip consistency statistics and a one-class score fitted on real video only (issue 15 probe).

Every model trained here learned its fakes from synthetic families and scored the dev set at chance.
This probe asks the opposite question: are there statistics that compare one part of a clip with another
part of the *same* clip (face against the ring around it, mouth against eyes, this frame's grain against
the next frame's), so that camera, codec and resolution cancel, on which real video from our training
sources and real-world real video agree, and real-world fakes do not? If so, a one-class score (distance
from the real clips' distribution, fitted on training reals only; no fake, no dev clip is fitted) ranks
fakes without learning any generator.

Statistics, per pair of consecutive frames (t, t+1) at the video's own resolution, around the main face
track's box (face = 0.7x the box, ring = 1.15x-1.8x minus the face; mouth / eyes = lower / upper middle
of the box); the clip's value is the median over 8 pairs:
- `face_ring_fine`: log ratio of finest-octave energy (grey - blur sigma 0.7), face over ring;
- `face_ring_mid`: the same for a coarser octave (blur 0.7 - blur 2);
- `face_fine_mid`: log ratio of the face's finest octave over its coarser one (rendered at lower res);
- `mouth_eyes_fine`: log ratio of finest-octave energy, mouth box over eye box;
- `grain_face`, `grain_ring`: correlation of the fine residual between t and t+1 (grain that persists);
- `grain_face_minus_ring`: their difference;
- `motion_face_ring`: log ratio of mean |frame t+1 - frame t|, face over ring;
- `grain_face_mc`: `grain_face` after motion compensation (frame t+1 warped onto frame t by dense optical
  flow on the blurred picture): grain that moves *with* the face, as a warping animator's does, instead
  of grain that stays at fixed pixels. Fresh sensor noise gives ~0 either way.

    python research/probe_consistency.py cache       # dev set + GRID/CREMA-D training reals -> data/consistency.npz
    python research/probe_consistency.py score       # per-statistic ROC-AUC and the one-class score

The training reals are measured three ways: as decoded (`train`), after the training's own codec damage
(`train_damaged`: families.degrade, one parameter draw per clip with noise or JPEG, fresh noise per frame)
and after a harsher camera (`train_camera`: always fresh noise sigma 2-8 and JPEG 35-80, half of them at
0.5-1x resolution), to ask whether any simple damage makes studio clips look like real-world video.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "data" / "consistency.npz"
NAMES = ("face_ring_fine", "face_ring_mid", "face_fine_mid", "mouth_eyes_fine", "grain_face", "grain_ring",
         "grain_face_minus_ring", "motion_face_ring", "grain_face_mc")


def _mask(shape: tuple[int, int], box: tuple[float, float, float, float], f: float,
          fy: tuple[float, float] = (-1, 1), fx: tuple[float, float] = (-1, 1)) -> np.ndarray:
    """Boolean (H, W) rectangle: the box scaled by f about its centre, then cut to [fy] x [fx] of it."""
    x0, y0, x1, y1 = box
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    m = np.zeros(shape, bool)
    r0, r1 = (max(0, int(cy + s * f * h / 2)) for s in fy)
    c0, c1 = (max(0, int(cx + s * f * w / 2)) for s in fx)
    m[r0:r1, c0:c1] = True
    return m


def pair_stats(a: np.ndarray, b: np.ndarray, box: tuple[float, float, float, float]) -> dict[str, float]:
    """a, b: uint8 (H, W, 3) RGB consecutive frames; box (x0, y0, x1, y1) in their pixels."""
    ga, gb = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32) for x in (a, b))
    blur07 = [cv2.GaussianBlur(g, (0, 0), 0.7) for g in (ga, gb)]
    fine = [g - bl for g, bl in zip((ga, gb), blur07)]
    mid = blur07[0] - cv2.GaussianBlur(ga, (0, 0), 2.0)
    shape = ga.shape
    face = _mask(shape, box, 0.7)
    ring = _mask(shape, box, 1.8) & ~_mask(shape, box, 1.15)
    if ring.sum() < 200:  # face fills the frame: everything outside it
        ring = ~_mask(shape, box, 1.15)
    mouth = _mask(shape, box, 1.0, (0.25, 0.85), (-0.45, 0.45))
    eyes = _mask(shape, box, 1.0, (-0.55, -0.05), (-0.6, 0.6))
    e = lambda x, m: float((x[m] ** 2).mean()) + 1e-3  # noqa: E731

    def corr(m: np.ndarray) -> float:
        u, v = fine[0][m], fine[1][m]
        return float(np.corrcoef(u, v)[0, 1]) if u.size > 50 and u.std() > 0 and v.std() > 0 else 0.0

    diff = np.abs(gb - ga)
    x0, y0, x1, y1 = (int(v) for v in box)
    sl = (slice(max(0, y0), max(0, y1)), slice(max(0, x0), max(0, x1)))
    flow = cv2.calcOpticalFlowFarneback(blur07[0][sl].astype(np.uint8), blur07[1][sl].astype(np.uint8), None,
                                        0.5, 3, 15, 3, 5, 1.2, 0)
    hh, ww = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(ww, dtype=np.float32), np.arange(hh, dtype=np.float32))
    fb = cv2.remap(np.ascontiguousarray(fine[1][sl]), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR)
    inner = _mask((hh, ww), (0, 0, ww, hh), 0.7)
    u, v = fine[0][sl][inner], fb[inner]
    gmc = float(np.corrcoef(u, v)[0, 1]) if u.size > 50 and u.std() > 0 and v.std() > 0 else 0.0
    gf, gr = corr(face), corr(ring) if ring.any() else 0.0
    return {
        "face_ring_fine": float(np.log(e(fine[0], face) / e(fine[0], ring))) if ring.any() else 0.0,
        "face_ring_mid": float(np.log(e(mid, face) / e(mid, ring))) if ring.any() else 0.0,
        "face_fine_mid": float(np.log(e(fine[0], face) / e(mid, face))),
        "mouth_eyes_fine": float(np.log(e(fine[0], mouth) / e(fine[0], eyes))),
        "grain_face": gf,
        "grain_ring": gr,
        "grain_face_minus_ring": gf - gr,
        "motion_face_ring": float(np.log((diff[face].mean() + 0.1) / (diff[ring].mean() + 0.1))) if ring.any() else 0.0,
        "grain_face_mc": gmc,
    }


def camera_params(rng: np.random.Generator) -> dict:
    """A harsher camera than the training's codec damage: always fresh noise and JPEG, often lower res."""
    return {"scale": float(rng.uniform(0.5, 1.0)) if rng.random() < 0.5 else 1.0,
            "noise": float(rng.uniform(2, 8)), "jpeg": int(rng.integers(35, 80))}


def clip_pairs(path: str, pairs: int = 8) -> list[tuple[np.ndarray, np.ndarray, tuple]] | None:
    """Up to `pairs` consecutive-frame pairs (frame t, frame t+1, main face box in t) uint8 RGB at the
    video's resolution, or None (no face). Decoding and detection happen here once per clip."""
    from detector.faces import FaceConfig, find_face_tracks, main_track
    from detector.video import probe, read_frames, sample_indices

    info = probe(path)
    starts = sample_indices(max(1, info.frame_count - 1), pairs)
    want = sorted({i for s in starts for i in (s, s + 1)})
    imgs, got = read_frames(path, want, info)
    pos = {g: k for k, g in enumerate(got)}
    firsts = [s for s in starts if s in pos and s + 1 in pos]
    if not firsts:
        return None
    tracks = find_face_tracks(imgs[[pos[s] for s in firsts]], FaceConfig(use_encodings=False))
    if not tracks:
        return None
    tr = main_track(tracks)
    return [(imgs[pos[firsts[p]]], imgs[pos[firsts[p] + 1]], (bx.x0, bx.y0, bx.x1, bx.y1))
            for p, bx in zip(tr.positions, tr.boxes)]


def pairs_stats(pairs: list[tuple[np.ndarray, np.ndarray, tuple]], damage: np.random.Generator | None = None,
                camera: bool = False) -> np.ndarray:
    """(len(NAMES),) medians of `pair_stats` over a clip's `clip_pairs`.

    damage: apply the training's own codec damage (`families.degrade`: one parameter draw per clip, fresh
    noise every frame) to both frames of each pair first, to ask whether it covers real-world video;
    camera: `camera_params` instead of the training's draw."""
    dp = None
    if damage is not None:
        from detector.training.families import degrade, degrade_params

        if camera:
            dp = camera_params(damage)
        else:
            while not (dp := degrade_params(damage))["noise"] and not dp["jpeg"]:
                pass  # the undamaged draws are the "train" rows already
    rows = []
    for a, b, box in pairs:
        if damage is not None:
            a, b = degrade(a, damage, dp), degrade(b, damage, dp)
        st = pair_stats(a, b, box)
        rows.append([st[k] for k in NAMES])
    return np.median(np.array(rows), axis=0)


def clip_stats(path: str, pairs: int = 8, damage: np.random.Generator | None = None,
               camera: bool = False) -> np.ndarray | None:
    """`pairs_stats` of one clip's `clip_pairs`, or None (no face)."""
    found = clip_pairs(path, pairs)
    return None if found is None else pairs_stats(found, damage, camera)


def cache(devset: Path, data: Path) -> None:
    from research.devset_quick import MANIFEST

    feats, label, family, split, ident = [], [], [], [], []
    for r in csv.DictReader(open(MANIFEST), delimiter="\t"):
        x = clip_stats(str(devset / r["local_file"].removeprefix("clips/")))
        if x is None:
            continue
        feats.append(x)
        label.append(int(r["label"] == "fake"))
        family.append(r["family"])
        split.append("dev")
        ident.append(r["repo"])
    print(f"dev: {len(feats)} clips", flush=True)
    per: dict[str, int] = {}
    for r in csv.DictReader(open(data / "MANIFEST.tsv"), delimiter="\t"):
        per[r["speaker"]] = per.get(r["speaker"], 0) + 1
        if per[r["speaker"]] > 12:  # GRID s1 alone has 201 clips: keep speakers balanced
            continue
        refs = (("train", None, False), ("train_damaged", np.random.default_rng(len(feats)), False),
                ("train_camera", np.random.default_rng(len(feats) + 1), True))
        found = clip_pairs(str(data / r["file"]))  # decoded and detected once for the three references
        if found is None:
            continue
        for name, dmg, camera in refs:
            feats.append(pairs_stats(found, dmg, camera))
            label.append(0)
            family.append("real")
            split.append(name)
            ident.append(r["speaker"])
    print(f"total: {len(feats)} clips", flush=True)
    np.savez(OUT, x=np.array(feats), label=np.array(label), family=np.array(family), split=np.array(split),
             ident=np.array(ident), names=np.array(NAMES))


def score() -> None:
    """Per statistic: its dev-set ROC-AUC as is (< 0.5: fakes lower) and as |z| against the training reals;
    then the one-class score, against the training reals as decoded and after the training's codec damage."""
    from detector.training.train_pack import auc_by_family

    d = np.load(OUT)
    x, y, fam, split, ident = d["x"], d["label"], d["family"], d["split"], d["ident"]
    dev = split == "dev"
    xd, yd, fd = x[dev], y[dev], fam[dev]
    families = sorted(set(fd[yd == 1]))
    for ref in ("train", "train_damaged", "train_camera"):
        tr = split == ref
        print(f"\n== reference: {ref}: {tr.sum()} real clips of {len(set(ident[tr]))} speakers; "
              f"dev {dev.sum()} clips ({(yd == 0).sum()} real)")
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
        print(f"{'statistic':<24}{'ref mean±sd':>16}{'dev real':>10}{'dev fake':>10}{'AUC all':>9}"
              + "".join(f"{f[:12]:>14}" for f in families) + f"{'|z| AUC':>9}")
        for j, k in enumerate(NAMES):
            auc = auc_by_family(yd, xd[:, j], fd)
            za = auc_by_family(yd, np.abs((xd[:, j] - mu[j]) / sd[j]), fd)["all"]
            print(f"{k:<24}{mu[j]:>9.3f}±{sd[j]:<6.3f}{xd[yd == 0, j].mean():>10.3f}{xd[yd == 1, j].mean():>10.3f}"
                  f"{auc['all']:>9.3f}" + "".join(f"{auc[f]:>14.3f}" for f in families) + f"{za:>9.3f}")
        # One-class: Mahalanobis distance from the reference reals (shrunk covariance); nothing else fitted.
        cov = np.cov(((x[tr] - mu) / sd).T)
        inv = np.linalg.inv(0.8 * cov + 0.2 * np.eye(len(cov)))
        def dist(a: np.ndarray, mu=mu, sd=sd, inv=inv) -> np.ndarray:
            z = (a - mu) / sd
            return np.einsum("ni,ij,nj->n", z, inv, z)

        auc = auc_by_family(yd, dist(xd), fd)
        print("one-class Mahalanobis:", " ".join(f"{k} {v:.3f}" for k, v in auc.items()))
        print(f"median distance: reference reals {np.median(dist(x[tr])):.1f}, "
              f"dev reals {np.median(dist(xd[yd == 0])):.1f}, dev fakes {np.median(dist(xd[yd == 1])):.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cmd", choices=["cache", "score"])
    ap.add_argument("--devset", type=Path, default=ROOT / "data" / "devset")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    a = ap.parse_args()
    cache(a.devset, a.data) if a.cmd == "cache" else score()


if __name__ == "__main__":
    main()
