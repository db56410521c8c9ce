"""Explanation cost vs classification cost, same process, same clip.

Classification = what the pipeline does per face: ``Detector.features`` (bf16 autocast where the CPU
has it) + ``Detector.p_fake``. Explanation = Grad-CAM on every frame + the temporal attribution on the
cached features (fp32): Integrated Gradients (all steps in one batch through the LSTM + head), occlusion
(T + 1 clips in one batch), gradient x input, gradient norm and the per-frame p(fake), as the report has
them. Budget: explanation <= 2.5x classification. The default Grad-CAM is the fast
hand-written one (explain/gradcam.py); ``--library`` also times pytorch-grad-cam's GradCAM.

Run:  python benchmarks/bench_explain.py [--frames 20] [--repeats 3] [--weights PATH] [--library]
Random init (``--random``) is fine: the cost does not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    from detector.model import build_model, spec_for
    from detector.pipeline import Detector
    from detector.weights import DEFAULT_WEIGHTS, load_weights
    from explain.attribution import DEFAULT_STEPS
    from explain.gradcam import DEFAULT_METHOD, gradcam
    from explain.temporal import temporal_importance

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--random", action="store_true", help="random init of spec_for('resnext50_lstm')")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--library", action="store_true", help="also time pytorch-grad-cam's GradCAM")
    args = ap.parse_args(argv)

    if args.random:
        spec = spec_for("resnext50_lstm")
        model = build_model(spec).eval()
    else:
        model, spec = load_weights(args.weights)
    det = Detector(model, spec, args.precision)
    crops = np.random.default_rng(0).integers(0, 256, (args.frames, args.size, args.size, 3), dtype=np.uint8)
    feats = det.features(crops)

    def classify():
        det.p_fake(det.features(crops))

    def explain(method=DEFAULT_METHOD):
        gradcam(det.model, crops, "fake", method=method)
        temporal_importance(det.model, feats, "fake")

    # Interleaved (classify, explain) pairs: this machine's load drifts, a ratio within a pair is fairer.
    classify(), explain()  # warm-up
    pairs = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        classify()
        t1 = time.perf_counter()
        explain()
        pairs.append((t1 - t, time.perf_counter() - t1))
    t_cls = statistics.median(p[0] for p in pairs)
    t_exp = statistics.median(p[1] for p in pairs)
    ratio = statistics.median(e / c for c, e in pairs)
    t_cam = _median_time(lambda: gradcam(det.model, crops, "fake"), args.repeats)
    t_tem = _median_time(lambda: temporal_importance(det.model, feats, "fake"), args.repeats)
    print(f"{spec.name} ({spec.backbone}, lstm {spec.lstm_hidden}), T={args.frames}, "
          f"{args.size}x{args.size}, "
          f"{torch.get_num_threads()} threads, classification precision {det.model_info()['precision']}; "
          f"median of {args.repeats} after warm-up")
    print(f"classification (features + p_fake): {t_cls:.3f} s")
    print(f"explanation ({DEFAULT_METHOD} Grad-CAM + temporal attribution): {t_exp:.3f} s "
          f"(Grad-CAM {t_cam:.3f} s, temporal {t_tem:.3f} s: IG {DEFAULT_STEPS} steps, occlusion, gradients)")
    verdict = "OK" if ratio <= 2.5 else "OVER"
    print(f"ratio explanation / classification (median of per-pair ratios): {ratio:.2f}x "
          f"(budget 2.5x: {verdict})")
    if args.library:
        t_lib = _median_time(lambda: explain("library"), args.repeats)
        print(f"explanation (pytorch-grad-cam GradCAM + temporal): {t_lib:.3f} s, ratio {t_lib / t_cls:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
