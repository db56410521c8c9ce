"""The loop every recipe shares: config, augmentation, the two training stages, checkpoints, logs, curves.

Two stages, because there are no ImageNet weights here and the CPU is slow:
1. frame-level warm-up (`train_frames`): the backbone and a temporary linear head learn real-vs-fake on
   single frames (every frame of a clip carries the clip's label); channels_last + bf16 autocast on CPUs with
   native bf16 (~2x faster), CUDA when present. Best backbone by validation frame ROC-AUC.
2. sequence stage (`train_sequence`): the backbone is frozen, features of every clip are cached (no
   augmentation, as at inference), and the LSTM + head are trained on them (Adam, cross-entropy, early
   stopping on validation loss, best checkpoint kept).

Both stages checkpoint to `<run>/` and resume from there, log to `<run>/log.jsonl` and draw
`<run>/curves.png`. The recipes that call this loop: `train_pack.py` (stage 1 of the shipped default, on the
families corpus), `train_residual.py` (its residual stream and head) and `grid.py` (the small GRID recipe).
"""


from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from detector.model import build_model, spec_for

# ---- config: the knobs worth touching, with advice -------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    model: str = "resnext50_lstm"  # registry name (detector/model.py)
    backbone: str | None = None  # None: the registry's; "resnet18" for quick experiments and tests
    lstm_hidden: int = 256  # 256 keeps the fp16 file < 64 MB (2048 would add 67 MB of LSTM alone)
    frame_batch: int = 32  # stage 1 frames per step
    frame_lr: float = 1e-3  # from scratch: 1e-3 with cosine decay; fine-tuning pretrained: 1e-4
    frame_steps: int = 3000  # upper bound; --budget-min usually stops first
    weight_decay: float = 1e-4  # RLNet: L2 1e-4
    seq_batch: int = 16
    seq_lr: float = 1e-3
    seq_epochs: int = 60
    patience: int = 8  # early stopping on validation loss (ReLSTM: 5, RLNet: 3; cheap here, so 8)
    eval_every: int = 100  # stage 1 steps between validations
    seed: int = 0
    # Warm start: backbone (and LSTM + head) from earlier weights of the same architecture, e.g. the shipped
    # default. Only ever from weights trained on the same training identities (no val/test leakage).
    init: str | None = None
    # Backbone only (a state dict in .safetensors, e.g. `distill`'s identity pre-training); LSTM + head fresh.
    init_backbone: str | None = None
    # Fresh fakes from the real training crops (detector/training/online_fakes.py). Per stage-1 batch of 32: 16 real
    # frames, self-blends of the first `online_sbi` of those same frames (paired, as in SBI: identity is
    # then no cue), `online_swap` swaps onto the next ones, the rest of the fakes from the prepared set.
    online_fakes: bool = True
    online_sbi: int = 8
    online_swap: int = 4
    seq_online_sbi: int = 2  # stage 2: extra SBI clips per real training clip (features cached once)
    seq_online_swap: int = 1  # stage 2: extra swap clips per real training clip


# ---- augmentation (uint8 RGB crops in, out) ---------------------------------------------------------


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flip, small rotation/shift/zoom, brightness/contrast, JPEG re-compression. uint8 (H, W, 3) RGB."""
    h, w = img.shape[:2]
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.7:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-8, 8), rng.uniform(0.92, 1.08))
        m[:, 2] += rng.uniform(-0.05, 0.05, 2) * w
        img = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.25:  # face resolution varies (GRID _hq clips, zoom): down- and up-sample
        f = rng.uniform(0.45, 0.9)
        small = cv2.resize(np.ascontiguousarray(img), (max(8, int(w * f)), max(8, int(h * f))),
                           interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    elif rng.random() < 0.15:  # ... or is sharper than the training clips
        x = img.astype(np.float32)
        img = np.clip(x + rng.uniform(0.3, 1.0) * (x - cv2.GaussianBlur(x, (0, 0), 1.2)), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        img = np.clip(img.astype(np.float32) * rng.uniform(0.85, 1.15) + rng.uniform(-15, 15), 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img), [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(50, 95))])
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(img)


# ---- helpers ------------------------------------------------------------------------------------------


def _device() -> str:
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels once
        return "cuda"
    return "cpu"


def _autocast(device: str):
    from detector.runtime import _cpu_has_bf16

    if device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=_cpu_has_bf16())


def _to_tensor(frames: np.ndarray, device: str) -> torch.Tensor:
    """uint8 (B, H, W, 3) RGB -> (B, 3, H, W) uint8 channels_last tensor."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).to(device).contiguous(memory_format=torch.channels_last)


