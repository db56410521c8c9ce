"""A loaded model and how it runs on this CPU: `Detector` (features, margin, model card fields) and `get_detector`.

Two choices are made here at run time, never baked into the weights:

- precision: "bf16" autocast where the CPU has native bf16 (AVX-512 BF16 / AMX: ~2x faster), else "fp32"
  (where bf16 is emulated it is 15-20x slower). "auto" picks; tests/test_precision.py bounds the margin change.
- engine: which library runs the ResNeXt50 trunk in fp32. "onnxruntime" (detector/onnx_trunk.py: batch norms
  folded, ~2x faster than PyTorch's eager convolutions on an AVX2 Zen 3, features within 1e-5) or "torch".
  "auto" = onnxruntime for an fp32 run of an RGB model when it imports, torch otherwise (bf16 autocast, the
  legacy BGR layout). In a `Detector` the residual stream, the LSTM and every gradient run in PyTorch.

Both are reported with every result (`model_info()["precision"]`, `["engine"]`).

`get_model` is what an analysis calls: where nothing needs PyTorch (no explanations, fp32, the ONNX Runtime
engine) it returns detector/lean.py's `LeanDetector`, the same model pass on ONNX Runtime and numpy (margins
within 1e-4), so that a cold command does not pay torch's ~2 s import; else `get_detector`'s `Detector`.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detector.errors import InputError
from detector.hashing import cached_rows
from detector.spec import ModelSpec, model_info
from detector.weights import DEFAULT_WEIGHTS, load_weights

if TYPE_CHECKING:  # torch loads with the model (get_detector), not at `import detector`: ~2 s of start-up
    import torch

PRECISIONS = ("auto", "fp32", "bf16")
ENGINES = ("auto", "onnxruntime", "torch")


class Detector:
    """A loaded model and its spec; cheap to call many times (see `get_detector`).

    The onnxruntime engine's session holds a copy of the trunk's weights taken at the first call of
    `features`: a caller that changes the model's weights afterwards (training) uses engine="torch".
    """

    def __init__(self, model: torch.nn.Module, spec: ModelSpec, precision: str = "auto",
                 engine: str = "auto") -> None:
        import torch

        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        if engine not in ENGINES:
            raise InputError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        self.model, self.spec = model.eval(), spec
        self.use_bf16 = precision == "bf16" or (precision == "auto" and _cpu_has_bf16())
        self.engine = _resolve_engine(engine, model, self.use_bf16)
        self._ort = None  # built at the first `features` call (~0.5 s): loading alone stays cheap
        # oneDNN's convolutions are fastest on NHWC weights in bf16 and in fp32 alike (fp32 on an AVX2 Zen 3:
        # the trunk in ~0.75x the time, features within 1e-5 of NCHW; benchmarks/bench_model.py), and
        # explanations' backward passes work on them too.
        self.model.to(memory_format=torch.channels_last)

    def features(self, clip: np.ndarray, partners: np.ndarray | None = None) -> torch.Tensor:
        """clip: uint8 (T, H, W, 3) RGB -> features (1, T, C) fp32.

        partners: uint8 (T, H, W, 3), the crop of each frame's successor in the video (same boxes), for a
        model whose residual stream pairs "next" frames; ignored by other models."""
        return self.features_and_maps(clip, partners, keep_maps=False)[0]

    def features_and_maps(self, clip: np.ndarray, partners: np.ndarray | None = None, keep_maps: bool = True,
                          cache: dict | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """As `features`, plus (keep_maps) the activations Grad-CAM reads, from the same pass:
        {"appearance": the trunk's last block (T, 2048, h, w), "texture": the residual stream's last ReLU
        (P, 4 * width, h', w') when it ran}, fp32. explain/gradcam.py's "cached" method turns them into maps
        with one backward pass through the LSTM only.

        cache: crop bytes -> the trunk's output for that crop, shared by calls within one analysis (the adaptive
        frame count's first read and its full read, detector/adaptive.py): a crop seen before is not run again.
        Both engines give the same output for a crop whatever the batch around it (fp32, measured: 0.0 difference),
        so a cached run's features are those of an uncached one."""
        import torch

        def tensor(a):  # (T, H, W, 3) -> (1, T, 3, H, W)
            return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).unsqueeze(0)

        maps: dict[str, torch.Tensor] = {}
        if not hasattr(self.model, "rgb_features"):  # the legacy layout: its own forward, no stream, no cache
            with self._kept(maps, "appearance", keep_maps), torch.inference_mode(), \
                    torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.use_bf16):
                return self.model.forward_features(tensor(clip)).float(), maps
        stream = keep_maps and getattr(self.model, "residual", None) is not None
        with self._kept(maps, "texture", stream), torch.inference_mode():
            a = self._trunk_maps(np.asarray(clip), cache)  # (T, C, h, w)
            if keep_maps:
                maps["appearance"] = a
            # Only a "next" model's forward_features takes partners.
            args = (tensor(clip), tensor(partners)) if partners is not None and self.wants_partners \
                else (tensor(clip),)
            f = self.model.forward_features(*args, rgb=a.mean(dim=(2, 3)).unsqueeze(0))
        return f, {k: v.contiguous() for k, v in maps.items()}

    @contextlib.contextmanager
    def _kept(self, maps: dict, layer: str, keep: bool):
        """While inside, the output of Grad-CAM's `layer` ("appearance" or "texture") goes into maps[layer], fp32;
        nothing is hooked when not `keep`."""
        if not keep:
            yield
            return
        from explain.gradcam import target_layer

        hook = target_layer(self.model, layer).register_forward_hook(
            lambda _m, _i, out: maps.__setitem__(layer, out.detach().float()))
        try:
            yield
        finally:
            hook.remove()

    def _trunk_maps(self, crops: np.ndarray, cache: dict | None) -> torch.Tensor:
        """crops uint8 (T, H, W, 3) RGB -> the trunk's last block, float32 (T, C, h, w), on this engine and
        precision; only the crops missing from `cache` run."""
        import torch

        return torch.stack(cached_rows(crops, cache, self._run_trunk))

    def _run_trunk(self, crops: np.ndarray) -> torch.Tensor:
        import torch

        if self.engine == "onnxruntime":
            return torch.from_numpy(self._trunk().maps(crops))
        x = torch.from_numpy(crops).permute(0, 3, 1, 2)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.use_bf16):
            return self.model.backbone(self.model.normalize(x)).float()

    def _trunk(self):
        if self._ort is None:
            from detector.onnx_trunk import OrtTrunk

            self._ort = OrtTrunk(self.model)
        return self._ort

    @property
    def wants_partners(self) -> bool:
        """The model's residual stream compares each frame with the video's next one (see detector/residual.py)."""
        return wants_partners(self.spec)

    def p_fake(self, features: torch.Tensor) -> float:
        import torch

        with torch.inference_mode():
            return float(torch.softmax(self.model.forward_head(features), -1)[0, 1])

    def margin(self, features: torch.Tensor) -> float:
        """Fake-minus-real logit of features (1, T, C): the score calibration works on (raw p = sigmoid)."""
        import torch

        with torch.inference_mode():
            logits = self.model.forward_head(features)[0].double()
        return float(logits[1] - logits[0])

    def model_info(self) -> dict:
        return model_info(self.spec, "bf16-autocast" if self.use_bf16 else "fp32", self.engine)


