"""Which simple pixel statistics separate the dev set's fakes from its reals, per family (for choosing a recipe).

Not a detector and never fitted: each statistic is computed by a fixed formula on the cached face crops
of `devset_quick.py cache` (the product's face path, 20 frames, 112 px) and its ROC-AUC is printed as is
(AUC < 0.5 means fakes score lower). It tells where evidence exists at the model's input size and which
way it points, so that a training family can be made to teach it:
- `lapvar`: log Laplacian variance of the crop (sharpness);
- `grain_corr`: correlation of the high-pass residual (grey - Gaussian blur sigma 1) of the face centre
  between consecutive frames: grain that moves with the face instead of renewing (warping animators);
- `temporal_diff`: log mean absolute difference between consecutive frames;
- `mouth_vs_eyes_hf`: log ratio of high-pass energy in the mouth box to the eye box (a re-synthesised
  mouth is smoother than the rest of the face);
- `centre_vs_border_hf`: log ratio of high-pass energy in the face centre to the top/bottom border rows
  (a pasted face whose noise differs from its surroundings);
- `edge_vs_ring_detail`: log ratio of the RMS Laplacian in the face's outer part (0.45-0.65 half-sides from
  the crop's centre) to that in the ring outside the face (0.7-0.95): a face pasted with a feathered mask
  from a smoother render has a soft edge (families `softswap`, stop 33);
- `chroma_detail_in_out`: the same ratio for the Lab a channel, inner face (< 0.4) over the ring.

    python research/devset_cues.py        # needs data/devset_crops.npz (devset_quick.py cache)
    python research/devset_cues.py --synthetic data/pack   # the same on the training families' clips
    python research/devset_cues.py --native data/devset    # full-resolution frames, not 112-px crops
    python research/devset_cues.py --gap data/pack         # dev reals against the training reals
    python research/devset_cues.py --gap data/pack --cache data/devset_crops_w3_0.15s.npz  # same spacing
    python research/devset_cues.py --clips data/val_all     # any evaluate-style folder, product face path

`--synthetic` prints the same table for the stage-2 clips of held-out validation identities
(train_pack.clip_set: real clips and still pseudo-clips, one paired fake clip of every family): a
family whose statistic points the other way from the dev set's fakes teaches a cue that fails there.

`--native` asks what the 112-px crop throws away: on 6 evenly spread frames of each dev clip, at the
video's own resolution, around the main face track's box (`native_cues`):
- `fine_over_mid_face`: high-pass energy of the finest octave (grey - blur sigma 0.7) over that of a
  coarser one (grey - blur sigma 2) inside the face: low when the face was rendered at a lower resolution
  and up-sampled into the frame (lip-sync and swap generators work at 96-256 px);
- `fine_over_mid_ring`: the same in a ring around the face (hair, neck, background);
- `face_vs_ring_fine`: log ratio of the face's finest-octave energy to the ring's;
- `face_px`: width of the face box in pixels.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector.cues import radial_distance  # noqa: E402

CACHE = ROOT / "data" / "devset_crops.npz"


def _highpass(g: np.ndarray) -> np.ndarray:
    return g - cv2.GaussianBlur(g, (0, 0), 1.0)


def _rings(side: int) -> dict[str, np.ndarray]:
    """Radial masks of a square crop with the face centred (distance from the centre in half-sides)."""
    r = radial_distance(side)
    return {"inner": r < 0.4, "edge": (r > 0.45) & (r < 0.65), "ring": (r > 0.7) & (r < 0.95)}


def _detail_ratio(planes: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Median over frames of log(RMS Laplacian in mask a / in mask b); planes float32 (T, S, S)."""
    laps = [cv2.Laplacian(p, cv2.CV_32F) for p in planes]
    rms = lambda x, m: np.sqrt((x[m] ** 2).mean()) + 1e-3  # noqa: E731
    return float(np.median([np.log(rms(x, a) / rms(x, b)) for x in laps]))


def cues(clip: np.ndarray) -> dict[str, float]:
    """clip: uint8 (T, 112, 112, 3) RGB face crops -> one value per statistic."""
    g = clip.astype(np.float32).mean(-1)
    m = _rings(clip.shape[1])
    chroma = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2LAB)[..., 1] for f in clip]).astype(np.float32)
    h = np.stack([_highpass(f) for f in g])
    centre = h[:, 20:92, 20:92].reshape(len(h), -1)
    corr = [np.corrcoef(centre[t], centre[t + 1])[0, 1] for t in range(len(h) - 1)]
    energy = lambda a: float((a ** 2).mean())  # noqa: E731
    border = np.concatenate([h[:, :15].ravel(), h[:, -15:].ravel()])
    return {
        "lapvar": float(np.log(np.mean([cv2.Laplacian(f, cv2.CV_32F).var() for f in g]))),
        "grain_corr": float(np.mean(corr)),
        "temporal_diff": float(np.log(np.abs(np.diff(g, axis=0)).mean() + 1e-3)),
        "mouth_vs_eyes_hf": float(np.log(energy(h[:, 70:95, 35:77]) / energy(h[:, 35:55, 30:82]))),
        "centre_vs_border_hf": float(np.log(energy(h[:, 30:82, 30:82]) / energy(border))),
        "edge_vs_ring_detail": _detail_ratio(g, m["edge"], m["ring"]),
        "chroma_detail_in_out": _detail_ratio(chroma, m["inner"], m["ring"]),
    }


def native_cues(frame: np.ndarray, box: tuple[float, float, float, float]) -> dict[str, float]:
    """frame: uint8 (H, W, 3) RGB at the video's resolution; box: (x0, y0, x1, y1) face box in its pixels."""
    g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    fine = (g - cv2.GaussianBlur(g, (0, 0), 0.7)) ** 2
    mid = (g - cv2.GaussianBlur(g, (0, 0), 2.0)) ** 2
    x0, y0, x1, y1 = box
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0

    def inside(f: float) -> np.ndarray:
        m = np.zeros(g.shape, bool)
        r0, r1 = (max(0, int(cy + s * f * h / 2)) for s in (-1, 1))
        c0, c1 = (max(0, int(cx + s * f * w / 2)) for s in (-1, 1))
        m[r0:r1, c0:c1] = True
        return m

    face, ring = inside(0.7), inside(1.8) & ~inside(1.15)
    ring = ring if ring.any() else ~inside(1.15)
    return {"fine_over_mid_face": float(fine[face].mean() / (mid[face].mean() + 1e-6)),
            "fine_over_mid_ring": float(fine[ring].mean() / (mid[ring].mean() + 1e-6)),
            "face_vs_ring_fine": float(np.log((fine[face].mean() + 1e-3) / (fine[ring].mean() + 1e-3))),
            "face_px": float(w)}


def _native(devset: Path, frames: int = 6) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """native_cues per dev clip (median over `frames` frames of its main face track), labels, families."""
    import csv

    from research.devset_quick import MANIFEST

    from detector.faces import FaceConfig, find_face_tracks, main_track
    from detector.video import probe, read_frames, sample_indices

    rows, y, fam = [], [], []
    for r in csv.DictReader(open(MANIFEST), delimiter="\t"):
        path = str(devset / r["local_file"].removeprefix("clips/"))
        info = probe(path)
        imgs, _ = read_frames(path, sample_indices(info.frame_count, frames), info)
        tracks = find_face_tracks(imgs, FaceConfig(use_encodings=False))
        if not tracks:
            continue
        tr = main_track(tracks)
        per = [native_cues(imgs[i], (b.x0, b.y0, b.x1, b.y1)) for i, b in zip(tr.positions, tr.boxes)]
        rows.append({k: float(np.median([p[k] for p in per])) for k in per[0]})
        y.append(int(r["label"] == "fake"))
        fam.append(r["family"])
    return rows, np.array(y), np.array(fam)


