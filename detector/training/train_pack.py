"""Train on the real-face pack (thousands of identities) with paired fakes of every family.

The recipe of issue "a default model that holds on real-world clips":
1. Stage 1, frames: every batch holds `B/2` real frames (stills of ~2,100 training identities and frames
   of the training speakers' clips, `still_share` of them stills, so GRID does not dominate) and, for
   each of them, a fresh fake *made from that same frame* (detector/training/families.py: self-blend,
   region blend, swap, re-synthesis, warp). Both halves get the same augmentation and codec damage.
2. Stage 2, clips: the backbone is frozen; the LSTM + head learn on cached features of real clips of the
   training speakers and of pseudo-clips made from training stills (smooth motion, fresh noise per
   frame), each paired with one fake clip of the same footage (families per frame with flicker, and
   warping-based animation of one frame).
Validation: the same construction on held-out identities (stills and speakers); the model is chosen on
it and on the public dev set (never trained on), then calibrated (`deepfake-forensics calibrate`).

    deepfake-forensics train-pack data/pack --run runs/pack1 --budget-min 90 \
        --init weights/resnext50_lstm.grid-sbi-swap_20.safetensors --out runs/pack1/out/NAME.safetensors
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from detector.training import families as F
from detector.training.pack import load_pack
from detector.training.loop import (
    TrainConfig,
    _device,
    _log,
    augment,
    build_for_training,
    cache_features,
    frame_logits,
    plot_curves,
    train_frames,
    train_sequence,
)


@dataclass(frozen=True)
class PackConfig:
    still_share: float = 0.65  # share of real frames drawn from stills (the rest: training speakers' clips)
    # Family weights of the stage-1 fakes (re-synthesis and warps stand in for whole-face generators,
    # which blending alone does not teach: issue 15's probe ranked them below real footage).
    weights: tuple[tuple[str, float], ...] = (("sbi", 0.2), ("region", 0.2), ("swap", 0.15), ("resynth", 0.25),
                                              ("warp", 0.2))
    clip_families: tuple[str, ...] = ("sbi", "region", "swap", "resynth", "warp", "animate")
    pseudo_train: int = 320  # pseudo-clips from training stills for stage 2
    pseudo_val: int = 120
    # Movement of the still pseudo-clips (families.pseudo_clip's `motion`; their paired "animate" fakes get
    # the same). 2.0 brings their frame difference and grain persistence to the dev set's real clips'
    # (research/devset_cues.py --gap); 1.0, the default's, leaves them at GRID's.
    pseudo_motion: float = 1.0
    val_frames: int = 600  # real validation frames (each with one fake) for stage-1 model selection
    # Stage-2 fake clips without per-frame flicker or jitter (families.fake_clip's `coherent`).
    clip_coherent: bool = False
    clip_match: bool | str = True  # stage-2 fake clips: sharpness matched in the face centre, or "regions"
    # Stage-2 reals get a camera's fresh sensor noise (sigma 2-6, new every frame) before their fakes are
    # made, and the re-encode damage of both classes then adds no noise of its own. Why: GRID's decoded
    # frames keep their grain from frame to frame (correlation 0.86 at native resolution, against 0.46 for
    # the dev set's real clips; research/probe_consistency.py), as warping animators' output does, and the
    # default re-encode gave "animate" fakes fresh noise in 40 % of clips. With it, grain that persists is
    # taught as what it is in real-world video: a generator's, not a camera's. Off: the default's stream.
    clip_camera: bool = False
    # Share of stage-2 clip pairs (real + its fake, the same draw) passed through a real H.264 encode and
    # decode (families.h264, CRF 18-40, the face at 112-224 px), after the per-frame damage. Why: the dev set's
    # real clips are H.264, whose P-frames keep a camera's grain from frame to frame where little moves,
    # which the residual stream reads as a generator's frozen texture. 0: off (every default so far).
    clip_codec: float = 0.0
    frame_match: bool | str = True  # stage-1 fake frames: the same choice (families.matched)


def _pool(stills: dict, clips: dict, split: str):
    """Real frames of a split: (stills crops, lms, ids), (clip frames crops, lms, ids)."""
    s = stills["split"] == split
    c = clips["split"] == split
    cc, cl = clips["crops"][c], clips["landmarks"][c]
    n, t = cc.shape[:2]
    return ((stills["crops"][s], stills["landmarks"][s], stills["identity"][s]),
            (cc.reshape(n * t, *cc.shape[2:]), cl.reshape(n * t, 68, 2), np.repeat(clips["identity"][c], t)))


def _draw_real(pool, share: float, rng: np.random.Generator):
    src = pool[0] if (rng.random() < share or not len(pool[1][0])) else pool[1]
    i = int(rng.integers(len(src[0])))
    return src[0][i], src[1][i], src[2][i]


def _draw_other(pool, ident: str, rng: np.random.Generator):
    for _ in range(20):
        src = pool[0] if rng.random() < 0.7 or not len(pool[1][0]) else pool[1]
        i = int(rng.integers(len(src[0])))
        if src[2][i] != ident:
            return src[0][i], src[1][i]
    return None


def _swap_partner(pool, fam: str, ident: str, rng: np.random.Generator):
    """(family, other): a face of another identity for a swap; without one, the swap becomes a self-blend."""
    if fam not in F.SWAPS:
        return fam, None
    other = _draw_other(pool, ident, rng)
    return (fam, other) if other is not None else ("sbi", None)


def _family(pc: PackConfig, rng: np.random.Generator) -> str:
    names, w = zip(*pc.weights)
    return str(rng.choice(names, p=np.asarray(w) / sum(w)))


def _finish(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same augmentation and codec damage for both classes."""
    return F.degrade(augment(img, rng), rng)