def wants_partners(spec: ModelSpec) -> bool:
    return bool(spec.residual_width) and spec.residual_pairs == "next"


def _resolve_engine(engine: str, model, bf16: bool) -> str:
    """"auto" -> onnxruntime where it can run this model in this precision, else torch; an explicit
    "onnxruntime" that cannot gets a clear error."""
    from detector.onnx_trunk import available

    rgb_trunk = hasattr(getattr(model, "backbone", None), "layer4") and not getattr(model.normalize, "bgr", False)
    if engine == "torch":
        return "torch"
    why = ("it runs fp32 only and this run is bf16 (pass precision='fp32')" if bf16 else
           "this model's trunk is not an RGB ResNet (the legacy BGR layout runs on PyTorch)" if not rgb_trunk else
           "onnxruntime is not installed (pip install onnxruntime)" if not available() else None)
    if why is None:
        return "onnxruntime"
    if engine == "onnxruntime":
        raise InputError(f"engine 'onnxruntime' cannot run here: {why}; or pass engine='torch'")
    return "torch"


def _cpu_has_bf16() -> bool:
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@functools.lru_cache(maxsize=4)
def get_detector(weights: str = str(DEFAULT_WEIGHTS), precision: str = "auto", engine: str = "auto") -> Detector:
    """Load (once per process) the model behind `weights`, ready to run: the ONNX Runtime session is built here
    too, so that where the loading overlaps the decode (the CLI loads on a second thread) so does the build."""
    model, spec = load_weights(weights)
    det = Detector(model, spec, precision, engine)
    if det.engine == "onnxruntime":
        det._trunk()
    return det


def get_model(weights: str = str(DEFAULT_WEIGHTS), precision: str = "auto", engine: str = "auto",
              explain: bool = True):
    """The detector an analysis should run: `lean.LeanDetector` (the model pass on ONNX Runtime and numpy) where
    nothing needs PyTorch (no explanations; fp32, asked for or because the CPU has no native bf16; the trunk on
    ONNX Runtime; a model it supports), else `get_detector`. Both give the same margin to float rounding
    (tests/test_lean.py); the lean one skips torch's ~2 s import in a fresh process and runs the model pass in
    ~0.85x the time (its residual stream on ONNX Runtime too).
    """
    from detector import lean
    from detector.onnx_trunk import available
    from detector.weights import read_spec, sidecar_path

    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    fp32 = precision == "fp32" or (precision == "auto" and cpu_has_bf16_flags() is False)
    # A missing file or sidecar goes to get_detector, whose errors say how to fix it.
    if (not explain and fp32 and engine != "torch" and available() and Path(weights).is_file()
            and sidecar_path(weights).is_file() and lean.supports(read_spec(weights))):
        return lean.get_lean_detector(weights)
    return get_detector(weights, precision, engine)


@functools.lru_cache(maxsize=1)
def cpu_has_bf16_flags() -> bool | None:
    """Whether the CPU has native bf16 (AVX-512 BF16 or AMX), from /proc/cpuinfo's flags without importing torch;
    None where there is no /proc/cpuinfo (then PyTorch's own test decides, `_cpu_has_bf16`)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return None
    if not flags:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags
