"""Add the residual-pair stream to trained weights: frozen ResNeXt50, new stream + LSTM + head on clips.

Why this recipe (issue 15): the one trace measured to transfer from our synthetic training clips to
public ones is how the finest texture renews itself between frames (research/probe_residual.py: dev
set 0.65-0.71 over seeds against the default's 0.55). It is taught by self-reenactment (frame 0 carried
by the clip's own landmark motion, grain frozen), face swaps and self-blends (texture regenerated per
frame, with flicker), against real clips that carry a camera's fresh noise (`PackConfig.clip_camera`):
see detector/training/families.py and train_pack.clip_set.

The backbone of `init` is frozen (its features are cached once per clip), so one step costs the stream's
forward and backward on B clips' T-1 pairs plus the LSTM: ~1 s on 2 CPU cores. Augmentation: horizontal
flip of the stream's input, every frame or every second one (the product spreads its frames over the
whole clip), and **stream dropout**: with probability `rgb_drop` a clip's ResNeXt50 features are set to
0 (the stream must decide alone), with `residual_drop` the stream's are (0 = "no evidence", what a still
image or duplicated frames give it at inference). Early stopping on held-out identities' clips.

    deepfake-forensics train-residual data/pack --init weights/DEFAULT.safetensors --run runs/res0 \
        --budget-min 30 --out runs/res0/out/resnext50_lstm.NAME_20.safetensors [--resume]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from detector.training import families as F
from detector.training.loop import _device, _log, cache_features
from detector.training.train_pack import PackConfig, auc_by_family, clip_set


@dataclass(frozen=True)
class ResidualConfig:
    width: int = 32  # stream width: 4 * width features per frame join the 2,048 of the ResNeXt50
    families: tuple[str, ...] = ("reenact", "swap", "sbi")
    camera: bool = True  # PackConfig.clip_camera: real clips get a camera's fresh noise
    pseudo_train: int = 320
    pseudo_val: int = 120
    batch: int = 8  # clips per step
    lr: float = 1e-3
    weight_decay: float = 1e-4
    rgb_drop: float = 0.5
    residual_drop: float = 0.1
    # An auxiliary loss on the stream alone: a linear read-out of every pair's features predicts the clip's
    # label (the probe's objective, research/probe_residual.py), so the stream gets a direct gradient and
    # not only what reaches it through the LSTM. Training only: the read-out is not part of the weights.
    aux_weight: float = 0.0
    # Keep init's residual stream as it is (frozen, its features cached once per clip and flip) and train only
    # a fresh LSTM + head: needs a "next" pack (a stream feature then depends on its frame and successor
    # only, so one cache serves every frame subset). Why: the shipped stream was trained on spread pairs yet
    # ranks the dev set best on next pairs; its LSTM was not trained on those. A step costs milliseconds,
    # so seeds and `rgb_drop` can be compared in minutes.
    freeze_stream: bool = False
    # Start the stream from init's (same width) and train it on, instead of from scratch: fine-tunes a stream
    # learned on one pairing for another. Ignored with freeze_stream (which keeps it as it is).
    stream_from_init: bool = False
    # An L2 penalty on the LSTM's input weights from the 2,048 ResNeXt50 features (rgb_l2 * sum of their
    # squares, added to the loss): the frozen backbone's features rank real-world fakes at chance and, fed
    # at full weight, pull the dev set down (issue 15: 0.72 with them, 0.79 with them zeroed). The
    # penalty lets the LSTM use them only where they pay for it on the training clips. 0: off.
    rgb_l2: float = 0.0
    # Seeds the LSTM + head's init, batch order and dropout only (None: `seed`); the training clips stay
    # those of `seed`. With --freeze-stream and --resume on a run folder holding another run's cached
    # features, a new head costs ~1 min: the heads merged by `merge-heads` are trained this way.
    head_seed: int | None = None
    # PackConfig.clip_codec: share of clip pairs given a real H.264 round trip (0: off).
    codec: float = 0.0
    # A folder of training-identity clips as video files (real/..., fake/<family>/...; e.g. `clipset --split
    # train`), read through the product's own face path (decode, detect, track, crop: prepare.clip_crops) and
    # added to the pack's training clips. Why: the held-out folders a default is calibrated and tested on are
    # built this way, and read lower than the pack's own held-out clips (stop 34: 0.783 against 0.826 for one
    # frame probe; not the codec, scale or crop geometry). "": off.
    extra_clips: str = ""
    eval_every: int = 50  # steps
    patience: int = 8  # evaluations without a lower validation loss
    max_steps: int = 100_000  # an upper bound; the time budget or early stopping usually ends it first
    seed: int = 0


def _clips_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 (B, T, S, S, 3) RGB -> uint8 (B, T, 3, S, S)."""
    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 1, 4, 2, 3)