def _log(run: Path, row: dict) -> None:
    with open(run / "log.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


@torch.no_grad()
def frame_logits(model, head, frames: np.ndarray, device: str, batch: int = 64) -> torch.Tensor:
    """Single-frame logits of backbone + frame head: frames uint8 (N, S, S, 3) RGB -> fp32 (N, 2), eval mode."""
    model.eval()
    head.eval()
    out = []
    for i in range(0, len(frames), batch):
        with _autocast(device):
            out.append(head(model.frame_features(_to_tensor(frames[i:i + batch], device))).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def frame_val_metrics(model, head, x: np.ndarray, y: np.ndarray, device: str,
                      max_frames: int = 1200) -> tuple[float, float]:
    """(loss, ROC-AUC) of single-frame predictions on a fixed sample of validation frames."""
    from detector.training.evaluate import roc_auc

    n, t = x.shape[:2]
    rng = np.random.default_rng(123)  # the same validation frames every time
    idx = rng.choice(n * t, min(max_frames, n * t), replace=False)
    frames, labels = x.reshape(n * t, *x.shape[2:])[idx], np.repeat(y, t)[idx]
    logits = frame_logits(model, head, frames, device)
    loss = nn.functional.cross_entropy(logits, torch.from_numpy(labels)).item()
    return loss, roc_auc(labels, torch.softmax(logits, -1)[:, 1].numpy())


# ---- stage 1 --------------------------------------------------------------------------------------------


def cosine_lr(peak: float, frac: float) -> float:
    """The learning rate at `frac` (0-1) of a run: 3 % linear warm-up from 10 %, then cosine to 2 % of `peak`."""
    if frac < 0.03:
        return peak * (0.1 + 0.9 * frac / 0.03)
    return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (frac - 0.03) / 0.97)))


