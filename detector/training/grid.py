"""The small GRID recipe: train the detector end to end on clips prepared by `prepare.py` (GRID speakers,
self-blended and swapped fakes from `synth.py`, fresh ones made during training by `online_fakes.py`).

Not the recipe of the shipped default (that is `pack` -> `train-pack` -> `train-residual`, docs/training.md):
it is the one that runs in minutes from the committed fixture clips, so the tests exercise the whole shared
loop (detector/training/loop.py) with it, and it stays a quick way to try a change end to end.

    deepfake-forensics train data/prepared --run runs/grid --budget-min 40
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from detector.training.loop import (
    TrainConfig,
    _device,
    augment,
    build_for_training,
    cache_features,
    plot_curves,
    train_frames,
    train_sequence,
)
from detector.training.online_fakes import OnlineFakes
from detector.training.prepare import load_prepared


def frame_batch(x: np.ndarray, y: np.ndarray, cfg: TrainConfig, rng: np.random.Generator,
                online: OnlineFakes | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One balanced stage-1 batch: augmented frames uint8 (B, S, S, 3) RGB and labels int64 (B,), 1 = fake.

    x: uint8 (N, T, S, S, 3) RGB clips with labels y (N,). Half the batch is random frames of real clips.
    With `online` (an OnlineFakes over x[y == 0], same order), the first `cfg.online_sbi` fakes are
    self-blends of the first real frames of this very batch and the next `cfg.online_swap` are swaps onto
    the following ones; prepared fakes fill the rest.
    """
    t = x.shape[1]
    real, fake = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    half = cfg.frame_batch // 2
    rc, rt = rng.choice(len(real), half), rng.integers(t, size=half)
    frames = [x[real[c], k] for c, k in zip(rc, rt)]
    fakes: list[np.ndarray] = []
    if online is not None:
        n_sbi = min(cfg.online_sbi, half)
        fakes += [online.sbi_frame(rc[i], rt[i], rng) for i in range(n_sbi)]
        for i in range(n_sbi, min(half, n_sbi + cfg.online_swap)):
            f = online.swap_frame(rc[i], rt[i], rng)
            if f is not None:
                fakes.append(f)
    while len(fakes) < half:
        if not len(fake):
            raise ValueError("no fake clips to train on: prepare some, or enable online fakes")
        fakes.append(x[rng.choice(fake), rng.integers(t)])
    batch = np.stack([augment(f, rng) for f in frames + fakes])
    return batch, np.r_[np.zeros(half, np.int64), np.ones(half, np.int64)]


def online_fakes_for(x: np.ndarray, y: np.ndarray, rows: list[dict], run: Path) -> OnlineFakes:
    """OnlineFakes over the real clips of x (uint8 (N, T, S, S, 3)); landmarks cached in `run`."""
    from detector.training.online_fakes import crop_landmarks

    real = np.flatnonzero(y == 0)
    crops = x[real]
    cache = run / "landmarks_train_real.npy"
    lms = np.load(cache) if cache.is_file() else None
    if lms is None or lms.shape[:2] != crops.shape[:2]:
        t0 = time.time()
        lms = crop_landmarks(crops.reshape(-1, *crops.shape[2:])).reshape(*crops.shape[:2], 68, 2)
        np.save(cache, lms)
        print(f"landmarks of {crops.shape[0] * crops.shape[1]} real crops in {time.time() - t0:.0f} s", flush=True)
    return OnlineFakes(crops, lms, [rows[i]["identity"] for i in real])


def online_clips(online: OnlineFakes, cfg: TrainConfig) -> np.ndarray:
    """Stage-2 extra fakes: per real clip `seq_online_sbi` SBI and `seq_online_swap` swap clips.

    Returns uint8 (M, T, S, S, 3) RGB, deterministic for cfg.seed.
    """
    rng = np.random.default_rng(cfg.seed + 7)
    out = []
    for c in range(len(online.crops)):
        out += [online.sbi_clip(c, rng) for _ in range(cfg.seq_online_sbi)]
        out += [f for f in (online.swap_clip(c, rng) for _ in range(cfg.seq_online_swap)) if f is not None]
    return np.stack(out) if out else np.zeros((0, *online.crops.shape[1:]), np.uint8)


def _load_splits(prepared: Path, splits: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    parts = [load_prepared(prepared, s) for s in splits]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            [r for p in parts for r in p[2]])


