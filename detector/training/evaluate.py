"""Metrics for a detector on prepared clips: video- and frame-level, overall and per manipulation type.

Accuracy, precision, recall, F1 (positive class = FAKE), ROC-AUC (Mann-Whitney, ties counted half),
log loss, EER, confusion matrix, and a ROC curve PNG. Implemented in numpy so the numbers are ours to
check (tests compare them with hand-computed values).

    deepfake-forensics evaluate data/prepared --split test --json-out runs/grid/test.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def roc_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold (descending), starting at (0, 0)."""
    order = np.argsort(-p, kind="mergesort")
    y, p = y[order], p[order]
    distinct = np.r_[np.flatnonzero(np.diff(p)), len(p) - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    pos, neg = max(y.sum(), 1), max(len(y) - y.sum(), 1)
    return np.r_[0, fps / neg], np.r_[0, tps / pos], np.r_[np.inf, p[distinct]]


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """P(score of a random fake > score of a random real), ties counted half. NaN if one class is absent."""
    pos, neg = p[y == 1], p[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def _auc_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """ROC-AUC of each row of p (B, N) against labels y (N,), ties counted half (as `roc_auc`)."""
    out = np.empty(len(p))
    for i, row in enumerate(p):
        neg, pos = np.sort(row[y == 0]), row[y == 1]
        below, upto = np.searchsorted(neg, pos, "left"), np.searchsorted(neg, pos, "right")
        out[i] = (below + 0.5 * (upto - below)).sum() / (len(pos) * len(neg))
    return out


def _boot_index(y: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, N) indices resampling reals and fakes separately (each class keeps its size)."""
    rng = np.random.default_rng(seed)
    parts = [rng.choice(np.flatnonzero(y == c), size=(n_boot, int((y == c).sum()))) for c in (0, 1)]
    return np.concatenate(parts, 1)


def roc_auc_ci(y: np.ndarray, p: np.ndarray, n_boot: int = 2000, level: float = 0.95,
               seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `roc_auc` (reals and fakes resampled separately); (nan, nan) if a
    class is absent. Why: on a few dozen clips an AUC moves by +-0.1 with the clips drawn, so a figure
    without its interval invites chasing noise (74 dev-set clips: half-width about 0.13)."""
    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=np.float64)
    if y.sum() == 0 or y.sum() == len(y):
        return float("nan"), float("nan")
    idx = _boot_index(y, n_boot, seed)
    a = _auc_rows(y[idx[0]], p[idx])  # every row has the same labels: classes are resampled in place
    q = (1 - level) / 2
    return float(np.quantile(a, q)), float(np.quantile(a, 1 - q))


def roc_auc_diff_ci(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, n_boot: int = 2000, level: float = 0.95,
                    seed: int = 0) -> tuple[float, float, float]:
    """AUC(b) - AUC(a) on the same clips, with a paired percentile bootstrap interval: (diff, lo, hi).
    An interval that contains 0 means the clips cannot tell the two models apart.

    p_a, p_b: (N,) scores, or (K, N): K readings of the same clips (e.g. K frame samplings); then the
    difference is the mean over the K of AUC(b_k) - AUC(a_k), every reading resampled with the same clips."""
    y = np.asarray(y).astype(int)
    p_a, p_b = np.atleast_2d(np.asarray(p_a, dtype=np.float64)), np.atleast_2d(np.asarray(p_b, dtype=np.float64))
    if y.sum() == 0 or y.sum() == len(y):
        return float("nan"), float("nan"), float("nan")
    idx = _boot_index(y, n_boot, seed)
    d = np.mean([_auc_rows(y[idx[0]], b[idx]) - _auc_rows(y[idx[0]], a[idx]) for a, b in zip(p_a, p_b)], 0)
    q = (1 - level) / 2
    diff = float(np.mean([roc_auc(y, b) - roc_auc(y, a) for a, b in zip(p_a, p_b)]))
    return diff, float(np.quantile(d, q)), float(np.quantile(d, 1 - q))


def eer(y: np.ndarray, p: np.ndarray) -> float:
    """Equal error rate: where the false-positive rate meets the false-negative rate (interpolated)."""
    fpr, tpr, _ = roc_curve(y, p)
    fnr = 1 - tpr
    i = int(np.argmax(fpr >= fnr))
    if i == 0:
        return float(fpr[0])
    # Linear interpolation between points i-1 and i of (fpr - fnr) crossing zero.
    d0, d1 = fpr[i - 1] - fnr[i - 1], fpr[i] - fnr[i]
    a = d0 / (d0 - d1) if d1 != d0 else 0.0
    return float(fpr[i - 1] + a * (fpr[i] - fpr[i - 1]))


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict:
    """y: 0/1 labels (1 = fake), p: p_fake. Returns a dict of floats plus the confusion matrix."""
    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=np.float64)
    pred = (p >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    pc = np.clip(p, 1e-7, 1 - 1e-7)
    return {"n": int(len(y)), "accuracy": (tp + tn) / max(len(y), 1), "precision": precision, "recall": recall,
            "f1": f1, "roc_auc": roc_auc(y, p), "log_loss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))),
            "eer": eer(y, p) if 0 < y.sum() < len(y) else float("nan"), "threshold": threshold,
            "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp}}


@torch.no_grad()
def predict(model, x: np.ndarray, precision: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Video- and frame-level p_fake: x uint8 (N, T, H, W, 3) RGB -> ((N,), (N, T)).

    Frame-level: the head on each frame's features alone (a T = 1 clip), i.e. what the model says from
    one frame without temporal context.
    """
    from detector.pipeline import Detector

    det = Detector(model, model.spec, precision)
    vids, frames = [], []
    for clip in x:
        f = det.features(clip)  # (1, T, C)
        vids.append(torch.softmax(model.forward_head(f), -1)[0, 1].item())
        frames.append(single_frame_p_fake(model, f))
    return np.array(vids), np.stack(frames)


def single_frame_p_fake(model, features: torch.Tensor) -> np.ndarray:
    """p_fake of each frame on its own: features (1, T, C) -> (T,), each frame run as a clip of one."""
    return torch.softmax(model.forward_head(features.transpose(0, 1)), -1)[:, 1].numpy()


def evaluate(model, spec, prepared: Path, split: str = "test", roc_png: Path | None = None) -> dict:
    from detector.training.prepare import load_prepared

    x, y, rows = load_prepared(prepared, split)
    pv, pf = predict(model, x)
    methods = sorted({r["method"] for r in rows if r["label"] == 1})
    out = {"split": split, "n_clips": int(len(y)), "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum()),
           "identities": sorted({r["identity"] for r in rows}),
           "video": binary_metrics(y, pv, spec.threshold),
           "frame": binary_metrics(np.repeat(y, pf.shape[1]), pf.ravel(), spec.threshold),
           "per_method": {}}
    meth = np.array([r["method"] for r in rows])
    for m in methods:
        sel = (y == 0) | (meth == m)
        out["per_method"][m] = binary_metrics(y[sel], pv[sel], spec.threshold)
    # Per identity (its real clips vs the fakes made on its face): shows whether one speaker, e.g. the
    # only one with high-resolution clips, carries the errors.
    ident = np.array([r["identity"] for r in rows])
    out["per_identity"] = {}
    for i in out["identities"]:
        sel = ident == i
        yi, pi = y[sel], pv[sel]
        out["per_identity"][i] = {"n_real": int((yi == 0).sum()), "n_fake": int((yi == 1).sum()),
                                  "roc_auc": nan_to_none(roc_auc(yi, pi)),
                                  "accuracy": float(((pi >= spec.threshold) == yi).mean()),
                                  "mean_p_fake_real": float(pi[yi == 0].mean()) if (yi == 0).any() else None,
                                  "mean_p_fake_fake": float(pi[yi == 1].mean()) if (yi == 1).any() else None}
    if roc_png is not None:
        _plot_roc(y, pv, meth, methods, roc_png)
    return out


def _plot_roc(y, p, meth, methods, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot(fpr, tpr, label=f"all (AUC {roc_auc(y, p):.3f})")
    for m in methods:
        sel = (y == 0) | (meth == m)
        f, t, _ = roc_curve(y[sel], p[sel])
        ax.plot(f, t, label=f"real vs {m} (AUC {roc_auc(y[sel], p[sel]):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_prepared_arguments(p: argparse.ArgumentParser) -> None:
    """The PREPARED mode's arguments of `evaluate` (the parser itself is built in evaluate_clips.py)."""
    p.add_argument("prepared", type=Path, nargs="?", help="prepared folder (omit with --clips)")
    p.add_argument("--weights", type=Path, help="default: the bundled weights")
    p.add_argument("--split", default="test")
    p.add_argument("--json-out", type=Path)
    p.add_argument("--roc", type=Path, help="ROC curve PNG")
    p.add_argument("--update-sidecar", action="store_true",
                   help="store these figures in the weights' JSON sidecar (metrics.<split>, or metrics.devset "
                        "with --clips); the tensor file and its sha256 are unchanged")


def cmd_prepared(a: argparse.Namespace) -> int:
    from detector.weights import DEFAULT_WEIGHTS, load_weights

    model, spec = load_weights(a.weights or DEFAULT_WEIGHTS)
    res = evaluate(model, spec, a.prepared, a.split, a.roc)
    res["weights_sha256"] = spec.weights_sha256
    text = json.dumps(res, indent=2)
    if a.json_out:
        a.json_out.write_text(text + "\n")
    v = res["video"]
    print(f"{a.split}: {res['n_clips']} clips ({res['n_real']} real, {res['n_fake']} fake), "
          f"ROC-AUC {v['roc_auc']:.4f}, acc {v['accuracy']:.4f}, F1 {v['f1']:.4f}, EER {v['eer']:.4f}, "
          f"log loss {v['log_loss']:.4f}; frame-level ROC-AUC {res['frame']['roc_auc']:.4f}")
    for m, r in res["per_method"].items():
        print(f"  real vs {m}: ROC-AUC {r['roc_auc']:.4f}, acc {r['accuracy']:.4f}")
    for i, r in res["per_identity"].items():
        print(f"  {i}: {r['n_real']} real, {r['n_fake']} fake, ROC-AUC {r['roc_auc']:.4f}, acc {r['accuracy']:.4f}")
    if a.update_sidecar:
        from detector.weights import sidecar_path, store_metrics

        summary = {k: res[k] for k in ("n_clips", "n_real", "n_fake", "identities")}
        summary.update({"video": _rounded(res["video"]), "frame": _rounded(res["frame"]),
                        "per_method": {m: _rounded(r) for m, r in res["per_method"].items()},
                        "per_identity": {i: _rounded(r) for i, r in res["per_identity"].items()},
                        "command": f"deepfake-forensics evaluate PREPARED --split {a.split}"})
        store_metrics(a.weights or DEFAULT_WEIGHTS, a.split, summary)
        print(f"stored in {sidecar_path(a.weights or DEFAULT_WEIGHTS).name}")
    return 0


def nan_to_none(v):
    """None for a float NaN (a group with one class has no ROC-AUC), so the JSON stays valid; else v."""
    return None if isinstance(v, float) and np.isnan(v) else v


def _rounded(m: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()}
