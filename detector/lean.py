"""The model pass without PyTorch: `LeanDetector`, for an analysis that asks for no explanations.

Why: importing torch costs ~2 s of CPU on this project's 2-core Zen 3 (`python -X importtime`), and a cold
`deepfake-forensics analyze` pays it while the clip is being decoded on the same two cores: the decode took
2.9 s cold against 1.25 s with no torch in the process, and the whole command 6.1 s (issue 41). Without
explanations nothing needs gradients, so the whole pass runs here on ONNX Runtime and numpy:

- the ResNet-family trunk and the residual stream's five convolutions: ONNX graphs written from the weights
  file's tensors (detector/onnx_trunk.py), batch norms folded as the PyTorch engine folds them;
- the residual pairs (grey, high-pass, duplicate test; detector/residual.py): numpy and OpenCV;
- the LSTM (PyTorch's gate order i, f, g, o; any layer count, either direction) and the linear head: numpy, fp32.

The margin is the PyTorch engine's to float rounding (within 1e-4 on random and on the shipped weights;
tests/test_lean.py), so the same clip gets the same verdict, and the pass takes ~0.85x the PyTorch engine's
time warm (the residual stream runs on ONNX Runtime too). `runtime.get_model` picks this detector wherever
nothing needs PyTorch: no explanations, fp32 (no native bf16, or asked), the trunk on ONNX Runtime, a
ResNeXtLSTM. Everything else (explanations, bf16, the torch engine, the legacy layout, training) runs
`runtime.Detector`.

Shapes: crops and partners uint8 (T, S, S, 3) RGB; features float32 (1, T, C), C = 2048 + 4 * residual width.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import cv2
import numpy as np

from detector.errors import InputError, WeightsError
from detector.hashing import cached_rows, sha256_file
from detector.onnx_trunk import OrtSession, OrtTrunk, TrunkWeights, available, residual_graph
from detector.spec import TRUNKS, ModelSpec, model_info
from detector.weights import read_spec, read_tensors

# detector/residual.py's constants, repeated here because that module imports torch; tests/test_lean.py checks
# that they agree.
SIGMA, TAPS, SCALE, DUPLICATE_MAD = 1.0, 9, 8.0, 0.5


def supports(spec: ModelSpec) -> bool:
    """Whether this detector can run the model `spec` describes (a ResNeXtLSTM with a known RGB trunk)."""
    return (spec.architecture == "resnext50_lstm" and spec.backbone in TRUNKS and spec.channel_order == "RGB"
            and spec.residual_pairs in ("next", "sampled"))


def load_state(path: str | os.PathLike, spec: ModelSpec) -> dict[str, np.ndarray]:
    """The weights file's tensors as float32 numpy arrays, after checking its sha256 against the sidecar's."""
    from safetensors.numpy import load_file

    state = read_tensors(path, spec, load_file)
    return {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in state.items()}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # no overflow for large |x|, unlike 1 / (1 + exp(-x))


class LeanDetector:
    """A ResNeXtLSTM's model pass on ONNX Runtime and numpy, with `runtime.Detector`'s analysis interface:
    `features_and_maps`, `margin`, `model_info`, `spec`, `wants_partners` (no maps: no explanations)."""

    engine, use_bf16, uses_torch = "onnxruntime", False, False

    def __init__(self, state: dict[str, np.ndarray], spec: ModelSpec, threads: int | None = None) -> None:
        if not supports(spec):
            raise InputError(f"{spec.name}: the model pass without PyTorch runs ResNeXtLSTM models with an RGB "
                             "ResNet trunk only; use runtime.get_detector")
        self.spec = spec
        try:
            self._trunk = OrtTrunk(TrunkWeights.of_state(state, spec.backbone, spec.mean, spec.std), threads)
            self._residual = OrtSession(residual_graph(state), "features", threads) if spec.residual_width else None
            self._lstm = [[self._lstm_weights(state, layer, suffix) for suffix in
                           (("", "_reverse") if spec.bidirectional else ("",))] for layer in range(spec.lstm_layers)]
            self._head = state["head.weight"], state["head.bias"]
        except KeyError as e:
            raise WeightsError(f"{spec.name}: tensor {e} missing: the file does not fit the sidecar's "
                               "architecture (check its backbone, residual_width and lstm_* fields)") from None

    @staticmethod
    def _lstm_weights(state: dict, layer: int, suffix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = f"l{layer}{suffix}"
        return (state[f"lstm.weight_ih_{k}"], state[f"lstm.weight_hh_{k}"],
                state[f"lstm.bias_ih_{k}"] + state[f"lstm.bias_hh_{k}"])

    @property
    def wants_partners(self) -> bool:
        """The residual stream compares each frame with the video's next one (detector/residual.py)."""
        return bool(self.spec.residual_width) and self.spec.residual_pairs == "next"

    def features_and_maps(self, clip: np.ndarray, partners: np.ndarray | None = None, keep_maps: bool = False,
                          cache: dict | None = None) -> tuple[np.ndarray, dict]:
        """clip uint8 (T, S, S, 3) RGB -> (features float32 (1, T, C), {}); partners as `runtime.Detector`'s.
        cache: crop bytes -> the trunk's pooled features, shared within one analysis (the adaptive frame count's
        two reads). keep_maps must be False: explanations need the PyTorch detector."""
        if keep_maps:
            raise InputError("explanations need PyTorch's gradients: load the model with runtime.get_detector "
                             "(or runtime.get_model(..., explain=True))")
        clip = np.asarray(clip)
        rgb = np.stack(cached_rows(clip, cache, lambda rows: self._trunk.maps(rows).mean(axis=(2, 3))))
        parts = [rgb]
        if self._residual is not None:
            parts.append(self._residual_features(clip, partners if self.wants_partners else None))
        return np.concatenate(parts, -1)[None].astype(np.float32), {}

    def _residual_features(self, clip: np.ndarray, partners: np.ndarray | None) -> np.ndarray:
        """(T, 4 * width): detector/residual.py's ResidualPairStream, "no evidence" (0) where a pair is missing
        or its two crops are (nearly) the same frame."""
        t, width = len(clip), 4 * self.spec.residual_width
        if partners is None and (self.spec.residual_pairs == "next" or t < 2):
            return np.zeros((t, width), np.float32)
        grey, res = _residuals(clip)
        if partners is None:  # "sampled": consecutive sampled frames
            a, b, ga, gb = res[:-1], res[1:], grey[:-1], grey[1:]
        else:
            if partners.shape != clip.shape:
                raise ValueError(f"partners {partners.shape} must have the clip's shape {clip.shape}")
            gb, b = _residuals(np.asarray(partners))
            a, ga = res, grey
        same = np.abs(gb - ga).mean(axis=(1, 2)) < DUPLICATE_MAD
        f = self._residual.run(pairs=np.stack([a, b], 1))
        f[same] = 0.0
        return f if partners is not None else np.concatenate([f[:1], f])  # "sampled": step 0 repeats step 1

    def margin(self, features: np.ndarray) -> float:
        """Fake-minus-real logit of features (1, T, C): the score calibration works on (raw p = sigmoid)."""
        x = np.asarray(features, np.float32)[0]
        for directions in self._lstm:
            x = np.concatenate([_lstm(x, *w, reverse=k == 1) for k, w in enumerate(directions)], -1)
        weight, bias = self._head
        logits = (weight @ x.mean(axis=0) + bias).astype(np.float64)
        return float(logits[1] - logits[0])

    def model_info(self) -> dict:
        return model_info(self.spec, "fp32", self.engine)


