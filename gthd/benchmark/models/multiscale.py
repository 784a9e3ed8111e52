"""The paper's skeleton-aware multi-scale heatmap network (section III, Figure 2), its
loss (eq. 4) and the test-time fusion of its five outputs, in plain PyTorch.

The paper: "We feed the concatenation of the cropped hand image and the predicted
skeleton to the first convolution layer. The latter is followed by two downsampling
ResNet blocks, two upsampling ResNet blocks, and a final transposed convolution layer
that recovers the input resolution. After each downsampling (similarly upsampling), we
apply a 1x1 convolution layer followed by a sigmoid [...]. The heatmaps resolution is
divided/multiplied by two after each downsampling/upsampling." with k = 5 outputs at
scales 128, 64 and 32.

Our arrangement, giving 64, 32, 64, 128, 128 for a 128 x 128 crop (strides 2, 4, 2,
1, 1: :data:`PAPER_STRIDES`, those a :class:`gthd.dataset.codec.MultiScaleHeatmapCodec`
is built with for this model)::

    x (B, 4, 128, 128): RGB crop + skeleton mask (3 channels without it)
    stem   7x7 conv-BN-ReLU                        (B,  w, 128, 128)
    down1  ResNet block, stride 2                  (B, 2w,  64,  64) -> head 0:  64
    down2  ResNet block, stride 2                  (B, 4w,  32,  32) -> head 1:  32
    up1    ResNet block, 4x4 transposed conv x2    (B, 2w,  64,  64) -> head 2:  64
    up2    ResNet block, 4x4 transposed conv x2    (B,  w, 128, 128) -> head 3: 128
    final  3x3 transposed conv-BN-ReLU             (B,  w, 128, 128) -> head 4: 128

A head follows each downsampling and each upsampling, as the paper places them ("after
each downsampling (similarly upsampling)"), and the fifth follows the final transposed
convolution at the input resolution: k = 5 outputs at the paper's scales 128, 64 and 32.
(An earlier arrangement put a head on the stem, before any downsampling: it was the
weakest head, 29 px alone against 19 for the final one, and took 31 % of the fusion.)
Each head is a 1x1 conv to J maps and a sigmoid (its bias starts at the ``prior``). An
upsampling ResNet block is a residual block followed by a learnt 2x upsampling (a
transposed convolution). There are no skip connections (the paper names none).
``blocks`` > 1 adds stride-1 residual blocks to each down/up stage (the paper: 1).

Inputs are float in [0, 1] as :class:`gthd.dataset.torch_dataset.HandDataset` gives
them: ``torch.cat([image, skeleton], 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._common import SquareInput, check_input, shortcut

__all__ = [
    "BasicBlock",
    "MultiScaleConfig",
    "MultiScaleNet",
    "fuse_heatmaps",
    "multiscale_loss",
    "multiscale_plain",
    "multiscale_plain_config",
    "multiscale_skeleton",
    "multiscale_skeleton_config",
    "PAPER_STRIDES",
    "scale_deltas",
]

PAPER_STRIDES = (2, 4, 2, 1, 1)
"""The downscale factor of each of :class:`MultiScaleNet`'s five outputs, in output order."""


# ------------------------------------------------------------------------------ blocks
class BasicBlock(nn.Module):
    """He et al.'s basic residual block: conv3x3(stride)-BN-ReLU-conv3x3-BN plus a
    shortcut (1x1 conv(stride)-BN when the shape changes), then ReLU.

    (B, c_in, H, W) -> (B, c_out, H / stride, W / stride)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + identity, inplace=True)


def upsample2x(c: int) -> nn.Sequential:
    """A learnt 2x upsampling: 4x4 stride-2 transposed conv-BN-ReLU, (B, c, H, W) ->
    (B, c, 2H, 2W) (kernel 4, padding 1: every output pixel gets the same number of taps,
    no checkerboard from uneven overlap)."""
    return nn.Sequential(nn.ConvTranspose2d(c, c, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))


def _stage(c_in: int, c_out: int, stride: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(c_in, c_out, stride), *(BasicBlock(c_out, c_out) for _ in range(blocks - 1)))


# ------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class MultiScaleConfig(SquareInput):
    """Everything that makes a :class:`MultiScaleNet`.

    in_channels: 4 (RGB + skeleton, "ours") or 3 (RGB only, "ours w/o skeleton").
    joints: heatmaps per output (21 GTHD, 20 LSMV).
    width: channels of the full-resolution stages (w, 2w, 4w down the network).
    blocks: residual blocks per down/up stage (the paper: 1).
    input_size: the square crop side; must be a multiple of 4 (the paper: 128).
    prior: the sigmoid output the untrained heads start at (their bias is
        ``log(prior / (1 - prior))``): Gaussian targets are ~0 on almost every pixel, and a
        start at 0.5 spends the first hundreds of steps only lowering the background.
    """

    in_channels: int = 4
    joints: int = 21
    width: int = 64
    blocks: int = 1
    input_size: int = 128
    prior: float = 0.01

    def __post_init__(self):
        if min(self.in_channels, self.joints, self.width, self.blocks) < 1:
            raise ValueError(f"in_channels, joints, width and blocks must be >= 1, got {self}")
        if self.input_size < 4 or self.input_size % 4:
            raise ValueError(f"input_size must be a positive multiple of 4, got {self.input_size}")
        if not 0 < self.prior < 1:
            raise ValueError(f"prior must be in (0, 1), got {self.prior}")

    @property
    def strides(self) -> tuple[int, ...]:
        """The downscale factor of each output, in output order."""
        return PAPER_STRIDES

    @property
    def output(self) -> str:
        """The forward dict's main entry."""
        return "heatmaps"


