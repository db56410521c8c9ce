"""Videos -> cached face-crop clips for training and evaluation.

Layouts understood (`discover`):
- `real/` + `fake/` folders (ours; `deepfake-forensics synth` writes it, with manifest.jsonl giving method
  and identity); identity = the folder right above the file.
- FaceForensics++: `original_sequences/<src>/<q>/videos/000.mp4`, `manipulated_sequences/<method>/<q>/
  videos/000_003.mp4`; identity = the target id (first number).
- DFDC: `metadata.json` beside the videos ({file: {label: REAL|FAKE, original}}); identity = the original.
- Celeb-DF: `List_of_testing_videos.txt` ("1 path" = real, "0 path" = fake); identity = `idN` in the name.

Output: `<out>/manifest.jsonl` (one row per clip: file, label, method, identity, split, crops) and
`<out>/crops/<k>.npy` uint8 (T, 112, 112, 3) RGB. Splits are by identity: no identity in two splits.

    deepfake-forensics prepare data/synth --out data/prepared --frames 20 \
        --test-ids s4,s31,s34,s25,s27 --val-ids s5,s30,s33,s16,s20
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from detector.errors import InputError
from detector.video import VIDEO_EXTENSIONS


@dataclass
class Item:
    file: str
    label: int  # 1 = fake
    method: str
    identity: str
    split: str = ""
    crops: str = ""


def discover(root: Path) -> list[Item]:
    """Find the videos under `root` and their labels, methods and identities (layouts above)."""
    root = Path(root)
    if (root / "manifest.jsonl").is_file() and (root / "real").is_dir():
        rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines() if line]
        return [Item(str(root / r["path"]), int(r["label"]), r["method"], r["identity"]) for r in rows]
    if (root / "original_sequences").is_dir():
        items = []
        for f in sorted((root / "original_sequences").rglob("*.mp4")):
            items.append(Item(str(f), 0, "real", f.stem.split("_")[0]))
        for f in sorted((root / "manipulated_sequences").rglob("*.mp4")):
            method = f.relative_to(root / "manipulated_sequences").parts[0]
            items.append(Item(str(f), 1, method, f.stem.split("_")[0]))
        return items
    meta = next(iter(sorted(root.rglob("metadata.json"))), None)
    if meta is not None:
        items = []
        for name, m in json.loads(meta.read_text()).items():
            fake = m.get("label") == "FAKE"
            items.append(Item(str(meta.parent / name), int(fake), "dfdc" if fake else "real",
                              Path(m.get("original") or name).stem))
        return items
    listing = root / "List_of_testing_videos.txt"
    if listing.is_file():
        items = []
        for line in listing.read_text().split("\n"):
            if line.strip():
                flag, rel = line.split(maxsplit=1)
                ident = re.search(r"id\d+", rel)
                items.append(Item(str(root / rel), int(flag == "0"), "celebdf" if flag == "0" else "real",
                                  ident.group(0) if ident else Path(rel).stem))
        return items
    if (root / "real").is_dir() and (root / "fake").is_dir():
        items = []
        for label, sub in ((0, "real"), (1, "fake")):
            for f in sorted((root / sub).rglob("*")):
                if f.suffix.lower() in VIDEO_EXTENSIONS:
                    rel = f.relative_to(root / sub).parts
                    method = rel[0] if label and len(rel) > 2 else sub
                    items.append(Item(str(f), label, method, f.parent.name))
        return items
    raise InputError(f"{root}: no known layout (real/+fake/, FaceForensics++, DFDC metadata.json, Celeb-DF list)")


def assign_splits(items: list[Item], val_ids: set[str], test_ids: set[str], val_frac: float = 0.15,
                  test_frac: float = 0.15, seed: int = 0) -> None:
    """Set `item.split` by identity. Explicit id lists win; other identities are drawn by fraction."""
    ids = sorted({it.identity for it in items} - val_ids - test_ids)
    if not val_ids and not test_ids:
        rng = np.random.default_rng(seed)
        ids = [ids[i] for i in rng.permutation(len(ids))]
        n_test, n_val = round(len(ids) * test_frac), round(len(ids) * val_frac)
        test_ids, val_ids = set(ids[:n_test]), set(ids[n_test:n_test + n_val])
    for it in items:
        it.split = "test" if it.identity in test_ids else "val" if it.identity in val_ids else "train"


def main_face(imgs: np.ndarray):
    """The main face track (longest, then largest; no identity encodings) of uint8 (T, H, W, 3) RGB frames,
    or None if no face is found."""
    from detector.faces import FaceConfig, find_face_tracks, main_track

    tracks = find_face_tracks(imgs, FaceConfig(use_encodings=False))
    return main_track(tracks) if tracks else None


def main_face_crops(imgs: np.ndarray, frames: int, partners: np.ndarray | None = None) -> np.ndarray | None:
    """Crops of `main_face`: uint8 (frames, 112, 112, 3) RGB (a shorter track repeats its last crop), or None.

    partners: uint8 (T, H, W, 3), each frame's successor in the video; given, each one is cropped with its
    frame's box and follows it: uint8 (2 * frames, 112, 112, 3) = frame 0, its successor, frame 1, ...
    """
    from detector.faces import FaceConfig, track_crops

    tr = main_face(imgs)
    if tr is None:
        return None
    out = [track_crops(x, tr, FaceConfig(use_encodings=False)) for x in ([imgs] if partners is None
                                                                         else [imgs, partners])]
    if len(out[0]) < frames:
        out = [np.concatenate([c, np.repeat(c[-1:], frames - len(c), 0)]) for c in out]
    return np.stack(out, 1).reshape(-1, *out[0].shape[1:])


def clip_crops(path: str, frames: int, partners: bool = False) -> np.ndarray | None:
    """Crops of the main face (longest track, then largest) at `frames` evenly spread frames.

    Returns uint8 (frames, 112, 112, 3) RGB (a shorter track repeats its last crop), or None if no face.
    partners: also each frame's successor in the video, cropped with the same box (what the pipeline gives
    a model whose stream pairs "next" frames), interleaved: uint8 (2 * frames, 112, 112, 3) = frame 0,
    its successor, frame 1, its successor, ...
    """
    from detector.video import probe, read_frame_pairs, read_frames, sample_indices

    info = probe(path)
    if not partners:
        imgs, _ = read_frames(path, sample_indices(info.frame_count, frames), info)
        return main_face_crops(imgs, frames)
    imgs, _, nxt = read_frame_pairs(path, sample_indices(info.frame_count, frames), info)
    return main_face_crops(imgs, frames, nxt)


def _work(a):
    k, path, frames, out = a
    try:
        crops = clip_crops(path, frames)
    except InputError:
        return k, None
    if crops is None:
        return k, None
    np.save(out / "crops" / f"{k}.npy", crops)
    return k, f"crops/{k}.npy"


def prepare(root: Path, out: Path, frames: int = 20, val_ids=(), test_ids=(), workers: int = 2) -> list[Item]:
    from concurrent.futures import ProcessPoolExecutor

    items = discover(root)
    assign_splits(items, set(val_ids), set(test_ids))
    (out / "crops").mkdir(parents=True, exist_ok=True)
    jobs = [(k, it.file, frames, out) for k, it in enumerate(items)]
    with ProcessPoolExecutor(workers) as ex:
        for n, (k, rel) in enumerate(ex.map(_work, jobs, chunksize=4), 1):
            items[k].crops = rel or ""
            if n % 50 == 0 or n == len(jobs):
                print(f"prepare {n}/{len(jobs)}", flush=True)
    kept = [it for it in items if it.crops]
    (out / "manifest.jsonl").write_text("".join(json.dumps(asdict(it)) + "\n" for it in kept))
    (out / "prepare.json").write_text(json.dumps({"root": str(root), "frames": frames, "n": len(kept),
                                                  "dropped_no_face": len(items) - len(kept)}, indent=2))
    return kept


def load_prepared(folder: Path, split: str | None = None) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """All clips of a split: crops uint8 (N, T, 112, 112, 3) RGB, labels int64 (N,), manifest rows."""
    rows = [json.loads(x) for x in (Path(folder) / "manifest.jsonl").read_text().splitlines() if x]
    rows = [r for r in rows if split is None or r["split"] == split]
    if not rows:
        raise InputError(f"{folder}: no prepared clips for split {split!r}; run `deepfake-forensics prepare`")
    x = np.stack([np.load(Path(folder) / r["crops"]) for r in rows])
    return x, np.array([r["label"] for r in rows], np.int64), rows


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="cache face-crop clips from a folder of real/fake videos")
    p.add_argument("root", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--val-ids", default="", help="comma-separated identities for validation")
    p.add_argument("--test-ids", default="", help="comma-separated identities for test")
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=_cmd_prepare)


def _cmd_prepare(a: argparse.Namespace) -> int:
    kept = prepare(a.root, a.out, a.frames, _ids(a.val_ids), _ids(a.test_ids), a.workers)
    print(f"prepared {len(kept)} clips")
    return 0


def _ids(s: str) -> list[str]:
    return [x for x in s.split(",") if x]
