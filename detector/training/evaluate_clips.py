"""Clip-level evaluation through the product's own path: every clip goes through `analyze_video`.

    deepfake-forensics evaluate --clips data/devset --manifest ../shared/devset/MANIFEST.tsv \\
        --json-out data/eval/devset.json --roc data/eval/devset_roc.png [--update-sidecar]

DIR holds `real/` and `fake/` at any depth. One Detector is loaded once (`get_detector`), then each clip
is decoded, its faces found and tracked and every track classified exactly as for a user; the clip's
score is the report's p_fake (calibrated when the sidecar carries a calibration) and its fake-real logit
margin (what `calibrate` fits on). Output: ROC-AUC, EER, log loss, accuracy/precision/recall/F1 and the
FAKE rate on real and on fake clips at the weights' threshold, INCONCLUSIVE counts, the same per family
and per method (from the manifest, or from the first folder under fake/), NO_FACE and failed clips
(counted and listed, excluded from every score-based figure), per-clip rows and timings.

Resumable: the JSON is rewritten after every clip and a re-run skips the clips it already holds (same
weights and frames); failed clips are tried again. Summary figures are recomputed from the stored
margins with the sidecar's current calibration, so re-running after `calibrate` costs no model time.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from detector import calibration as cal
from detector.errors import InputError
from detector.machine import cpu_name
from detector.training.evaluate import (
    _plot_roc,
    add_prepared_arguments,
    binary_metrics,
    cmd_prepared,
    nan_to_none,
    roc_auc_ci,
)

SCORING = ("NO_FACE and failed clips have no score: they are excluded from ROC-AUC, EER, log loss, accuracy "
           "and the FAKE rates, counted under no_face / failed and listed in clips[] (status)")


def find_clips(root: Path) -> list[tuple[str, str]]:
    """(path relative to root with '/', label 'real'|'fake') of every video under root/real and root/fake."""
    from detector.video import VIDEO_EXTENSIONS

    out = []
    for label in ("real", "fake"):
        base = root / label
        for dirpath, _dirs, files in os.walk(base, followlinks=True):
            for f in files:
                if Path(f).suffix.lower() in VIDEO_EXTENSIONS:
                    out.append(((Path(dirpath) / f).relative_to(root).as_posix(), label))
    if not out:
        raise InputError(f"{root}: no videos under {root}/real or {root}/fake")
    return sorted(out)


def read_manifest(path: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    """Rows of a devset MANIFEST.tsv keyed by relative path (local_file without 'clips/') and by sha256."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except OSError as e:
        raise InputError(f"{path}: cannot read manifest ({e})") from None
    if rows and not {"label", "family", "method", "local_file"} <= set(rows[0]):
        raise InputError(f"{path}: manifest needs columns label, family, method, local_file (tab-separated)")
    by_path = {r["local_file"].removeprefix("clips/"): r for r in rows}
    by_sha = {r["sha256"]: r for r in rows if r.get("sha256")}
    return by_path, by_sha


def _group(rel: str, label: str, by_path: dict, by_sha: dict, root: Path) -> tuple[str, str]:
    """(family, method) of a clip: from the manifest when given, else from its first folder under fake/."""
    if by_path or by_sha:
        row = by_path.get(rel)
        if row is None and by_sha:
            from detector.hashing import sha256_file

            row = by_sha.get(sha256_file(root / rel))
        if row is not None:
            return row["family"], row["method"]
        return ("real" if label == "real" else "not in manifest", "not in manifest")
    parts = rel.split("/")
    sub = parts[1] if len(parts) > 2 else label
    return ("real", sub) if label == "real" else (sub, sub)


def score_clip(root: Path, rel: str, label: str, config, detector) -> dict:
    """One clip through analyze_video -> its row (status scored | no_face | failed)."""
    from detector.errors import ForensicsError
    from detector.pipeline import analyze_video

    row = {"path": rel, "label": label}
    t = time.perf_counter()
    try:
        r = analyze_video(root / rel, config, detector=detector)
    except ForensicsError as e:
        row.update(status="failed", verdict="FAILED", error=str(e).splitlines()[0])
    except Exception as e:  # noqa: BLE001 - one bad clip must not stop an evaluation; it is counted and listed
        row.update(status="failed", verdict="FAILED", error=f"{type(e).__name__}: {e}")
    else:
        best = max(r.faces, key=lambda f: f.margin, default=None)
        row.update(status="scored" if best else "no_face", verdict=r.verdict, p_fake=r.p_fake,
                   p_fake_raw=r.p_fake_raw, margin=None if best is None else best.margin, n_faces=len(r.faces),
                   sha256=r.file.get("sha256"), timings_s={k: round(v, 3) for k, v in r.timings_s.items()})
        if best is not None and best.cues:  # the face the verdict rests on: its model margin and cue values
            row.update(model_margin=best.model_margin, cues={k: c["value"] for k, c in best.cues.items()})
    row["seconds"] = round(time.perf_counter() - t, 3)
    return row