def train(prepared: Path, run: Path, cfg: TrainConfig = TrainConfig(), budget_min: float = 60.0,
          out: Path | None = None, spec_extra: dict | None = None, train_splits: tuple[str, ...] = ("train",),
          val_split: str | None = "val"):
    """Both stages; returns (model, spec). Writes `out` (.safetensors + sidecar) when given.

    With `val_split=None` nothing is held out for model selection: stage 1 keeps its last (annealed)
    backbone and stage 2 runs `cfg.seq_epochs` epochs. That is for a final fit on train + validation
    identities with a recipe already chosen on validation; the test split then stays the only judge.
    """
    from detector.weights import save_weights

    torch.manual_seed(cfg.seed)
    device = _device()
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    t_start = time.time()
    xtr, ytr, rows = _load_splits(prepared, train_splits)
    xva, yva = load_prepared(prepared, val_split)[:2] if val_split else (None, None)
    seq_len = xtr.shape[1]
    model, spec, init_note = build_for_training(cfg, seq_len, xtr.shape[2], device)
    # Keep ~15% of the budget for stage 2 and saving (20% with online clips, whose features cost more).
    deadline = t_start + budget_min * 60 * (0.80 if cfg.online_fakes else 0.85)
    online = online_fakes_for(xtr, ytr, rows, run) if cfg.online_fakes else None
    train_frames(model, lambda rng: frame_batch(xtr, ytr, cfg, rng, online), (xva, yva), run, cfg, deadline, device)
    best1 = torch.load(run / "stage1_best.pt", map_location=device, weights_only=True)
    model.backbone.load_state_dict(best1["backbone"])
    ftr = cache_features(model, xtr, device)
    fva = cache_features(model, xva, device) if xva is not None else None
    n_online = 0
    if online is not None:
        extra = online_clips(online, cfg)
        n_online = len(extra)
        if n_online:
            ftr = torch.cat([ftr, cache_features(model, extra, device)])
            ytr = np.r_[ytr, np.ones(n_online, np.int64)]
    seq = train_sequence(model, ((ftr, ytr), (fva, yva)), run, cfg, device)
    plot_curves(run)
    wall = time.time() - t_start
    online_txt = (f"; per batch {cfg.online_sbi} fresh self-blends paired with real frames of the same batch and "
                  f"{cfg.online_swap} fresh crop-level face swaps" if cfg.online_fakes else "")
    seq_txt = (f" + {n_online} online fake clips ({cfg.seq_online_sbi} SBI, {cfg.seq_online_swap} swap per real "
               "clip), class-weighted loss" if n_online else "")
    training = {"recipe": init_note + "stage 1: frame-level backbone training (Adam, one-cycle lr "
                          f"{cfg.frame_lr}, batch {cfg.frame_batch}, augmentation flip/rotate/shift/zoom/colour/"
                          f"resolution/sharpen/JPEG{online_txt}); stage 2: frozen backbone, LSTM+head on cached "
                          f"features{seq_txt} (Adam {cfg.seq_lr}, early stopping patience {cfg.patience} on "
                          "validation loss)",
                "config": dataclasses.asdict(cfg), "train_clips": int(len(ytr) - n_online),
                "train_splits": list(train_splits), "val_clips": int(len(yva)) if yva is not None else 0,
                "stage2_online_fake_clips": n_online, "wall_time_s": round(wall, 1), "stage2": seq, "device": device}
    spec = dataclasses.replace(spec, trained=True, training=training, **(spec_extra or {}))
    model = model.to(memory_format=torch.contiguous_format).cpu().eval()
    if out is not None:
        spec = save_weights(model, spec, out)
    return model, spec


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the detector on prepared clips (two stages, resumable)")
    p.add_argument("prepared", type=Path, help="folder written by `deepfake-forensics prepare`")
    p.add_argument("--run", type=Path, required=True, help="folder for checkpoints, logs and curves")
    p.add_argument("--out", type=Path, help="write weights here (.safetensors + .json sidecar)")
    p.add_argument("--budget-min", type=float, default=60.0, help="wall-clock budget (stage 1 stops at 85%%)")
    p.add_argument("--frame-steps", type=int, default=TrainConfig.frame_steps)
    p.add_argument("--model", default="resnext50_lstm")
    p.add_argument("--init", help="warm-start from these weights (same architecture, same training identities)")
    p.add_argument("--lr", type=float, default=TrainConfig.frame_lr, help="stage-1 peak learning rate")
    p.add_argument("--eval-every", type=int, default=TrainConfig.eval_every, help="stage-1 steps between validations")
    p.add_argument("--train-splits", default="train", help="comma-separated splits to train on (e.g. train,val)")
    p.add_argument("--no-val", action="store_true",
                   help="hold nothing out: last stage-1 backbone, fixed --seq-epochs (final fit, recipe fixed)")
    p.add_argument("--seq-epochs", type=int, default=TrainConfig.seq_epochs)
    p.add_argument("--no-online-fakes", action="store_true", help="train on the prepared fakes only")
    p.add_argument("--trained-on", default="", help="text for the model card")
    p.set_defaults(func=_cmd_train)


def _cmd_train(a: argparse.Namespace) -> int:
    cfg = TrainConfig(model=a.model, frame_steps=a.frame_steps, init=a.init, frame_lr=a.lr, eval_every=a.eval_every,
                      online_fakes=not a.no_online_fakes, seq_epochs=a.seq_epochs)
    extra = {"trained_on": a.trained_on} if a.trained_on else {}
    if a.out:  # the model's public name is its file's stem, so reports name the exact version
        extra["name"] = a.out.name.removesuffix(".safetensors")
    splits = tuple(x for x in a.train_splits.split(",") if x)
    if not a.no_val and "val" in splits:
        from detector.errors import InputError

        raise InputError("--train-splits includes val, which is also the selection split: add --no-val "
                         "(final fit with a fixed recipe) or train on train only")
    _, spec = train(a.prepared, a.run, cfg, a.budget_min, a.out, extra, splits, None if a.no_val else "val")
    print(f"trained {spec.name}: {json.dumps(spec.training['stage2'])}")
    return 0