def _residuals(clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (T, S, S, 3) -> (grey float32 (T, S, S), (grey - Gaussian blur) / SCALE (T, S, S)): the blur is
    OpenCV's 9-tap kernel for sigma 1, reflect-101 borders, rows then columns as detector/residual.py runs it."""
    grey = clip.astype(np.float32).mean(axis=-1, dtype=np.float32)
    k = _taps()
    blur = np.stack([cv2.sepFilter2D(g, cv2.CV_32F, k, k, borderType=cv2.BORDER_REFLECT_101) for g in grey])
    return grey, (grey - blur) / SCALE


@functools.lru_cache(maxsize=1)
def _taps() -> np.ndarray:
    r = np.arange(TAPS, dtype=np.float64) - (TAPS - 1) / 2
    k = np.exp(-(r ** 2) / (2 * SIGMA ** 2))
    return (k / k.sum()).astype(np.float32)


def _lstm(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b: np.ndarray, reverse: bool = False) -> np.ndarray:
    """One LSTM layer, one direction, as torch.nn.LSTM (gates i, f, g, o): x float32 (T, I) -> h (T, H)."""
    hidden = w_hh.shape[1]
    gates_x = x @ w_ih.T + b  # (T, 4H): the input's share of every step at once
    h, c = np.zeros(hidden, np.float32), np.zeros(hidden, np.float32)
    out = np.empty((len(x), hidden), np.float32)
    for t in (range(len(x) - 1, -1, -1) if reverse else range(len(x))):
        g = gates_x[t] + w_hh @ h
        i, f, cand, o = _sigmoid(g[:hidden]), _sigmoid(g[hidden:2 * hidden]), np.tanh(g[2 * hidden:3 * hidden]), \
            _sigmoid(g[3 * hidden:])
        c = f * c + i * cand
        h = o * np.tanh(c)
        out[t] = h
    return out


@functools.lru_cache(maxsize=4)
def get_lean_detector(weights: str) -> LeanDetector:
    """Load (once per process) the model behind `weights` for the model pass without PyTorch."""
    if not available():
        raise InputError("the model pass without PyTorch needs onnxruntime (pip install onnxruntime)")
    spec = read_spec(weights)
    state = load_state(weights, spec)
    if not spec.weights_sha256:  # as load_weights: a report always names the tensors' hash
        spec = dataclasses.replace(spec, weights_sha256=sha256_file(weights))
    return LeanDetector(state, spec)