def _rates(rows: list[dict]) -> dict:
    """Counts and FAKE / INCONCLUSIVE rates of rows (all one label or mixed), scored rows only."""
    scored = [r for r in rows if r["status"] == "scored"]
    n = len(scored)
    fake = sum(r["verdict"] == cal.FAKE for r in scored)
    inc = sum(r["verdict"] == cal.INCONCLUSIVE for r in scored)
    return {"n": len(rows), "n_scored": n, "n_no_face": sum(r["status"] == "no_face" for r in rows),
            "n_failed": sum(r["status"] == "failed" for r in rows), "called_fake": fake, "inconclusive": inc,
            "fake_rate": fake / n if n else None, "inconclusive_rate": inc / n if n else None,
            "mean_p_fake": float(np.mean([r["p_fake"] for r in scored])) if n else None}


def summarise(rows: list[dict], calib: dict, threshold: float, raw_threshold: float) -> dict:
    """Figures of scored rows (re-deriving p_fake and verdict from each margin with `calib`)."""
    band = cal.band(calib)
    for r in rows:
        if r["status"] == "scored":
            r["p_fake"] = cal.calibrate(r["margin"], calib)
            r["p_fake_raw"] = cal.sigmoid(r["margin"])
            r["verdict"] = cal.decide(r["p_fake"], threshold, band[0] if band else None)
    scored = [r for r in rows if r["status"] == "scored"]
    y = np.array([r["label"] == "fake" for r in scored], int)
    p = np.array([r["p_fake"] for r in scored], float)
    praw = np.array([r["p_fake_raw"] for r in scored], float)
    real = [r for r in rows if r["label"] == "real"]
    fake = [r for r in rows if r["label"] == "fake"]
    out = {"n_clips": len(rows), "n_real": sum(r["status"] == "scored" for r in real),
           "n_fake": sum(r["status"] == "scored" for r in fake),
           "no_face": {"n_real": sum(r["status"] == "no_face" for r in real),
                       "n_fake": sum(r["status"] == "no_face" for r in fake),
                       "clips": [r["path"] for r in rows if r["status"] == "no_face"]},
           "failed": {"n": sum(r["status"] == "failed" for r in rows),
                      "clips": {r["path"]: r.get("error") for r in rows if r["status"] == "failed"}},
           "scoring": SCORING, "threshold": threshold, "band": list(band) if band else None}
    if len(scored):
        m = _finite(binary_metrics(y, p, threshold))
        m["roc_auc_ci95"] = _ci(y, p)
        rr, rf = _rates(real), _rates(fake)
        m.update({"fpr": rr["fake_rate"], "tpr": rf["fake_rate"], "flagged_real": rr["called_fake"],
                  "detected_fake": rf["called_fake"], "inconclusive_real": rr["inconclusive"],
                  "inconclusive_fake": rf["inconclusive"]})
        out["overall"] = m
        if cal.is_calibrated(calib):
            b = _finite(binary_metrics(y, praw, raw_threshold))
            nr, nf = max(int((y == 0).sum()), 1), max(int((y == 1).sum()), 1)
            out["before_calibration"] = {
                "threshold": raw_threshold, "p_fake": "raw softmax", "accuracy": b["accuracy"], "f1": b["f1"],
                "log_loss": b["log_loss"], "flagged_real": b["confusion"]["fp"], "detected_fake": b["confusion"]["tp"],
                "fpr": b["confusion"]["fp"] / nr, "tpr": b["confusion"]["tp"] / nf}
    for key in ("family", "method"):
        groups: dict[str, list[dict]] = {}
        for r in rows:
            groups.setdefault(r[key], []).append(r)
        out[f"per_{key}"] = {g: _group_figures(gr, scored, threshold) for g, gr in sorted(groups.items())}
    return out


