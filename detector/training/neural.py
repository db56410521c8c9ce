"""The neural-generator corpus (issue 38): real generators' fakes and real talking-face clips as training data.

`../shared/data/neural/MANIFEST.tsv` lists 151 clips (118 fakes of ~16 generator methods, 33 real clips) from
public repositories with permissive licences; `restore.py` writes them under `data/neural/` (never
committed). This module reads the manifest, puts every clip through the product's own face path (decode,
detect, track, crop: `prepare.main_face_crops`, each sampled frame with its successor, as `analyze_video`
gives a "next"-pairing model) and defines the folds the recipe is chosen on:

- **leave one generator method out** (`method_group`): a method's fakes are scored by a model that never
  saw that method; methods that are versions of one generator (MuseTalk / MuseTalk 1.5, Wav2Lip / its
  384-px variant, InfiniteTalk's lip-sync and talking-head uses) are one group, so a version does not leak
  its sibling;
- **real clips by repository**: a real clip is scored by a model that never saw its repository (a
  repository's clips share subjects, cameras and encoders), so the real side of every held-out ROC-AUC is
  out-of-fold too;
- `pair:ID` in the manifest's note links a fake to its real input: a pair's real clip is held out with the
  fake's method, never trained on while its fake is scored.

Side-by-side composites carry `crop_x` (the generated panel's x-range as fractions of the width): frames are
cut to it before face detection, or the real driving face enters a fake clip.

    deepfake-forensics neural-pack ../shared/data/neural/MANIFEST.tsv data/neural --out data/neural_pack
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# Generator methods that are versions or uses of one generator: held out together (see the docstring).
_GROUPS = (
    ("musetalk", "MuseTalk"),
    ("wav2lip", "Wav2Lip"),
    ("infinitetalk", "InfiniteTalk"),
    ("latentsync", "LatentSync"),
    ("sadtalker", "SadTalker"),
    ("nerffacespeech", "NeRFFaceSpeech"),
    ("megactor", "MegActor"),
    ("anitalker", "AniTalker"),
    ("hallo", "Hallo"),  # JoyHallo is Hallo fine-tuned: one group
    ("liveportrait", "LivePortrait"),
)


@dataclass(frozen=True)
class NeuralClip:
    """One manifest row: `label` "fake" or "real", `family` (lip-sync, talking-head, nerf, reenactment, real),
    `method` as the manifest states it, `group` the held-out unit (`method_group`; "real" for reals)."""

    path: str  # relative to the restored root
    label: str
    family: str
    method: str
    group: str
    repo: str
    person: str
    licence: str
    pair: str  # "" or the pair id of the note's `pair:ID`
    crop_x: tuple[float, float] | None

    @property
    def y(self) -> int:
        return int(self.label == "fake")


def method_group(method: str) -> str:
    """The held-out unit of a generator method, read from its leading name (what follows in brackets may name
    another project, e.g. 'LatentSync (baseline, as run by InfiniteTalk authors)' is LatentSync): 'MuseTalk
    1.5' -> 'MuseTalk', 'Wav2Lip 384x384 variant' -> 'Wav2Lip', 'JoyHallo' -> 'Hallo'; a viseme library made
    with SadTalker counts as SadTalker. Unknown methods keep their leading name."""
    lead = re.split(r"[(+]", method)[0].strip()
    m = lead.lower().replace("-", "").replace(" ", "")
    for key, name in _GROUPS:
        if key in m:
            return name
    return lead


def read_manifest(path: Path) -> list[NeuralClip]:
    """The manifest's rows (tab-separated, header line) as NeuralClip, in file order."""
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            cx = r.get("crop_x", "").strip()
            crop = tuple(float(v) for v in cx.split(",")) if cx else None
            if crop is not None and not (len(crop) == 2 and 0 <= crop[0] < crop[1] <= 1):
                raise ValueError(f"{path}: crop_x {cx!r} of {r['local_file']} is not 'x0,x1' with 0 <= x0 < x1 <= 1")
            pair = re.search(r"pair:([A-Za-z0-9_-]+)", r.get("note", ""))
            real = r["label"] == "real"
            out.append(NeuralClip(
                path=r["local_file"], label=r["label"], family=r["family"], method=r["method"],
                group="real" if real else method_group(r["method"]), repo=r["repo"], person=r.get("person", ""),
                licence=r.get("licence", ""), pair=pair.group(1) if pair else "", crop_x=crop))
    return out


def restored_path(root: Path, clip: NeuralClip) -> Path:
    """Where restore.py wrote the clip: `root/<label>/<method dir>/<file>` (its local_file's last two parts)."""
    parts = Path(clip.path).parts
    return root.joinpath(*parts[-3:]) if parts[0] == "clips" else root / clip.path


def _cut(frames: np.ndarray, crop_x: tuple[float, float] | None) -> np.ndarray:
    """uint8 (T, H, W, 3) -> the columns of the generated panel (a copy, contiguous)."""
    if crop_x is None:
        return frames
    w = frames.shape[2]
    return np.ascontiguousarray(frames[:, :, int(round(crop_x[0] * w)):int(round(crop_x[1] * w))])


def neural_crops(path: Path, frames: int, crop_x: tuple[float, float] | None = None) -> np.ndarray | None:
    """The main face's crops at `frames` evenly spread frames, each with its successor, as the product reads
    a clip: uint8 (2 * frames, 112, 112, 3) RGB interleaved (frame 0, its successor, frame 1, ...), or None
    if no face is found. crop_x: cut every frame to that x-range first (side-by-side composites)."""
    from detector.training.prepare import main_face_crops
    from detector.video import probe, read_frame_pairs, sample_indices

    info = probe(str(path))
    imgs, _, nxt = read_frame_pairs(str(path), sample_indices(info.frame_count, frames), info)
    return main_face_crops(_cut(imgs, crop_x), frames, _cut(nxt, crop_x))


