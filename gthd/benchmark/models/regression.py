"""Direct-regression baselines, in plain PyTorch (torchvision is not used).

- :class:`ResNet` with bottleneck blocks, torchvision's layer names (``conv1``, ``bn1``,
  ``layer1``..``layer4``, ``fc``; blocks ``conv1..3``, ``bn1..3``, ``downsample``) so an
  ImageNet state dict loads into it with ``strict=False`` (all but ``fc``).
  :func:`resnet50_regression` is the paper's baseline [8] (Gomez-Donoso et al.):
  ResNet-50, global average pool, one fully-connected layer to J x 2 coordinates.
- :class:`BoxRegressor`: a small plain CNN that regresses the hand box and a hand/no-hand
  logit from the whole frame: the stand-in for the paper's Faster R-CNN box baseline
  (Table I), which we cannot load here. It is a one-hand box regressor, not a detector
  with proposals; say so when comparing with the paper's numbers.

Both regress coordinates normalised to the input's extent, ``n = (u + 0.5) / W``
(0 and 1 are the image's outer edges in OpenCV's pixel convention), and also return them
in input pixels, ``u = n * W - 0.5``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._common import SquareInput, check_input, normalised_to_px, shortcut

__all__ = [
    "Bottleneck",
    "BoxConfig",
    "BoxRegressor",
    "ResNet",
    "ResNetConfig",
    "box_loss",
    "box_regressor",
    "box_regressor_config",
    "keypoint_regression_loss",
    "resnet50_regression",
    "resnet50_regression_config",
]


# ------------------------------------------------------------------------------ blocks
class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3 conv, as torchvision):
    1x1 (planes) - 3x3 (planes, stride) - 1x1 (planes * 4), BN after each, plus a
    shortcut (1x1 conv(stride)-BN when the shape changes), then ReLU.

    (B, c_in, H, W) -> (B, planes * 4, H / stride, W / stride)."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1):
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.downsample = shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = F.relu(self.bn2(self.conv2(y)), inplace=True)
        y = self.bn3(self.conv3(y))
        return F.relu(y + identity, inplace=True)


# ------------------------------------------------------------------------- ResNet model
@dataclass(frozen=True)
class ResNetConfig(SquareInput):
    """Everything that makes a :class:`ResNet` keypoint regressor.

    layers: bottleneck blocks per stage ((3, 4, 6, 3): ResNet-50).
    width: channel multiplier (1.0: the real ResNet-50, stage widths 64, 128, 256, 512
        before expansion; 0.125 for quick runs).
    joints: J, the regressed keypoints.
    in_channels: 3 (RGB).
    input_size: the square crop side the model insists on (128, the benchmark's crop).
    """

    layers: tuple[int, ...] = (3, 4, 6, 3)
    width: float = 1.0
    joints: int = 21
    in_channels: int = 3
    input_size: int = 128

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(int(n) for n in self.layers))
        if len(self.layers) != 4 or min(self.layers) < 1 or self.width <= 0 or self.joints < 1 or self.in_channels < 1:
            raise ValueError(f"expected 4 stages of >= 1 blocks, width > 0, joints and in_channels >= 1, got {self}")
        if self.input_size < 32:
            raise ValueError(f"input_size must be >= 32 (the network's stride), got {self.input_size}")

    strides = None
    """No heatmaps."""

    @property
    def output(self) -> str:
        """The forward dict's main entry."""
        return "keypoints"


class ResNet(nn.Module):
    """ResNet (He et al. 2016) with bottleneck blocks and a regression head: 7x7/2 conv,
    3x3/2 max-pool, the stages (strides 1, 2, 2, 2), global average pool, one linear layer
    to J x 2 normalised coordinates (no activation; its bias starts at 0.5, the crop's
    centre, and its weights small, so training starts from the mean pose's neighbourhood).

    Args: the fields of :class:`ResNetConfig`.

    forward(x):
        x: (B, in_channels, S, S) float, S = ``input_size``.

        Returns {"keypoints": (B, J, 2) input px (u, v), "keypoints_norm": (B, J, 2) the
        regressed values, normalised to the input's extent, n = (u + 0.5) / S}.
    """

    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3), width: float = 1.0, joints: int = 21, in_channels: int = 3, input_size: int = 128):
        super().__init__()
        self.config = cfg = ResNetConfig(tuple(layers), width, joints, in_channels, input_size)
        base = max(1, round(64 * width))
        self.conv1 = nn.Conv2d(in_channels, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c = base
        stages = []
        for i, n in enumerate(cfg.layers):
            planes = max(1, round(64 * width * 2**i))
            blocks = [Bottleneck(c, planes, stride=1 if i == 0 else 2)]
            c = planes * Bottleneck.expansion
            blocks += [Bottleneck(c, planes) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, joints * 2)
        self.num_features = c
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.normal_(self.fc.weight, std=1e-3)
        nn.init.constant_(self.fc.bias, 0.5)

    @classmethod
    def from_config(cls, config: ResNetConfig) -> ResNet:
        return cls(**asdict(config))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) -> (B, num_features) pooled features."""
        x = self.maxpool(F.relu(self.bn1(self.conv1(x)), inplace=True))  # (B, 64w, S/4, S/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 2048w, S/32, S/32)
        return torch.flatten(self.avgpool(x), 1)  # (B, 2048w)

    def forward(self, x: torch.Tensor) -> dict:
        cfg = self.config
        check_input(x, cfg.in_channels, (cfg.input_size, cfg.input_size))
        norm = self.fc(self.forward_features(x)).view(-1, cfg.joints, 2)  # (B, J, 2)
        return {"keypoints": normalised_to_px(norm, cfg.input_size, cfg.input_size), "keypoints_norm": norm}


def resnet50_regression_config(joints: int = 21, width: float = 1.0, **kwargs) -> ResNetConfig:
    """The config :func:`resnet50_regression` builds (``kwargs``: other :class:`ResNetConfig` fields)."""
    return ResNetConfig(layers=(3, 4, 6, 3), width=width, joints=joints, **kwargs)


def resnet50_regression(**kwargs) -> ResNet:
    """The paper's direct-regression baseline [8]: ResNet-50 on the 128 x 128 crop,
    (B, 3, 128, 128) -> {"keypoints": (B, J, 2) px, "keypoints_norm"}. ``kwargs``:
    :func:`resnet50_regression_config`'s (``joints`` 21, ``width`` 1.0, < 1 for quick runs:
    0.125 gives 8 stem channels, ...)."""
    return ResNet.from_config(resnet50_regression_config(**kwargs))


def keypoint_regression_loss(pred_norm: torch.Tensor, target_norm: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error of normalised coordinates, over visible joints.

    Args:
        pred_norm, target_norm: (B, J, 2) normalised to the input's extent
            (``keypoints_norm``; targets from px with ``(u + 0.5) / S``).
        weights: (B, J) per-joint weights (0: invisible, contributes nothing), None: 1.

    Returns:
        () scalar: sum of weighted squared errors / (2 * sum of weights).
    """
    if pred_norm.ndim != 3 or pred_norm.shape[-1] != 2 or pred_norm.shape != target_norm.shape:
        raise ValueError(f"expected pred and target (B, J, 2), got {tuple(pred_norm.shape)} and {tuple(target_norm.shape)}")
    if weights is None:
        weights = pred_norm.new_ones(pred_norm.shape[:2])
    err = (pred_norm - target_norm).pow(2).sum(-1)  # (B, J)
    return (err * weights).sum() / (2 * weights.sum()).clamp_min(1e-12)