def _group_figures(group: list[dict], scored: list[dict], threshold: float) -> dict:
    d = _rates(group)
    d["label"] = "/".join(sorted({r["label"] for r in group}))
    fakes = [r for r in group if r["status"] == "scored" and r["label"] == "fake"]
    reals = [r for r in scored if r["label"] == "real"]
    if fakes and reals:  # this group's fakes against every real clip
        yy = np.array([0] * len(reals) + [1] * len(fakes))
        pp = np.array([r["p_fake"] for r in reals + fakes])
        d["roc_auc_vs_all_real"] = nan_to_none(binary_metrics(yy, pp, threshold)["roc_auc"])
        d["roc_auc_vs_all_real_ci95"] = _ci(yy, pp)
    return d


def _ci(y: np.ndarray, p: np.ndarray, min_per_class: int = 5) -> list | None:
    """95 % bootstrap interval of the ROC-AUC, rounded; None when a class has fewer than `min_per_class`
    clips (a bootstrap of one or two fakes only re-draws the reals and looks falsely precise)."""
    if min(int((y == 1).sum()), int((y == 0).sum())) < min_per_class:
        return None
    lo, hi = roc_auc_ci(y, p)
    return [round(lo, 4), round(hi, 4)]


def _finite(m: dict) -> dict:
    return {k: nan_to_none(v) for k, v in m.items()}