def stream_dropout(rgb: torch.Tensor, res: torch.Tensor, rc: ResidualConfig, g: torch.Generator):
    """Zero one stream of some clips: rgb (B, T, 2048), res (B, T, C) -> both, per clip at most one zeroed."""
    u = torch.rand(len(rgb), generator=g)
    keep_rgb = (u >= rc.rgb_drop).float().view(-1, 1, 1)
    keep_res = ((u < rc.rgb_drop) | (u >= rc.rgb_drop + rc.residual_drop)).float().view(-1, 1, 1)
    return rgb * keep_rgb, res * keep_res


def split_next(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clips of a "next" pack, uint8 (N, 2T, S, S, 3) interleaved (frame, successor, ...) -> (frames, partners),
    each (N, T, S, S, 3) (views)."""
    return x[:, 0::2], x[:, 1::2]


@torch.no_grad()
def clip_logits(model, rgb: torch.Tensor, x: np.ndarray, batch: int = 16, partners: np.ndarray | None = None,
                res: torch.Tensor | None = None) -> torch.Tensor:
    """Eval-mode logits (N, 2) of clips x uint8 (N, T, S, S, 3) with their cached RGB features (N, T, 2048)
    (and, for a stream pairing "next" frames, their successors `partners`, same shape as x; or the stream's
    cached features `res` (N, T, C), when it is frozen: then x is not read and may be None)."""
    was = model.training
    model.eval()
    out = []
    for i in range(0, len(rgb), batch):
        if res is None:
            nx = None if partners is None else _clips_tensor(partners[i:i + batch])
            r = model.residual(_clips_tensor(x[i:i + batch]), nx)
        else:
            r = res[i:i + batch]
        out.append(model.forward_head(torch.cat([rgb[i:i + batch], r], -1)))
    model.train(was)
    return torch.cat(out)


@torch.no_grad()
def cache_stream(model, x: np.ndarray, partners: np.ndarray, batch: int = 16) -> torch.Tensor:
    """A frozen "next" stream's features of clips x and their successors, uint8 (N, T, S, S, 3) each ->
    (2, N, T, C) fp32: [0] as is, [1] both images flipped left-right (the training augmentation)."""
    model.residual.eval()
    out = [[], []]
    for i in range(0, len(x), batch):
        a, b = _clips_tensor(x[i:i + batch]), _clips_tensor(partners[i:i + batch])
        out[0].append(model.residual(a, b))
        out[1].append(model.residual(a.flip(-1), b.flip(-1)))
    return torch.stack([torch.cat(o) for o in out])


def rgb_input_weights(model) -> torch.Tensor:
    """The LSTM's first-layer input weights that read the ResNeXt50 features: (4 * hidden [* 2], 2048) views,
    both directions of a bidirectional LSTM stacked."""
    names = ["weight_ih_l0"] + (["weight_ih_l0_reverse"] if model.lstm.bidirectional else [])
    return torch.cat([getattr(model.lstm, n)[:, :model.rgb_features] for n in names])


def _clip_key(rc: ResidualConfig, info: dict) -> str:
    """What the training clips depend on: a cached feature file is reused only for the same key."""
    key = [rc.seed, list(rc.families), rc.camera, rc.pseudo_train, rc.pseudo_val,
           {k: v for k, v in info.items() if k != "seconds"}]
    # Appended only when on, so that the run folders of earlier recipes keep their keys (and caches).
    return json.dumps(key + ([{"codec": rc.codec}] if rc.codec else []), sort_keys=True)


def extra_clip_crops(folder: Path, frames: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every clip under folder/real and folder/fake through the product's face path, with each frame's
    successor: (x uint8 (N, 2 * frames, 112, 112, 3) interleaved as a "next" pack's clips, y (N,) 1 = fake,
    paths); clips without a face are left out. Raises InputError if the folder holds no clip with a face."""
    from detector.errors import InputError
    from detector.training.evaluate_clips import find_clips
    from detector.training.prepare import clip_crops

    xs, ys, paths = [], [], []
    for rel, label in find_clips(folder):
        path = folder / rel
        try:
            c = clip_crops(str(path), frames, partners=True)
        except InputError:
            c = None
        if c is not None:
            xs.append(c), ys.append(int(label == "fake")), paths.append(str(path))
    if not xs:
        raise InputError(f"{folder}: no clip under real/ or fake/ with a face; build one with "
                         "`deepfake-forensics clipset PACK FACES --split train --out DIR`")
    return np.stack(xs), np.array(ys, np.int64), paths


def _extra_features(model, rc: ResidualConfig, run: Path, frames: int, device: str):
    """rc.extra_clips' cached features (rgb (N, T, 2048), stream (2, N, T, C) as is and flipped, y (N,)),
    computed once into run/extra_features.pt (reused only for the same folder, frames and clip list)."""
    from detector.training.evaluate_clips import find_clips

    folder = Path(rc.extra_clips)
    cache = run / "extra_features.pt"
    # Listing the folder costs no decoding: a clip added or removed since makes the cache stale.
    key = {"folder": str(folder.resolve()), "frames": frames, "listed": [rel for rel, _ in find_clips(folder)]}
    if cache.is_file():
        c = torch.load(cache, weights_only=True)
        if all(c.get(k) == v for k, v in key.items()):
            return c["rgb"], c["res"], c["y"]
    x, y, paths = extra_clip_crops(folder, frames)
    xf, xp = split_next(x)
    rgb, res = cache_features(model, xf, device).cpu(), cache_stream(model, xf, xp)
    torch.save({**key, "paths": paths, "rgb": rgb, "res": res, "y": torch.from_numpy(y)}, cache)
    return rgb, res, torch.from_numpy(y)


def _trainable(model) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]