def train_frames(model, batch_fn, val, run: Path, cfg: TrainConfig, deadline: float, device: str) -> None:
    """Frame-level warm-up of model.backbone with a temporary Linear head; keeps the best by val AUC.

    batch_fn(rng) -> (frames uint8 (B, S, S, 3) RGB, labels int64 (B,)) draws one training batch;
    val = (x uint8 (N, T, S, S, 3), y (N,)) or (None, None).
    """
    xva, yva = val
    head = nn.Linear(model.backbone.num_features, 2).to(device)
    params = list(model.backbone.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=cfg.frame_lr, weight_decay=cfg.weight_decay)
    ckpt = run / "stage1.pt"
    step, best, elapsed = 0, math.inf, 0.0
    if ckpt.is_file():
        s = torch.load(ckpt, map_location=device, weights_only=True)
        model.backbone.load_state_dict(s["backbone"])
        head.load_state_dict(s["head"])
        opt.load_state_dict(s["opt"])
        step, best, elapsed = s["step"], s["best"], s.get("elapsed", 0.0)
        if s.get("done"):
            return
    # The schedule follows whichever runs out first, steps or the time budget, so a budget-limited run
    # still anneals: 3% warm-up, then cosine to 2% of the peak.
    budget = max(1.0, deadline - time.time() + elapsed)
    started = time.time() - elapsed

    def lr_at(step: int) -> float:
        return cosine_lr(cfg.frame_lr, min(1.0, max(step / cfg.frame_steps, (time.time() - started) / budget)))

    rng = np.random.default_rng(cfg.seed + step)
    t0, losses = time.time(), []
    while step < cfg.frame_steps and time.time() < deadline:
        model.train()
        head.train()
        frames, labels = batch_fn(rng)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        with _autocast(device):
            logits = head(model.frame_features(_to_tensor(frames, device)))
        loss = nn.functional.cross_entropy(logits.float(), torch.from_numpy(labels).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        losses.append(loss.item())
        if step % cfg.eval_every == 0:
            best = _checkpoint(model, head, opt, (xva, yva), run, step, best, losses, t0, started, device)
            losses, t0 = [], time.time()
    if losses or not (run / "stage1_best.pt").is_file():
        best = _checkpoint(model, head, opt, (xva, yva), run, step, best, losses, t0, started, device)
    s = torch.load(ckpt, map_location=device, weights_only=True)
    s["done"] = True
    torch.save(s, ckpt)


def _checkpoint(model, head, opt, val, run, step, best, losses, t0, started, device) -> float:
    """Validate, log, keep the best backbone (stage1_best.pt) and a resumable checkpoint (stage1.pt).

    Stage 1 keeps the backbone with the best validation ROC-AUC (`best` holds -AUC): from scratch on
    few identities the frame loss rises with over-confidence while the ranking still improves, and the
    LSTM stage re-calibrates anyway (it early-stops on validation loss).
    """
    vl, auc = frame_val_metrics(model, head, *val, device) if val[0] is not None else (None, None)
    _log(run, {"stage": 1, "step": step, "train_loss": float(np.mean(losses)) if losses else None, "val_loss": vl,
               "val_auc": auc, "lr": opt.param_groups[0]["lr"],
               "s_per_step": (time.time() - t0) / max(len(losses), 1)})
    if auc is None or -auc < best:  # without a validation split: the latest (annealed) backbone
        best = best if auc is None else -auc
        torch.save({"backbone": model.backbone.state_dict(), "head": head.state_dict()}, run / "stage1_best.pt")
    torch.save({"backbone": model.backbone.state_dict(), "head": head.state_dict(), "opt": opt.state_dict(),
                "step": step, "best": best, "elapsed": time.time() - started}, run / "stage1.pt")
    return best


# ---- stage 2 --------------------------------------------------------------------------------------------


@torch.no_grad()
def cache_features(model, x: np.ndarray, device: str, batch: int = 64) -> torch.Tensor:
    """Backbone features of every frame: x uint8 (N, T, H, W, 3) RGB -> (N, T, C) fp32 (eval mode)."""
    model.eval()
    n, t = x.shape[:2]
    flat = x.reshape(n * t, *x.shape[2:])
    out = []
    for i in range(0, len(flat), batch):
        with _autocast(device):
            out.append(model.frame_features(_to_tensor(flat[i:i + batch], device)).float().cpu())
    return torch.cat(out).view(n, t, -1)


def _class_weights(y: np.ndarray) -> torch.Tensor:
    """Inverse-frequency weights (2,), so extra fakes do not shift the decision threshold."""
    counts = np.bincount(y, minlength=2).astype(np.float32)
    return torch.from_numpy(counts.sum() / (2 * np.maximum(counts, 1)))


def train_sequence(model, feats, run: Path, cfg: TrainConfig, device: str) -> dict:
    """LSTM + head on cached features; early stopping on validation loss; best weights loaded back.

    Training loss is class-weighted (stage 2 may hold more fakes than reals); validation loss is plain.
    """
    (ftr, ytr), (fva, yva) = feats
    params = list(model.lstm.parameters()) + list(model.head.parameters())
    opt = torch.optim.Adam(params, lr=cfg.seq_lr, weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(cfg.seed)
    ytr_t = torch.from_numpy(ytr)
    cw = _class_weights(ytr).to(device)
    best, best_state, bad, epoch = math.inf, None, 0, 0
    for epoch in range(1, cfg.seq_epochs + 1):
        model.train()
        perm = torch.randperm(len(ftr), generator=g)
        tl = []
        for i in range(0, len(perm), cfg.seq_batch):
            b = perm[i:i + cfg.seq_batch]
            loss = nn.functional.cross_entropy(model.forward_head(ftr[b].to(device)), ytr_t[b].to(device),
                                           weight=cw)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tl.append(loss.item())
        model.eval()
        if fva is None:  # no validation split: a fixed number of epochs, the last state is kept
            _log(run, {"stage": 2, "epoch": epoch, "train_loss": float(np.mean(tl)), "val_loss": None})
            continue
        with torch.no_grad():
            val = nn.functional.cross_entropy(model.forward_head(fva.to(device)),
                                              torch.from_numpy(yva).to(device)).item()
        _log(run, {"stage": 2, "epoch": epoch, "train_loss": float(np.mean(tl)), "val_loss": val})
        if val < best - 1e-4:
            best, bad = val, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()
                          if k.startswith(("lstm.", "head."))}
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    return {"best_val_loss": best if fva is not None else None, "epochs": epoch}


def plot_curves(run: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, stage, key in ((axes[0], 1, "step"), (axes[1], 2, "epoch")):
        r = [x for x in rows if x["stage"] == stage and key in x]
        for name in ("train_loss", "val_loss"):
            ax.plot([x[key] for x in r], [math.nan if x[name] is None else x[name] for x in r], label=name)
        ax.set_title(f"stage {stage} ({'frames' if stage == 1 else 'LSTM on cached features'})")
        ax.set_xlabel(key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(run / "curves.png", dpi=90)
    plt.close(fig)
    return run / "curves.png"


def build_for_training(cfg: TrainConfig, seq_len: int, input_size: int, device: str):
    """(model on `device`, channels_last; its spec; a recipe note): from the registry, or warm-started from
    `cfg.init` (same architecture, checked key by key)."""
    from detector.weights import check_state_dict, load_weights, read_spec

    # A two-stream init (a residual stream beside the ResNeXt50, detector/residual.py) keeps its stream: the
    # model is built with the init's residual fields, so its every tensor is checked and loaded.
    stream = {}
    if cfg.init:
        init_spec = read_spec(cfg.init)
        stream = {"residual_width": init_spec.residual_width, "residual_pairs": init_spec.residual_pairs}
    spec = spec_for(cfg.model, lstm_hidden=cfg.lstm_hidden, sequence_length=seq_len, input_size=int(input_size),
                    **({"backbone": cfg.backbone} if cfg.backbone else {}), **stream)
    model = build_model(spec)
    init_note = ""
    if cfg.init:
        src, src_spec = load_weights(cfg.init)
        check_state_dict(model, src.state_dict(), Path(cfg.init).name)
        model.load_state_dict(src.state_dict())
        init_note = f"initialised from {src_spec.name} (sha256 {src_spec.weights_sha256[:12]}); "
    if cfg.init_backbone:
        from safetensors.torch import load_file

        from detector.hashing import sha256_file

        state = load_file(cfg.init_backbone)
        check_state_dict(model.backbone, state, Path(cfg.init_backbone).name)
        model.backbone.load_state_dict(state)
        init_note += (f"backbone initialised from {Path(cfg.init_backbone).name} "
                      f"(sha256 {sha256_file(cfg.init_backbone)[:12]}); ")
    return model.to(device).to(memory_format=torch.channels_last), spec, init_note
