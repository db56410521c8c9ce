"""Fit a calibration on VALIDATION clip scores and store it in the weights' sidecar (tensor file unchanged).

    deepfake-forensics evaluate --clips data/calib/val --json-out val.json      # score validation clips
    deepfake-forensics calibrate --scores val.json [--weights W] [--target-fpr 0.05]

Input: the fake-real logit margins of validation clips (held-out identities of the training sources,
real clips plus synthesised fakes made from them), never the dev set's fakes (its real clips only with
`--real-world`, below). Output, the sidecar's
`calibration` block (see detector/calibration.py for how it is applied):

- Platt scaling p = sigmoid(a m + b) fitted by maximum likelihood with Platt's smoothed targets
  ((n+ + 1)/(n+ + 2), 1/(n- + 2)) so that separable data gives finite a, b; `--method temperature`
  fits a = 1/T only (b = 0).
- threshold: the midpoint between the k-th and (k+1)-th highest calibrated scores of validation real
  clips, k = floor(target_fpr * n_real), so at most k of them (<= target_fpr) are flagged FAKE.
- band_low: the same rule mirrored on the fakes: at most floor(target_fnr * n_fake) validation fakes
  score below it. Scores in [band_low, threshold) are INCONCLUSIVE; band_low = threshold when the
  classes separate (no band).
- `--real-world DEV.json --real-world-fpr 0.10` (optional): real clips from the world (the dev set's,
  `evaluate --clips data/devset --manifest ...`) raise the threshold until at most that share of them
  reach it. Why: validation reals are studio clips and stills of the training sources, cleaner than a
  news clip or a webcam call, so a threshold set on them alone flags more real-world reals than it
  promises (issue 15: 5 % on validation, 14 % on the dev set). Only the real clips are used (never the
  fakes), and the figure that matters, how often it flags a real clip *from a source it has not seen*, is
  measured by leaving one source out at a time (`leave_one_source_out`): the in-sample rate is optimistic
  by construction.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys
from pathlib import Path

import numpy as np

from detector.calibration import FAKE, INCONCLUSIVE, calibrate, decide, raw_threshold


def _sig(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable logistic


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    from detector.training.evaluate import binary_metrics

    return binary_metrics(y, p)["log_loss"]


def fit_platt(m: np.ndarray, y: np.ndarray, temperature_only: bool = False, iters: int = 100) -> tuple[float, float]:
    """(a, b) minimising the cross-entropy of sigmoid(a m + b) against Platt's smoothed targets (Newton steps).

    m: (N,) margins, y: (N,) 0/1 labels (1 = fake). temperature_only: b fixed at 0.
    """
    m, y = np.asarray(m, np.float64), np.asarray(y, np.float64)
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    t = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    a, b = 1.0, 0.0
    x = np.stack([m, np.ones_like(m)], 1)  # (N, 2)
    for _ in range(iters):
        p = _sig(a * m + b)
        g = x.T @ (p - t)  # gradient of the summed cross-entropy
        w = p * (1 - p) + 1e-9
        h = (x * w[:, None]).T @ x + 1e-6 * np.eye(2)  # Hessian (+ a ridge for a flat direction)
        if temperature_only:
            step = np.array([g[0] / h[0, 0], 0.0])
        else:
            step = np.linalg.solve(h, g)
        # Backtracking: Newton on a logistic loss can overshoot from a far start.
        loss0, s = _ce(a, b, m, t), 1.0
        while s > 1e-6 and _ce(a - s * step[0], b - s * step[1], m, t) > loss0:
            s *= 0.5
        a, b = a - s * step[0], b - s * step[1]
        if np.abs(s * step).max() < 1e-10:
            break
    if a <= 0:
        raise ValueError(f"fitted slope a = {a:.3g} <= 0: on these clips a higher model score means MORE likely "
                         "real; the model cannot be calibrated on them")
    return float(a), float(b)


def _ce(a: float, b: float, m: np.ndarray, t: np.ndarray) -> float:
    z = a * m + b
    # log(1 + e^z) - t z, summed; logaddexp keeps it finite for large |z|.
    return float(np.sum(np.logaddexp(0.0, z) - t * z))


def choose_threshold(p_real: np.ndarray, target_fpr: float) -> float:
    """A threshold that at most floor(target_fpr * n) of the real scores reach (midpoint of the gap)."""
    s = np.sort(np.asarray(p_real, np.float64))[::-1]  # descending
    k = int(math.floor(target_fpr * len(s) + 1e-9))
    if k >= len(s):
        return float(s[-1])
    above = s[k - 1] if k > 0 else 1.0
    # Strictly above s[k]: the (k+1)-th highest real score (and all below it) stay REAL.
    thr = (above + s[k]) / 2 if above > s[k] else float(np.nextafter(s[k], 2.0))
    return float(thr)


def choose_band_low(p_fake: np.ndarray, threshold: float, target_fnr: float) -> float:
    """Lower band edge: at most floor(target_fnr * n) fake scores lie below it; never above the threshold."""
    s = np.sort(np.asarray(p_fake, np.float64))  # ascending
    k = int(math.floor(target_fnr * len(s) + 1e-9))
    if k >= len(s):
        return min(threshold, float(s[-1]))
    below = s[k - 1] if k > 0 else 0.0
    lo = (below + s[k]) / 2 if s[k] > below else float(s[k])
    return float(min(lo, threshold))


def leave_one_source_out(p_real: np.ndarray, sources: np.ndarray, floor: float, target_fpr: float) -> dict:
    """How often a real-world threshold flags real clips of a source it was not fitted on.

    p_real: (N,) calibrated scores of real-world real clips, sources: (N,) their source (one per
    recording set: a clip's siblings share its camera, codec and people, so they must leave together).
    For each source s: threshold_s = max(floor, choose_threshold(p_real[sources != s], target_fpr)), and
    its clips reaching threshold_s count as false alarms. Returns {"false_alarms", "n", "per_source":
    {s: [flagged, n, threshold_s]}}.
    """
    p_real, sources = np.asarray(p_real, np.float64), np.asarray(sources)
    per, total = {}, 0
    for s in sorted(set(sources.tolist())):
        out = sources == s
        thr = floor if out.all() else max(floor, choose_threshold(p_real[~out], target_fpr))
        k = int((p_real[out] >= thr).sum())
        per[s], total = [k, int(out.sum()), round(thr, 6)], total + k
    return {"false_alarms": total, "n": len(p_real), "per_source": per}


def fit_calibration(margins: np.ndarray, y: np.ndarray, target_fpr: float = 0.05, target_fnr: float = 0.05,
                    method: str = "platt", real_world: tuple[np.ndarray, np.ndarray] | None = None,
                    real_world_fpr: float = 0.10) -> dict:
    """The sidecar's calibration block (without data description and command) from validation margins.

    real_world: (margins (K,), sources (K,)) of real-world REAL clips: the threshold is raised until at most
    floor(real_world_fpr * K) of them reach it (never lowered), and the block's `real_world` entry records
    the in-sample and leave-one-source-out false-alarm counts."""
    from detector.training.evaluate import roc_auc

    if not 0 <= real_world_fpr < 1:
        raise ValueError(f"--real-world-fpr must lie in [0, 1), not {real_world_fpr}")
    m, y = np.asarray(margins, np.float64), np.asarray(y).astype(int)
    if (y == 0).sum() < 2 or (y == 1).sum() < 2:
        raise ValueError(f"need at least 2 real and 2 fake validation clips with a face, got "
                         f"{int((y == 0).sum())} real and {int((y == 1).sum())} fake")
    a, b = fit_platt(m, y, temperature_only=(method == "temperature"))
    block = {"method": method, "a": a, "b": b, "score": "fake-real logit margin of the clip's most suspicious face"}
    if method == "temperature":
        block["temperature"] = 1.0 / a
    p = np.array([calibrate(v, block | {"threshold": 0.5}) for v in m])
    thr = val_thr = choose_threshold(p[y == 0], target_fpr)
    rule = f"at most {target_fpr:.0%} of validation real clips reach it"
    if real_world is not None:
        rw_m, rw_src = np.asarray(real_world[0], np.float64), np.asarray(real_world[1])
        if len(rw_m) < 2:
            raise ValueError(f"need at least 2 real-world real clips with a face, got {len(rw_m)}")
        rw_p = np.array([calibrate(v, block | {"threshold": 0.5}) for v in rw_m])
        thr = max(val_thr, choose_threshold(rw_p, real_world_fpr))
        loso = leave_one_source_out(rw_p, rw_src, val_thr, real_world_fpr)
        block["real_world"] = {
            "n_real": len(rw_m), "sources": len(set(rw_src.tolist())), "target_fpr": real_world_fpr,
            "threshold_from_validation": val_thr, "raised": thr > val_thr,
            "false_alarms_in_sample": int((rw_p >= thr).sum()),
            "false_alarms_leave_one_source_out": loso["false_alarms"], "per_source": loso["per_source"],
            "note": ("only real clips are used; the in-sample count is optimistic by construction, the "
                     "leave-one-source-out count (each source's threshold fitted without it) estimates the "
                     "rate on a source never seen")}
        rule += f" and at most {real_world_fpr:.0%} of {len(rw_m)} real-world real clips do"
    lo = choose_band_low(p[y == 1], thr, target_fnr)
    block.update({"threshold": thr, "band_low": lo, "target_fpr": target_fpr, "target_fnr": target_fnr,
                  "rule": (f"FAKE if calibrated p_fake >= threshold ({rule}); INCONCLUSIVE if band_low <= p < "
                           f"threshold (band_low: at most {target_fnr:.0%} of validation fakes fall below it); "
                           "REAL below band_low")})
    verdicts = [decide(v, thr, lo) for v in p]
    real, fake = y == 0, y == 1
    raw = _sig(m)
    block["validation"] = {
        "n_real": int(real.sum()), "n_fake": int(fake.sum()),
        "false_alarms": int(sum(v == FAKE for v, r in zip(verdicts, real) if r)),
        "detected": int(sum(v == FAKE for v, f in zip(verdicts, fake) if f)),
        "inconclusive_real": int(sum(v == INCONCLUSIVE for v, r in zip(verdicts, real) if r)),
        "inconclusive_fake": int(sum(v == INCONCLUSIVE for v, f in zip(verdicts, fake) if f)),
        "roc_auc": roc_auc(y, m), "log_loss_raw": log_loss(y, raw), "log_loss_calibrated": log_loss(y, p),
        "raw_fake_rate_real_at_0.5": float((raw[real] >= 0.5).mean()),
    }
    v = block["validation"]
    v["false_alarm_rate"] = v["false_alarms"] / v["n_real"]
    v["detection_rate"] = v["detected"] / v["n_fake"]
    return block


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit calibration + threshold + INCONCLUSIVE band on validation clip scores "
                                         "(an `evaluate --clips` JSON) and store them in the weights' sidecar")
    p.add_argument("--scores", type=Path, required=True, action="append",
                   help="JSON written by `evaluate --clips ... --json-out` (repeat to pool several, e.g. shards)")
    p.add_argument("--weights", type=Path, help="default: the bundled weights")
    p.add_argument("--target-fpr", type=float, default=0.05, help="max share of validation real clips called FAKE")
    p.add_argument("--target-fnr", type=float, default=0.05,
                   help="max share of validation fakes called REAL (sets the INCONCLUSIVE band's lower edge)")
    p.add_argument("--method", choices=["platt", "temperature"], default="platt")
    p.add_argument("--real-world", type=Path,
                   help="an `evaluate --clips DIR --manifest M` JSON of real-world clips (the dev set): its REAL "
                        "clips raise the threshold to --real-world-fpr (fakes unused); sources left out one at a "
                        "time give the honest false-alarm rate")
    p.add_argument("--real-world-fpr", type=float, default=0.10,
                   help="max share of the real-world real clips called FAKE (with --real-world)")
    p.add_argument("--data", help="words describing the validation clips (default: from the scores file)")
    p.add_argument("--dry-run", action="store_true", help="print the block, do not write the sidecar")
    p.set_defaults(func=_cmd_calibrate)


def _cmd_calibrate(a: argparse.Namespace) -> int:
    from detector.errors import InputError
    from detector.weights import DEFAULT_WEIGHTS, read_spec, store_calibration

    weights = a.weights or DEFAULT_WEIGHTS
    spec = read_spec(weights)
    files = [_read_scores(f, spec.weights_sha256, Path(weights).name) for f in a.scores]
    res = files[0]
    if len({f.get("frames") for f in files}) > 1:
        raise InputError("the --scores files were made with different --frames; pool only one frame count")
    # The same clip scored in two pooled files counts once (same content = same sha256).
    clips = {r.get("sha256") or (f["clips_dir"], r["path"]): r for f in files for r in f.get("clips", [])}
    res = res | {"clips": list(clips.values()), "clips_dir": ", ".join(sorted({f["clips_dir"] for f in files}))}
    rows = [r for r in res["clips"] if r.get("margin") is not None and r.get("label") in ("real", "fake")]
    if not rows:
        raise InputError(f"{a.scores[0]}: no scored clips with a face (is it an `evaluate --clips` JSON?)")
    m = np.array([r["margin"] for r in rows])
    y = np.array([r["label"] == "fake" for r in rows], int)
    real_world = rw_dir = None
    if a.real_world:
        rw_m, rw_src, rw_dir = _real_world(a.real_world, spec.weights_sha256, Path(weights).name)
        real_world = (rw_m, rw_src)
    try:
        block = fit_calibration(m, y, a.target_fpr, a.target_fnr, a.method, real_world, a.real_world_fpr)
    except ValueError as e:
        raise InputError(str(e)) from None
    n_skipped = len(res.get("clips", [])) - len(rows)
    block["validation"].update({
        "data": a.data or res.get("data") or f"validation clips in {res.get('clips_dir', '?')}",
        "clips_dir": res.get("clips_dir"), "frames": res.get("frames"),
        "n_excluded": n_skipped, "excluded_why": "NO_FACE or failed clips have no score"})
    block.update({"date": _dt.date.today().isoformat(), "weights_sha256": spec.weights_sha256,
                  "command": "deepfake-forensics " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["calibrate"]
                  else "deepfake-forensics calibrate " + " ".join(f"--scores {f}" for f in a.scores)})
    block["validation"] = v = _rounded(block["validation"])  # a, b, threshold, band_low stay exact
    print(f"{block['method']}: a={block['a']:.4f} b={block['b']:.4f}; threshold {block['threshold']:.4f} "
          f"(raw p_fake {raw_threshold(block['threshold'], block):.4f}), "
          f"INCONCLUSIVE band [{block['band_low']:.4f}, {block['threshold']:.4f})")
    print(f"validation ({v['n_real']} real, {v['n_fake']} fake, {n_skipped} without score): "
          f"{v['false_alarms']} real flagged ({v['false_alarm_rate']:.1%}), {v['detected']} fakes caught "
          f"({v['detection_rate']:.1%}), inconclusive {v['inconclusive_real']} real / {v['inconclusive_fake']} fake; "
          f"log loss {v['log_loss_raw']:.4f} raw -> {v['log_loss_calibrated']:.4f} calibrated")
    if real_world is not None:
        rw = block["real_world"]
        print(f"real world ({rw['n_real']} real clips of {rw['sources']} sources in {a.real_world}): threshold "
              f"{'raised from' if rw['raised'] else 'kept at'} {rw['threshold_from_validation']:.4f}; "
              f"{rw['false_alarms_in_sample']} flagged in sample, {rw['false_alarms_leave_one_source_out']} with "
              "each source left out of the fit")
        rw["data"] = f"the real clips of {rw_dir} (scores {a.real_world}; its fakes unused)"
    if a.dry_run:
        print(json.dumps(block, indent=2))
        return 0
    store_calibration(weights, block)
    print(f"stored in {Path(weights).with_suffix('.json').name} (tensor file unchanged)")
    return 0


def _read_scores(path: Path, sha: str, weights_name: str) -> dict:
    from detector.errors import InputError

    try:
        res = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read scores ({e})") from None
    if res.get("weights_sha256") and sha and res["weights_sha256"] != sha:
        raise InputError(f"{path} was scored with weights {res['weights_sha256'][:12]}…, not {sha[:12]}… "
                         f"({weights_name}); re-run evaluate --clips")
    return res


def _real_world(path: Path, sha: str, weights_name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(margins, sources, clips folder) of the REAL clips with a score in an `evaluate --clips --manifest` JSON;
    a clip's source is its manifest `method` ("source: LRS2 samples ..."), else its folder."""
    from detector.errors import InputError

    res = _read_scores(path, sha, weights_name)
    rows = [r for r in res.get("clips", []) if r.get("label") == "real" and r.get("margin") is not None]
    if len(rows) < 2:
        raise InputError(f"{path}: {len(rows)} real clips with a score; --real-world needs an `evaluate --clips` "
                         "JSON with at least 2 scored real clips")
    return (np.array([r["margin"] for r in rows]),
            np.array([r.get("method") or str(Path(r["path"]).parent) for r in rows]), res.get("clips_dir", "?"))


def _rounded(d):
    if isinstance(d, dict):
        return {k: _rounded(v) for k, v in d.items()}
    if isinstance(d, float):
        return d if math.isnan(d) else round(d, 6)
    return d