class _Bar:
    """tqdm when installed, else one updating stderr line."""

    def __init__(self, total: int, initial: int):
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="clip", file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            self.bar = None
        self.total, self.done = total, initial

    def update(self, msg: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(msg[-40:], refresh=False)
            self.bar.update(1)
        else:
            print(f"\r{self.done}/{self.total} {msg[-60:]:<60}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            print(file=sys.stderr)


def evaluate_clips(root: Path, manifest: Path | None = None, json_out: Path | None = None, roc: Path | None = None,
                   weights: Path | None = None, frames: int | None = None, progress: bool = True,
                   data: str | None = None, precision: str = "auto") -> dict:
    """Score every clip under root/real and root/fake through analyze_video; returns (and writes) the result."""
    from detector.pipeline import DEFAULT_FRAMES, AnalysisConfig, get_detector
    from detector.weights import DEFAULT_WEIGHTS

    frames = frames or DEFAULT_FRAMES  # the product's own reading, which the calibration is fitted on
    root = Path(root)
    weights = Path(weights or DEFAULT_WEIGHTS)
    clips = find_clips(root)
    by_path, by_sha = read_manifest(manifest) if manifest else ({}, {})
    config = AnalysisConfig(frames=frames, weights=str(weights), precision=precision)
    det = get_detector(config.weights, config.precision, config.engine)
    spec = det.spec
    calib = spec.calibration if cal.is_calibrated(spec.calibration) else {}
    threshold = float(calib["threshold"]) if calib else spec.threshold
    done = _scored_before(json_out, spec.weights_sha256, frames)
    rows: dict[str, dict] = {}
    todo = []
    for rel, label in clips:
        family, method = _group(rel, label, by_path, by_sha, root)
        if rel in done and done[rel]["label"] == label:
            rows[rel] = done[rel] | {"family": family, "method": method}
        else:
            todo.append((rel, label, family, method))
    t0 = time.perf_counter()
    head = {"kind": "clips", "clips_dir": str(root), "manifest": str(manifest) if manifest else None,
            "data": data, "weights": weights.name, "weights_sha256": spec.weights_sha256, "frames": frames,
            "precision": "bf16-autocast" if det.use_bf16 else "fp32", "calibrated": bool(calib),
            "calibration_date": calib.get("date")}
    bar = _Bar(len(clips), len(clips) - len(todo)) if progress else None
    raw_thr = spec.threshold  # "before calibration": the raw p_fake at the sidecar's own threshold, as shipped

    def build() -> dict:
        ordered = [rows[rel] for rel, _ in clips if rel in rows]
        out = head | summarise(ordered, calib, threshold, raw_thr)
        out["timings"] = _timings(ordered, t0, len(todo))
        out["complete"] = len(ordered) == len(clips)
        out["date"] = _dt.date.today().isoformat()
        out["clips"] = ordered
        return out

    try:
        for rel, label, family, method in todo:
            row = score_clip(root, rel, label, config, det)
            rows[rel] = {**row, "family": family, "method": method}
            if json_out is not None:
                _write_json(json_out, build())
            if bar:
                bar.update(f"{row['verdict']} {rel}")
    finally:
        if bar:
            bar.close()
    res = build()
    if json_out is not None:
        _write_json(json_out, res)
    if roc is not None:
        _write_roc(res["clips"], roc)
    return res


def _scored_before(json_out: Path | None, sha256: str, frames: int) -> dict[str, dict]:
    """Rows an earlier run of the same weights and frame count stored in `json_out` (re-runs resume)."""
    if json_out is None or not json_out.is_file():
        return {}
    old = json.loads(json_out.read_text())
    if old.get("weights_sha256") != sha256 or old.get("frames") != frames:
        raise InputError(f"{json_out} holds scores of other weights or another frame count "
                         f"({str(old.get('weights_sha256'))[:12]}…, T={old.get('frames')}); delete it or "
                         "choose another --json-out")
    return {r["path"]: r for r in old.get("clips", []) if r.get("status") in ("scored", "no_face")}


def _timings(ordered: list[dict], t0: float, n_this_run: int) -> dict:
    """Wall time of this run, seconds a clip (mean, median) and per pipeline stage, and the machine."""
    secs = [r["seconds"] for r in ordered if r.get("status") != "failed"]
    stages: dict[str, list[float]] = {}
    for r in ordered:
        for k, v in r.get("timings_s", {}).items():
            stages.setdefault(k, []).append(v)
    return {"this_run_s": round(time.perf_counter() - t0, 2), "clips_this_run": n_this_run,
            "per_clip_mean_s": round(float(np.mean(secs)), 3) if secs else None,
            "per_clip_median_s": round(float(np.median(secs)), 3) if secs else None,
            "stage_mean_s": {k: round(float(np.mean(v)), 3) for k, v in stages.items()},
            "machine": f"{cpu_name()} ({os.cpu_count()} logical CPUs)"}


def _write_roc(rows: list[dict], roc: Path) -> None:
    """The ROC plot of the scored clips, one curve per fake family when there are several."""
    scored = [r for r in rows if r["status"] == "scored"]
    y = np.array([r["label"] == "fake" for r in scored], int)
    if 0 < y.sum() < len(y):
        fam = np.array([r["family"] for r in scored])
        fams = sorted({r["family"] for r in scored if r["label"] == "fake"})
        roc.parent.mkdir(parents=True, exist_ok=True)
        _plot_roc(y, np.array([r["p_fake"] for r in scored]), fam, fams if len(fams) > 1 else [], roc)


def _write_json(path: Path, res: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(res, indent=1) + "\n")
    tmp.replace(path)  # atomic: an interrupted run leaves the previous complete file


def sidecar_entry(res: dict, command: str) -> dict:
    """The `metrics.<key>` entry stored by --update-sidecar (threshold kept exact: reports compare it)."""
    o = res.get("overall", {})
    keep = ("roc_auc", "roc_auc_ci95", "eer", "log_loss", "accuracy", "precision", "recall", "f1", "fpr", "tpr",
            "flagged_real", "detected_fake", "inconclusive_real", "inconclusive_fake")
    entry = {"data": res.get("data") or res["clips_dir"], "n_real": res["n_real"], "n_fake": res["n_fake"],
             "n_no_face": res["no_face"]["n_real"] + res["no_face"]["n_fake"], "no_face": res["no_face"],
             "n_failed": res["failed"]["n"], "scoring": SCORING, "threshold": res["threshold"], "band": res["band"],
             "calibrated": res["calibrated"], **{k: _r(o.get(k)) for k in keep}}
    if "before_calibration" in res:
        entry["before_calibration"] = {k: _r(v) for k, v in res["before_calibration"].items()}
    for key in ("per_family", "per_method"):
        entry[key] = {g: {k: _r(v) for k, v in d.items()} for g, d in res[key].items()}
    entry.update({"frames": res["frames"], "date": res["date"], "command": command,
                  "per_clip_mean_s": res["timings"]["per_clip_mean_s"], "machine": res["timings"]["machine"]})
    return entry


def _r(v):
    return round(v, 4) if isinstance(v, float) else v


def print_summary(res: dict) -> None:
    o = res.get("overall")
    nf = res["no_face"]
    print(f"{res['clips_dir']}: {res['n_real']} real + {res['n_fake']} fake scored, NO_FACE {nf['n_real']} real / "
          f"{nf['n_fake']} fake, failed {res['failed']['n']} ({'calibrated' if res['calibrated'] else 'raw'} "
          f"p_fake, threshold {res['threshold']:.4f})")
    if o:
        auc = "n/a" if o["roc_auc"] is None else f"{o['roc_auc']:.4f}"
        if o.get("roc_auc_ci95"):
            auc += " (95% CI {:.3f}-{:.3f})".format(*o["roc_auc_ci95"])
        print(f"  ROC-AUC {auc}, EER {o['eer'] if o['eer'] is None else round(o['eer'], 4)}, "
              f"log loss {o['log_loss']:.4f}, acc {o['accuracy']:.4f}, precision {o['precision']:.4f}, "
              f"recall {o['recall']:.4f}, F1 {o['f1']:.4f}")
        print(f"  FAKE on real clips {o['flagged_real']}/{res['n_real']}, on fake clips {o['detected_fake']}/"
              f"{res['n_fake']}; INCONCLUSIVE {o['inconclusive_real']} real / {o['inconclusive_fake']} fake")
    b = res.get("before_calibration")
    if b:
        print(f"  before calibration (raw p >= {b['threshold']:.4f}): FAKE on real {b['flagged_real']}/{res['n_real']},"
              f" on fake {b['detected_fake']}/{res['n_fake']}, log loss {b['log_loss']:.4f}")
    for key in ("per_family", "per_method"):
        if len(res[key]) > 1:
            print(f"  {key.replace('_', ' ')}:")
            for g, d in res[key].items():
                auc = d.get("roc_auc_vs_all_real")
                ci = d.get("roc_auc_vs_all_real_ci95")
                fr = "n/a" if d["fake_rate"] is None else f"{d['fake_rate']:.2f}"
                print(f"    {g:<34} n {d['n_scored']:>3} (+{d['n_no_face']} NO_FACE, {d['n_failed']} failed)  "
                      f"FAKE rate {fr}  INCONCLUSIVE {d['inconclusive']}"
                      + ("" if auc is None else f"  ROC-AUC vs real {auc:.3f}")
                      + ("" if not ci else " (95% CI {:.2f}-{:.2f})".format(*ci)))
    t = res["timings"]
    print(f"  time: {t['this_run_s']} s for {t['clips_this_run']} clips this run; "
          f"per clip mean {t['per_clip_mean_s']} s, median {t['per_clip_median_s']} s on {t['machine']}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`evaluate`: PREPARED crops (evaluate.py) or, with --clips DIR, raw clips through analyze_video (here)."""
    p = sub.add_parser("evaluate", help="metrics of a model on prepared clips (video- and frame-level), or with "
                                        "--clips DIR on raw clips through the product's own analyze_video")
    add_prepared_arguments(p)
    add_arguments(p)
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(a: argparse.Namespace) -> int:
    if (a.clips is None) == (a.prepared is None):
        raise InputError("evaluate needs either a PREPARED folder or --clips DIR (not both)")
    return cmd(a) if a.clips is not None else cmd_prepared(a)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clips", type=Path, metavar="DIR", help="evaluate every clip under DIR/real and DIR/fake "
                   "through analyze_video (instead of prepared crops)")
    p.add_argument("--manifest", type=Path, help="devset MANIFEST.tsv: family/method per clip (with --clips)")
    p.add_argument("--frames", type=int, help="frames sampled per clip (with --clips; default: the product's, "
                   "detector.pipeline.DEFAULT_FRAMES)")
    p.add_argument("--data", help="words describing the clips, stored with the figures (with --clips)")
    p.add_argument("--sidecar-key", default="devset", help="metrics key written by --update-sidecar with --clips")
    p.add_argument("--no-progress", action="store_true")


def cmd(a: argparse.Namespace) -> int:
    from detector.weights import DEFAULT_WEIGHTS, sidecar_path, store_metrics

    weights = a.weights or DEFAULT_WEIGHTS
    res = evaluate_clips(a.clips, a.manifest, a.json_out, a.roc, weights, a.frames, not a.no_progress, a.data)
    print_summary(res)
    if a.update_sidecar:
        if not res["complete"]:
            raise InputError("not every clip was scored; re-run to finish before --update-sidecar")
        command = "deepfake-forensics evaluate --clips " + str(a.clips) + \
            (f" --manifest {a.manifest}" if a.manifest else "") + f" --frames {res['frames']} --update-sidecar"
        store_metrics(weights, a.sidecar_key, sidecar_entry(res, command))
        print(f"stored metrics.{a.sidecar_key} in {sidecar_path(weights).name} (tensor file unchanged)")
    return 0
