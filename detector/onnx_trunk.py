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

Input: uint8 (B, H, W, 3), the crops as the pipeline holds them (colour order as the model's normalisation
expects: RGB for ResNeXtLSTM). Output: float32 (B, C, H/32, W/32), C = 2048 (ResNeXt50, ResNet50) or 512.

onnxruntime is an ordinary dependency, imported only when this engine runs; `available()` says whether it
imports, and the Detector falls back to PyTorch when it does not. The graph's protobuf is written here by hand
(the `onnx` package's import costs more than it would save).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

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


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """A bias-free Conv2d followed by an eval-mode BatchNorm2d -> (weight, bias) of one Conv, float32."""
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    w = conv.weight.detach().double() * scale.view(-1, 1, 1, 1)
    b = bn.bias.detach().double() - bn.running_mean.detach().double() * scale
    if conv.bias is not None:
        b = b + conv.bias.detach().double() * scale
    return w.float().contiguous().numpy(), b.float().numpy()


class Graph:
    """Nodes and weights of one ONNX graph, with fresh names. The weights' bytes never enter the protobuf
    (serialising 92 MB costs ~0.3 s): the graph holds "external data" stubs and the session gets the arrays."""

    def __init__(self) -> None:
        self.nodes: list[bytes] = []
        self.arrays: dict[str, np.ndarray] = {}
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

    def conv_bn(self, x: str, conv: nn.Conv2d, bn: nn.BatchNorm2d, relu: bool) -> str:
        w, b = _fold(conv, bn)
        k, s, p = conv.kernel_size, conv.stride, conv.padding
        y = self.op("Conv", [x, self.weight(w), self.const("b", b)], "conv", kernel_shape=list(k),
                    strides=list(s), pads=[p[0], p[1], p[0], p[1]], group=conv.groups)
        return self.activation(self.op("Relu", [y], "relu") if relu else y, bn, relu)

    # Two hooks, for a graph that quantises (benchmarks/bench_model.py measures an int8 trunk this way): a
    # convolution's weight, and every activation a later convolution or Add reads.
    def weight(self, w: np.ndarray) -> str:
        """A folded convolution weight, float32 (C_out, C_in / groups, k, k) -> the tensor the Conv reads."""
        return self.const("w", w)

    def activation(self, x: str, module: nn.Module, nonneg: bool) -> str:
        """The output `x` of `module` (a BatchNorm folded into its Conv, a block, the stem's MaxPool), after its
        ReLU when nonneg -> the tensor the next op reads."""
        return x

    def model(self, inputs: list[bytes], outputs: list[bytes]) -> bytes:
        """The serialised ModelProto (IR 8, opset OPSET): what every onnxruntime >= 1.14 reads."""
        graph = (b"".join(_bytes(1, n) for n in self.nodes) + _bytes(2, "trunk")
                 + b"".join(_bytes(5, _external_tensor(k, v.shape, _ELEM[v.dtype])) for k, v in self.arrays.items())
                 + b"".join(_bytes(11, i) for i in inputs) + b"".join(_bytes(12, o) for o in outputs))
        return (_int(1, 8) + _bytes(2, "deepfake-forensics") + _bytes(7, graph)
                + _bytes(8, _bytes(1, "") + _int(2, OPSET)))


def _block(g: Graph, x: str, block: nn.Module) -> str:
    """A BasicBlock or Bottleneck (detector/backbones.py): the same order as its forward()."""
    skip = x if block.downsample is None else g.conv_bn(x, block.downsample[0], block.downsample[1], relu=False)
    out = g.conv_bn(x, block.conv1, block.bn1, relu=True)
    if hasattr(block, "conv3"):
        out = g.conv_bn(out, block.conv2, block.bn2, relu=True)
        out = g.conv_bn(out, block.conv3, block.bn3, relu=False)
    else:
        out = g.conv_bn(out, block.conv2, block.bn2, relu=False)
    return g.activation(g.op("Relu", [g.op("Add", [out, skip], "add")], "relu"), block, True)


def trunk_graph(model: nn.Module, g: Graph | None = None) -> tuple[bytes, dict[str, np.ndarray]]:
    """The ONNX model of `model`'s normalisation + trunk (see module docstring): (the serialised graph, whose
    weights are external, {weight name: array}: float32, and int8 / uint8 where a quantising graph adds them).

    model: a ResNeXtLSTM (anything with `normalize` (mean, std buffers on the 0-255 scale, `bgr`) and
    `backbone` = detector.backbones.Trunk), in eval mode. g: an empty graph whose hooks (`Graph.weight`,
    `Graph.activation`) shape it, a plain `Graph` by default.
    """
    norm, trunk = model.normalize, model.backbone
    if getattr(norm, "bgr", False):
        raise ValueError("the ONNX trunk takes RGB models only (the legacy BGR layout runs on PyTorch)")
    g = g if g is not None else Graph()
    x = g.op("Cast", ["crops"], "float", to=FLOAT)
    x = g.op("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    x = g.op("Sub", [x, g.const("mean", norm.mean.detach().float().numpy())], "sub")
    x = g.op("Div", [x, g.const("std", norm.std.detach().float().numpy())], "div")
    x = g.conv_bn(x, trunk.conv1, trunk.bn1, relu=True)
    mp = trunk.maxpool
    x = g.op("MaxPool", [x], "maxpool", kernel_shape=[mp.kernel_size] * 2, strides=[mp.stride] * 2,
             pads=[mp.padding] * 4)
    x = g.activation(x, mp, True)
    for stage in (trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4):
        for block in stage:
            x = _block(g, x, block)
    g.nodes.append(_node("Identity", [x], ["maps"]))
    return g.model([_value_info("crops", UINT8, ["B", "H", "W", 3])],
                   [_value_info("maps", FLOAT, ["B", trunk.num_features, "h", "w"])]), g.arrays


class OrtTrunk:
    """`model`'s trunk on ONNX Runtime: `maps(crops uint8 (B, H, W, 3)) -> float32 tensor (B, C, h, w)`.

    threads: intra-op threads, default torch's (so `torch.set_num_threads` and OMP_NUM_THREADS govern both
    engines). Spinning is off: the pipeline's next stage (OpenCV, the LSTM in torch) needs the cores at once.
    graph: an empty `Graph` (subclass) to build the trunk in (see `trunk_graph`).
    """

    def __init__(self, model: nn.Module, threads: int | None = None, graph: Graph | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3  # warnings about unused initialisers etc. are not the user's business
        proto, arrays = trunk_graph(model, graph)
        # The session reads the weights from these arrays (no copy into the protobuf and back).
        self._weights = {k: ort.OrtValue.ortvalue_from_numpy(v) for k, v in arrays.items()}
        opts.add_external_initializers(list(self._weights), list(self._weights.values()))
        self.session = ort.InferenceSession(proto, opts, providers=["CPUExecutionProvider"])

    def maps(self, crops: np.ndarray) -> torch.Tensor:
        """crops: uint8 (B, H, W, 3) -> the last block's output, float32 (B, C, H/32, W/32)."""
        if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[-1] != 3:
            raise ValueError(f"crops must be uint8 (B, H, W, 3), not {crops.dtype} {crops.shape}")
        (out,) = self.session.run(["maps"], {"crops": np.ascontiguousarray(crops)})
        return torch.from_numpy(out)
