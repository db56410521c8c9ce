"""A compact training pack of real faces: stills of thousands of people plus crops of real talking clips.

The shipped default learned what its 9 training identities look like (issue "a default model that holds
on real-world clips"); this pack gives the trainer thousands of identities. Everything in it is real;
fakes are made from it on the fly (detector/training/families.py), paired with their own real frame.

- Stills (`../shared/data/faces`: 224x224 crops centred on the face at 2.2x its HOG box) are re-cropped
  to the analysis pipeline's geometry (detector.faces: the box plus a 30% margin on every side, i.e.
  1.6x the box, resized to 112x112), so a still looks to the model like a crop of a video frame.
- Clips (`../shared/data/{grid,cremad}` MANIFEST.tsv): `frames` evenly spread frames of each clip, cropped
  by the product's own face path (detector.training.prepare.clip_crops), up to `max_clips` per speaker.
- `--next`: each clip frame is followed by its successor in the video, cropped with the same box
  (interleaved, 2 * `frames` crops a clip; pack.json says `"pairs": "next"`), for a residual stream that
  pairs "next" frames (detector/residual.py; train-residual reads it).
- 68-point landmarks for every crop (detector.training.online_fakes.crop_landmarks).
- Splits by identity only: stills by a hash of the identity key (80/10/10), clips by speaker lists
  (the previous default's validation and test speakers stay held out).

Output `<out>/stills.npz` and `<out>/clips.npz` (uint8 RGB crops, float32 landmarks, str identity,
source and split arrays), a few hundred MB uncompressed; `<out>/pack.json` describes it.

    deepfake-forensics pack ../shared/data --out data/pack
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import time
from pathlib import Path

import cv2
import numpy as np

STILL_SCALE = 2.2  # the stills' crop side / face box (faces/README.md)
MARGIN = 0.3  # detector.faces.FaceConfig().margin: crop side = box * (1 + 2 * MARGIN)
SIZE = 112
VAL_SPEAKERS = ("s5", "s16", "s20", "s30", "s33")
TEST_SPEAKERS = ("s4", "s25", "s27", "s31", "s34")


def identity_split(identity: str, val_pct: int = 10, test_pct: int = 10) -> str:
    """'train' / 'val' / 'test' from a stable hash of the identity key (never the file)."""
    h = int(hashlib.sha256(identity.encode()).hexdigest()[:8], 16) % 100
    return "test" if h < test_pct else "val" if h < test_pct + val_pct else "train"


def still_to_crop(still: np.ndarray, size: int = SIZE, margin: float = MARGIN) -> np.ndarray:
    """A 2.2x-box face still uint8 (S, S, 3) RGB -> the pipeline's crop geometry, uint8 (size, size, 3) RGB."""
    s = still.shape[0]
    side = s / STILL_SCALE * (1 + 2 * margin)
    a = (s - side) / 2
    m = np.array([[size / side, 0, -a * size / side], [0, size / side, -a * size / side]], np.float32)
    return cv2.warpAffine(still, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def load_stills(root: Path) -> dict[str, np.ndarray]:
    """All stills of faces/MANIFEST.tsv as crops + metadata (no landmarks yet)."""
    rows = list(csv.DictReader(open(root / "MANIFEST.tsv"), delimiter="\t"))
    crops, keep = [], []
    for r in rows:
        img = cv2.imread(str(root / r["file"]), cv2.IMREAD_COLOR)
        if img is None:
            continue
        crops.append(still_to_crop(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)))
        keep.append(r)
    return {"crops": np.stack(crops), "identity": np.array([r["identity"] for r in keep]),
            "source": np.array([r["source"] for r in keep]),
            "pad_frac": np.array([float(r.get("pad_frac") or 0) for r in keep], np.float32),
            "split": np.array([identity_split(r["identity"]) for r in keep]),
            "path": np.array([r["file"] for r in keep])}


def _clip_job(a):
    from detector.training.prepare import clip_crops

    path, frames, partners = a
    try:
        return clip_crops(path, frames, partners)
    except Exception:  # noqa: BLE001 - a clip that does not decode is left out and counted
        return None