def _state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("backbone.")}


@dataclass
class _Clips:
    """The clips one run trains and selects on. x*: uint8 (N, T, S, S, 3) RGB crops (None when every feature
    is cached), p*: their successors with a "next" pack, y*: labels (N,) (1 = fake), fva_fam: validation
    families, t: frames a clip; rgb_*: ResNeXt50 features (N, T, 2048); res_*: the frozen stream's features
    (train: (2, N, T, C) as and flipped; val: (N, T, C)), None when the stream trains."""

    xtr: np.ndarray | None
    ytr: np.ndarray
    ptr: np.ndarray | None
    xva: np.ndarray | None
    yva: np.ndarray
    pva: np.ndarray | None
    fva_fam: np.ndarray
    t: int
    rgb_tr: torch.Tensor | None = None
    rgb_va: torch.Tensor | None = None
    res_tr: torch.Tensor | None = None
    res_va: torch.Tensor | None = None
    n_extra: int = 0


def train_residual(pack: Path, init: Path, run: Path, rc: ResidualConfig = ResidualConfig(),
                   budget_min: float = 30.0, out: Path | None = None, resume: bool = False,
                   name: str | None = None, trained_on: str = ""):
    """Train the stream + LSTM + head on `init`'s frozen backbone; returns (model, spec), writes `out`.

    The steps: check the config against init and pack, build the model, build (or reload) the clips, cache
    the frozen parts' features, fit with early stopping, write the weights with their recipe.
    trained_on: the model card's line; default: init's, plus the stream's clips."""
    from detector.weights import load_weights, save_weights

    t_start = time.time()
    head_seed = rc.seed if rc.head_seed is None else rc.head_seed
    torch.manual_seed(head_seed)
    device = _device()
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(rc), indent=2))
    src, src_spec = load_weights(init)
    info = json.loads((pack / "pack.json").read_text()) if (pack / "pack.json").is_file() else {}
    # A pack built with `pack --next` holds each clip frame's successor: the stream learns "next" pairs.
    pairs = info.get("pairs", "sampled")
    _check(rc, src, src_spec, pairs)
    model, spec = _build(src, src_spec, rc, pairs, name)
    data = _clips(pack, run, rc, info, pairs, resume)
    _log(run, {"stage": 3, "clips_train": len(data.ytr), "clips_val": len(data.yva),
               "built_s": round(time.time() - t_start)})
    _features(model, data, rc, run, resume, device)
    step, best = _fit(model, data, rc, run, resume, head_seed, pairs, t_start + budget_min * 60, t_start)
    model.eval()
    p = torch.softmax(clip_logits(model, data.rgb_va, data.xva, partners=data.pva, res=data.res_va), -1)[:, 1]
    val_auc = auc_by_family(data.yva, p.numpy(), data.fva_fam)
    _log(run, {"stage": 3, "final_val_auc": val_auc, "steps": step})
    training = {
        "recipe": _recipe(src_spec, rc, pairs, spec.residual_width, step, data),
        "init": {"name": src_spec.name, "weights_sha256": src_spec.weights_sha256, "training": src_spec.training},
        "residual_config": dataclasses.asdict(rc), "pack": info, "val_clip_auc_per_family": val_auc,
        "steps": step, "best_val_loss": best, "wall_time_s": round(time.time() - t_start, 1), "device": device}
    trained_on = trained_on or (
        f"{src_spec.trained_on}; LSTM + head retrained on the same identities' clips, each frame paired with its "
        f"successor, paired clips of {', '.join(rc.families)}" if rc.freeze_stream else
        f"{src_spec.trained_on}; residual stream + LSTM: the same pack's training identities, paired clips of "
        f"{', '.join(rc.families)}")
    spec = dataclasses.replace(spec, trained=True, training=training, trained_on=trained_on)
    model = model.cpu().eval()
    if out is not None:
        spec = save_weights(model, spec, out)
    return model, spec