def pack_batch(pool, cfg: TrainConfig, pc: PackConfig, rng: np.random.Generator):
    """One stage-1 batch: B/2 real frames and a fresh fake of each of them. uint8 (B, S, S, 3), labels (B,)."""
    half = cfg.frame_batch // 2
    reals, fakes = [], []
    while len(reals) < half:
        img, lms, ident = _draw_real(pool, pc.still_share, rng)
        fam, other = _swap_partner(pool, _family(pc, rng), ident, rng)
        reals.append(img)
        fakes.append(F.fake_frame(fam, img, lms, rng, other, match=pc.frame_match))
    batch = np.stack([_finish(f, rng) for f in reals + fakes])
    return batch, np.r_[np.zeros(half, np.int64), np.ones(half, np.int64)]


# ---------------------------------------------------------------- stage-1 batches in worker processes
# Why: one batch costs ~0.1 s of numpy/OpenCV on one core (fakes, augmentation, codec damage), about what
# a GPU needs for the whole ResNeXt50 step: in one process a lent GPU would wait on the CPU most of the
# time. Workers are spawned, not forked: a child forked after OpenCV's or OpenMP's thread pools have
# started can deadlock on a lock held at the fork (seen here). Each worker gets the pool arrays once
# (~100 MB, in memory, from this process: never a file).
_WORKER: tuple | None = None


def _worker_init(pool, cfg: TrainConfig, pc: PackConfig) -> None:
    global _WORKER
    import cv2

    cv2.setNumThreads(1)  # the parallelism is across workers
    _WORKER = (pool, cfg, pc)


def _worker_batch(seed: int):
    pool, cfg, pc = _WORKER
    return pack_batch(pool, cfg, pc, np.random.default_rng(seed))


class BatchPrefetcher:
    """A `batch_fn(rng)` for `train_frames` whose batches are made by `workers` spawned processes.

    Batch k is `pack_batch(pool, cfg, pc, default_rng(seed_k))` with seed_k the k-th draw from the
    caller's rng, so the batches depend on that rng alone, not on the number of workers; `depth`
    batches are in flight at once. Use as a context manager (the workers end with it).
    """

    def __init__(self, pool, cfg: TrainConfig, pc: PackConfig, workers: int, depth: int | None = None) -> None:
        import multiprocessing as mp
        from collections import deque

        if workers < 1:
            raise ValueError(f"workers must be >= 1, not {workers}")
        self._pool = mp.get_context("spawn").Pool(workers, _worker_init, (pool, cfg, pc))
        self._depth = depth or 2 * workers
        self._queue = deque()

    def __call__(self, rng: np.random.Generator):
        while len(self._queue) < self._depth:
            self._queue.append(self._pool.apply_async(_worker_batch, (int(rng.integers(1 << 62)),)))
        return self._queue.popleft().get()

    def __enter__(self) -> BatchPrefetcher:
        return self

    def __exit__(self, *exc) -> None:
        # Let the batches in flight arrive, then close: terminate() while a worker is still writing a large
        # batch into the result pipe can leave the pool's handler threads waiting forever (seen once in the
        # test suite, stop 25). At most `depth` batches are queued, so this waits a few batches at most.
        for r in self._queue:
            r.wait(timeout=120)
        self._queue.clear()
        self._pool.close()
        self._pool.join()


