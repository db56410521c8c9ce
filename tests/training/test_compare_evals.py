"""detector/training/compare_evals.py: two evaluate reports are joined on each clip's sha256, not on row order,
and a better ranking shows as a positive difference whose interval excludes 0 (so that a sign error or a
misjoin would fail)."""

from __future__ import annotations

import numpy as np
import pytest

from detector.training import compare_evals as ce


def _report(margins: dict[str, float], labels: dict[str, str], fam: dict[str, str], skip=()) -> dict:
    clips = [{"sha256": k, "label": labels[k], "family": fam[k], "verdict": "REAL",
              "p_fake": None if k in skip else 0.5, "margin": m} for k, m in margins.items()]
    return {"clips": clips[::-1] if skip else clips}


def test_join_by_sha_and_sign():
    rng = np.random.default_rng(0)
    keys = [f"{i:04d}" for i in range(80)]
    labels = {k: ("fake" if i % 2 else "real") for i, k in enumerate(keys)}
    fam = {k: ("real" if labels[k] == "real" else ("swap" if i % 4 == 1 else "lip")) for i, k in enumerate(keys)}
    y = np.array([labels[k] == "fake" for k in keys], float)
    noise_a = {k: float(rng.normal()) for k in keys}  # A: chance
    good_b = {k: float(2.5 * y[i] + rng.normal()) for i, k in enumerate(keys)}  # B: separates
    a = _report(noise_a, labels, fam)
    b = _report(good_b, labels, fam, skip={"0001"})  # rows reversed and one clip unscored
    rows = {r[0]: r for r in ce.compare(a, b, n_boot=300)}
    assert set(rows) == {"all", "lip", "swap"}
    name, n_real, n_fake, auc_a, auc_b, d, lo, hi = rows["all"]
    assert (n_real, n_fake) == (40, 39)  # the unscored fake is left out of both
    assert auc_b > 0.9 and abs(auc_a - 0.5) < 0.2
    assert d == auc_b - auc_a and 0 < lo < d < hi
    rows_rev = {r[0]: r for r in ce.compare(b, a, n_boot=300)}
    assert rows_rev["all"][5] == -d  # swapping A and B flips the sign


def test_fused_reports_reduce_to_a_and_let_a_sure_specialist_help():
    """max with an offset no margin reaches and sum with weight 0 give A back exactly; a B that separates
    the fakes A misses, fused by max at offset 0, ranks better than A."""
    rng = np.random.default_rng(1)
    keys = [f"{i:04d}" for i in range(60)]
    labels = {k: ("fake" if i % 2 else "real") for i, k in enumerate(keys)}
    fam = {k: ("real" if labels[k] == "real" else "swap") for k in keys}
    y = np.array([labels[k] == "fake" for k in keys], float)
    a = _report({k: float(rng.normal()) for k in keys}, labels, fam)
    b = _report({k: float(4 * y[i] - 2 + 0.3 * rng.normal()) for i, k in enumerate(keys)}, labels, fam)
    for rule, v in (("max", 1e9), ("sum", 0.0)):
        f = ce.fused(a, b, rule, v)
        assert [c["margin"] for c in f["clips"]] == [c["margin"] for c in sorted(a["clips"], key=lambda c: c["sha256"])]
    row = {r[0]: r for r in ce.compare(a, ce.fused(a, b, "max", 0.0), n_boot=300)}["all"]
    assert row[5] > 0.2 and row[6] > 0
    with pytest.raises(ValueError):
        ce.fused(a, b, "mean", 1.0)


def test_matched_fpr_counts_fakes_above_the_kth_real_and_reweights_a_cue():
    """At k = floor(fpr x n_real) reals let through, a fake counts only if it beats the (k+1)-th highest real;
    a B that moves six fakes above every real catches six more at fpr 0, and the interval sees it.
    Re-weighting a cue rebuilds the margin from model_margin + w x cue."""
    keys = [f"{i:04d}" for i in range(40)]
    labels = {k: ("fake" if i >= 20 else "real") for i, k in enumerate(keys)}
    fam = {k: ("swap" if labels[k] == "fake" else "real") for k in keys}
    m_a = {k: float(i % 20) for i, k in enumerate(keys)}  # fakes and reals interleave exactly
    m_b = dict(m_a) | {keys[20 + i]: 100.0 + i for i in range(6)}
    a, b = _report(m_a, labels, fam), _report(m_b, labels, fam)
    y = np.array([labels[k] == "fake" for k in keys], int)
    assert ce.caught_at_fpr(y, np.array([m_a[k] for k in keys]), 0.0) == (0, 0.0)  # ties with the top real do not count
    assert ce.caught_at_fpr(y, np.array([m_a[k] for k in keys]), 0.1) == (2, 2 / 20)  # 19 and 18 beat the 3rd real (17)
    (f, k, nr, ca, cb, d, lo, hi), = ce.matched_fpr(a, b, [0.0], n_boot=300)
    assert (k, nr, ca, cb) == (0, 20, 0.0, 6 / 20) and d == cb - ca and lo > 0
    for c in a["clips"]:
        c.update(model_margin=c["margin"], cues={"mouth": 1.0 if c["label"] == "fake" else 0.0})
    r = ce.reweighted(a, "mouth", 2.0)
    assert [c["margin"] - c0["margin"] for c, c0 in zip(r["clips"], a["clips"])] == [2.0 * (c["label"] == "fake")
                                                                                     for c in a["clips"]]
    with pytest.raises(ValueError, match="cue"):
        ce.reweighted(a, "eyes", 1.0)


def test_cli_prints_matched_rows_and_refuses_a_share_outside_0_1(tmp_path, capsys):
    keys = [f"{i:04d}" for i in range(20)]
    labels = {k: ("fake" if i >= 10 else "real") for i, k in enumerate(keys)}
    fam = {k: ("swap" if labels[k] == "fake" else "real") for k in keys}
    paths = []
    for name, shift in (("a", 0.0), ("b", 10.0)):
        r = _report({k: float(i % 10) + shift * (labels[k] == "fake") for i, k in enumerate(keys)}, labels, fam)
        for c in r["clips"]:
            c.update(model_margin=c["margin"], cues={"mouth": 0.0})
        r.update(weights=name, weights_sha256="0" * 64, threshold=0.5)
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(__import__("json").dumps(r))
    assert ce.main([str(paths[0]), str(paths[1]), "--at-fpr", "0,0.1", "--cue-b", "mouth:1"]) == 0
    out = capsys.readouterr().out
    assert "at 0/10 real clips flagged (fpr 0): fakes caught A 0.000  B 1.000" in out
    assert "B: re-scored at mouth weight 1" in out and "A: real clips called FAKE 0/10" in out
    with pytest.raises(SystemExit) as e:
        ce.main([str(paths[0]), str(paths[1]), "--at-fpr", "1.5"])
    assert e.value.code == 2 and "[0, 1)" in capsys.readouterr().err