def _check(rc: ResidualConfig, src, src_spec, pairs: str) -> None:
    """Refuse a config that cannot run on this init and pack, before any clip or feature is built."""
    if rc.stream_from_init and not rc.freeze_stream and src.residual is None:
        raise ValueError("stream_from_init needs init weights with a residual stream")
    if rc.freeze_stream and (src.residual is None or pairs != "next"):
        raise ValueError("freeze_stream keeps init's residual stream and caches its features per frame: it needs "
                         "init weights with a stream and a pack built with `pack --next` "
                         f"(init stream width {src_spec.residual_width}, pack pairs {pairs!r})")
    if rc.extra_clips and not rc.freeze_stream:  # checked before any clip or feature is built
        raise ValueError("extra_clips needs freeze_stream: their stream features are cached once")


def _build(src, src_spec, rc: ResidualConfig, pairs: str, name: str | None):
    """(model, spec): init's backbone (frozen), init's stream or a fresh one, a fresh LSTM + head."""
    from detector.model import build_model

    width = src_spec.residual_width if rc.freeze_stream or rc.stream_from_init else rc.width
    spec = dataclasses.replace(src_spec, name=name or f"{src_spec.name}+residual", residual_width=width,
                               residual_pairs=pairs, calibration={}, cues={}, metrics={}, weights_sha256="",
                               threshold=0.5)
    model = build_model(spec)
    model.backbone.load_state_dict(src.backbone.state_dict())
    model.backbone.requires_grad_(False)
    if rc.freeze_stream or rc.stream_from_init:
        model.residual.load_state_dict(src.residual.state_dict())
    if rc.freeze_stream:
        model.residual.requires_grad_(False)
    return model, spec


def stage2_clips(stills: dict, clips: dict, rc: ResidualConfig, split: str):
    """A split's clips as this recipe builds them: `clip_set` with rc's families, camera noise, codec share,
    number of still pseudo-clips and seed (train: seed + 11, val: seed + 12). Returns clip_set's
    (x uint8 (M, T, S, S, 3), y, family, source)."""
    pc = PackConfig(clip_families=rc.families, clip_camera=rc.camera, clip_codec=rc.codec)
    n, seed = (rc.pseudo_train, rc.seed + 11) if split == "train" else (rc.pseudo_val, rc.seed + 12)
    return clip_set(stills, clips, split, n, pc, int(clips["crops"].shape[1]), seed=seed)