# -------------------------------------------------------------------- box regressor
BOX_WIDTHS = (1, 2, 4, 8, 8)
"""The channels of :class:`BoxRegressor`'s stride-2 stages, in multiples of ``width``."""


@dataclass(frozen=True)
class BoxConfig:
    """Everything that makes a :class:`BoxRegressor`.

    width: channels of the first stage; stages have w, 2w, 4w, 8w, 8w.
    in_channels: 3 (RGB).
    grid: (rows, cols) the last feature map is average-pooled to before the fully-connected
        layers; a grid, not one global pool, keeps where things are (the 4:3 frames of
        the benchmark: (3, 4)).
    hidden: units of the hidden fully-connected layer.
    """

    width: int = 32
    in_channels: int = 3
    grid: tuple[int, int] = (3, 4)
    hidden: int = 256

    def __post_init__(self):
        object.__setattr__(self, "grid", tuple(int(g) for g in self.grid))
        if min(self.width, self.in_channels, self.hidden, *self.grid) < 1 or len(self.grid) != 2:
            raise ValueError(f"width, in_channels, hidden and grid must be >= 1, got {self}")

    strides = None
    """No heatmaps."""
    fixed_size = None
    """Any frame size (multiples of :attr:`size_multiple`)."""

    @property
    def output(self) -> str:
        """The forward dict's main entry."""
        return "box"

    @property
    def size_multiple(self) -> int:
        """What H and W must be multiples of: 32, the five stride-2 stages."""
        return 2 ** len(BOX_WIDTHS)


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class BoxRegressor(nn.Module):
    """A plain CNN: five stages of (3x3/2 conv-BN-ReLU, 3x3 conv-BN-ReLU) down to stride
    32, average-pooled to a ``grid``, then FC-ReLU-FC to 5 numbers: the box as sigmoid
    (cx, cy, w, h) normalised to the frame (so x1 <= x2 and y1 <= y2 by construction) and
    the hand/no-hand logit.

    Args: the fields of :class:`BoxConfig`.

    forward(x):
        x: (B, in_channels, H, W) float, H and W multiples of 32 (the benchmark: 192 x 256).

        Returns {"box": (B, 4) xyxy input px, "box_norm": (B, 4) xyxy normalised to the
        frame's extent (x / W, y / H of the outer edges), "hand_logit": (B,)}.
    """

    def __init__(self, width: int = 32, in_channels: int = 3, grid: tuple[int, int] = (3, 4), hidden: int = 256):
        super().__init__()
        self.config = cfg = BoxConfig(width, in_channels, tuple(grid), hidden)
        chans = [width * m for m in BOX_WIDTHS]
        layers, c = [], in_channels
        for co in chans:
            layers += _conv_bn_relu(c, co, 2) + _conv_bn_relu(co, co)
            c = co
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(cfg.grid)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * cfg.grid[0] * cfg.grid[1], hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 5))

    @classmethod
    def from_config(cls, config: BoxConfig) -> BoxRegressor:
        return cls(**asdict(config))

    def forward(self, x: torch.Tensor) -> dict:
        check_input(x, self.config.in_channels, None, self.config.size_multiple)
        H, W = x.shape[-2:]
        out = self.head(self.pool(self.features(x)))  # (B, 5)
        c, s = torch.sigmoid(out[:, 0:2]), torch.sigmoid(out[:, 2:4])  # (B, 2) centre, size
        box_norm = torch.cat([c - s / 2, c + s / 2], dim=1)  # (B, 4) xyxy
        box = normalised_to_px(box_norm.view(-1, 2, 2), W, H).view(-1, 4)  # (B, 4) px
        return {"box": box, "box_norm": box_norm, "hand_logit": out[:, 4]}