def _clips(folder: Path, frames: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops of every clip in an evaluate-style folder (real/..., fake/<family>/...) through the product's face
    path (`prepare.clip_crops`: `frames` spread frames, main track, 112 px): (N, T, 112, 112, 3), labels (N,),
    families (N,). Clips without a face are left out."""
    from detector.training.prepare import clip_crops
    from detector.video import VIDEO_EXTENSIONS

    xs, y, fam = [], [], []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS):
        label, *rest = path.relative_to(folder).parts
        c = clip_crops(str(path), frames)
        if c is None:
            continue
        xs.append(c)
        y.append(int(label == "fake"))
        fam.append(rest[0] if label == "fake" else "real")
    return np.stack(xs), np.array(y), np.array(fam)


def _synthetic(pack: Path, match: bool | str = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from detector.training.pack import load_pack
    from detector.training.train_pack import PackConfig, clip_set

    stills, clips = load_pack(pack)
    t = int(clips["crops"].shape[1])
    x, y, fam, _ = clip_set(stills, clips, "val", 120, PackConfig(clip_match=match), t, seed=12)
    return x, y, fam


def gap(pack: Path, cache: Path = CACHE) -> None:
    """Each statistic's mean on the pack's held-out real clips (validation identities, the families' reals)
    against the dev set's real and fake clips, and each clip's summed |z| (z against those training reals):
    whether the training reals cover real-world real video at all. A window cache (`devset_quick.py cache
    --windows K`, frames 0.15 s apart as in the training clips) is read through its middle window."""
    xs, ys, _ = _synthetic(pack)
    rows = [cues(c) for c in xs[ys == 0]]
    names, train = list(rows[0]), np.array([list(r.values()) for r in rows])
    d = np.load(cache)
    crops = d["crops"][:, d["crops"].shape[1] // 2] if d["crops"].ndim == 6 else d["crops"]
    dev = np.array([list(cues(c).values()) for c in crops])
    y, fam = d["label"], d["family"]
    mu, sd = train.mean(0), train.std(0)
    z = lambda a: np.abs((a - mu) / sd).sum(1)  # noqa: E731
    fakes = sorted(set(fam[y == 1]))
    print(f"{'statistic':<22}{'training reals':>16}{'dev reals':>12}" + "".join(f"{f:>20}" for f in fakes))
    for j, k in enumerate(names):
        print(f"{k:<22}{mu[j]:>9.3f} ±{sd[j]:<5.3f}{dev[y == 0, j].mean():>12.3f}"
              + "".join(f"{dev[fam == f, j].mean():>20.3f}" for f in fakes))
    print(f"median summed |z|: held-out training reals {np.median(z(train)):.1f}, "
          f"dev reals {np.median(z(dev[y == 0])):.1f}, dev fakes {np.median(z(dev[y == 1])):.1f}")


def main() -> None:
    import argparse

    from detector.training.families import MATCH_BY_NAME

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", type=Path, help="a training pack: measure its families' clips instead")
    ap.add_argument("--match", default="centre", choices=["centre", "regions", "none"],
                    help="with --synthetic: how the fake clips are matched in sharpness")
    ap.add_argument("--clips", type=Path, help="an evaluate-style clip folder (real/..., fake/<family>/...)")
    ap.add_argument("--native", type=Path, help="the restored dev set (data/devset): measure full-resolution frames")
    ap.add_argument("--gap", type=Path, metavar="PACK",
                    help="how far the dev set's real clips lie from the training pack's held-out real clips")
    ap.add_argument("--cache", type=Path, default=CACHE, help="with --gap: the dev-set crop cache to read")
    a = ap.parse_args()
    if a.gap:
        return gap(a.gap, a.cache)
    rows = None
    if a.native:
        rows, y, fam = _native(a.native)
    elif a.clips:
        crops, y, fam = _clips(a.clips)
    elif a.synthetic:
        crops, y, fam = _synthetic(a.synthetic, MATCH_BY_NAME[a.match])
    elif CACHE.is_file():
        d = np.load(CACHE)
        crops, y, fam = d["crops"], d["label"], d["family"]
    else:
        sys.exit(f"{CACHE} not found: run `python research/devset_quick.py cache` first (needs data/devset)")
    from detector.training.train_pack import auc_by_family

    rows = rows or [cues(c) for c in crops]
    real = y == 0
    families = sorted(set(fam[~real]))
    print(f"{len(y)} clips ({real.sum()} real); ROC-AUC of each statistic, fakes vs every real clip")
    print(f"{'statistic':<22}{'all':>7}" + "".join(f"{f:>20}" for f in families))
    for k in rows[0]:
        auc = auc_by_family(y, np.array([r[k] for r in rows]), fam)
        print(f"{k:<22}{auc['all']:>7.3f}" + "".join(f"{auc[f]:>20.3f}" for f in families))


if __name__ == "__main__":
    main()
