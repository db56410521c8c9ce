"""ResNet-family trunks (ResNet18, ResNet50, ResNeXt50_32x4d) written here, without torchvision.

Why not torchvision.models: importing torchvision imports torchvision.ops, which imports torch._dynamo;
that is ~1.4 s of a cold `deepfake-forensics analyze` on this project's CPUs (measured with
`python -X importtime`), more than the analysis of a 1080p clip. The module names, parameter shapes and
initialisation follow torchvision's ResNet v1.5 (stride on the 3x3 convolution), so the state-dict keys
are the same (`conv1`, `bn1`, `layer1.0.conv2.weight`, `layer2.0.downsample.0.weight`, ...): weights
trained with either load into the other unchanged (tests/test_model.py checks keys, shapes and outputs
against torchvision where it is installed).

Shapes: float (B, 3, H, W) -> (B, C, H/32, W/32), C = 512 (ResNet18) or 2048 (ResNet50, ResNeXt50).
"""

from __future__ import annotations

import torch
from torch import nn

from detector.spec import TRUNKS, TrunkSpec


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None, spec: TrunkSpec):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + skip)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None, spec: TrunkSpec):
        super().__init__()
        width = int(planes * spec.width_per_group / 64) * spec.groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        # The stride sits on the 3x3 convolution (ResNet v1.5), as in torchvision.
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=spec.groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + skip)


class Trunk(nn.Module):
    """ResNet-family trunk without its pool and fc: float (B, 3, H, W) -> (B, num_features, H/32, W/32)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in TRUNKS:
            raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(TRUNKS)}")
        spec = TRUNKS[name]
        block = BasicBlock if spec.block == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), spec.depths)):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or inplanes != planes * block.expansion:
                down = nn.Sequential(nn.Conv2d(inplanes, planes * block.expansion, 1, stride, bias=False),
                                     nn.BatchNorm2d(planes * block.expansion))
            blocks = [block(inplanes, planes, stride, down, spec)]
            inplanes = planes * block.expansion
            blocks += [block(inplanes, planes, 1, None, spec) for _ in range(depth - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_features = inplanes
        # torchvision's initialisation, so that training from scratch starts where it always did. Not on the
        # meta device (load_weights builds there and assigns the file's tensors): normal_ on meta tensors
        # imports torch._dynamo, ~1.4 s of a cold start, for values nobody reads.
        for m in self.modules() if not self.conv1.weight.is_meta else ():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
