"""The ResNet-family trunk on ONNX Runtime: the fp32 model pass on CPUs without native bf16.

Why: on an AVX2 CPU (no AVX-512 BF16, so fp32) the ResNeXt50 trunk is most of an analysis. PyTorch's eager
convolutions run it on 60 crops of 112x112 in 2.3 s on a 2-core Zen 3; ONNX Runtime's CPU kernels, with every
batch norm folded into its convolution and Conv + ReLU fused, in 1.1 s, features within 1e-5 (issue 41;
benchmarks/bench_model.py). Same weights, same arithmetic up to float rounding: not a different model.

How: `trunk_graph` writes the ONNX graph directly from the loaded torch module (no tracing, no exporter, no
file): Cast + Transpose + the model's own normalisation, then every Conv with its BatchNorm folded in
(w' = w * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps)), ReLU, MaxPool and the residual
Adds, in the module's own order; the weights are handed to the session as arrays, not serialised. The graph
ends at the last block's output (what Grad-CAM reads), so the pooled features and the maps come from one run.
Building it and the session costs ~0.5 s, once per process.

The graph is written from the trunk's tensors (`TrunkWeights`: numpy arrays by their state-dict names, the layout
from detector/spec.py's TRUNKS), not from a torch module, so that detector/lean.py runs it with no PyTorch in the
process. The residual stream's convolutions (`residual_graph`) are written the same way.

Input: uint8 (B, H, W, 3), the crops as the pipeline holds them (colour order as the model's normalisation
expects: RGB for ResNeXtLSTM). Output: float32 (B, C, H/32, W/32), C = 2048 (ResNeXt50, ResNet50) or 512.

onnxruntime is an ordinary dependency, imported only when this engine runs; `available()` says whether it
imports, and the Detector falls back to PyTorch when it does not. The graph's protobuf is written here by hand
(the `onnx` package's import costs more than it would save).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from detector.spec import TRUNKS

OPSET = 17


def available() -> bool:
    """Whether onnxruntime imports here (the engine's one requirement)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


# ---- the few ONNX protobuf messages this graph needs, encoded by hand ----------------------------------------
# Why not the `onnx` package: importing it imports ml_dtypes, 1.2-1.4 s of a cold start on the project's CPUs,
# more than the model pass it would speed up. Field numbers are those of onnx/onnx.proto (IR version 8).

FLOAT, UINT8, INT8 = 1, 2, 3  # TensorProto.DataType
_ELEM = {np.dtype(np.float32): FLOAT, np.dtype(np.uint8): UINT8, np.dtype(np.int8): INT8}
BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default, which every batch norm of these models uses
_INT, _INTS = 2, 7  # AttributeProto.AttributeType


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 two's complement, as protobuf writes negative varints
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _int(field: int, n: int) -> bytes:
    return _varint(field << 3) + _varint(n)


def _bytes(field: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _attribute(name: str, value: int | list[int]) -> bytes:
    if isinstance(value, int):
        return _bytes(1, name) + _int(3, value) + _int(20, _INT)
    return _bytes(1, name) + b"".join(_int(8, v) for v in value) + _int(20, _INTS)


def _node(op: str, inputs: list[str], outputs: list[str], **attrs) -> bytes:
    return (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs) + _bytes(4, op)
            + b"".join(_bytes(5, _attribute(k, v)) for k, v in attrs.items()))


def _external_tensor(name: str, shape: tuple[int, ...], elem: int = FLOAT) -> bytes:
    """An initialiser whose values live outside the graph (handed to the session as an array)."""
    return (b"".join(_int(1, d) for d in shape) + _int(2, elem) + _bytes(8, name)
            + _bytes(13, _bytes(1, "location") + _bytes(2, f"{name}.bin")) + _int(14, 1))


def _value_info(name: str, elem: int, dims: list[int | str]) -> bytes:
    shape = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, _int(1, elem) + _bytes(2, shape)))


