"""The verdict must not depend on the CPU: the shipped fast paths (fp32 with the trunk on ONNX Runtime, what a
CPU without native bf16 runs; fp32 channels_last in PyTorch) and bf16 autocast (what a CPU with native bf16 runs)
give the plain fp32 NCHW margin on a stored crop tensor, within stated tolerances.

The crops (tests/fixtures/crops_s4_bbae9n_t4.png: top row 4 face crops of a GRID test clip, bottom row each
one's successor cropped with the same box, 112x112 RGB) are stored, so decoder or detector changes cannot
move this test."""

import cv2
import numpy as np
import pytest

FP32_TOLERANCE = 1e-3  # logit margin; NCHW vs channels_last, or batch norms folded (ONNX), only reorder sums
# (measured ~2e-7 and ~1e-6)
BF16_TOLERANCE = 0.05  # logit margin; bf16 keeps 8 mantissa bits (measured 0.003 on these crops)


@pytest.fixture(scope="module")
def stored_crops():
    from tests.conftest import FIXTURES

    grid = cv2.cvtColor(cv2.imread(str(FIXTURES / "crops_s4_bbae9n_t4.png")), cv2.COLOR_BGR2RGB)
    crops, partners = (np.stack(np.split(row, 4, axis=1)) for row in (grid[:112], grid[112:]))
    return crops, partners  # uint8 (4, 112, 112, 3) RGB each


@pytest.fixture(scope="module")
def reference_margin(stored_crops):
    """The margin of the model as built: fp32, NCHW weights, no autocast."""
    import torch

    from detector.weights import DEFAULT_WEIGHTS, load_weights

    model, _ = load_weights(DEFAULT_WEIGHTS)

    def t(a):  # (T, H, W, 3) -> (1, T, 3, H, W)
        return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).unsqueeze(0)

    with torch.inference_mode():
        logits = model.eval()(t(stored_crops[0]), t(stored_crops[1]))[0].double()
    return float(logits[1] - logits[0])


@pytest.mark.parametrize("precision,engine,tolerance", [("fp32", "onnxruntime", FP32_TOLERANCE),
                                                       ("fp32", "torch", FP32_TOLERANCE),
                                                       ("bf16", "auto", BF16_TOLERANCE)])
def test_fast_paths_keep_the_fp32_margin(stored_crops, reference_margin, precision, engine, tolerance):
    from detector.runtime import Detector
    from detector.weights import DEFAULT_WEIGHTS, load_weights

    model, spec = load_weights(DEFAULT_WEIGHTS)
    det = Detector(model, spec, precision, engine)  # channels_last weights; bf16: autocast (emulated without native)
    assert det.use_bf16 == (precision == "bf16") and det.engine == ("torch" if engine == "auto" else engine)
    margin = det.margin(det.features(*stored_crops))
    assert abs(margin - reference_margin) <= tolerance, (precision, margin, reference_margin)