def _clips(pack: Path, run: Path, rc: ResidualConfig, info: dict, pairs: str, resume: bool) -> _Clips:
    """The training and validation clips from the pack, or only their labels when a frozen-stream run
    resumes with every feature cached (a new head seed then needs no clip at all)."""
    from detector.training.pack import load_pack

    feats, sfeats, labels = run / "rgb_features.pt", run / "stream_features.pt", run / "labels.json"
    if rc.freeze_stream and resume and feats.is_file() and sfeats.is_file() and labels.is_file():
        lab = json.loads(labels.read_text())
        if lab["clip_key"] != _clip_key(rc, info):
            raise ValueError(f"{run}: its cached features were made from other clips ({lab['clip_key']}); "
                             "use a fresh --run folder")
        return _Clips(None, np.array(lab["ytr"]), None, None, np.array(lab["yva"]), None,
                      np.array(lab["fva_fam"]), lab["t"])
    stills, clips = load_pack(pack)
    t = int(clips["crops"].shape[1])
    xtr, ytr, _, _ = stage2_clips(stills, clips, rc, "train")
    xva, yva, fva_fam, _ = stage2_clips(stills, clips, rc, "val")
    ptr = pva = None
    if pairs == "next":  # fakes were made on the interleaved sequence, so a fake's partner is a fake frame too
        (xtr, ptr), (xva, pva) = split_next(xtr), split_next(xva)
        t //= 2
    labels.write_text(json.dumps({"clip_key": _clip_key(rc, info), "ytr": ytr.tolist(), "yva": yva.tolist(),
                                  "fva_fam": fva_fam.tolist(), "t": t}))
    return _Clips(xtr, ytr, ptr, xva, yva, pva, fva_fam, t)


def _features(model, data: _Clips, rc: ResidualConfig, run: Path, resume: bool, device: str) -> None:
    """Cache the frozen parts' features into `data` (resumable), and add the extra clips' when asked."""
    feats, sfeats = run / "rgb_features.pt", run / "stream_features.pt"
    if resume and feats.is_file():
        data.rgb_tr, data.rgb_va = torch.load(feats, weights_only=True).values()
    else:
        data.rgb_tr = cache_features(model, data.xtr, device).cpu()
        data.rgb_va = cache_features(model, data.xva, device).cpu()
        torch.save({"train": data.rgb_tr, "val": data.rgb_va}, feats)
    if rc.freeze_stream:  # the frozen stream's features, as and flipped (~5 min on 2 cores for 778 clips)
        if resume and sfeats.is_file():
            data.res_tr, data.res_va = torch.load(sfeats, weights_only=True).values()
        else:
            data.res_tr = cache_stream(model, data.xtr, data.ptr)
            data.res_va = cache_stream(model, data.xva, data.pva)[0]
            torch.save({"train": data.res_tr, "val": data.res_va}, sfeats)
    if rc.extra_clips:
        e_rgb, e_res, e_y = _extra_features(model, rc, run, data.t, device)
        data.n_extra = len(e_y)
        data.rgb_tr, data.res_tr = torch.cat([data.rgb_tr, e_rgb]), torch.cat([data.res_tr, e_res], 1)
        data.ytr = np.concatenate([data.ytr, e_y.numpy()])
        _log(run, {"stage": 3, "extra_clips": data.n_extra, "extra_fake": int(e_y.sum())})