def val_frames(pool, pc: PackConfig, seed: int = 99):
    """Fixed validation frames: x uint8 (N, 1, S, S, 3), y (N,), family per row ('real' for reals)."""
    rng = np.random.default_rng(seed)
    xs, ys, fams = [], [], []
    names = [n for n, _ in pc.weights]
    for k in range(pc.val_frames):
        img, lms, ident = _draw_real(pool, pc.still_share, rng)
        fam, other = _swap_partner(pool, names[k % len(names)], ident, rng)
        xs += [_finish(img, rng), _finish(F.fake_frame(fam, img, lms, rng, other, match=pc.frame_match), rng)]
        ys += [0, 1]
        fams += ["real", fam]
    return np.stack(xs)[:, None], np.array(ys, np.int64), np.array(fams)


def clip_set(stills: dict, clips: dict, split: str, n_pseudo: int, pc: PackConfig, t: int, seed: int):
    """Stage-2 clips of a split: real clips + pseudo-clips of stills, each with one paired fake clip.

    Returns x uint8 (M, T, S, S, 3), y (M,), family (M,) ('real' for reals), source (M,).
    """
    rng = np.random.default_rng(seed)
    # The codec's draws have their own generator: with clip_codec on, the clips (and their fakes) are those
    # of the same seed without it, so a run with and one without the codec differ only by the codec.
    codec_rng = np.random.default_rng([seed, 264])
    c = np.flatnonzero(clips["split"] == split)
    s = np.flatnonzero(stills["split"] == split)
    reals = [(clips["crops"][i][:t], clips["landmarks"][i][:t], clips["identity"][i], "clip") for i in c]
    for i in rng.choice(s, min(n_pseudo, len(s)), replace=False):
        fr, lm = F.pseudo_clip(stills["crops"][i], stills["landmarks"][i], t, rng, motion=pc.pseudo_motion)
        reals.append((fr, lm, stills["identity"][i], "still"))
    xs, ys, fams, srcs = [], [], [], []
    if pc.clip_camera:
        reals = [(_camera(fr, rng) if src == "clip" else fr, lm, ident, src) for fr, lm, ident, src in reals]
    for k, (fr, lm, ident, src) in enumerate(reals):
        fam = pc.clip_families[k % len(pc.clip_families)]
        other = None
        if fam in F.SWAPS:
            j = int(rng.integers(len(reals)))
            if reals[j][2] == ident:
                fam = "sbi"
            else:
                other = (reals[j][0], reals[j][1])
        motion = pc.pseudo_motion if src == "still" else 1.0
        fake = F.fake_clip(fam, fr, lm, rng, other, match=pc.clip_match, motion=motion, coherent=pc.clip_coherent)
        # Real clips, and fakes whose grain is frozen by design (animate, reenact): the codec damage of a
        # re-encode, both classes. Pseudo-clips renew their noise every frame, and so do their other fakes.
        if src == "clip" or fam in ("animate", "reenact"):
            p = F.degrade_params(rng)
            if pc.clip_camera:  # a re-encode adds no sensor noise: the reals already have a camera's
                p = {**p, "noise": 0.0}
            fr = np.stack([F.degrade(f, rng, p) for f in fr])
            fake = np.stack([F.degrade(f, rng, p) for f in fake])
        else:  # pseudo-clips carry their own per-frame damage; the fake gets the same draw per frame
            p = F.degrade_params(rng)
            fake = np.stack([F.degrade(f, rng, {**p, "noise": max(p["noise"], 1.5)}) for f in fake])
        if pc.clip_codec and codec_rng.random() < pc.clip_codec:
            q = F.h264_params(codec_rng)
            fr, fake = F.h264(fr, **q), F.h264(fake, **q)
        xs += [fr, fake]
        ys += [0, 1]
        fams += ["real", fam]
        srcs += [src, src]
    return np.stack(xs), np.array(ys, np.int64), np.array(fams), np.array(srcs)


