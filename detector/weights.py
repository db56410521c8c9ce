"""Weights that declare themselves: a safetensors file plus a JSON sidecar (timm's PretrainedCfg idea).

`weights/<name>.safetensors` holds tensors only (no pickle, so nothing executes on load);
`weights/<name>.json` holds the `ModelSpec`: architecture, input size, sequence length, mean/std, label
names, threshold, training data, metrics, licence, and the sha256 of the tensor file. The model is
rebuilt from the sidecar and refuses to start when the two disagree.

Reference checkpoints (`.pt`/`.pth`) are read with `torch.load(weights_only=True)` only.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from detector.errors import WeightsError
from detector.hashing import sha256_file
from detector.spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec

if TYPE_CHECKING:  # torch is imported where it is used: `import detector` must not pay its ~2 s
    import torch

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "resnext50_lstm.faces-families-residual-next-stills800_20.safetensors"
__all__ = ["DEFAULT_WEIGHTS", "IMAGENET_MEAN", "IMAGENET_STD", "ModelSpec", "load_weights", "read_spec",
           "save_weights", "sidecar_path", "store_calibration", "store_metrics"]


def sidecar_path(weights_path: str | os.PathLike) -> Path:
    return Path(weights_path).with_suffix(".json")


def save_weights(model: torch.nn.Module, spec: ModelSpec, path: str | os.PathLike,
                 dtype: torch.dtype | None = None) -> ModelSpec:
    """Write `path` (.safetensors, tensors cast to `dtype`, default float16) and its sidecar; returns the spec
    with its hash."""
    import torch
    from safetensors.torch import save_file

    dtype = dtype or torch.float16
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous().cpu()
               for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"name": spec.name, "architecture": spec.architecture})
    spec = dataclasses.replace(spec, weights_sha256=sha256_file(path))
    sidecar_path(path).write_text(spec.to_json() + "\n")
    return spec


def store_metrics(path: str | os.PathLike, key: str, entry: dict) -> ModelSpec:
    """Set `metrics[key]` in the sidecar of weights `path`; the tensor file and its sha256 stay as they are."""
    spec = read_spec(path)
    spec = dataclasses.replace(spec, metrics={**spec.metrics, key: entry})
    sidecar_path(path).write_text(spec.to_json() + "\n")
    return spec


def store_calibration(path: str | os.PathLike, block: dict) -> ModelSpec:
    """Set the sidecar's `calibration` block (see detector/calibration.py); the tensor file stays as it is."""
    spec = dataclasses.replace(read_spec(path), calibration=block)
    sidecar_path(path).write_text(spec.to_json() + "\n")
    return spec


def read_spec(path: str | os.PathLike) -> ModelSpec:
    side = sidecar_path(path)
    if not side.is_file():
        raise WeightsError(f"{side.name}: sidecar missing next to {Path(path).name}; every weights file "
                           "needs its JSON spec (see detector/weights.py)")
    try:
        return ModelSpec.from_dict(json.loads(side.read_text()))
    except (json.JSONDecodeError, TypeError) as e:
        raise WeightsError(f"{side.name}: not a valid sidecar ({e})") from None


def load_weights(path: str | os.PathLike = DEFAULT_WEIGHTS, device: str = "cpu",
                 check_hash: bool = True) -> tuple[torch.nn.Module, ModelSpec]:
    """Build the model its sidecar describes and load the tensors; eval mode, fp32.

    The network is built on the meta device (no random initialisation of 25 M weights that the file
    overwrites) and each fp16 tensor becomes its fp32 parameter directly (`assign=True`: one copy per
    tensor, the conversion itself).

    Raises WeightsError when the file is missing, its hash differs from the sidecar's, or tensors and
    architecture disagree (the message lists the first mismatching keys).
    """
    from safetensors.torch import load_file

    from detector.model import build_model  # torchvision loads only when a model is built

    path = Path(path)
    spec = read_spec(path) if path.is_file() else None
    state = read_tensors(path, spec, load_file, check_hash)
    import torch

    with torch.device("meta"):
        model = build_model(spec)
    check_state_dict(model, state, path.name)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, assign=True)
    _materialise_buffers(model, spec)
    if not spec.weights_sha256:
        spec = dataclasses.replace(spec, weights_sha256=sha256_file(path))
    return model.to(device).eval(), spec


def read_tensors(path: str | os.PathLike, spec: ModelSpec | None, load: Callable[[str], dict],
                 check_hash: bool = True) -> dict:
    """The tensors of weights file `path`, read by `load` (safetensors' torch or numpy `load_file`), after checking
    that the file exists and (check_hash) that its sha256 is the sidecar's. Raises WeightsError saying which."""
    from safetensors import SafetensorError

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found; run `make setup` or pass --weights PATH")
    if check_hash and spec is not None and spec.weights_sha256:
        actual = sha256_file(path)
        if actual != spec.weights_sha256:
            raise WeightsError(f"{path.name}: sha256 {actual[:12]}… differs from the sidecar's "
                               f"{spec.weights_sha256[:12]}…; the file and its JSON do not belong together")
    try:
        return load(str(path))
    except SafetensorError as e:
        raise WeightsError(f"{path.name}: not a readable safetensors file ({e})") from None


def _materialise_buffers(model: torch.nn.Module, spec: ModelSpec) -> None:
    """Non-persistent buffers (the normalisation's mean/std) are not in the file: rebuild them on the CPU."""
    from detector.model import pixel_stat

    for module in model.modules():
        for name, buf in list(module.named_buffers(recurse=False)):
            if buf.is_meta:
                if name not in ("mean", "std"):
                    raise WeightsError(f"buffer {name!r} of {type(module).__name__} is not in the weights file")
                module.register_buffer(name, pixel_stat(spec.mean if name == "mean" else spec.std),
                                       persistent=False)


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Raise WeightsError naming missing, unexpected and wrongly shaped keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {missing[:3]}{'…' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:3]}{'…' if len(unexpected) > 3 else ''}")
        if shapes:
            parts.append(f"shape {shapes[:2]}")
        raise WeightsError(f"{what}: tensors do not fit the sidecar's architecture ({'; '.join(parts)}); "
                           "check the sidecar's architecture, lstm_hidden and backbone")


def import_reference_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike,
                                sequence_length: int = 20) -> ModelSpec:
    """Convert a reference ResNeXt-LSTM `.pt` state dict (loaded with weights_only=True) to our format.

    The result runs in legacy mode and its card says that it only looks at the last frame.
    """
    import torch

    from detector.model import build_model, spec_for

    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise WeightsError(f"{Path(checkpoint).name}: cannot read as a weights-only checkpoint ({e})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    spec = spec_for("legacy_reference", sequence_length=sequence_length, trained=True,
                    trained_on=f"unknown: imported from reference checkpoint {Path(checkpoint).name}",
                    licence="unknown (check the checkpoint's source)",
                    limits=("LEGACY: the reference LSTM runs without batch_first, so only the LAST frame "
                            "decides; it does not model time",))
    model = build_model(spec)
    check_state_dict(model, state, Path(checkpoint).name)
    model.load_state_dict(state)
    return save_weights(model, spec, out, dtype=torch.float32)
