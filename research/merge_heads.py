"""Merge K LSTM + head models that share one backbone and residual stream into ONE ResNeXtLSTM (an ensemble).

Why: heads trained on the same frozen features with different seeds (different training clips, init and
batch order) rank the dev set 0.74-0.77 (issue 15, stop 25): the seed is noise, and shipping the best seed
on the dev set is a choice made on the dev set. The mean of their clip logits keeps what they agree on.

Exact, not approximate: K single-layer LSTMs of hidden size H read the same input, so one LSTM of hidden
size K*H whose weights are block-diagonal per gate computes all K of them side by side (PyTorch orders the
gate rows i, f, g, o, each H rows per member, so member k's rows of gate q sit at q*K*H + k*H). The head
Linear(K*H, 2) holds each member's head weights divided by K and the mean of their biases, so the clip logit
(head of the time-mean of the LSTM outputs) and every per-frame logit are the means of the members'. The
result is an ordinary `resnext50_lstm` with `lstm_hidden` = K*H: the app, Grad-CAM and the temporal
explanations run on it unchanged.

    python -m research.merge_heads A.safetensors B.safetensors C.safetensors --out weights/NAME.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch


def _check_same(models, specs) -> None:
    """Every member must share the backbone, the residual stream and the LSTM's shape (or merging lies)."""
    from detector.errors import WeightsError

    ref, rspec = models[0], specs[0]
    if rspec.lstm_layers != 1 or rspec.bidirectional:
        raise WeightsError("merge-heads handles a single-layer, one-directional LSTM only")
    for m, s in zip(models[1:], specs[1:]):
        for f in ("architecture", "backbone", "lstm_hidden", "lstm_layers", "bidirectional", "residual_width",
                  "residual_pairs", "sequence_length", "input_size", "mean", "std", "channel_order"):
            if getattr(s, f) != getattr(rspec, f):
                raise WeightsError(f"{s.name} and {rspec.name} differ in {f} ({getattr(s, f)!r} vs "
                                   f"{getattr(rspec, f)!r}): only heads on one architecture can be merged")
        for part in ("backbone", "residual"):
            a, b = getattr(ref, part), getattr(m, part)
            if (a is None) != (b is None) or a is not None and any(
                    not torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values())):
                raise WeightsError(f"{s.name}'s {part} differs from {rspec.name}'s: merged heads must read the "
                                   "same features (train them with `train-residual --freeze-stream` on one init)")


def merge_heads(models: list, specs: list, name: str):
    """models: K loaded ResNeXtLSTM (eval) with one backbone + stream -> (merged model, its spec).

    The merged model's logits equal the mean of the members' logits (clip and per frame)."""
    from detector.model import build_model

    if len(models) < 2:
        raise ValueError("merge-heads needs at least 2 models")
    _check_same(models, specs)
    k, h = len(models), specs[0].lstm_hidden
    spec = dataclasses.replace(specs[0], name=name, lstm_hidden=k * h, calibration={}, cues={}, metrics={},
                               weights_sha256="", threshold=0.5)
    merged = build_model(spec).eval()
    merged.backbone.load_state_dict(models[0].backbone.state_dict())
    if merged.residual is not None:
        merged.residual.load_state_dict(models[0].residual.state_dict())
    lstm = merged.lstm
    with torch.no_grad():
        for name_ in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(lstm, name_).zero_()
        for j, m in enumerate(models):
            for q in range(4):  # gates i, f, g, o
                dst = slice(q * k * h + j * h, q * k * h + (j + 1) * h)
                src = slice(q * h, (q + 1) * h)
                lstm.weight_ih_l0[dst] = m.lstm.weight_ih_l0[src]
                lstm.weight_hh_l0[dst, j * h:(j + 1) * h] = m.lstm.weight_hh_l0[src]
                lstm.bias_ih_l0[dst] = m.lstm.bias_ih_l0[src]
                lstm.bias_hh_l0[dst] = m.lstm.bias_hh_l0[src]
            merged.head.weight[:, j * h:(j + 1) * h] = m.head.weight / k
        merged.head.bias.copy_(torch.stack([m.head.bias for m in models]).mean(0))
    return merged, spec


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge-heads", help="merge LSTM + head models on one backbone and stream into one "
                                           "ensemble model (mean of their logits)")
    p.add_argument("members", nargs="+", type=Path, help="weights (.safetensors) trained on the same frozen features")
    p.add_argument("--out", type=Path, required=True, help="write the merged weights here (+ .json sidecar)")
    p.set_defaults(func=_cmd)


def _cmd(a: argparse.Namespace) -> int:
    from detector.errors import InputError
    from detector.weights import load_weights, save_weights

    if len(a.members) < 2:
        raise InputError("merge-heads needs at least 2 weights files")
    loaded = [load_weights(p) for p in a.members]
    models, specs = [m for m, _ in loaded], [s for _, s in loaded]
    name = a.out.name.removesuffix(".safetensors")
    merged, spec = merge_heads(models, specs, name)
    # Members by name, hash, seed and validation AUC; the recipe and lineage once (the first member's).
    members = [{"name": s.name, "weights_sha256": s.weights_sha256,
                "head_seed": s.training.get("residual_config", {}).get("head_seed"),
                "val_auc": s.training.get("val_clip_auc_per_family", {}).get("all")} for s in specs]
    training = {
        "recipe": (f"the mean of {len(specs)} LSTM + head models trained on the same frozen backbone and residual "
                   f"stream with different seeds (merge-heads: one LSTM of hidden {spec.lstm_hidden}, block-"
                   f"diagonal; exact); each member: {specs[0].training.get('recipe', '?')}"),
        "init": specs[0].training.get("init", {}), "members": members,
        "residual_config": specs[0].training.get("residual_config", {}), "pack": specs[0].training.get("pack", {}),
        "steps": sum(s.training.get("steps", 0) for s in specs),
        "wall_time_s": round(sum(s.training.get("wall_time_s", 0) for s in specs), 1)}
    spec = dataclasses.replace(spec, trained=True, training=training,
                               trained_on=specs[0].trained_on + f"; {len(specs)} seeds' heads averaged")
    spec = save_weights(merged, spec, a.out)
    print(f"merged {len(specs)} heads into {a.out} (sha256 {spec.weights_sha256[:12]}, LSTM hidden {spec.lstm_hidden})")
    return 0


def main(argv: list[str] | None = None) -> int:
    from research import run_command

    return run_command(add_parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