def _camera(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (T, S, S, 3) real frames + a camera's sensor noise, one sigma per clip (2-6), fresh every frame."""
    p = {"scale": 1.0, "noise": float(rng.uniform(2, 6)), "jpeg": 0}
    return np.stack([F.degrade(f, rng, p) for f in frames])


def _match_note(match: bool | str) -> str:
    return {True: "in the face centre", "regions": "in the face centre and the periphery separately"}.get(match, "not")


def auc_by_family(y: np.ndarray, p: np.ndarray, fams: np.ndarray) -> dict:
    """ROC-AUC of all rows, and of each family's fakes against every real row (fams: 'real' or a family)."""
    from detector.training.evaluate import roc_auc

    out = {"all": round(roc_auc(y, p), 4)}
    for f in sorted(set(fams) - {"real"}):
        m = (fams == "real") | (fams == f)
        out[f] = round(roc_auc(y[m], p[m]), 4)
    return out


def train_pack(pack: Path, run: Path, cfg: TrainConfig, pc: PackConfig = PackConfig(), budget_min: float = 90.0,
               out: Path | None = None, spec_extra: dict | None = None, workers: int = 0,
               stage1_only: bool = False):
    """Both stages on the pack; returns (model, spec) and writes `out` when given.

    workers: 0 makes stage-1 batches in this process; N >= 1 in N spawned processes (`BatchPrefetcher`:
    for a GPU, which one CPU core cannot keep busy; the batches differ from the in-process draw).
    stage1_only: stage 1 gets the whole budget and `out` is the init's model with the fine-tuned backbone in
    it (its LSTM + head and any residual stream as they were: an intermediate for `train-residual --init`,
    which trains the clip stage on the new features); the frame head goes beside it (`FRAME_HEAD`). This is
    how a lent GPU's short session is spent: stage 1 is the costly part, stage 2 runs on any CPU later.
    """

    from detector.weights import save_weights

    torch.manual_seed(cfg.seed)
    device = _device()
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps({"train": dataclasses.asdict(cfg),
                                                 "pack": dataclasses.asdict(pc)}, indent=2))
    t_start = time.time()
    stills, clips = load_pack(pack)
    t = int(clips["crops"].shape[1])
    train_pool, val_pool = _pool(stills, clips, "train"), _pool(stills, clips, "val")
    batches = BatchPrefetcher(train_pool, cfg, pc, workers) if workers else contextlib.nullcontext(
        lambda rng: pack_batch(train_pool, cfg, pc, rng))
    model, spec, init_note = build_for_training(cfg, t, stills["crops"].shape[1], device)
    if model.residual is not None and not stage1_only:
        raise SystemExit("a two-stream init (residual stream) trains its clip stage with `train-residual`: "
                         "run train-pack with --stage1-only, then train-residual --init on its output")
    xv, yv, fv = val_frames(val_pool, pc)
    # The rest of the budget: stage-2 clips, features, LSTM and saving (stage 1 only: saving alone).
    deadline = t_start + budget_min * 60 * (0.97 if stage1_only else 0.85)
    with batches as batch_fn:
        train_frames(model, batch_fn, (xv, yv), run, cfg, deadline, device)
    best1 = torch.load(run / "stage1_best.pt", map_location=device, weights_only=True)
    model.backbone.load_state_dict(best1["backbone"])
    head = torch.nn.Linear(model.backbone.num_features, 2).to(device)
    head.load_state_dict(best1["head"])
    pf = torch.softmax(frame_logits(model, head, xv.reshape(-1, *xv.shape[2:]), device), -1)[:, 1].numpy()
    frame_auc = auc_by_family(yv, pf, fv)
    _log(run, {"stage": 1, "final_val_frame_auc_per_family": frame_auc})
    if stage1_only:
        return _save_stage1(model, head, spec, run, out, init_note, cfg, pc, frame_auc, t_start, device, workers,
                            spec_extra)
    xtr, ytr, ftr_fam, _ = clip_set(stills, clips, "train", pc.pseudo_train, pc, t, cfg.seed + 1)
    xva, yva, fva_fam, sva = clip_set(stills, clips, "val", pc.pseudo_val, pc, t, cfg.seed + 2)
    ftr, fva = cache_features(model, xtr, device), cache_features(model, xva, device)
    seq = train_sequence(model, ((ftr, ytr), (fva, yva)), run, cfg, device)
    model.eval()
    with torch.no_grad():
        pv = torch.softmax(model.forward_head(fva.to(device)), -1)[:, 1].cpu().numpy()
    from detector.training.evaluate import roc_auc

    clip_auc = auc_by_family(yva, pv, fva_fam)
    for src in ("clip", "still"):
        m = sva == src
        if len(set(yva[m])) == 2:
            clip_auc[f"source_{src}"] = round(roc_auc(yva[m], pv[m]), 4)
    _log(run, {"stage": 2, "val_clip_auc_per_family": clip_auc})
    plot_curves(run)
    wall = time.time() - t_start
    info = json.loads((pack / "pack.json").read_text()) if (pack / "pack.json").is_file() else {}
    training = {
        "recipe": init_note + f"stage 1: frame-level (Adam, cosine lr {cfg.frame_lr}, batch {cfg.frame_batch} = "
                  f"{cfg.frame_batch // 2} real frames ({pc.still_share:.0%} stills) + a fresh fake of each, "
                  f"families {dict(pc.weights)}, sharpness matched {_match_note(pc.frame_match)}; "
                  f"flip/rotate/zoom/colour/resolution/sharpen/JPEG/noise on both classes); stage 2: frozen backbone, "
                  f"LSTM+head on cached features of {len(ytr)} clips (real "
                  f"speaker clips + {pc.pseudo_train} still pseudo-clips, one paired fake clip each of "
                  f"{list(pc.clip_families)}), early stopping on held-out identities",
        "config": dataclasses.asdict(cfg), "pack_config": dataclasses.asdict(pc), "pack": info,
        "val_frame_auc_per_family": frame_auc, "val_clip_auc_per_family": clip_auc, "stage2": seq,
        "train_clips_stage2": int(len(ytr)), "val_clips_stage2": int(len(yva)),
        "wall_time_s": round(wall, 1), "device": device, "batch_workers": workers}
    spec = dataclasses.replace(spec, trained=True, training=training, **(spec_extra or {}))
    model = model.to(memory_format=torch.contiguous_format).cpu().eval()
    if out is not None:
        spec = save_weights(model, spec, out)
    return model, spec


