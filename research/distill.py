"""Stage 0: pre-train the frame backbone on face identity, by distillation from dlib's face-recognition network.

Why: no ImageNet or face weights can be downloaded here, so every backbone starts from random weights
and learns only what our synthetic fakes teach. The one network in this environment trained on real faces
at scale is dlib's ResNet face descriptor (`face-recognition-models`, 128-D per 150x150 face chip).
Identity features matter for real-world fakes over time: dlib descriptors of portrait-animated clips
barely change from frame to frame, where real video's do (`research/probe_embedding.py --clips`).
The LSTM can only use that if the backbone's features carry identity, so the backbone first learns to
predict the descriptor of each real training crop (the student sees it with the training augmentation
and codec damage; the teacher saw it clean), then trains on fakes as usual (`train-pack --init-backbone`).

Teacher descriptors are computed once per pack (`descriptors.npz` beside `pack.json`: plain arrays, no
pickles) with dlib, which the GPU image lacks; they travel inside the carry pack.

    python -m research.distill data/pack --run runs/distill --budget-min 30     # resumable
    deepfake-forensics train-pack data/pack --run runs/pack5 --init-backbone runs/distill/backbone.safetensors
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from detector.training.pack import DESCRIPTORS, load_pack


@dataclass(frozen=True)
class DistillConfig:
    batch: int = 32
    lr: float = 1e-3  # from scratch, cosine to 2 % of it over the budget
    weight_decay: float = 1e-4
    steps: int = 100_000  # upper bound; the time budget usually stops first
    eval_every: int = 100
    clip_stride: int = 2  # every 2nd frame of the speaker clips (neighbours are near-duplicates)
    seed: int = 0


def descriptors(x: np.ndarray, batch: int = 64) -> np.ndarray:
    """uint8 (N, S, S, 3) RGB face crops -> float32 (N, 128) dlib descriptors of each crop resized to 150 px.

    The crop (the product's framing: face box + 30 % margin) stands in for dlib's aligned chip (landmark
    alignment + 25 % padding): the same for every image, and the student only ever sees such crops."""
    from detector.errors import MissingDependencyError

    try:
        import dlib
        import face_recognition_models as frm
    except ImportError as e:  # the GPU image: compute descriptors here, carry them there
        raise MissingDependencyError(
            f"teacher descriptors need dlib and face-recognition-models ({e}); compute them where those are "
            f"installed (`python -m research.distill PACK --descriptors-only`) and carry {DESCRIPTORS}") from None
    net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    out = []
    for i in range(0, len(x), batch):
        chips = [np.ascontiguousarray(cv2.resize(c, (150, 150), interpolation=cv2.INTER_CUBIC)) for c in x[i:i + batch]]
        out.append(np.asarray(net.compute_face_descriptor(chips), np.float32))
    return np.concatenate(out) if out else np.zeros((0, 128), np.float32)


def descriptors_parallel(x: np.ndarray, workers: int = 2) -> np.ndarray:
    """`descriptors` in `workers` spawned processes (dlib uses one thread a call)."""
    import multiprocessing as mp

    if workers <= 1:
        return descriptors(x)
    with mp.get_context("spawn").Pool(workers) as pool:
        return np.concatenate(pool.map(descriptors, np.array_split(x, workers * 4)))


def real_crops(arrays: tuple[dict, dict], split: str, clip_stride: int) -> tuple[np.ndarray, np.ndarray]:
    """The split's real crops from `load_pack`'s (stills, clips), uint8 (N, S, S, 3) RGB (stills, then every
    `clip_stride`-th clip frame), and their identities (N,)."""
    stills, clips = arrays
    s, c = stills["split"] == split, clips["split"] == split
    cc = clips["crops"][c][:, ::clip_stride]
    ids = np.r_[stills["identity"][s], np.repeat(clips["identity"][c], cc.shape[1])]
    return np.concatenate([stills["crops"][s], cc.reshape(-1, *cc.shape[2:])]), ids


def teacher_targets(pack: Path, cfg: DistillConfig, workers: int = 2,
                    arrays: tuple[dict, dict] | None = None) -> dict[str, np.ndarray]:
    """{train, val}: float32 (N, 128) descriptors of `real_crops`, cached in PACK/descriptors.npz.

    arrays: the pack as `load_pack` gives it, when the caller has it already (read only on a cache miss)."""
    path = pack / DESCRIPTORS
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            if int(z["clip_stride"]) == cfg.clip_stride:
                return {k: z[k] for k in ("train", "val")}
    arrays = arrays or load_pack(pack)
    out = {split: descriptors_parallel(real_crops(arrays, split, cfg.clip_stride)[0], workers)
           for split in ("train", "val")}
    np.savez(path, clip_stride=np.int64(cfg.clip_stride), **out)
    return out


class Student(nn.Module):
    """Backbone + Linear(C, 128): uint8 (B, 3, S, S) RGB -> (B, 128) predicted descriptor (trained against
    descriptors x `_SCALE`)."""

    def __init__(self, backbone_name: str | None = None) -> None:
        super().__init__()
        from detector.model import build_model, spec_for

        spec = spec_for("resnext50_lstm", **({"backbone": backbone_name} if backbone_name else {}))
        model = build_model(spec)
        self.model = model  # frame_features normalises exactly as at inference
        self.proj = nn.Linear(model.backbone.num_features, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.model.frame_features(x))


_SCALE = 10.0  # descriptors have norm ~0.6 and components ~0.05: x10 puts the MSE at a sane scale


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(nn.functional.cosine_similarity(a.float(), b.float(), dim=1).mean())


def distill(pack: Path, run: Path, cfg: DistillConfig = DistillConfig(), budget_min: float = 30.0,
            backbone_name: str | None = None, workers: int = 2) -> dict:
    """Train `Student` to predict the teacher's descriptors; resumable from run/distill.pt. Writes
    run/backbone.safetensors (the backbone's state dict, fp32) and run/backbone.json; returns the summary."""
    from safetensors.torch import save_file

    from detector.training.families import degrade
    from detector.training.loop import _autocast, _device, _log, _to_tensor, augment, cosine_lr

    run.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    device = _device()
    arrays = load_pack(pack)
    targets = teacher_targets(pack, cfg, workers, arrays)
    x_train, ids_train = real_crops(arrays, "train", cfg.clip_stride)
    x_val, _ = real_crops(arrays, "val", cfg.clip_stride)
    y_train = torch.from_numpy(targets["train"]) * _SCALE
    y_val = torch.from_numpy(targets["val"]) * _SCALE
    # Validation: 400 held-out identities' crops, clean (the teacher's view), fixed.
    vi = np.random.default_rng(99).choice(len(x_val), min(400, len(x_val)), replace=False)
    # R^2 against predicting the training mean: raw cosine is ~0.93 for any face (descriptors share a large
    # common component), so it says little; R^2 > 0 means the student predicts unseen people's identity.
    mean_mse = float(nn.functional.mse_loss(y_train.mean(0).expand(len(vi), -1), y_val[vi]))
    student = Student(backbone_name).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ckpt = run / "distill.pt"
    step, elapsed, best = 0, 0.0, -math.inf
    if ckpt.is_file():
        s = torch.load(ckpt, map_location=device, weights_only=True)
        student.load_state_dict(s["student"])
        opt.load_state_dict(s["opt"])
        step, elapsed, best = s["step"], s["elapsed"], s["best"]
    started = time.time() - elapsed
    budget = budget_min * 60

    def lr_at() -> float:  # over whichever runs out first, steps or the time budget
        return cosine_lr(cfg.lr, min(1.0, max(step / cfg.steps, (time.time() - started) / budget)))

    @torch.no_grad()
    def validate() -> tuple[float, float]:
        student.eval()
        preds = []
        for i in range(0, len(vi), 64):
            with _autocast(device):
                preds.append(student(_to_tensor(x_val[vi[i:i + 64]], device)).float().cpu())
        p = torch.cat(preds)
        student.train()
        return float(nn.functional.mse_loss(p, y_val[vi])), _cosine(p, y_val[vi])

    rng = np.random.default_rng(cfg.seed + step)
    t0, losses = time.time(), []
    while step < cfg.steps and time.time() - started < budget:
        idx = rng.choice(len(x_train), cfg.batch, replace=False)
        frames = np.stack([degrade(augment(x_train[i], rng), rng) for i in idx])
        for g in opt.param_groups:
            g["lr"] = lr_at()
        with _autocast(device):
            pred = student(_to_tensor(frames, device))
        loss = nn.functional.mse_loss(pred.float(), y_train[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        losses.append(loss.item())
        if step % cfg.eval_every == 0 or step >= cfg.steps or time.time() - started >= budget:
            vl, cos = validate()
            r2 = 1 - vl / mean_mse
            _log(run, {"stage": 0, "step": step, "train_loss": float(np.mean(losses)), "val_loss": vl,
                       "val_r2": r2, "val_cosine": cos, "lr": opt.param_groups[0]["lr"],
                       "s_per_step": (time.time() - t0) / max(len(losses), 1)})
            if r2 > best:
                best = r2
                state = student.model.backbone.state_dict()
                save_file({k: v.detach().float().cpu().contiguous() for k, v in state.items()},
                          str(run / "backbone.safetensors"))
            torch.save({"student": student.state_dict(), "opt": opt.state_dict(), "step": step,
                        "elapsed": time.time() - started, "best": best}, ckpt)
            t0, losses = time.time(), []
    summary = {"teacher": "dlib_face_recognition_resnet_model_v1 (face-recognition-models 0.3.0)",
               "config": asdict(cfg), "backbone": backbone_name or "registry default", "steps": step,
               "best_val_r2": round(best, 4), "train_crops": int(len(x_train)),
               "train_identities": int(len(set(ids_train.tolist()))), "wall_time_s": round(time.time() - started, 1),
               "device": device}
    (run / "backbone.json").write_text(json.dumps(summary, indent=2))
    return summary


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="stage 0: pre-train the frame backbone on face identity (dlib teacher)")
    p.add_argument("pack", type=Path, help="folder written by `deepfake-forensics pack` (or pack-compact)")
    p.add_argument("--run", type=Path, help="checkpoint, log.jsonl and backbone.safetensors (resumable)")
    p.add_argument("--budget-min", type=float, default=30.0)
    p.add_argument("--backbone", help="override the registry's backbone (e.g. resnet18 for quick tests)")
    p.add_argument("--workers", type=int, default=2, help="processes computing the teacher's descriptors")
    p.add_argument("--descriptors-only", action="store_true",
                   help=f"only compute PACK/{DESCRIPTORS} (then carry the pack to a machine without dlib)")
    p.set_defaults(func=_cmd)


def _cmd(a: argparse.Namespace) -> int:
    cfg = DistillConfig()
    if a.descriptors_only:
        t = teacher_targets(a.pack, cfg, a.workers)
        print(f"{a.pack / DESCRIPTORS}: train {t['train'].shape}, val {t['val'].shape}")
        return 0
    if a.run is None:
        raise SystemExit("--run is required (where the checkpoint and backbone.safetensors go)")
    print(json.dumps(distill(a.pack, a.run, cfg, a.budget_min, a.backbone, a.workers)))
    return 0


def main(argv: list[str] | None = None) -> int:
    from research import run_command

    return run_command(add_parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
