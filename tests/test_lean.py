"""detector/lean.py: the model pass without PyTorch gives the PyTorch engine's features and margin, and an
analysis that needs no explanations never imports torch.

Small random models saved as weights files (trunk, residual stream "next" / "sampled" / none, LSTM of one or two
layers, one or both directions), the shipped weights on the stored crops of tests/test_precision.py, and a fresh
interpreter for the import check. Tolerances: float rounding (ONNX Runtime's and numpy's sums in another order).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from detector import lean, residual
from detector.errors import InputError, WeightsError
from detector.model import build_model, spec_for
from detector.runtime import Detector, get_model
from detector.weights import DEFAULT_WEIGHTS, load_weights, save_weights
from tests.conftest import spread_batch_norms

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def _weights(tmp_path: Path, name: str, **overrides) -> Path:
    """A random ResNet18 + LSTM model with batch-norm statistics away from (0, 1), saved in fp32."""
    torch.manual_seed(0)
    spec = dataclasses.replace(spec_for("resnext50_lstm", backbone="resnet18", lstm_hidden=16), name=name,
                               **overrides)
    model = spread_batch_norms(build_model(spec).eval())
    path = tmp_path / f"{name}.safetensors"
    save_weights(model, spec, path, dtype=torch.float32)
    return path


def _both(path: Path) -> tuple[lean.LeanDetector, Detector]:
    spec = lean.read_spec(path)
    return lean.LeanDetector(lean.load_state(path, spec), spec, threads=1), Detector(*load_weights(path), "fp32",
                                                                                      "torch")


def _crops(t: int, seed: int, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, size, size, 3), dtype=np.uint8)


def _near(crops: np.ndarray, seed: int) -> np.ndarray:
    """Each crop's 'successor': the same face with a little fresh noise."""
    noise = np.random.default_rng(seed).integers(-6, 7, crops.shape)
    return np.clip(crops.astype(int) + noise, 0, 255).astype(np.uint8)