FRAME_HEAD = ".frame_head.safetensors"  # stage-1-only runs: the frame head, beside the weights' stem


def _save_stage1(model, head, spec, run: Path, out: Path | None, init_note: str, cfg: TrainConfig, pc: PackConfig,
                 frame_auc: dict, t_start: float, device: str, workers: int, spec_extra: dict | None):
    """Write a stage-1-only run: the model (init's clip stage, new backbone) and its frame head."""
    from safetensors.torch import save_file

    from detector.weights import save_weights

    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r.get("stage") == 1 and "step" in r]
    training = {
        "recipe": init_note + f"stage 1 only (an intermediate, not a detector: the LSTM + head are the init's, "
                  f"trained on other features; train-residual --init trains them on these): frame-level "
                  f"(Adam, cosine lr {cfg.frame_lr}, batch {cfg.frame_batch} = {cfg.frame_batch // 2} real "
                  f"frames ({pc.still_share:.0%} stills) + a fresh fake of each, families {dict(pc.weights)}, "
                  f"sharpness matched {_match_note(pc.frame_match)})",
        "config": dataclasses.asdict(cfg), "pack_config": dataclasses.asdict(pc),
        "val_frame_auc_per_family": frame_auc, "steps": steps[-1]["step"] if steps else 0,
        # The median over logged intervals: the first holds the workers' start and cuDNN's autotuning.
        "s_per_step": round(float(np.median([r["s_per_step"] for r in steps])), 4) if steps else None,
        "wall_time_s": round(time.time() - t_start, 1), "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu", "batch_workers": workers}
    lineage = {}
    if cfg.init:  # the init's data and licences, not the registry's "untrained" card
        from detector.weights import read_spec

        src = read_spec(cfg.init)
        lineage = {"trained_on": f"{src.trained_on} Then its backbone alone fine-tuned at frame level (stage 1) "
                                 f"on the same training identities' stills and clip frames, each with a fresh "
                                 f"fake of {', '.join(n for n, _ in pc.weights)}.",
                   "licence": src.licence, "attribution": src.attribution}
    spec = dataclasses.replace(spec, trained=True, training=training, **{**lineage, **(spec_extra or {})})
    model = model.to(memory_format=torch.contiguous_format).cpu().eval()
    if out is not None:
        spec = save_weights(model, spec, out)
        save_file({k: v.contiguous().cpu() for k, v in head.state_dict().items()},
                  str(out.with_name(out.name.removesuffix(".safetensors") + FRAME_HEAD)))
    return model, spec


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-pack", help="train on the real-face pack with paired fakes of every family")
    p.add_argument("pack", type=Path, help="folder written by `deepfake-forensics pack`")
    p.add_argument("--run", type=Path, required=True, help="checkpoints, log.jsonl, curves.png (resumable)")
    p.add_argument("--out", type=Path, help="write weights here (.safetensors + .json sidecar)")
    p.add_argument("--budget-min", type=float, default=90.0)
    p.add_argument("--frame-steps", type=int, default=20000)
    p.add_argument("--init", help="warm-start from these weights (same architecture)")
    p.add_argument("--init-backbone", help="backbone state dict (.safetensors), e.g. from `distill`; "
                                           "with --frame-steps 0 it stays as is and only stage 2 trains")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--eval-every", type=int, default=150)
    p.add_argument("--backbone", help="override the registry's backbone (e.g. resnet18 for quick tests)")
    p.add_argument("--trained-on", default="", help="text for the model card")
    p.add_argument("--frame-batch", type=int, default=TrainConfig.frame_batch,
                   help="stage-1 batch (half real, half their fakes); a GPU is better used at 128")
    p.add_argument("--workers", type=int, default=0,
                   help="make stage-1 batches in N worker processes (a GPU needs ~8; 0: in this process)")
    p.add_argument("--match", default="centre", choices=["centre", "regions"],
                   help="sharpness matching of every fake (frames and clips): face centre, or centre and "
                        "periphery separately (families.match_sharpness_regions)")
    p.add_argument("--coherent", action="store_true",
                   help="stage-2 fake clips without per-frame flicker or jitter (PackConfig.clip_coherent)")
    p.add_argument("--stage1-only", action="store_true",
                   help="fine-tune the backbone only and write the init's model with it (for train-residual "
                        "--init; a lent GPU's use); the whole budget goes to stage 1")
    p.set_defaults(func=_cmd)


def _cmd(a: argparse.Namespace) -> int:
    if a.frame_batch < 2 or a.frame_batch % 2:
        raise SystemExit(f"--frame-batch must be an even number >= 2 (half real, half fake), not {a.frame_batch}")
    cfg = TrainConfig(frame_steps=a.frame_steps, init=a.init, init_backbone=a.init_backbone, frame_lr=a.lr,
                      eval_every=a.eval_every, backbone=a.backbone, online_fakes=False, frame_batch=a.frame_batch)
    extra = {"trained_on": a.trained_on} if a.trained_on else {}
    if a.out:
        extra["name"] = a.out.name.removesuffix(".safetensors")
    match = F.MATCH_BY_NAME[a.match]
    pc = PackConfig(clip_match=match, frame_match=match, clip_coherent=a.coherent)
    _, spec = train_pack(a.pack, a.run, cfg, pc, a.budget_min, a.out, extra, a.workers, a.stage1_only)
    key = "val_frame_auc_per_family" if a.stage1_only else "val_clip_auc_per_family"
    print(f"trained {spec.name}: {json.dumps(spec.training[key])}")
    return 0