def load_clips(data: Path, frames: int = 20, max_clips: int = 12, workers: int = 1,
               seed: int = 0, partners: bool = False) -> dict[str, np.ndarray]:
    """Real clips of ../shared/data (GRID + CREMA-D) as face-crop clips uint8 (N, T, 112, 112, 3) RGB
    (T = 2 * frames with partners: see `clip_crops`)."""
    rows = list(csv.DictReader(open(data / "MANIFEST.tsv"), delimiter="\t"))
    rng = np.random.default_rng(seed)
    by_spk: dict[str, list[dict]] = {}
    for r in rows:
        by_spk.setdefault(r["speaker"], []).append(r)
    chosen = []
    for _spk, rs in sorted(by_spk.items()):
        idx = rng.permutation(len(rs))[:max_clips]
        chosen += [rs[i] for i in sorted(idx)]
    jobs = [(str(data / r["file"]), frames, partners) for r in chosen]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as ex:
            results = list(ex.map(_clip_job, jobs))
    else:
        results = [_clip_job(j) for j in jobs]
    ok = [(r, c) for r, c in zip(chosen, results) if c is not None]
    spk = np.array([r["speaker"] for r, _ in ok])
    split = np.array(["val" if s in VAL_SPEAKERS else "test" if s in TEST_SPEAKERS else "train" for s in spk])
    return {"crops": np.stack([c for _, c in ok]), "identity": spk, "split": split,
            "source": np.array(["cremad" if s.startswith("cremad") else "grid" for s in spk]),
            "path": np.array([r["file"] for r, _ in ok]), "dropped": np.array(len(chosen) - len(ok))}


def build_pack(data: Path, out: Path, frames: int = 20, max_clips: int = 12, workers: int = 1,
               partners: bool = False) -> dict:
    from detector.training.online_fakes import crop_landmarks

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    info: dict = {"data": str(data), "frames": frames, "max_clips_per_speaker": max_clips, "size": SIZE,
                  "margin": MARGIN, "pairs": "next" if partners else "sampled"}
    if not (out / "stills.npz").is_file():
        st = load_stills(data / "faces")
        st["landmarks"] = crop_landmarks(st["crops"])
        np.savez(out / "stills.npz", **st)
    st = np.load(out / "stills.npz")
    info["stills"] = {s: int((st["split"] == s).sum()) for s in ("train", "val", "test")}
    info["still_identities"] = {s: int(len(set(st["identity"][st["split"] == s]))) for s in ("train", "val", "test")}
    if not (out / "clips.npz").is_file():
        cl = load_clips(data, frames, max_clips, workers, partners=partners)
        n, t = cl["crops"].shape[:2]
        cl["landmarks"] = crop_landmarks(cl["crops"].reshape(n * t, SIZE, SIZE, 3)).reshape(n, t, 68, 2)
        np.savez(out / "clips.npz", **cl)
    cl = np.load(out / "clips.npz")
    info["clips"] = {s: int((cl["split"] == s).sum()) for s in ("train", "val", "test")}
    info["clip_speakers"] = {s: sorted(set(cl["identity"][cl["split"] == s].tolist()))
                             for s in ("train", "val", "test")}
    info["seconds"] = round(time.time() - t0, 1)
    (out / "pack.json").write_text(json.dumps(info, indent=2))
    return info


def load_pack(folder: Path) -> tuple[dict, dict]:
    """(stills, clips) as dicts of numpy arrays (see the module docstring), from a full pack or a carry pack."""
    from detector.errors import InputError

    folder = Path(folder)
    if (folder / CARRY_FILE).is_file():
        return load_carry(folder / CARRY_FILE)
    if not (folder / "stills.npz").is_file() or not (folder / "clips.npz").is_file():
        raise InputError(f"{folder}: no training pack; run `deepfake-forensics pack ../shared/data --out {folder}`")
    return dict(np.load(folder / "stills.npz")), dict(np.load(folder / "clips.npz"))


# ---------------------------------------------------------------- the carry pack (for a lent GPU machine)
# Only the checkout travels to the device machine, at most 64 MiB with the 51 MB weights file, and
# ../shared does not: the 200 MB pack must shrink to ~12 MB. Every crop is stored as one WebP image
# (~2.3 KB at quality 85 against 37.6 KB raw) and landmarks as float16 (0.06 px at 112 px). The lossy
# step touches real crops only, before any fake is made from them, so both classes carry it alike, as
# they carry their sources' own codecs. Plain arrays only: no pickles (np.load(allow_pickle=False)).
CARRY_FILE = "carry.npz"
DESCRIPTORS = "descriptors.npz"  # `distill`'s teacher descriptors (train + val rows), carried along when present