def _fit(model, data: _Clips, rc: ResidualConfig, run: Path, resume: bool, head_seed: int, pairs: str,
         deadline: float, t_start: float) -> tuple[int, float]:
    """The loop: step, validate every `eval_every` steps, checkpoint, stop early; the best state is loaded
    back into `model`. Returns (steps, best validation loss)."""
    model.train()
    model.backbone.eval()  # frozen: its batch-norm statistics stay the init's
    if rc.freeze_stream:
        model.residual.eval()
    aux = nn.Linear(model.residual.num_features, 1)
    opt = torch.optim.AdamW(_trainable(model) + list(aux.parameters()), rc.lr, weight_decay=rc.weight_decay)
    step, best, bad, best_state = 0, float("inf"), 0, None
    ckpt = run / "checkpoint.pt"
    g = torch.Generator().manual_seed(head_seed)
    if resume and ckpt.is_file():
        c = torch.load(ckpt, weights_only=True)
        model.load_state_dict(c["model"], strict=False)
        aux.load_state_dict(c["aux"])
        opt.load_state_dict(c["opt"])
        step, best, bad, best_state = c["step"], c["best"], c["bad"], c["best_state"]
        g.set_state(c["rng"])
        _log(run, {"stage": 3, "resumed_at_step": step})
    rng = np.random.default_rng(head_seed + step)
    losses = []
    while time.time() < deadline and bad < rc.patience and step < rc.max_steps:
        loss = _loss(model, aux, data, rc, pairs, rng, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % rc.eval_every == 0:
            logits = clip_logits(model, data.rgb_va, data.xva, partners=data.pva, res=data.res_va)
            val = nn.functional.cross_entropy(logits, torch.from_numpy(data.yva)).item()
            p = torch.softmax(logits, -1)[:, 1].numpy()
            if val < best - 1e-4:
                best, bad, best_state = val, 0, _state(model)
            else:
                bad += 1
            _log(run, {"stage": 3, "step": step, "train_loss": float(np.mean(losses)), "val_loss": val,
                       "val_auc": auc_by_family(data.yva, p, data.fva_fam),
                       "elapsed_s": round(time.time() - t_start)})
            losses = []
            torch.save({"model": _state(model), "aux": aux.state_dict(), "opt": opt.state_dict(), "step": step,
                        "best": best, "bad": bad,
                        "best_state": best_state, "rng": g.get_state()}, ckpt)
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    return step, best


def _loss(model, aux, data: _Clips, rc: ResidualConfig, pairs: str, rng: np.random.Generator,
          g: torch.Generator) -> torch.Tensor:
    """One batch: random clips, every frame or every second one, a flip, stream dropout; the loss."""
    t = data.t
    i = rng.integers(len(data.ytr), size=rc.batch)
    stride = int(rng.choice([1, 2]))
    length = t // stride
    frames = int(rng.integers(t - (length - 1) * stride)) + stride * np.arange(length)
    flip = rng.random() < 0.5
    if data.res_tr is not None:
        res = data.res_tr[int(flip)][i][:, frames]
    else:
        x = _clips_tensor(data.xtr[i][:, frames])
        nx = None if data.ptr is None else _clips_tensor(data.ptr[i][:, frames])
        if flip:
            x = x.flip(-1)
            nx = None if nx is None else nx.flip(-1)
        res = model.residual(x, nx)
    y = torch.from_numpy(data.ytr)[i]
    rgb, res_kept = stream_dropout(data.rgb_tr[i][:, frames], res, rc, g)
    loss = nn.functional.cross_entropy(model.forward_head(torch.cat([rgb, res_kept], -1)), y)
    if rc.aux_weight and not rc.freeze_stream:
        # every pair on its own: (B, L-1) (step 0 repeats step 1), or (B, L) with "next" pairs
        pair_logits = aux(res if pairs == "next" else res[:, 1:]).squeeze(-1)
        target = y.float().view(-1, 1).expand_as(pair_logits)
        loss = loss + rc.aux_weight * nn.functional.binary_cross_entropy_with_logits(pair_logits, target)
    if rc.rgb_l2:
        loss = loss + rc.rgb_l2 * rgb_input_weights(model).pow(2).sum()
    return loss


def _recipe(src_spec, rc: ResidualConfig, pairs: str, width: int, step: int, data: _Clips) -> str:
    """The sidecar's one-paragraph recipe of this run."""
    stream = (f"residual-pair stream (width {width}) of {src_spec.name}, frozen; a fresh LSTM + head"
              if rc.freeze_stream else
              f"residual-pair stream (width {width}) started from {src_spec.name}'s + a fresh LSTM + head"
              if rc.stream_from_init else f"residual-pair stream (width {rc.width}) + a fresh LSTM + head")
    return (f"backbone and its stage-1 training from {src_spec.name} (sha256 "
            f"{src_spec.weights_sha256[:12]}), frozen; {stream} trained {step} steps (AdamW lr {rc.lr}, "
            f"{rc.batch} clips a step, "
            + ("each frame paired with its successor in the video, " if pairs == "next" else "")
            + f"every frame or every second one, flip, stream dropout rgb {rc.rgb_drop} / residual "
            f"{rc.residual_drop}"
            + ("" if rc.freeze_stream else f", auxiliary per-pair loss weight {rc.aux_weight}")
            + (f", L2 {rc.rgb_l2} on the LSTM's ResNeXt50 input weights" if rc.rgb_l2 else "")
            + f") on {len(data.ytr)} clips: real speaker clips"
            f"{' with camera noise' if rc.camera else ''} + {rc.pseudo_train} still pseudo-clips, one "
            f"paired fake clip each of {list(rc.families)}"
            + (f"; {rc.codec:.0%} of the clip pairs through a real H.264 encode + decode (CRF "
               f"{F.H264_CRF[0]}-{F.H264_CRF[1]}, the same for a real clip and its fake)" if rc.codec else "")
            + (f"; {data.n_extra} clips of the training identities as video files ({rc.extra_clips}), read "
               "through the product's face path" if data.n_extra else "")
            + f"; early stopping on {len(data.yva)} clips of "
            "held-out identities")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-residual", help="add the residual-pair stream to trained weights (frozen backbone)")
    p.add_argument("pack", type=Path, help="folder written by `deepfake-forensics pack`")
    p.add_argument("--init", type=Path, required=True, help="weights whose backbone is kept (frozen)")
    p.add_argument("--run", type=Path, required=True, help="log.jsonl, checkpoint.pt, cached features")
    p.add_argument("--out", type=Path, help="write weights here (.safetensors + .json sidecar)")
    p.add_argument("--budget-min", type=float, default=30.0)
    p.add_argument("--resume", action="store_true", help="continue from --run's checkpoint")
    p.add_argument("--families", default=",".join(ResidualConfig.families))
    p.add_argument("--no-camera", action="store_true", help="real clips as decoded (PackConfig.clip_camera off)")
    p.add_argument("--width", type=int, default=ResidualConfig.width)
    p.add_argument("--rgb-drop", type=float, default=ResidualConfig.rgb_drop)
    p.add_argument("--residual-drop", type=float, default=ResidualConfig.residual_drop)
    p.add_argument("--aux-weight", type=float, default=ResidualConfig.aux_weight,
                   help="weight of the stream's own per-pair loss (ResidualConfig.aux_weight)")
    p.add_argument("--pseudo-train", type=int, default=ResidualConfig.pseudo_train,
                   help="training pseudo-clips made from stills (one identity each), besides the speaker clips")
    p.add_argument("--freeze-stream", action="store_true",
                   help="keep --init's residual stream (frozen; needs a `pack --next` pack): train LSTM + head only")
    p.add_argument("--stream-from-init", action="store_true",
                   help="start the residual stream from --init's and train it on (instead of from scratch)")
    p.add_argument("--rgb-l2", type=float, default=ResidualConfig.rgb_l2,
                   help="L2 penalty on the LSTM's input weights from the ResNeXt50 features (ResidualConfig.rgb_l2)")
    p.add_argument("--codec", type=float, default=ResidualConfig.codec, metavar="SHARE",
                   help="share of clip pairs given a real H.264 round trip, CRF 18-40 (PackConfig.clip_codec)")
    p.add_argument("--extra-clips", default="", metavar="DIR",
                   help="add these training-identity video clips (real/, fake/<family>/), read through the "
                        "product's face path (ResidualConfig.extra_clips; needs --freeze-stream)")
    p.add_argument("--batch", type=int, default=ResidualConfig.batch, help="clips a step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--head-seed", type=int, default=None,
                   help="seed of the LSTM + head only (init, batches, dropout); the clips stay --seed's")
    p.add_argument("--trained-on", default="", help="text for the model card")
    p.set_defaults(func=_cmd)


def _cmd(a: argparse.Namespace) -> int:
    if not 0 <= a.rgb_drop + a.residual_drop <= 1:
        raise SystemExit(f"--rgb-drop + --residual-drop must lie in [0, 1], not {a.rgb_drop + a.residual_drop}")
    rc = ResidualConfig(width=a.width, families=tuple(a.families.split(",")), camera=not a.no_camera,
                        rgb_drop=a.rgb_drop, residual_drop=a.residual_drop, aux_weight=a.aux_weight,
                        pseudo_train=a.pseudo_train, seed=a.seed, freeze_stream=a.freeze_stream, batch=a.batch,
                        rgb_l2=a.rgb_l2, stream_from_init=a.stream_from_init, head_seed=a.head_seed,
                        codec=a.codec, extra_clips=a.extra_clips)
    name = a.out.name.removesuffix(".safetensors") if a.out else None
    _, spec = train_residual(a.pack, a.init, a.run, rc, a.budget_min, a.out, a.resume, name, a.trained_on)
    print(f"trained {spec.name}: {json.dumps(spec.training['val_clip_auc_per_family'])}")
    return 0