class MultiScaleNet(nn.Module):
    """The skeleton-aware multi-scale heatmap network (module docstring for the layout).

    Args: the fields of :class:`MultiScaleConfig`.

    forward(x):
        x: (B, in_channels, S, S) float, S = ``input_size`` (128): the hand crop, with its
        skeleton mask as channel 3 when ``in_channels`` is 4.

        Returns {"heatmaps": [(B, J, S/2, S/2), (B, J, S/4, S/4), (B, J, S/2, S/2),
        (B, J, S, S), (B, J, S, S)]}: sigmoid maps, strides :data:`PAPER_STRIDES`.
    """

    def __init__(self, in_channels: int = 4, joints: int = 21, width: int = 64, blocks: int = 1, input_size: int = 128, prior: float = 0.01):
        super().__init__()
        self.config = MultiScaleConfig(in_channels, joints, width, blocks, input_size, prior)
        w = width
        self.stem = nn.Sequential(nn.Conv2d(in_channels, w, 7, padding=3, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        self.down1 = _stage(w, 2 * w, 2, blocks)
        self.down2 = _stage(2 * w, 4 * w, 2, blocks)
        self.up1 = nn.Sequential(_stage(4 * w, 2 * w, 1, blocks), upsample2x(2 * w))
        self.up2 = nn.Sequential(_stage(2 * w, w, 1, blocks), upsample2x(w))
        self.final = nn.Sequential(  # the paper's "final transposed convolution", at the input resolution
            nn.ConvTranspose2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)
        )
        self.heads = nn.ModuleList(nn.Conv2d(c, joints, 1) for c in (2 * w, 4 * w, 2 * w, w, w))
        for head in self.heads:
            nn.init.constant_(head.bias, math.log(prior / (1 - prior)))

    @classmethod
    def from_config(cls, config: MultiScaleConfig) -> MultiScaleNet:
        return cls(**asdict(config))

    def forward(self, x: torch.Tensor) -> dict:
        cfg = self.config
        check_input(x, cfg.in_channels, (cfg.input_size, cfg.input_size))
        f1 = self.down1(self.stem(x))  # (B, 2w, S/2, S/2)
        f2 = self.down2(f1)  # (B, 4w, S/4, S/4)
        f3 = self.up1(f2)  # (B, 2w, S/2, S/2)
        f4 = self.up2(f3)  # (B, w, S, S)
        f5 = self.final(f4)  # (B, w, S, S)
        return {"heatmaps": [torch.sigmoid(head(f)) for head, f in zip(self.heads, (f1, f2, f3, f4, f5))]}


# ---------------------------------------------------------------------------- builders
def multiscale_skeleton_config(width: int = 64, joints: int = 21, **kwargs) -> MultiScaleConfig:
    """The config :func:`multiscale_skeleton` builds (``kwargs``: other :class:`MultiScaleConfig` fields)."""
    return MultiScaleConfig(in_channels=4, joints=joints, width=width, **kwargs)


def multiscale_skeleton(**kwargs) -> MultiScaleNet:
    """ "Ours": (B, 4, 128, 128) crop + skeleton -> 5 heatmap sets at 64, 32, 64, 128, 128.
    ``kwargs``: :func:`multiscale_skeleton_config`'s (``width`` 64, ``joints`` 21, ...)."""
    return MultiScaleNet.from_config(multiscale_skeleton_config(**kwargs))


def multiscale_plain_config(width: int = 64, joints: int = 21, **kwargs) -> MultiScaleConfig:
    """The config :func:`multiscale_plain` builds (``kwargs``: other :class:`MultiScaleConfig` fields)."""
    return MultiScaleConfig(in_channels=3, joints=joints, width=width, **kwargs)


def multiscale_plain(**kwargs) -> MultiScaleNet:
    """ "Ours w/o skeleton": (B, 3, 128, 128) crop -> 5 heatmap sets at 64, 32, 64, 128, 128.
    ``kwargs``: :func:`multiscale_plain_config`'s (``width`` 64, ``joints`` 21, ...)."""
    return MultiScaleNet.from_config(multiscale_plain_config(**kwargs))


# ------------------------------------------------------------------ loss and fusion
def _check_maps(outputs, targets=None) -> list:
    if isinstance(outputs, dict):
        outputs = outputs["heatmaps"]
    if isinstance(outputs, torch.Tensor):
        outputs = [outputs]
    outputs = list(outputs)
    if not outputs:
        raise ValueError("expected at least one heatmap tensor, got none")
    B, J = outputs[0].shape[:2]
    for i, o in enumerate(outputs):
        if o.ndim != 4 or tuple(o.shape[:2]) != (B, J):
            raise ValueError(f"output {i}: expected (B, J, H, W) = ({B}, {J}, H, W), got {tuple(o.shape)}")
    if targets is not None:
        if len(targets) != len(outputs):
            raise ValueError(f"expected {len(outputs)} targets (one per output), got {len(targets)}")
        for i, (o, t) in enumerate(zip(outputs, targets)):
            if t.shape != o.shape:
                raise ValueError(f"target {i}: expected {tuple(o.shape)}, got {tuple(t.shape)}")
    return outputs


def scale_deltas(outputs: Sequence[torch.Tensor]) -> list[float]:
    """The paper's per-scale weights: delta = 1, 1/2, 1/4 for maps at 128, 64, 32, i.e.
    each map's height over the largest one's (1 / stride): [1, 0.5, 0.25, 0.5, 1] for the
    five outputs, [1] for a single-scale model."""
    top = max(o.shape[-2] for o in outputs)
    return [o.shape[-2] / top for o in outputs]


def multiscale_loss(outputs, targets, weights: torch.Tensor | None = None, deltas: Sequence[float] | None = None) -> torch.Tensor:
    """The paper's eq. (4): ``sum_i delta_i ||x_i - x^_i||_2^2``, per sample, averaged
    over the batch.

    The squared norm is summed over joints and pixels, as eq. (4) writes it (a mean would
    only rescale the loss, to which Adam is invariant, and would change the balance of
    the scales: a 32 x 32 map has 16x fewer pixels than a 128 x 128 one).

    Args:
        outputs: k predicted maps (B, J, H_i, W_i) (or the model's output dict).
        targets: k target maps of the same shapes (e.g. the codec's ``encode``).
        weights: (B, J) or (J,) per-joint weights multiplying the squared error (0 for
            an invisible joint: it contributes nothing), or None for all 1.
        deltas: k per-output weights; default :func:`scale_deltas` (1 / stride: 1/2, 1/4,
            1/2, 1, 1 for this network's five outputs).

    Returns:
        () scalar.
    """
    outputs = _check_maps(outputs, targets)
    B, J = outputs[0].shape[:2]
    deltas = scale_deltas(outputs) if deltas is None else list(deltas)
    if len(deltas) != len(outputs):
        raise ValueError(f"expected {len(outputs)} deltas, got {len(deltas)}")
    if weights is None:
        weights = outputs[0].new_ones(B, J)
    weights = torch.as_tensor(weights, dtype=outputs[0].dtype, device=outputs[0].device)
    if weights.ndim == 1:
        weights = weights.expand(B, J)
    if tuple(weights.shape) != (B, J):
        raise ValueError(f"weights: expected ({B}, {J}) or ({J},), got {tuple(weights.shape)}")
    total = outputs[0].new_zeros(B)
    for x_hat, x, d in zip(outputs, targets, deltas):
        err = (x_hat - x).pow(2).sum(dim=(2, 3))  # (B, J)
        total = total + d * (err * weights).sum(1)  # (B,)
    return total.mean()


def fuse_heatmaps(outputs, weights: Sequence[float] | None = None) -> torch.Tensor:
    """The paper's test-time weighted average of the predicted heatmaps.

    Every map is brought to the size of the largest one (the input resolution, 128) by
    bilinear interpolation (``align_corners=False``: pixel-centre aware, the convention of
    docs/conventions.md and :func:`gthd.dataset.codec.resize_maps`), then averaged with
    ``weights / sum(weights)``.

    Args:
        outputs: k maps (B, J, H_i, W_i) (or the model's output dict).
        weights: k non-negative weights. Default: the loss weights delta (1 / stride:
            1, 1/2, 1/4, 1/2, 1 for the five outputs), which lean on the sharp full-
            resolution maps; the same default as ``MultiScaleHeatmapCodec.combine``.

    Returns:
        (B, J, H, W) float, H, W the largest output's size (128).
    """
    from ...dataset.codec import MultiScaleHeatmapCodec

    outputs = _check_maps(outputs)
    weights = scale_deltas(outputs) if weights is None else [float(w) for w in weights]
    if len(weights) != len(outputs):
        raise ValueError(f"expected {len(outputs)} weights, got {len(weights)}")
    if min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"weights must be >= 0 and not all 0, got {weights}")
    H, W = max((tuple(o.shape[-2:]) for o in outputs), key=lambda hw: hw[0] * hw[1])
    strides = [int(round(H / o.shape[-2])) for o in outputs]
    # the project's one fusion: the codec's (pixel-centre aware resize, weighted mean)
    return MultiScaleHeatmapCodec((int(W), int(H)), strides, weights=weights).combine(list(outputs))