def box_regressor_config(width: int = 32, **kwargs) -> BoxConfig:
    """The config :func:`box_regressor` builds (``kwargs``: other :class:`BoxConfig` fields)."""
    return BoxConfig(width=width, **kwargs)


def box_regressor(**kwargs) -> BoxRegressor:
    """The box baseline: the whole frame (B, 3, H, W), H, W multiples of 32 (192 x 256)
    -> {"box": (B, 4) px xyxy, "box_norm", "hand_logit": (B,)}. Train with :func:`box_loss`.
    ``kwargs``: :func:`box_regressor_config`'s (``width`` 32, ...)."""
    return BoxRegressor.from_config(box_regressor_config(**kwargs))


def box_loss(box_norm: torch.Tensor, hand_logit: torch.Tensor, target_norm: torch.Tensor, has_hand: torch.Tensor, box_weight: float = 1.0) -> torch.Tensor:
    """L1 of the normalised box over frames with a hand, plus the binary cross-entropy of
    the hand/no-hand logit over all frames.

    Args:
        box_norm, target_norm: (B, 4) xyxy normalised to the frame's extent.
        hand_logit: (B,). has_hand: (B,) bool or {0, 1}; NoHand frames' boxes count for
            nothing.

    Returns:
        () scalar.
    """
    if (
        box_norm.shape != target_norm.shape
        or box_norm.ndim != 2
        or box_norm.shape[1] != 4
        or hand_logit.shape != box_norm.shape[:1]
        or has_hand.shape != hand_logit.shape
    ):
        raise ValueError(
            f"expected boxes (B, 4), logits and has_hand (B,), got {tuple(box_norm.shape)}, {tuple(target_norm.shape)}, {tuple(hand_logit.shape)}, {tuple(has_hand.shape)}"
        )
    hand = has_hand.to(box_norm.dtype)
    l1 = ((box_norm - target_norm).abs().mean(1) * hand).sum() / hand.sum().clamp_min(1.0)
    return box_weight * l1 + F.binary_cross_entropy_with_logits(hand_logit, hand)
