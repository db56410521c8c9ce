"""Interpolate a fine-tuned backbone with the one it started from, in weight space (WiSE-FT).

Why: every backbone fine-tuned on the synthetic families gains on held-out identities and loses about as much
on the real-world dev set (issue 15, stops 26-35). Wortsman et al. (CVPR 2022, "Robust fine-tuning of zero-shot
models") found that the plain average of a model's weights before and after fine-tuning keeps most of the
in-distribution gain and more of the robustness than either end. Here the two ends share their start (the
GPU run fine-tunes the default's own backbone, `train-pack --stage1-only`), so the backbones lie in one basin
and their mix is a working network; it is a backbone only: the clip stage is trained on its features
afterwards (`train-residual --init OUT --freeze-stream`).

    python -m research.wise weights/DEFAULT.safetensors runs/gpu4/NAME.safetensors --alpha 0.5 \\
        --out runs/wise50/NAME-wise50.safetensors

The output is `base` with backbone = (1 - alpha) * base + alpha * tuned (every floating tensor, batch-norm
running statistics too; integer counters from `tuned`); its residual stream, LSTM and head are base's.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


def interpolate_backbone(base, tuned, alpha: float):
    """base, tuned: loaded ResNeXtLSTM of one architecture -> base with the mixed backbone (in place)."""
    from detector.errors import WeightsError
    from detector.weights import check_state_dict

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1] (0: base's backbone, 1: tuned's), not {alpha}")
    a, b = base.backbone.state_dict(), tuned.backbone.state_dict()
    try:
        check_state_dict(base.backbone, b, "the tuned backbone")
    except WeightsError as e:
        raise WeightsError(f"{e}: both weights must have one backbone architecture") from None
    mixed = {k: ((1 - alpha) * a[k].float() + alpha * b[k].float()).to(a[k].dtype) if a[k].is_floating_point()
             else b[k] for k in a}
    base.backbone.load_state_dict(mixed)
    return base


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("wise-ft", help="mix a fine-tuned backbone with the one it started from (weight space)")
    p.add_argument("base", type=Path, help="weights the fine-tune started from (their stream, LSTM, head are kept)")
    p.add_argument("tuned", type=Path, help="weights with the fine-tuned backbone (e.g. train-pack --stage1-only)")
    p.add_argument("--alpha", type=float, default=0.5, help="share of the tuned backbone (0-1)")
    p.add_argument("--out", type=Path, required=True, help="write the mixed weights here (+ .json sidecar)")
    p.set_defaults(func=_cmd)


def _cmd(a: argparse.Namespace) -> int:
    from detector.weights import load_weights, save_weights

    (base, bspec), (tuned, tspec) = load_weights(a.base), load_weights(a.tuned)
    model = interpolate_backbone(base, tuned, a.alpha)
    recipe = (f"backbone = {1 - a.alpha:g} x {bspec.name} (sha256 {bspec.weights_sha256[:12]}) + {a.alpha:g} x "
              f"{tspec.name} (sha256 {tspec.weights_sha256[:12]}), weight-space interpolation (wise-ft); stream, "
              f"LSTM and head: the first's (an intermediate: train the clip stage on it). Tuned: "
              f"{tspec.training.get('recipe', '?')}")
    spec = dataclasses.replace(bspec, name=a.out.name.removesuffix(".safetensors"), calibration={}, cues={},
                               metrics={}, weights_sha256="", threshold=0.5,
                               trained_on=f"{tspec.trained_on} Backbone: {a.alpha:g} of that fine-tuned one, mixed "
                                          f"in weight space with the one it started from ({bspec.name}).",
                               limits=["An intermediate, not a detector: its LSTM + head were trained on the "
                                       "base backbone's features. Train the clip stage on it (train-residual)."],
                               training={"recipe": recipe, "alpha": a.alpha, "base": bspec.weights_sha256,
                                         "tuned": tspec.weights_sha256, "tuned_training": tspec.training})
    spec = save_weights(model, spec, a.out)  # float16, as every weights file
    print(f"wrote {a.out} (sha256 {spec.weights_sha256[:12]}): backbone {1 - a.alpha:g} x base + {a.alpha:g} x tuned")
    return 0


def main(argv: list[str] | None = None) -> int:
    from research import run_command

    return run_command(add_parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