def _fold(state: Mapping[str, np.ndarray], conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """Conv2d `conv` (its ".weight", and ".bias" if it has one) followed by an eval-mode BatchNorm2d `bn`
    -> (weight, bias) of one Conv, float32. In float64 as torch's own fold would be, so that the graph is the
    same whether the arrays came from the module or from the file."""
    scale = state[f"{bn}.weight"].astype(np.float64) / np.sqrt(state[f"{bn}.running_var"].astype(np.float64) + BN_EPS)
    w = state[f"{conv}.weight"].astype(np.float64) * scale.reshape(-1, 1, 1, 1)
    b = state[f"{bn}.bias"].astype(np.float64) - state[f"{bn}.running_mean"].astype(np.float64) * scale
    if f"{conv}.bias" in state:
        b = b + state[f"{conv}.bias"].astype(np.float64) * scale
    return np.ascontiguousarray(w, np.float32), b.astype(np.float32)


@dataclass(frozen=True)
class TrunkWeights:
    """What the trunk's graph is written from: its tensors (float32 numpy, state-dict names relative to the trunk:
    "conv1.weight", "layer1.0.bn1.running_mean", ...), its layout (a detector/spec.py TRUNKS name) and the input
    normalisation, mean and std per RGB channel on the 0-255 scale, float32 (3,)."""

    state: Mapping[str, np.ndarray]
    backbone: str
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of_model(cls, model) -> TrunkWeights:
        """From a loaded ResNeXtLSTM (anything with `normalize` and `backbone`, and `spec.backbone`)."""
        if getattr(model.normalize, "bgr", False):
            raise ValueError("the ONNX trunk takes RGB models only (the legacy BGR layout runs on PyTorch)")
        state = {k: v.detach().float().cpu().numpy() for k, v in model.backbone.state_dict().items()}
        return cls(state, model.spec.backbone, model.normalize.mean.detach().float().numpy().reshape(3),
                   model.normalize.std.detach().float().numpy().reshape(3))

    @classmethod
    def of_state(cls, state: Mapping[str, np.ndarray], backbone: str, mean: tuple[float, ...],
                 std: tuple[float, ...], prefix: str = "backbone.") -> TrunkWeights:
        """From a weights file's tensors (`prefix` + trunk names) and its sidecar's mean and std (0-1 scale)."""
        def stat(values):  # as detector/model.py's pixel_stat: scaled in Python, then float32
            return np.array([v * 255.0 for v in values], np.float32)

        trunk = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        return cls(trunk, backbone, stat(mean), stat(std))


class Graph:
    """Nodes and weights of one ONNX graph, with fresh names. The weights' bytes never enter the protobuf
    (serialising 92 MB costs ~0.3 s): the graph holds "external data" stubs and the session gets the arrays.
    state: the tensors `conv_bn` reads by name."""

    def __init__(self, state: Mapping[str, np.ndarray] | None = None) -> None:
        self.nodes: list[bytes] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.state = state or {}
        self.n = 0

    def name(self, stem: str) -> str:
        self.n += 1
        return f"{stem}_{self.n}"

    def const(self, stem: str, value: np.ndarray, dtype=np.float32) -> str:
        name = self.name(stem)
        self.arrays[name] = np.ascontiguousarray(value, dtype)
        return name

    def op(self, kind: str, inputs: list[str], stem: str, **attrs) -> str:
        out = self.name(stem)
        self.nodes.append(_node(kind, inputs, [out], **attrs))
        return out

    def conv_bn(self, x: str, conv: str, bn: str, relu: bool, stride: int = 1, groups: int = 1) -> str:
        """Conv `conv` + BatchNorm `bn` (names in `state`), folded into one Conv; padding k // 2."""
        w, b = _fold(self.state, conv, bn)
        k, p = w.shape[-1], w.shape[-1] // 2
        y = self.op("Conv", [x, self.weight(w), self.const("b", b)], "conv", kernel_shape=[k, k],
                    strides=[stride, stride], pads=[p, p, p, p], group=groups)
        return self.activation(self.op("Relu", [y], "relu") if relu else y, bn, relu)

    # Two hooks, for a graph that quantises (benchmarks/bench_model.py measures an int8 trunk this way): a
    # convolution's weight, and every activation a later convolution or Add reads.
    def weight(self, w: np.ndarray) -> str:
        """A folded convolution weight, float32 (C_out, C_in / groups, k, k) -> the tensor the Conv reads."""
        return self.const("w", w)

    def activation(self, x: str, name: str, nonneg: bool) -> str:
        """The output `x` of the module called `name` (a batch norm folded into its Conv, a block such as
        "layer1.0", the stem's "maxpool"), after its ReLU when nonneg -> the tensor the next op reads."""
        return x

    def model(self, inputs: list[bytes], outputs: list[bytes]) -> bytes:
        """The serialised ModelProto (IR 8, opset OPSET): what every onnxruntime >= 1.14 reads."""
        graph = (b"".join(_bytes(1, n) for n in self.nodes) + _bytes(2, "trunk")
                 + b"".join(_bytes(5, _external_tensor(k, v.shape, _ELEM[v.dtype])) for k, v in self.arrays.items())
                 + b"".join(_bytes(11, i) for i in inputs) + b"".join(_bytes(12, o) for o in outputs))
        return (_int(1, 8) + _bytes(2, "deepfake-forensics") + _bytes(7, graph)
                + _bytes(8, _bytes(1, "") + _int(2, OPSET)))


def _block(g: Graph, x: str, name: str, bottleneck: bool, stride: int, groups: int) -> str:
    """A BasicBlock or Bottleneck (detector/backbones.py) called `name`: the same order as its forward(). The
    stride sits on the 3x3 convolution (ResNet v1.5) and on the downsampling 1x1."""
    skip = x if f"{name}.downsample.0.weight" not in g.state else \
        g.conv_bn(x, f"{name}.downsample.0", f"{name}.downsample.1", relu=False, stride=stride)
    if bottleneck:
        out = g.conv_bn(x, f"{name}.conv1", f"{name}.bn1", relu=True)
        out = g.conv_bn(out, f"{name}.conv2", f"{name}.bn2", relu=True, stride=stride, groups=groups)
        out = g.conv_bn(out, f"{name}.conv3", f"{name}.bn3", relu=False)
    else:
        out = g.conv_bn(x, f"{name}.conv1", f"{name}.bn1", relu=True, stride=stride)
        out = g.conv_bn(out, f"{name}.conv2", f"{name}.bn2", relu=False)
    return g.activation(g.op("Relu", [g.op("Add", [out, skip], "add")], "relu"), name, True)


def trunk_graph(weights: TrunkWeights, g: Graph | None = None) -> tuple[bytes, dict[str, np.ndarray]]:
    """The ONNX model of the normalisation + trunk (see module docstring): (the serialised graph, whose
    weights are external, {weight name: array}: float32, and int8 / uint8 where a quantising graph adds them).

    g: an empty graph whose hooks (`Graph.weight`, `Graph.activation`) shape it, a plain `Graph` by default.
    """
    layout = TRUNKS[weights.backbone]
    g = g if g is not None else Graph()
    g.state = weights.state
    x = g.op("Cast", ["crops"], "float", to=FLOAT)
    x = g.op("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    x = g.op("Sub", [x, g.const("mean", weights.mean.reshape(1, 3, 1, 1))], "sub")
    x = g.op("Div", [x, g.const("std", weights.std.reshape(1, 3, 1, 1))], "div")
    x = g.conv_bn(x, "conv1", "bn1", relu=True, stride=2)
    x = g.op("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    x = g.activation(x, "maxpool", True)
    for i, depth in enumerate(layout.depths):
        for j in range(depth):
            x = _block(g, x, f"layer{i + 1}.{j}", layout.block == "bottleneck", 2 if i and not j else 1,
                       layout.groups)
    channels = weights.state[f"layer4.{layout.depths[3] - 1}.{'bn3' if layout.block == 'bottleneck' else 'bn2'}.weight"]
    g.nodes.append(_node("Identity", [x], ["maps"]))
    return g.model([_value_info("crops", UINT8, ["B", "H", "W", 3])],
                   [_value_info("maps", FLOAT, ["B", len(channels), "h", "w"])]), g.arrays


def residual_graph(state: Mapping[str, np.ndarray], prefix: str = "residual.body.") -> tuple[bytes, dict]:
    """The residual-pair stream's layers (detector/residual.py `ResidualPairStream.body`: five 3x3 Conv + BN +
    ReLU, stride 1 then 2, 2, 2, 2, then a global average pool), from the file's tensors `prefix` + "0.weight",
    ...: float32 "pairs" (P, 2, H, W) -> float32 "features" (P, 4 * width)."""
    g = Graph(state)
    x = "pairs"
    for i in range(5):
        x = g.conv_bn(x, f"{prefix}{3 * i}", f"{prefix}{3 * i + 1}", relu=True, stride=2 if i else 1)
    x = g.op("GlobalAveragePool", [x], "pool")
    g.nodes.append(_node("Flatten", [x], ["features"], axis=1))
    width = len(state[f"{prefix}12.weight"])
    return g.model([_value_info("pairs", FLOAT, ["P", 2, "H", "W"])],
                   [_value_info("features", FLOAT, ["P", width])]), g.arrays


def _threads() -> int:
    """torch's intra-op threads where torch is loaded (so `torch.set_num_threads` and OMP_NUM_THREADS govern both
    engines), else OMP_NUM_THREADS, else 0: ONNX Runtime's own choice, one per physical core, as torch's."""
    if "torch" in sys.modules:
        return sys.modules["torch"].get_num_threads()
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() else 0


class OrtSession:
    """One graph of this module on ONNX Runtime's CPU provider: `run(**inputs) -> first output (numpy)`.

    threads: intra-op threads (default `_threads()`). Spinning is off: the pipeline's next stage (OpenCV, the
    LSTM) needs the cores at once."""

    def __init__(self, graph: tuple[bytes, dict[str, np.ndarray]], output: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads if threads is not None else _threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3  # warnings about unused initialisers etc. are not the user's business
        proto, arrays = graph
        # The session reads the weights from these arrays (no copy into the protobuf and back).
        self._weights = {k: ort.OrtValue.ortvalue_from_numpy(v) for k, v in arrays.items()}
        opts.add_external_initializers(list(self._weights), list(self._weights.values()))
        self.session = ort.InferenceSession(proto, opts, providers=["CPUExecutionProvider"])
        self.output = output

    def run(self, **inputs: np.ndarray) -> np.ndarray:
        (out,) = self.session.run([self.output], {k: np.ascontiguousarray(v) for k, v in inputs.items()})
        return out


class OrtTrunk(OrtSession):
    """A trunk on ONNX Runtime: `maps(crops uint8 (B, H, W, 3)) -> float32 (B, C, h, w)` (numpy).

    weights: `TrunkWeights` (or a loaded model, read with `TrunkWeights.of_model`); graph: an empty `Graph`
    (subclass) to build the trunk in (see `trunk_graph`)."""

    def __init__(self, weights, threads: int | None = None, graph: Graph | None = None) -> None:
        weights = weights if isinstance(weights, TrunkWeights) else TrunkWeights.of_model(weights)
        super().__init__(trunk_graph(weights, graph), "maps", threads)

    def maps(self, crops: np.ndarray) -> np.ndarray:
        """crops: uint8 (B, H, W, 3) -> the last block's output, float32 (B, C, H/32, W/32)."""
        if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[-1] != 3:
            raise ValueError(f"crops must be uint8 (B, H, W, 3), not {crops.dtype} {crops.shape}")
        return self.run(crops=crops)