def folds(clips: list[NeuralClip], n_real_folds: int | None = None) -> list[dict]:
    """Leave-one-method-out rounds. Round k holds out generator group k's fakes, a share of the real clips
    (whole repositories, assigned round-robin in order of size so every round scores against some reals),
    and the real inputs paired with the held-out fakes. Returns [{"group", "test": [i...], "train": [i...]}].

    Every fake is held out in exactly one round; every real clip in at least one (its repository's)."""
    groups = sorted({c.group for c in clips if c.label == "fake"})
    real_repos = sorted({c.repo for c in clips if c.label == "real"},
                        key=lambda r: (-sum(c.repo == r for c in clips if c.label == "real"), r))
    k = n_real_folds or len(groups)
    repo_round = {r: i % k for i, r in enumerate(real_repos)}
    out = []
    for gi, g in enumerate(groups):
        pairs = {c.pair for c in clips if c.group == g and c.pair}
        test = [i for i, c in enumerate(clips)
                if c.group == g or (c.label == "real" and (repo_round[c.repo] == gi % k or (c.pair and c.pair in pairs)))]
        held, held_repos = set(test), {clips[i].repo for i in test}
        # A held-out method's repository may also hold other methods' fakes or reals of the same subjects:
        # nothing from a repository the round scores is trained on.
        train = [i for i, c in enumerate(clips) if i not in held and c.repo not in held_repos]
        out.append({"group": g, "test": test, "train": train})
    return out


def build_neural_pack(manifest: Path, root: Path, out: Path, frames: int = 60, augment: bool = True,
                      seed: int = 0, log=print) -> dict:
    """Every manifest clip through the face path into `out`: crops.npy uint8 (N, 2 * frames, 112, 112, 3)
    interleaved with successors; with `augment`, a second copy of each clip degraded as an upload is (H.264
    round trip at a random CRF, resize, blur or noise; the same draw for a frame and its successor) in
    crops_aug.npy; clips.json: the rows kept and those without a face. No pickles."""
    from detector.errors import InputError
    from detector.training import families as F

    clips = read_manifest(manifest)
    rng = np.random.default_rng(seed)
    kept, skipped, xs, augs = [], [], [], []
    t0 = time.time()
    for c in clips:
        path = restored_path(root, c)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not restored; run `python3 ../shared/data/neural/restore.py "
                                    f"MIRROR_ROOT {root}` after fetching the manifest's repositories")
        try:
            x = neural_crops(path, frames, c.crop_x)
        except InputError as e:
            x = None
            log(f"{c.path}: {e}")
        if x is None:
            skipped.append(c.path)
            continue
        kept.append(asdict(c))
        xs.append(x)
        if augment:
            augs.append(_degraded(x, rng, F))
        log(f"[{len(kept) + len(skipped)}/{len(clips)}] {c.label} {c.group}: {c.path} ({time.time() - t0:.0f} s)")
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "crops.npy", np.stack(xs))
    if augment:
        np.save(out / "crops_aug.npy", np.stack(augs))
    info = {"manifest": str(manifest), "frames": frames, "pairs": "next", "augment": augment, "seed": seed,
            "clips": kept, "no_face": skipped, "seconds": round(time.time() - t0)}
    (out / "clips.json").write_text(json.dumps(info, indent=1))
    return info


def _degraded(x: np.ndarray, rng: np.random.Generator, F) -> np.ndarray:
    """One upload-style degradation of interleaved crops uint8 (2T, S, S, 3): an H.264 round trip of the whole
    sequence, then the same resize / noise level / JPEG quality on every crop (one clip, one upload), the noise
    itself drawn anew for each crop as a sensor's is (a fixed pattern would freeze the grain between a frame and
    its successor, the trace the residual stream reads as a generator's)."""
    y = F.h264(x, **F.h264_params(rng))
    p = F.degrade_params(rng)
    return np.stack([F.degrade(f, rng, p) for f in y])


def load_neural_pack(folder: Path) -> tuple[list[NeuralClip], np.ndarray, np.ndarray | None]:
    """(clips, crops (N, 2T, S, S, 3) uint8 memory-mapped, augmented crops or None) of a neural pack."""
    info = json.loads((folder / "clips.json").read_text())
    clips = [NeuralClip(**{**c, "crop_x": tuple(c["crop_x"]) if c["crop_x"] else None}) for c in info["clips"]]
    aug = folder / "crops_aug.npy"
    return (clips, np.load(folder / "crops.npy", mmap_mode="r"),
            np.load(aug, mmap_mode="r") if aug.is_file() else None)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("neural-pack", help="the neural-generator corpus through the face path (crops + folds)")
    p.add_argument("manifest", type=Path, help="MANIFEST.tsv of the corpus (../shared/data/neural/MANIFEST.tsv)")
    p.add_argument("root", type=Path, help="where restore.py wrote the clips (data/neural)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--frames", type=int, default=60, help="frames per clip, each with its successor (default 60)")
    p.add_argument("--no-augment", action="store_true", help="skip the degraded copy of each clip")
    p.set_defaults(func=_cmd)


def _cmd(a: argparse.Namespace) -> int:
    info = build_neural_pack(a.manifest, a.root, a.out, a.frames, not a.no_augment)
    print(f"{len(info['clips'])} clips kept, {len(info['no_face'])} without a face, {info['seconds']} s -> {a.out}")
    return 0
