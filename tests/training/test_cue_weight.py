"""detector/training/cue_weight.py: a cue that carries evidence the margin lacks raises the ROC-AUC with a positive
difference whose interval excludes 0, w = 0 reproduces the network alone, and rows without the cue are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detector.training import cue_weight as cw


def _write(tmp_path: Path, name: str, n: int = 120, seed: int = 0, drop_cue: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    rows = [{"path": f"{'fake' if t else 'real'}/s{i % 4}/c{i}.mp4", "label": "fake" if t else "real",
             "family": "lip" if t else "real", "status": "scored",
             "model_margin": float(0.5 * t + rng.normal()),  # weak on its own
             **({} if drop_cue and i == 3 else {"cues": {"mouth_detail_deficit": float(1.5 * t + rng.normal())}})}
            for i, t in enumerate(y)]
    p = tmp_path / name
    p.write_text(json.dumps({"clips": rows}))
    return p


def test_sweep_gains_where_the_cue_carries_evidence(tmp_path):
    d = cw.load(_write(tmp_path, "a.json"), "mouth_detail_deficit")
    rows = {r["w"]: r for r in cw.sweep(d)}
    assert rows[0.0]["diff"] == 0 and rows[0.0]["auc"] == pytest.approx(cw.roc_auc(d["y"], d["m"]))
    assert rows[1.0]["auc"] > rows[0.0]["auc"] + 0.1 and rows[1.0]["ci"][0] > 0
    auc, chosen = cw.leave_one_source_out(d, np.array([p.split("/")[1] for p in d["path"]]))
    assert len(chosen) == 4 and min(chosen) > 0 and auc > rows[0.0]["auc"]


def test_rows_without_the_cue_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="lack the cue"):
        cw.load(_write(tmp_path, "b.json", drop_cue=True), "mouth_detail_deficit")