def test_constants_follow_the_residual_stream():
    assert (lean.SIGMA, lean.TAPS, lean.SCALE, lean.DUPLICATE_MAD) == \
        (residual.SIGMA, residual.TAPS, residual.SCALE, residual.DUPLICATE_MAD)
    np.testing.assert_allclose(lean._taps(), residual.gaussian_taps().numpy(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("overrides", [
    {"residual_width": 4, "residual_pairs": "next"},
    {"residual_width": 4, "residual_pairs": "sampled"},
    {},
    {"lstm_layers": 2, "bidirectional": True, "residual_width": 4, "residual_pairs": "next"},
], ids=["next", "sampled", "no-stream", "2-layer-bidirectional"])
def test_features_and_margin_are_the_torch_engines(tmp_path, overrides):
    fast, ref = _both(_weights(tmp_path, "m", **overrides))
    crops = _crops(6, seed=2)
    partners = _near(crops, 3)
    partners[2] = crops[2]  # a duplicated frame: "no evidence" from its pair in both
    fl, maps = fast.features_and_maps(crops, partners, keep_maps=False)
    ft = ref.features(crops, partners)
    assert maps == {} and isinstance(fl, np.ndarray) and fl.dtype == np.float32 and fl.shape == tuple(ft.shape)
    np.testing.assert_allclose(fl, ft.numpy(), rtol=1e-4, atol=1e-4)
    assert abs(fast.margin(fl) - ref.margin(ft)) < 1e-4
    assert fast.wants_partners == ref.wants_partners
    assert fast.model_info() == {**ref.model_info(), "precision": "fp32", "engine": "onnxruntime"}


def test_a_clip_of_one_frame_and_a_clip_without_successors(tmp_path):
    for pairs in ("next", "sampled"):
        fast, ref = _both(_weights(tmp_path, pairs, residual_width=4, residual_pairs=pairs))
        for crops in (_crops(1, seed=4), _crops(3, seed=5)):
            fl, _ = fast.features_and_maps(crops)
            ft = ref.features(crops)
            np.testing.assert_allclose(fl, ft.numpy(), rtol=1e-4, atol=1e-4)
            assert abs(fast.margin(fl) - ref.margin(ft)) < 1e-4


def test_the_cache_runs_each_crop_once_and_changes_nothing(tmp_path):
    fast, _ = _both(_weights(tmp_path, "c", residual_width=4, residual_pairs="next"))
    crops = _crops(5, seed=6)
    partners = _near(crops, 7)
    plain, _ = fast.features_and_maps(crops, partners)
    runs = []
    maps = fast._trunk.maps
    fast._trunk.maps = lambda rows: runs.append(len(rows)) or maps(rows)
    cache: dict = {}
    fast.features_and_maps(crops[:2], partners[:2], cache=cache)
    cached, _ = fast.features_and_maps(crops, partners, cache=cache)
    assert runs == [2, 3]
    np.testing.assert_array_equal(cached, plain)


def test_explanations_and_other_models_are_refused_with_a_way_out(tmp_path):
    fast, _ = _both(_weights(tmp_path, "e", residual_width=4, residual_pairs="next"))
    with pytest.raises(InputError, match="get_detector"):
        fast.features_and_maps(_crops(2, seed=8), keep_maps=True)
    legacy = spec_for("legacy_reference")
    assert not lean.supports(legacy)
    with pytest.raises(InputError, match="get_detector"):
        lean.LeanDetector({}, legacy)
    broken = lean.load_state(_weights(tmp_path, "b"), lean.read_spec(tmp_path / "b.safetensors"))
    del broken["head.bias"]
    with pytest.raises(WeightsError, match="head.bias"):
        lean.LeanDetector(broken, lean.read_spec(tmp_path / "b.safetensors"))


def test_a_file_that_does_not_match_its_sidecar_is_refused(tmp_path):
    path = _weights(tmp_path, "h")
    spec = lean.read_spec(path)
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    with pytest.raises(WeightsError, match="sha256"):
        lean.load_state(path, spec)


def test_shipped_weights_on_the_stored_crops():
    """The bundled model (fp16 tensors in the file) on tests/test_precision.py's crops: the same margin."""
    import cv2

    grid = cv2.cvtColor(cv2.imread(str(FIXTURES / "crops_s4_bbae9n_t4.png")), cv2.COLOR_BGR2RGB)
    crops, partners = (np.stack(np.split(row, 4, axis=1)) for row in (grid[:112], grid[112:]))
    fast = lean.get_lean_detector(str(DEFAULT_WEIGHTS))
    ref = Detector(*load_weights(DEFAULT_WEIGHTS), "fp32", "torch")
    m_fast = fast.margin(fast.features_and_maps(crops, partners)[0])
    m_ref = ref.margin(ref.features(crops, partners))
    assert abs(m_fast - m_ref) < 1e-4
    assert fast.model_info()["weights_sha256"] == ref.spec.weights_sha256


def test_get_model_runs_without_torch_unless_something_needs_it():
    assert isinstance(get_model(precision="fp32", explain=False), lean.LeanDetector)
    assert isinstance(get_model(precision="fp32", explain=True), Detector)  # gradients
    assert isinstance(get_model(precision="fp32", engine="torch", explain=False), Detector)
    assert isinstance(get_model(precision="bf16", explain=False), Detector)
    with pytest.raises(InputError, match="precision"):
        get_model(precision="fp8")
    with pytest.raises(WeightsError, match="not found"):  # the PyTorch loader's own error, with its fix
        get_model("no/such.safetensors", precision="fp32", explain=False)


_SCRIPT = """
import json, sys
from detector.pipeline import AnalysisConfig, analyze_video
report = analyze_video(sys.argv[1], AnalysisConfig(frames=8, precision="fp32"))
print(json.dumps({"torch": "torch" in sys.modules, "margin": report.faces[0].margin, "p": report.p_fake,
                  "verdict": report.verdict, "software": report.software, "engine": report.model["engine"]}))
"""


@pytest.mark.slow
def test_an_analysis_without_explanations_never_imports_torch():
    clip = FIXTURES / "s4_bbae9n.mpg"
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(clip)], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["torch"] is False and "torch" not in got["software"] and got["engine"] == "onnxruntime"
    from detector.pipeline import AnalysisConfig, analyze_video, get_detector

    ref = analyze_video(clip, AnalysisConfig(frames=8, precision="fp32"),
                        detector=get_detector(precision="fp32"))
    assert got["verdict"] == ref.verdict and abs(got["margin"] - ref.faces[0].margin) < 1e-4
