"""The model pass on an fp32 CPU: speed of each way to run it, and whether the shipped one changes any verdict.

`speed`: forward_features of one 60-frame face track (the product's default T; crops of the GRID test clip,
each with its successor), interleaved medians in one process, as ratios to the plain fp32 NCHW model:
- `fp32`: the model as built (NCHW weights, the trunk in PyTorch), the baseline;
- `channels_last`: fp32 on NHWC weights, the PyTorch engine (`Detector(..., engine="torch")`);
- `onnxruntime`: the trunk on ONNX Runtime (detector/onnx_trunk.py), what `Detector` ships for fp32;
- `int8`: the trunk (normalise + ResNeXt50 + pool) statically quantised with torch.ao FX (x86 engine,
  per-channel weights), ranges observed on crops of the two GRID test clips; not shipped (see `agree`);
- `int8_ort`: the ONNX Runtime trunk with QuantizeLinear / DequantizeLinear around every convolution (uint8
  activations, ranges the 99.99th percentiles on the same crops; int8 per-channel weights), which ONNX Runtime
  fuses into QLinearConv; not shipped;
- `bf16`: autocast, only where the CPU has native bf16 (elsewhere it is emulated and slower).

Then the trunk alone (`Detector._run_trunk`, 60 crops) on ONNX Runtime fp32 and int8, with its arithmetic
(FLOPs counted by torch.utils.flop_counter) per second beside the CPU's fp32 peak: 2 FMA units x 8 floats x 2
FLOPs per cycle per core (AVX2 + FMA, Zen 3) at the clock /proc/cpuinfo names (a VM names the base clock; cores
may boost above it). It says how much any fp32 engine can still gain.

`agree`: every clip read and its faces found once (the product's path, T = 60), then classified by the plain
fp32 model and by the shipped paths (`runtime.Detector` for explanations, `lean.LeanDetector` without; and
`--int8`): verdict agreement, ROC-AUC of each (NO_FACE clips left out)
and the paired bootstrap interval of the change. Clips: the dev set (data/devset and its manifest; read for this
check only, nothing is fitted on them) or, with `--manifest none`, a folder of real/ and fake/ clips (the
validation clips data/val_all). Writes one JSON line per clip to `--out` as it goes.

    python benchmarks/bench_model.py speed [--repeats 5]
    python benchmarks/bench_model.py agree --clips data/devset --manifest ../shared/devset/MANIFEST.tsv [--int8]
    python benchmarks/bench_model.py agree --clips data/val_all --manifest none
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector import onnx_trunk  # noqa: E402
from detector.machine import cpu_name  # noqa: E402
from detector.pipeline import AnalysisConfig, classify, prepare  # noqa: E402
from detector.runtime import Detector, _cpu_has_bf16, get_model  # noqa: E402
from detector.weights import DEFAULT_WEIGHTS, load_weights  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"


def grid_crops(frames: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Face crops uint8 (T, 112, 112, 3) RGB of the GRID test clips and each one's successor (same boxes)."""
    crops, parts = [], []
    for clip in sorted(FIXTURES.glob("*.mpg")):
        prep = prepare(clip, AnalysisConfig(frames=frames // 2), partners=True)
        crops.append(prep.crops[0])
        parts.append(prep.partner_crops[0])
    return np.concatenate(crops)[:frames], np.concatenate(parts)[:frames]


class _Trunk(torch.nn.Module):
    """normalise + backbone + pool of a ResNeXtLSTM: (B, 3, H, W) float [0, 255] RGB -> (B, C)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.normalize, self.backbone, self.pool = model.normalize, model.backbone, model.pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.backbone(self.normalize(x))).flatten(1)


def int8_detector(calib: np.ndarray) -> Detector:
    """The default model with its trunk statically quantised (FX, x86 engine; not shipped); calib: uint8
    (B, H, W, 3) RGB crops whose activation ranges are observed."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    model, spec = load_weights(DEFAULT_WEIGHTS)
    model.eval()
    torch.backends.quantized.engine = "x86"
    x = torch.from_numpy(calib).permute(0, 3, 1, 2).float()
    trunk = prepare_fx(_Trunk(model).eval(), get_default_qconfig_mapping("x86"), (x[:2],))
    with torch.inference_mode():
        for chunk in x.split(16):
            trunk(chunk)
    return _Int8Detector(convert_fx(trunk), model, spec)


class _Int8Detector(Detector):
    """A Detector whose trunk is the quantised one: its pooled features (B, C) stand in for the last block's
    maps as (B, C, 1, 1), whose spatial mean they are; the rest of the model pass is the shipped one."""

    def __init__(self, trunk: torch.nn.Module, model: torch.nn.Module, spec) -> None:
        super().__init__(model, spec, "fp32", "torch")
        self.model.to(memory_format=torch.contiguous_format)
        self.quantised = trunk

    def _run_trunk(self, crops: np.ndarray) -> torch.Tensor:
        return self.quantised(torch.from_numpy(crops).permute(0, 3, 1, 2).float())[:, :, None, None]


def activation_ranges(model: torch.nn.Module, calib: np.ndarray, pct: float = 99.99) -> dict[str, tuple]:
    """{module name: (lo, hi)} of every activation the ONNX trunk quantises (onnx_trunk.Graph.activation: each
    folded BatchNorm's output, each block's, the stem's MaxPool's), observed on calib uint8 (B, H, W, 3) RGB; lo
    and hi the (100 - pct)th and pct-th percentiles of up to 2**24 sampled values, before any ReLU."""
    seen: dict[str, list[torch.Tensor]] = {}
    trunk = model.backbone
    mods = {name: m for name, m in trunk.named_modules()
            if isinstance(m, torch.nn.BatchNorm2d) or name == "maxpool" or name.count(".") == 1}

    def hook(name):
        return lambda _m, _i, out: seen.setdefault(name, []).append(out.detach().flatten())

    handles = [m.register_forward_hook(hook(name)) for name, m in mods.items()]
    with torch.inference_mode():
        for chunk in torch.from_numpy(calib).permute(0, 3, 1, 2).float().split(16):
            trunk(model.normalize(chunk))
    for h in handles:
        h.remove()
    gen, out = torch.Generator().manual_seed(0), {}
    for k, parts in seen.items():
        v = torch.cat(parts)
        v = v[torch.randperm(v.numel(), generator=gen)[:1 << 24]]
        out[k] = (float(torch.quantile(v, 1 - pct / 100)), float(torch.quantile(v, pct / 100)))
    return out


class _QdqGraph(onnx_trunk.Graph):
    """The ONNX trunk with every activation quantised to uint8 (per tensor) and every weight to int8 (per output
    channel, symmetric): QuantizeLinear -> DequantizeLinear pairs that ONNX Runtime fuses into QLinearConv."""

    def __init__(self, ranges: dict[str, tuple]) -> None:
        super().__init__()
        self.ranges = ranges

    def weight(self, w: np.ndarray) -> str:
        scale = np.maximum(np.abs(w).reshape(len(w), -1).max(1), 1e-12) / 127
        q = np.clip(np.round(w / scale[:, None, None, None]), -127, 127)
        return self.op("DequantizeLinear", [self.const("wq", q, np.int8), self.const("ws", scale),
                                            self.const("wz", np.zeros(len(w)), np.int8)], "wdq", axis=0)

    def activation(self, x: str, name: str, nonneg: bool) -> str:
        lo, hi = self.ranges[name]
        lo, hi = (0.0, max(hi, 0.0)) if nonneg else (min(lo, 0.0), max(hi, 0.0))
        scale = max(hi - lo, 1e-8) / 255
        s, z = self.const("s", np.float32(scale)), self.const("z", np.uint8(round(-lo / scale)), np.uint8)
        return self.op("DequantizeLinear", [self.op("QuantizeLinear", [x, s, z], "q"), s, z], "dq")


def int8_ort_detector(calib: np.ndarray) -> Detector:
    """The shipped ONNX Runtime path with the int8 QDQ trunk (`_QdqGraph`; not shipped); calib as int8_detector's."""
    model, spec = load_weights(DEFAULT_WEIGHTS)
    det = Detector(model, spec, "fp32", "onnxruntime")
    det._ort = onnx_trunk.OrtTrunk(det.model, graph=_QdqGraph(activation_ranges(det.model, calib)))
    return det


def roofline(paths: dict[str, Detector], crops: np.ndarray, repeats: int) -> None:
    """The trunk alone on 60 crops, each engine's FLOP/s against the CPU's fp32 peak (module docstring)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = paths["onnxruntime"].model
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        model.backbone(model.normalize(torch.zeros(len(crops), 3, *crops.shape[1:3])))
    flops = fc.get_total_flops()
    mhz = max(float(ln.split(":")[1]) for ln in Path("/proc/cpuinfo").read_text().splitlines()
              if ln.startswith("cpu MHz"))
    peak = (os.cpu_count() or 1) * 2 * 8 * 2 * mhz * 1e6
    print(f"the trunk alone, {len(crops)} crops, {flops / 1e9:.0f} GFLOP; fp32 peak of {os.cpu_count()} cores "
          f"at {mhz:.0f} MHz: {peak / 1e9:.0f} GFLOP/s:")
    times: dict[str, list[float]] = {k: [] for k in ("onnxruntime", "int8", "int8_ort")}
    for _ in range(repeats):
        for k in times:
            t = time.perf_counter()
            paths[k]._run_trunk(crops)
            times[k].append(time.perf_counter() - t)
    for k, ts in times.items():
        m = statistics.median(ts)
        print(f"  {k:<14} {m:6.2f} s  {flops / m / 1e9:5.0f} GFLOP/s ({'fp32-equivalent, ' * (k != 'onnxruntime')}"
              f"{flops / m / peak:.0%} of the fp32 peak)")


def plain_detector() -> Detector:
    """The model as built, fp32 NCHW: the reference every fast path is compared with."""
    model, spec = load_weights(DEFAULT_WEIGHTS)
    det = Detector(model, spec, "fp32", "torch")
    det.model.to(memory_format=torch.contiguous_format)
    return det


def speed(a: argparse.Namespace) -> None:
    crops, parts = grid_crops(60)
    base = plain_detector()
    fast = Detector(load_weights(DEFAULT_WEIGHTS)[0], base.spec, "fp32", "torch")
    paths = {"fp32": base, "channels_last": fast}
    paths["onnxruntime"] = Detector(load_weights(DEFAULT_WEIGHTS)[0], base.spec, "fp32", "onnxruntime")
    paths["int8"] = int8_detector(crops)
    paths["int8_ort"] = int8_ort_detector(np.concatenate([crops, parts]))
    if _cpu_has_bf16():
        paths["bf16"] = Detector(load_weights(DEFAULT_WEIGHTS)[0], base.spec, "bf16")
    print(f"CPU {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"native bf16: {_cpu_has_bf16()}; load average {os.getloadavg()[0]:.1f} at start (a shared machine)")
    ref = base.margin(base.features(crops, parts))
    times: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(a.repeats):
        for k, det in paths.items():
            t = time.perf_counter()
            det.features(crops, parts)
            times[k].append(time.perf_counter() - t)
    b = statistics.median(times["fp32"])
    print(f"forward_features of T=60 crops (+ successors), medians of {a.repeats} interleaved runs:")
    for k, det in paths.items():
        m = statistics.median(times[k])
        print(f"  {k:<14} {m:6.2f} s  {m / b:5.2f}x fp32   margin {det.margin(det.features(crops, parts)):+.4f} "
              f"(fp32 {ref:+.4f})")
    roofline(paths, crops, a.repeats)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


def agree(a: argparse.Namespace) -> None:
    if a.from_jsonl:
        res = [json.loads(x) for x in a.from_jsonl.read_text().splitlines() if x.strip()]
        return summarise(res, [k for k in res[0] if isinstance(res[0][k], dict) and k != "fp32"])
    def local(r: dict) -> Path:  # the manifest names clips/<label>/...; the restored folder holds <label>/...
        p = Path(r["local_file"])
        return a.clips / (p.relative_to("clips") if p.parts[0] == "clips" else p)

    if str(a.manifest) == "none":  # a folder of real/ and fake/ clips at any depth (recipe/heldout_clips.sh)
        from detector.training.evaluate_clips import find_clips

        rows = [{"local_file": rel, "label": label} for rel, label in find_clips(a.clips)]
    else:
        rows = [r for r in csv.DictReader(open(a.manifest), delimiter="\t") if local(r).is_file()]
    if not rows:
        raise SystemExit(f"no clip of {a.manifest} found under {a.clips}")
    # A seeded shuffle: a run stopped early (a busy shared CPU) has still scored a mix of families and labels.
    rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))][:a.limit or None]
    base = plain_detector()
    paths = {"shipped": Detector(load_weights(DEFAULT_WEIGHTS)[0], base.spec, "auto"),
             "lean": get_model(explain=False)}  # what an analysis without explanations runs (detector/lean.py)
    if a.int8:
        paths["int8"] = int8_detector(grid_crops(60)[0])
    print(f"CPU {cpu_name()}; {len(rows)} clips of {a.clips}, T = {a.frames}; shipped path: "
          f"{paths['shipped'].model_info()['precision']}, engine {paths['shipped'].engine}", flush=True)
    cfg = AnalysisConfig(frames=a.frames)
    out = open(a.out, "w") if a.out else None
    res = []
    for r in rows:
        prep = prepare(local(r), cfg, partners=True)
        line = {"clip": r["local_file"], "label": int(r["label"] == "fake")}
        for name, det in {"fp32": base, **paths}.items():
            rep = classify(dataclasses.replace(prep, warnings=list(prep.warnings), timings=dict(prep.timings)),
                           cfg, detector=det)
            line[name] = {"verdict": rep.verdict, "p_fake": rep.p_fake,
                          "margin": max((f.margin for f in rep.faces), default=None)}
        res.append(line)
        if out:
            out.write(json.dumps(line) + "\n")
            out.flush()
    summarise(res, list(paths))


def summarise(res: list[dict], names: list[str]) -> None:
    """Verdict agreement with fp32, the largest margin change and the ROC-AUC change with its paired interval."""
    from detector.training.evaluate import roc_auc, roc_auc_diff_ci

    y = np.array([x["label"] for x in res])
    scored = np.array([x["fp32"]["p_fake"] is not None for x in res])
    print(f"{len(res)} clips ({int(y.sum())} fake), {int(scored.sum())} with a face")
    for name in names:
        same = sum(x[name]["verdict"] == x["fp32"]["verdict"] for x in res)
        dm = [abs(x[name]["margin"] - x["fp32"]["margin"]) for x in res if x["fp32"]["margin"] is not None]
        pa = np.array([x["fp32"]["p_fake"] for x in res], dtype=object)[scored].astype(float)
        pb = np.array([x[name]["p_fake"] for x in res], dtype=object)[scored].astype(float)
        d, lo, hi = roc_auc_diff_ci(y[scored], pa, pb)
        print(f"{name}: verdict agrees with fp32 on {same}/{len(res)} clips ({same / len(res):.1%}); max |margin "
              f"change| {max(dm):.2g}; ROC-AUC fp32 {roc_auc(y[scored], pa):.4f} -> {roc_auc(y[scored], pb):.4f} "
              f"(change {d:+.4f}, paired 95% bootstrap [{lo:+.4f}, {hi:+.4f}])")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--repeats", type=int, default=5)
    g = sub.add_parser("agree")
    g.add_argument("--clips", type=Path, default=ROOT / "data" / "devset")
    g.add_argument("--manifest", type=Path, default=ROOT.parent / "shared" / "devset" / "MANIFEST.tsv")
    g.add_argument("--frames", type=int, default=60)
    g.add_argument("--int8", action="store_true", help="also the int8 trunk (not shipped)")
    g.add_argument("--out", type=Path, help="one JSON line per clip")
    g.add_argument("--limit", type=int, help="only the first N clips of the seeded shuffle")
    g.add_argument("--from-jsonl", type=Path, help="summarise a finished or partial --out file (no model run)")
    a = ap.parse_args()
    torch.manual_seed(0)
    {"speed": speed, "agree": agree}[a.cmd](a)


if __name__ == "__main__":
    main()