def _encode(crops: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, S, S, 3) RGB -> (concatenated WebP bytes uint8 (B,), offsets int64 (N + 1,))."""
    blobs = [cv2.imencode(".webp", cv2.cvtColor(c, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, quality])[1]
             for c in crops]
    offsets = np.zeros(len(blobs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    return (np.concatenate([b.ravel() for b in blobs]) if blobs else np.zeros(0, np.uint8)), offsets


def _decode(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The inverse of `_encode`: uint8 (N, S, S, 3) RGB."""
    out = [cv2.cvtColor(cv2.imdecode(data[a:b], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
           for a, b in zip(offsets[:-1], offsets[1:])]
    return np.stack(out) if out else np.zeros((0, SIZE, SIZE, 3), np.uint8)


def compact(pack: Path, out: Path, quality: int = 85, splits: tuple[str, ...] = ("train", "val")) -> dict:
    """Write `<out>/carry.npz` from the pack in `pack`, keeping only the rows of `splits`; returns a summary.

    The held-out test split is left out by default: a training run never reads it, and it is 10 % less to carry.
    The teacher descriptors of `distill` (descriptors.npz: train and val rows, in the pack's order, which
    the carry keeps) are copied along when the pack has them: the GPU image has no dlib to compute them.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1-100 (WebP), not {quality}")
    arrays: dict[str, np.ndarray] = {}
    kept: dict[str, int] = {}
    for name, d in zip(("stills", "clips"), load_pack(pack)):
        keep = np.isin(d["split"], splits)
        kept[name] = int(keep.sum())
        for k, v in d.items():
            if v.ndim == 0:  # e.g. clips' `dropped` count
                arrays[f"{name}.{k}"] = v
            elif k == "crops":
                crops = v[keep]
                arrays[f"{name}.crops_shape"] = np.array(crops.shape, np.int64)
                arrays[f"{name}.crops_webp"], arrays[f"{name}.crops_offsets"] = _encode(
                    crops.reshape(-1, *v.shape[-3:]), quality)
            elif k == "landmarks":
                arrays[f"{name}.{k}"] = v[keep].astype(np.float16)
            else:
                arrays[f"{name}.{k}"] = v[keep]
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / CARRY_FILE, **arrays)
    size = (out / CARRY_FILE).stat().st_size
    info = json.loads((pack / "pack.json").read_text()) if (pack / "pack.json").is_file() else {}
    info["carry"] = {"quality": quality, "splits": list(splits), "bytes": size}
    (out / "pack.json").write_text(json.dumps(info, indent=2))  # train-pack records it in the sidecar
    if (pack / DESCRIPTORS).is_file() and set(splits) >= {"train", "val"}:
        import shutil

        shutil.copyfile(pack / DESCRIPTORS, out / DESCRIPTORS)
    return {"file": str(out / CARRY_FILE), "bytes": size, "quality": quality, "splits": list(splits), **kept}


def load_carry(path: Path) -> tuple[dict, dict]:
    """A carry pack as the same (stills, clips) dicts as `load_pack` gives (crops decoded, landmarks float32)."""
    z = np.load(path, allow_pickle=False)
    packs: dict[str, dict] = {"stills": {}, "clips": {}}
    for key in z.files:
        name, k = key.split(".", 1)
        packs[name][k] = z[key]
    for d in packs.values():
        shape = tuple(d.pop("crops_shape"))
        d["crops"] = _decode(d.pop("crops_webp"), d.pop("crops_offsets")).reshape(shape)
        d["landmarks"] = d["landmarks"].astype(np.float32)
    return packs["stills"], packs["clips"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pack", help="build the real-face training pack (stills + clip crops + landmarks)")
    p.add_argument("data", type=Path, help="folder with faces/, grid/, cremad/ and MANIFEST.tsv (../shared/data)")
    p.add_argument("--out", type=Path, default=Path("data/pack"))
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--max-clips", type=int, default=12, help="clips per speaker (GRID s1 alone has 201)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--next", action="store_true",
                   help="each clip frame followed by its successor in the video (for a stream pairing next frames)")
    p.set_defaults(func=lambda a: print(json.dumps(build_pack(a.data, a.out, a.frames, a.max_clips, a.workers,
                                                              a.next), indent=2)) or 0)
    c = sub.add_parser("pack-compact", help="shrink a training pack into one carry file for a lent GPU machine")
    c.add_argument("pack", type=Path, help="a pack folder built by `pack` (data/pack)")
    c.add_argument("--out", type=Path, default=Path("data/carry"))
    c.add_argument("--quality", type=int, default=85, help="WebP quality of every crop (1-100)")
    c.add_argument("--splits", default="train,val",
                   help="comma-separated splits to keep (training never reads the test split)")
    c.set_defaults(func=lambda a: print(json.dumps(compact(a.pack, a.out, a.quality, tuple(a.splits.split(","))),
                                                   indent=2)) or 0)
