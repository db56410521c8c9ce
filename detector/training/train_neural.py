"""The clip stage on real generators (issue 38): a fresh LSTM + head on frozen features, chosen by
leave-one-generator-out.

Inputs are cached features (`neural_features`): the stage-2 clips of the pack (real speaker clips and still
pseudo-clips, each with a paired synthetic fake: reenact / swap / sbi) and the neural corpus (real generators'
fakes and real talking-face clips, as read by the product's face path, plus one upload-style degraded copy of
each). Each step draws `batch` clips: a `neural_share` from the corpus (half real, half fake, the fakes
balanced by family so the 56 talking heads do not drown the 14 reenactments) and the rest from the pack, so
the synthetic families keep teaching what the corpus lacks (face swaps). Windows of 20 or 10 frames at a
random stride, stream flip and stream dropout, an L2 penalty on the ResNeXt50 input weights: the shipped
recipe's augmentation (train_residual).

**Selection protocol.** `lomo` trains one model per generator group with that group's fakes held out (and a
share of the real clips, whole repositories, `neural.folds`); every held-out clip is scored by the model that
never saw it, over all its 60 frames as the product reads it. Per held-out method: ROC-AUC of its fakes
against every real clip's out-of-fold score, with a bootstrap interval. A recipe is chosen on these figures
and on the pack's identity-held-out validation clips; the dev set is read once, after choosing.

    python -m detector.training.train_neural lomo runs/neural --steps 800
    python -m detector.training.train_neural final runs/neural --steps 800 --out weights/NAME.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class NeuralConfig:
    steps: int = 800  # fixed, not early-stopped: no held-out clip picks the stopping step
    batch: int = 32
    neural_share: float = 0.5  # share of each batch drawn from the neural corpus
    aug_share: float = 0.5  # of those, the share taken from the degraded copies
    lr: float = 1e-3
    weight_decay: float = 1e-4
    rgb_drop: float = 0.5  # stream dropout, as the shipped recipe
    residual_drop: float = 0.1
    rgb_l2: float = 1e-3  # L2 on the LSTM's ResNeXt50 input weights, as the shipped recipe
    cell: str = "lstm"  # "lstm", "gru" or "mean" (no recurrence: the mean of per-frame scores)
    hidden: int = 256
    layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.4
    seed: int = 0
    # Start from the init weights' own LSTM + head (fine-tune) instead of a fresh one: keeps what the pack
    # taught and moves it only as far as the corpus pulls in `steps` steps. Needs cell "lstm" and the init's
    # hidden size / layers.
    from_init: bool = False


class TemporalHead(nn.Module):
    """features (N, T, C) -> logits (N, 2). `lstm` / `gru`: the recurrent layer, the mean of its outputs over
    time, dropout, a Linear (the product's ResNeXtLSTM.forward_head, whose parameter names it shares);
    `mean`: the Linear on every frame's features, averaged over time (no recurrence)."""

    def __init__(self, width: int, nc: NeuralConfig, rgb_features: int = 2048) -> None:
        super().__init__()
        self.cell = nc.cell
        self.rgb_features = rgb_features  # the first inputs, as ResNeXtLSTM: train_residual.rgb_input_weights
        out = width
        if nc.cell in ("lstm", "gru"):
            rnn = nn.LSTM if nc.cell == "lstm" else nn.GRU
            self.lstm = rnn(width, nc.hidden, nc.layers, batch_first=True, bidirectional=nc.bidirectional,
                            dropout=nc.dropout if nc.layers > 1 else 0.0)
            out = nc.hidden * (2 if nc.bidirectional else 1)
        elif nc.cell != "mean":
            raise ValueError(f"cell must be lstm, gru or mean, not {nc.cell!r}")
        self.dropout = nn.Dropout(nc.dropout)
        self.head = nn.Linear(out, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cell == "mean":
            return self.head(self.dropout(x)).mean(1)
        out, _ = self.lstm(x.float())
        return self.head(self.dropout(out.mean(1)))


class Data:
    """The cached features, as fp32 tensors: pack train/val and the corpus (orig, aug)."""

    def __init__(self, pack: Path, neural: Path, neural_pack: Path) -> None:
        from detector.training.neural import load_neural_pack

        p = torch.load(pack, weights_only=True)
        n = torch.load(neural, weights_only=True)
        self.ptr = {k: p["train"][k].float() for k in ("rgb", "res")} | {"y": p["train"]["y"]}
        self.pva = {k: p["val"][k].float() for k in ("rgb", "res")} | {
            "y": p["val"]["y"], "family": p["val"]["family"],
            "deficit": p["val"].get("deficit", torch.zeros(len(p["val"]["y"])))}
        self.orig = {k: n["orig"][k].float() for k in ("rgb", "res")}
        self.aug = {k: n["aug"][k].float() for k in ("rgb", "res")} if "aug" in n else None
        self.y = n["y"]
        self.clips = load_neural_pack(neural_pack)[0]
        self.deficit = _deficits(neural_pack)
        self.init_head: dict = {}  # the init's LSTM + head tensors (set by main when from_init)
        self.width = self.ptr["rgb"].shape[-1] + self.ptr["res"].shape[-1]

    def family(self, i: int) -> str:
        return self.clips[i].family

    def real_centre(self) -> float:
        """The cue's centre: its median over the corpus's real clips (a typical real face adds ~0)."""
        return float(np.median(self.deficit[self.y.numpy() == 0]))


def _deficits(folder: Path) -> np.ndarray:
    """The mouth-detail cue (detector.cues) of each corpus clip's sampled frames, as the product reads it;
    cached in folder/cues.json (a few seconds to compute)."""
    from detector.cues import mouth_detail_deficit
    from detector.training.neural import load_neural_pack

    cache = folder / "cues.json"
    if cache.is_file():
        return np.array(json.loads(cache.read_text())["mouth_detail_deficit"])
    x = load_neural_pack(folder)[1]
    v = [mouth_detail_deficit(np.asarray(c[0::2])) for c in x]
    cache.write_text(json.dumps({"mouth_detail_deficit": v}))
    return np.array(v)


def cue_grid(d: "Data", m: np.ndarray, weights=(0.0, 0.5, 1.0, 2.0)) -> dict:
    """The product's score margin + w * (mouth-detail deficit - centre), centre the median over the corpus's
    real clips, for each w: the leave-one-method-out figures at each weight (the weight is chosen here, on
    held-out generators, not on the dev set)."""
    centre = d.real_centre()
    out = {"centre": round(centre, 4)}
    for w in weights:
        f = lomo_figures(d, m + w * (d.deficit - centre))
        out[str(w)] = {k: f[k] for k in ("mean_roc_auc", "pooled_roc_auc", "per_family")}
    return out


def _window(n_avail: int, length: int, rng: np.random.Generator) -> np.ndarray:
    stride = int(rng.choice([s for s in (1, 2, 3) if (length - 1) * s < n_avail] or [1]))
    length = min(length, n_avail)
    start = int(rng.integers(n_avail - (length - 1) * stride))
    return start + stride * np.arange(length)


def _batch(d: Data, train_idx: np.ndarray, nc: NeuralConfig, rng: np.random.Generator):
    """One step's features (B, L, C) and labels (B,): pack clips + balanced corpus clips (see module doc)."""
    length = int(rng.choice([20, 10]))
    flip = int(rng.random() < 0.5)
    n_neural = int(round(nc.batch * nc.neural_share)) if len(train_idx) else 0
    i = rng.integers(len(d.ptr["y"]), size=nc.batch - n_neural)
    fr = _window(d.ptr["rgb"].shape[1], length, rng)
    rgb, res, y = [d.ptr["rgb"][i][:, fr]], [d.ptr["res"][flip][i][:, fr]], [d.ptr["y"][i]]
    if n_neural:
        yv = d.y[train_idx].numpy()
        fakes, reals = train_idx[yv == 1], train_idx[yv == 0]
        fams = sorted({d.family(int(j)) for j in fakes})
        for k in range(n_neural):
            if k % 2 == 0 or not len(fakes):
                j = int(rng.choice(reals))
            else:
                fam = fams[int(rng.integers(len(fams)))]
                j = int(rng.choice([f for f in fakes if d.family(int(f)) == fam]))
            src = d.aug if d.aug is not None and rng.random() < nc.aug_share else d.orig
            w = _window(src["rgb"].shape[1], length, rng)
            rgb.append(src["rgb"][j][w][None]), res.append(src["res"][flip][j][w][None]), y.append(d.y[j:j + 1])
    return torch.cat(rgb), torch.cat(res), torch.cat(y)


def train_head(d: Data, train_idx: np.ndarray, nc: NeuralConfig, log=print) -> TemporalHead:
    """A fresh head trained nc.steps steps on the pack's training clips and the corpus clips train_idx."""
    from detector.training.train_residual import ResidualConfig, rgb_input_weights, stream_dropout

    torch.manual_seed(nc.seed)
    rng = np.random.default_rng(nc.seed)
    g = torch.Generator().manual_seed(nc.seed)
    rc = ResidualConfig(rgb_drop=nc.rgb_drop, residual_drop=nc.residual_drop)
    head = TemporalHead(d.width, nc, rgb_features=d.ptr["rgb"].shape[-1])
    if nc.from_init:
        head.load_state_dict({k: v for k, v in d.init_head.items()})
    head.train()
    opt = torch.optim.AdamW(head.parameters(), nc.lr, weight_decay=nc.weight_decay)
    t0, losses = time.time(), []
    for step in range(nc.steps):
        rgb, res, y = _batch(d, train_idx, nc, rng)
        rgb, res = stream_dropout(rgb, res, rc, g)
        loss = nn.functional.cross_entropy(head(torch.cat([rgb, res], -1)), y)
        if nc.rgb_l2 and nc.cell in ("lstm", "gru"):
            loss = loss + nc.rgb_l2 * rgb_input_weights(head).pow(2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 200 == 0:
            log(f"  step {step + 1}/{nc.steps} loss {np.mean(losses):.3f} ({time.time() - t0:.0f} s)")
            losses = []
    return head.eval()


@torch.no_grad()
def margins(head: Callable[[torch.Tensor], torch.Tensor], rgb: torch.Tensor, res: torch.Tensor, batch: int = 32) -> np.ndarray:
    """Fake-real logit margins (N,) of clips' full feature sequences rgb (N, T, 2048), res (N, T, C)."""
    out = []
    for i in range(0, len(rgb), batch):
        lo = head(torch.cat([rgb[i:i + batch], res[i:i + batch]], -1))
        out.append((lo[:, 1] - lo[:, 0]).numpy())
    return np.concatenate(out)


_SHARED: dict = {}  # the Data a forked worker reads (copy-on-write: the features are not pickled per round)


def _round(args: tuple) -> tuple[list[int], np.ndarray, dict]:
    f, nc = args
    d = _SHARED["data"]
    torch.set_num_threads(1)  # one round a core: a small LSTM gains nothing from a second thread (measured)
    t0 = time.time()
    head = train_head(d, np.array(f["train"]), nc, log=lambda *_: None)
    test = np.array(f["test"])
    m = margins(head, d.orig["rgb"][test], d.orig["res"][0][test])
    return test.tolist(), m, {"group": f["group"], "n_train": len(f["train"]), "n_test": len(test),
                              "seconds": round(time.time() - t0)}


def lomo(d: Data, nc: NeuralConfig, log=print, workers: int = 1) -> dict:
    """Leave-one-generator-out (`neural.folds`): out-of-fold margins of every corpus clip, and the figures.
    workers > 1: rounds run in forked processes, one thread each."""
    from detector.training.neural import folds

    oof = np.full(len(d.y), np.nan)
    jobs = [(f, nc) for f in folds(d.clips)]
    _SHARED["data"] = d
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            results = pool.map(_round, jobs, chunksize=1)
    else:
        n = torch.get_num_threads()
        results = [_round(j) for j in jobs]
        torch.set_num_threads(n)
    rounds = []
    for test, m, info in results:
        for i, v in zip(test, m):  # a real clip held out in two rounds keeps its first (its repository's) score
            oof[i] = v if np.isnan(oof[i]) else oof[i]
        rounds.append(info)
        log(f"round {info['group']}: trained on {info['n_train']} corpus clips, scored {info['n_test']}")
    return {"margins": oof.tolist(), "rounds": rounds, **lomo_figures(d, oof), "cue": cue_grid(d, oof)}


ABLATION = {  # issue 38 item 8: the temporal part of the seeds' designs, on the same frozen features
    "lstm 1x256 (shipped)": {"cell": "lstm"},
    "lstm 2x256 (seed 000)": {"cell": "lstm", "layers": 2},
    "bilstm 1x256 (seed 003)": {"cell": "lstm", "bidirectional": True},
    "gru 1x256": {"cell": "gru"},
    "no recurrence (mean of frame scores)": {"cell": "mean"},
}


def _ablate(args: tuple) -> dict:
    name, nc = args
    d = _SHARED["data"]
    torch.set_num_threads(1)
    head = train_head(d, np.array([], int), nc, log=lambda *_: None)
    m = margins(head, d.orig["rgb"], d.orig["res"][0])
    # The same clips with their frames in a random order: a head that reads time should change its scores.
    perm = torch.from_numpy(np.random.default_rng(0).permutation(d.orig["rgb"].shape[1]))
    ms = margins(head, d.orig["rgb"][:, perm], d.orig["res"][0][:, perm])
    f = lomo_figures(d, m)
    return {"variant": name, "unseen_generators_mean_roc_auc": f["mean_roc_auc"],
            "unseen_generators_pooled_roc_auc": f["pooled_roc_auc"], "pooled_ci95": f["pooled_ci95"],
            "per_family": {k: v["roc_auc"] for k, v in f["per_family"].items()},
            "shuffled_frames_pooled_roc_auc": lomo_figures(d, ms)["pooled_roc_auc"],
            "shuffled_frames_mean_abs_margin_change": round(float(np.mean(np.abs(ms - m))), 4),
            "validation": val_figures(d, head)}


def ablation(d: Data, nc: NeuralConfig, workers: int = 2) -> list[dict]:
    """Each temporal variant trained on the pack's clips only (no corpus clip, so every corpus clip is an
    unseen generator's or an unseen source's), scored on the corpus and on the pack's validation clips; and
    each scored again with its frames shuffled."""
    import multiprocessing as mp

    _SHARED["data"] = d
    jobs = [(name, dataclasses.replace(nc, neural_share=0.0, **kw)) for name, kw in ABLATION.items()]
    with mp.get_context("fork").Pool(workers) as pool:
        return pool.map(_ablate, jobs, chunksize=1)


def lomo_figures(d: Data, m: np.ndarray) -> dict:
    """Per held-out method and family: ROC-AUC (95% bootstrap interval) of its fakes against all real clips."""
    from detector.training.evaluate import roc_auc, roc_auc_ci

    y = d.y.numpy()
    real = y == 0

    def auc(sel: np.ndarray) -> dict:
        yy, mm = np.r_[np.ones(sel.sum()), np.zeros(real.sum())], np.r_[m[sel], m[real]]
        lo, hi = roc_auc_ci(yy, mm) if sel.sum() >= 3 else (float("nan"), float("nan"))
        return {"roc_auc": round(roc_auc(yy, mm), 4), "ci95": [round(lo, 3), round(hi, 3)], "n": int(sel.sum())}

    groups = np.array([c.group for c in d.clips])
    fams = np.array([c.family for c in d.clips])
    per_method = {g: auc((groups == g) & ~real) for g in sorted(set(groups[~real]))}
    per_family = {f: auc((fams == f) & ~real) for f in sorted(set(fams[~real]))}
    lo, hi = roc_auc_ci(y, m)
    return {"per_method": per_method, "per_family": per_family,
            "mean_roc_auc": round(float(np.mean([v["roc_auc"] for v in per_method.values()])), 4),
            "pooled_roc_auc": round(roc_auc(y, m), 4), "pooled_ci95": [round(lo, 3), round(hi, 3)],
            "n_real": int(real.sum()), "n_fake": int((~real).sum())}


def val_figures(d: Data, head: Callable[[torch.Tensor], torch.Tensor]) -> dict:
    """The pack's identity-held-out validation clips (20 frames): ROC-AUC overall and per synthetic family."""
    from detector.training.evaluate import roc_auc

    m = margins(head, d.pva["rgb"], d.pva["res"][0])
    y = d.pva["y"].numpy()
    fam = np.array(d.pva["family"])
    out = {"roc_auc": round(roc_auc(y, m), 4)}
    for f in sorted(set(fam) - {"real"}):
        sel = (fam == f) | (y == 0)
        out[f] = round(roc_auc(y[sel], m[sel]), 4)
    return out


def default_head(init: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """The init weights' own LSTM + head, features (N, T, C) -> logits (N, 2) (the baseline: no corpus
    training)."""
    from detector.weights import load_weights

    model, _ = load_weights(init)
    return model.eval().forward_head


def export(head: TemporalHead, init: Path, nc: NeuralConfig, out: Path, name: str, training: dict,
           trained_on: str):
    """The init's frozen backbone + stream with the trained LSTM + head, saved as product weights."""
    from detector.weights import load_weights, save_weights

    if nc.cell != "lstm":
        raise ValueError("only an LSTM head is the product's architecture (ResNeXt50 + LSTM)")
    model, spec = load_weights(init)
    spec = dataclasses.replace(spec, name=name, lstm_hidden=nc.hidden, lstm_layers=nc.layers,
                               bidirectional=nc.bidirectional, dropout=nc.dropout, calibration={}, cues={},
                               metrics={}, weights_sha256="", threshold=0.5, trained=True, training=training,
                               trained_on=trained_on)
    from detector.model import build_model

    fresh = build_model(spec)
    state = model.state_dict()
    state.update({f"lstm.{k}": v for k, v in head.lstm.state_dict().items()})
    state.update({f"head.{k}": v for k, v in head.head.state_dict().items()})
    fresh.load_state_dict(state)
    return save_weights(fresh.eval(), spec, out)


def real_world_scores(d: Data, lomo_res: dict, weight: float, centre: float, sha256: str, out: Path) -> dict:
    """The corpus's real clips with their leave-one-method-out scores (network margin + the cue at `weight`),
    written as an `evaluate --clips` JSON for `calibrate --real-world`: the threshold is then checked on real
    clips of 11 real-world sources that no model scoring them was trained on (source = repository)."""
    m = np.array(lomo_res["margins"]) + weight * (d.deficit - centre)
    rows = [{"path": c.path, "label": c.label, "margin": round(float(v), 4), "method": f"repository: {c.repo}"}
            for c, v in zip(d.clips, m) if c.label == "real"]
    res = {"weights_sha256": sha256, "clips_dir": "data/neural (real clips, leave-one-method-out scores)",
           "frames": 60, "clips": rows}
    out.write_text(json.dumps(res, indent=1))
    return res


def validation_scores(d: Data, head: Callable[[torch.Tensor], torch.Tensor], weight: float, centre: float, sha256: str, out: Path) -> dict:
    """The pack's identity-held-out validation clips scored as the verdict is (network margin over their 20
    frames + the cue at `weight`), written as an `evaluate --clips` JSON for `calibrate --scores`."""
    m = margins(head, d.pva["rgb"], d.pva["res"][0]) + weight * (d.pva["deficit"].numpy() - centre)
    rows = [{"path": f"pack_val/{i}", "label": "fake" if y else "real", "margin": round(float(v), 4),
             "family": f} for i, (y, v, f) in enumerate(zip(d.pva["y"].tolist(), m, d.pva["family"]))]
    res = {"weights_sha256": sha256, "clips_dir": "data/pack_next (validation identities)", "frames": 20,
           "data": f"{len(rows)} clips of held-out identities from the training pack (GRID/CREMA-D speakers and "
                   "still pseudo-clips, each with a paired reenact / swap / sbi fake; 20 frames)", "clips": rows}
    out.write_text(json.dumps(res, indent=1))
    return res


def unseen_generators_entry(d: Data, m: np.ndarray, calibration: dict, protocol: str) -> dict:
    """The sidecar's `metrics.unseen_generators` from verdict scores m (N,) of the corpus clips (each scored by
    a model that never saw its generator or source): ROC-AUC per held-out method and family with intervals,
    and `fpr`, the share of the corpus's real clips at or above the shipped threshold."""
    from detector.calibration import calibrate, decide

    f = lomo_figures(d, m)
    real = d.y.numpy() == 0
    verdicts = [decide(calibrate(float(v), calibration), calibration["threshold"], calibration.get("band_low"))
                for v in m]
    fake_caught = [v == "FAKE" for v, r in zip(verdicts, real) if not r]
    return {"protocol": protocol, "mean_roc_auc": f["mean_roc_auc"], "per_method": f["per_method"],
            "per_family": f["per_family"], "pooled_roc_auc": f["pooled_roc_auc"], "pooled_ci95": f["pooled_ci95"],
            "fpr": round(float(np.mean([v == "FAKE" for v, r in zip(verdicts, real) if r])), 4),
            "n_real": int(real.sum()), "n_fake": int((~real).sum()),
            "tpr": round(float(np.mean(fake_caught)), 4),
            "inconclusive": round(float(np.mean([v == "INCONCLUSIVE" for v in verdicts])), 4)}


def _store_cue(d: Data, a: argparse.Namespace, spec, lomo_res: dict) -> float:
    """Write the cue block into the new sidecar and the real-world scores file beside the run's results;
    returns the cue's centre."""
    from detector.weights import sidecar_path

    real = d.y.numpy() == 0
    centre = d.real_centre()
    block = {"mouth_detail_deficit": {
        "weight": a.cue_weight, "centre": round(centre, 4),
        "real_p90": round(float(np.quantile(d.deficit[real], 0.9)), 4),
        "real_p95": round(float(np.quantile(d.deficit[real], 0.95)), 4),
        "reference": f"{int(real.sum())} real clips of the neural corpus (training data)",
        "why": "Lip-sync generators re-draw the mouth at a low resolution and paste it back. The weight was chosen "
               "on leave-one-method-out scores of the neural corpus (issue 38), not on the dev set.",
        "measured_on": "the product's 112-px face crops at 60 frames (detector.cues.Regions)"}}
    side = sidecar_path(a.out)
    meta = json.loads(side.read_text())
    meta["cues"] = block
    side.write_text(json.dumps(meta, indent=2))
    real_world_scores(d, lomo_res, a.cue_weight, centre, spec.weights_sha256, a.run / "real_world.json")
    return centre


def _recipe_lomo(a: argparse.Namespace, nc: NeuralConfig) -> dict:
    """--from-lomo's results, checked before anything is trained: they must be the same recipe's."""
    if a.from_lomo is None:
        raise ValueError("--cue-weight needs --from-lomo RUN/lomo_TAG.json (the recipe's out-of-fold scores)")
    res = json.loads(a.from_lomo.read_text())
    if res.get("config") != dataclasses.asdict(nc):
        raise ValueError(f"{a.from_lomo} was made with another recipe config than this final model's")
    return res


def main(argv: list[str] | None = None) -> int:
    from detector.weights import DEFAULT_WEIGHTS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["baseline", "lomo", "final", "ablation"])
    p.add_argument("run", type=Path, help="folder with feat_pack.pt and feat_neural.pt; results are written here")
    p.add_argument("--neural-pack", type=Path, default=Path("data/neural_pack"))
    p.add_argument("--init", type=Path, default=DEFAULT_WEIGHTS)
    p.add_argument("--out", type=Path, help="final: write weights here")
    p.add_argument("--name", default="")
    p.add_argument("--tag", default="", help="name of the result file (lomo_TAG.json)")
    p.add_argument("--cue-weight", type=float, default=None,
                   help="final: store the mouth-detail cue at this weight (centre: the corpus reals' median) and "
                        "write real_world.json from --from-lomo's out-of-fold scores for `calibrate --real-world`")
    p.add_argument("--workers", type=int, default=2, help="lomo: rounds run in this many processes")
    p.add_argument("--from-lomo", type=Path, help="final: the lomo_TAG.json of the same recipe config")
    for f in dataclasses.fields(NeuralConfig):
        kind = (lambda v: v.lower() in ("1", "true", "yes")) if isinstance(f.default, bool) else type(f.default)
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default)
    a = p.parse_args(argv)
    nc = NeuralConfig(**{f.name: getattr(a, f.name) for f in dataclasses.fields(NeuralConfig)})
    lomo_res = _recipe_lomo(a, nc) if a.mode == "final" and a.cue_weight is not None else None
    d = Data(a.run / "feat_pack.pt", a.run / "feat_neural.pt", a.neural_pack)
    if nc.from_init:
        from detector.weights import load_weights

        d.init_head = {k: v for k, v in load_weights(a.init)[0].state_dict().items()
                       if k.startswith(("lstm.", "head."))}
    tag = a.tag or a.mode
    if a.mode == "baseline":  # the init, never trained on the corpus: every clip is unseen
        head = default_head(a.init)
        m = margins(head, d.orig["rgb"], d.orig["res"][0])
        res = {"margins": m.tolist(), **lomo_figures(d, m), "cue": cue_grid(d, m), "val": val_figures(d, head)}
    elif a.mode == "ablation":
        res = {"variants": ablation(d, nc, a.workers)}
    elif a.mode == "lomo":
        res = lomo(d, nc, workers=a.workers)
        res["val"] = val_figures(d, train_head(d, np.arange(len(d.y)), nc))
    else:
        head = train_head(d, np.arange(len(d.y)), nc)
        res = {"val": val_figures(d, head)}
        if a.out:
            spec = export(head, a.init, nc, a.out, a.name or a.out.stem, {"neural_config": dataclasses.asdict(nc)},
                          "see the model card")
            res["weights_sha256"] = spec.weights_sha256
            if a.cue_weight is not None:
                centre = _store_cue(d, a, spec, lomo_res)
                validation_scores(d, head, a.cue_weight, centre, spec.weights_sha256, a.run / "validation.json")
    res["config"] = dataclasses.asdict(nc)
    (a.run / f"lomo_{tag}.json").write_text(json.dumps(res, indent=1))
    print(json.dumps({k: v for k, v in res.items() if k != "margins"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
