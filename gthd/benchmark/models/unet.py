"""UNet (Ronneberger et al. 2015) for the paper's skeleton detector and the single-scale
heatmap baseline, in plain PyTorch.

The paper (section II) treats the hand skeleton as a segmentation mask: a UNet takes the
whole frame, outputs one map, and a sigmoid bounds it to [0, 1] (background / hand); the
box comes from the foreground pixels in a post-processing step. It is trained with
``0.4 * L1 + 0.6 * SoftDice`` (:func:`skeleton_loss`). Section IV-C's "single-scale
heatmap regression using UNet" baseline is the same network with J outputs on the
128 x 128 hand crop (:func:`unet_heatmaps`).

Layout (timm style): blocks, the model with its config, the builders, then the losses.

Inputs are float images in [0, 1] as :mod:`gthd.dataset.torch_dataset` gives them (the
paper subtracts the mean; the first BatchNorm does that job here).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ._common import check_input

__all__ = ["UNet", "UNetConfig", "skeleton_loss", "skeleton_unet", "skeleton_unet_config", "soft_dice_loss", "unet_heatmaps", "unet_heatmaps_config"]


# ------------------------------------------------------------------------------ blocks
class DoubleConv(nn.Sequential):
    """(conv 3x3 - BN - ReLU) x 2, same resolution: (B, c_in, H, W) -> (B, c_out, H, W)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """Max-pool 2x2 then :class:`DoubleConv`: (B, c_in, H, W) -> (B, c_out, H/2, W/2)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.MaxPool2d(2), DoubleConv(c_in, c_out))


class Up(nn.Module):
    """Upsample x2 to ``c_in // 2`` channels, concatenate the encoder's skip, DoubleConv.

    (B, c_in, H, W) and skip (B, c_in // 2, 2H, 2W) -> (B, c_out, 2H, 2W).
    ``mode``: "transpose" (a learnt 2x2 stride-2 transposed conv, the original UNet's
    up-convolution) or "bilinear" (align_corners=False, then a 1x1 conv to halve the
    channels)."""

    def __init__(self, c_in: int, c_out: int, mode: str = "transpose"):
        super().__init__()
        if mode == "transpose":
            self.up = nn.ConvTranspose2d(c_in, c_in // 2, 2, stride=2)
        elif mode == "bilinear":
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.Conv2d(c_in, c_in // 2, 1))
        else:
            raise ValueError(f"upsample must be 'transpose' or 'bilinear', got {mode!r}")
        self.conv = DoubleConv(c_in // 2 * 2, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)  # (B, c_in/2, 2H, 2W)
        return self.conv(torch.cat([skip, x], dim=1))  # (B, c_out, 2H, 2W)


# ------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class UNetConfig:
    """Everything that makes a :class:`UNet` (saved in checkpoints next to the weights).

    in_channels: input channels (3: RGB).
    out_channels: output maps (1: the skeleton mask; J: heatmaps).
    width: channels of the first level; level i has ``width * 2**i`` (the original: 64).
    depth: number of 2x downsamplings (the original: 4); H and W must be multiples of
        ``2**depth``.
    upsample: "transpose" or "bilinear" (see :class:`Up`).
    output: "mask": forward returns {"logits", "mask"} (the detector); "heatmaps":
        {"heatmaps": [sigmoid maps]} (a single-scale heatmap model).
    input_size: (H, W) the model insists on, or None for any multiple of ``2**depth``.
    prior: the sigmoid output the untrained model starts at (its last bias is
        ``log(prior / (1 - prior))``). Skeletons and Gaussian blobs cover a few percent of
        the pixels, and a start at 0.5 spends the first hundreds of steps only lowering
        the background (the focal-loss paper's prior initialisation).
    """

    in_channels: int = 3
    out_channels: int = 1
    width: int = 32
    depth: int = 4
    upsample: str = "transpose"
    output: str = "mask"
    input_size: tuple[int, int] | None = None
    prior: float = 0.01

    def __post_init__(self):
        if min(self.in_channels, self.out_channels, self.width, self.depth) < 1:
            raise ValueError(f"in_channels, out_channels, width and depth must be >= 1, got {self}")
        if self.upsample not in ("transpose", "bilinear"):
            raise ValueError(f"upsample must be 'transpose' or 'bilinear', got {self.upsample!r}")
        if not 0 < self.prior < 1:
            raise ValueError(f"prior must be in (0, 1), got {self.prior}")
        if self.output not in ("mask", "heatmaps"):
            raise ValueError(f"output must be 'mask' or 'heatmaps', got {self.output!r}")
        if self.output == "mask" and self.out_channels != 1:
            raise ValueError(f"a mask UNet has one output map, got out_channels={self.out_channels}")
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(int(s) for s in self.input_size))
            if any(s % 2**self.depth for s in self.input_size):
                raise ValueError(f"input_size {self.input_size} must be multiples of 2**depth = {2**self.depth}")

    @property
    def strides(self) -> tuple[int, ...] | None:
        """The heatmaps' downscale factors: (1,), the input resolution, for ``output="heatmaps"``; None for a mask."""
        return (1,) if self.output == "heatmaps" else None

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """(H, W) the one input size it takes, None when it takes any multiple of :attr:`size_multiple`."""
        return self.input_size

    @property
    def size_multiple(self) -> int | None:
        """What H and W must be multiples of (``2**depth``), None when the size is fixed."""
        return None if self.input_size is not None else 2**self.depth


class UNet(nn.Module):
    """Encoder-decoder with skip connections: ``depth`` levels of max-pool + DoubleConv
    down, then ``depth`` levels of upsample + concat + DoubleConv up, then a 1x1 conv.

    Args: the fields of :class:`UNetConfig`.

    forward(x):
        x: (B, in_channels, H, W) float, H and W multiples of ``2**depth`` (or exactly
        ``input_size``).

        Returns, ``output="mask"``: {"logits": (B, 1, H, W), "mask": (B, 1, H, W) sigmoid
        in [0, 1]}; ``output="heatmaps"``: {"heatmaps": [(B, out_channels, H, W)]}, sigmoid,
        a list of one (the multi-scale models' interface).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        width: int = 32,
        depth: int = 4,
        upsample: str = "transpose",
        output: str = "mask",
        input_size: tuple[int, int] | None = None,
        prior: float = 0.01,
    ):
        super().__init__()
        self.config = cfg = UNetConfig(in_channels, out_channels, width, depth, upsample, output, input_size, prior)
        ch = [width * 2**i for i in range(depth + 1)]  # channels per level
        self.inc = DoubleConv(in_channels, ch[0])
        self.downs = nn.ModuleList(Down(ch[i], ch[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(Up(ch[i + 1], ch[i], cfg.upsample) for i in reversed(range(depth)))
        self.outc = nn.Conv2d(ch[0], out_channels, 1)
        nn.init.constant_(self.outc.bias, math.log(prior / (1 - prior)))

    @classmethod
    def from_config(cls, config: UNetConfig) -> UNet:
        return cls(**asdict(config))

    def forward(self, x: torch.Tensor) -> dict:
        cfg = self.config
        check_input(x, cfg.in_channels, cfg.input_size, 2**cfg.depth)
        skips = [self.inc(x)]  # (B, w, H, W)
        for down in self.downs:
            skips.append(down(skips[-1]))  # (B, w * 2**i, H / 2**i, W / 2**i)
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        logits = self.outc(y)  # (B, out_channels, H, W)
        if cfg.output == "mask":
            return {"logits": logits, "mask": torch.sigmoid(logits)}
        return {"heatmaps": [torch.sigmoid(logits)]}


# ---------------------------------------------------------------------------- builders
def skeleton_unet_config(width: int = 32, depth: int = 4, **kwargs) -> UNetConfig:
    """The config :func:`skeleton_unet` builds (``kwargs``: other :class:`UNetConfig` fields)."""
    return UNetConfig(in_channels=3, out_channels=1, width=width, depth=depth, output="mask", **kwargs)


def skeleton_unet(**kwargs) -> UNet:
    """The paper's skeleton detector (section II): the whole frame resized, (B, 3, H, W)
    with H, W multiples of 16 (the benchmark uses 192 x 256, the default of
    :class:`gthd.dataset.torch_dataset.FrameDataset`), -> one map: {"logits", "mask"}
    (B, 1, H, W). Train with :func:`skeleton_loss`. ``kwargs``: :func:`skeleton_unet_config`'s
    (``width`` 32, ``depth`` 4, ...)."""
    return UNet.from_config(skeleton_unet_config(**kwargs))


def unet_heatmaps_config(width: int = 32, joints: int = 21, depth: int = 4, input_size: tuple[int, int] = (128, 128), **kwargs) -> UNetConfig:
    """The config :func:`unet_heatmaps` builds (``kwargs``: other :class:`UNetConfig` fields)."""
    return UNetConfig(in_channels=3, out_channels=joints, width=width, depth=depth, output="heatmaps", input_size=input_size, **kwargs)


def unet_heatmaps(**kwargs) -> UNet:
    """The single-scale heatmap baseline (section IV-C): the 128 x 128 hand crop,
    (B, 3, 128, 128) -> {"heatmaps": [(B, joints, 128, 128)]}, sigmoid (stride 1; train
    with :func:`gthd.benchmark.models.multiscale.multiscale_loss`, which gives a single
    scale delta 1). ``kwargs``: :func:`unet_heatmaps_config`'s (``width`` 32, ``joints`` 21,
    ``depth`` 4, ...)."""
    return UNet.from_config(unet_heatmaps_config(**kwargs))


# ------------------------------------------------------------------------------ losses
def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.ndim != 4 or pred.shape != target.shape:
        raise ValueError(f"expected pred and target of one shape (B, C, H, W), got {tuple(pred.shape)} and {tuple(target.shape)}")


def soft_dice_loss(pred: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """The paper's eq. (2) per sample, averaged over the batch:
    ``1 - (2 x^.x + smooth) / (|x^|^2 + |x|^2 + smooth)``.

    Args:
        pred: (B, C, H, W) probabilities x^ in [0, 1] (the "mask" output, not logits).
        target: (B, C, H, W) ground truth x in [0, 1].
        smooth: added to numerator and denominator (0: exactly eq. 2). With 1, an empty
            target (a NoHand frame) gives ``1 - 1 / (|x^|^2 + 1)``, which still pulls the
            prediction to 0, where eq. 2 alone would be a constant with no gradient; for a
            hand's mask of hundreds of pixels it changes the value by well under 1%.

    Returns:
        () scalar.
    """
    _check_pair(pred, target)
    p, t = pred.flatten(1), target.flatten(1)  # (B, C*H*W)
    dice = (2 * (p * t).sum(1) + smooth) / ((p * p).sum(1) + (t * t).sum(1) + smooth)  # (B,)
    return (1 - dice).mean()


def skeleton_loss(pred: torch.Tensor, target: torch.Tensor, l1_weight: float = 0.4, dice_weight: float = 0.6, smooth: float = 1.0) -> torch.Tensor:
    """The paper's eq. (3): ``0.4 * L1 + 0.6 * SoftDice`` for the skeleton detector.

    L1 here is the mean absolute error per pixel (averaged over pixels and batch), not the
    sum of eq. (1): summed over a 192 x 256 frame it would be ~10^4 times the Dice term
    (which lies in [0, 1]) and the empirical weights 0.4 / 0.6 would balance nothing.

    Args:
        pred: (B, 1, H, W) probabilities (the detector's "mask").
        target: (B, 1, H, W) the skeleton mask in [0, 1] (all zero on NoHand frames).

    Returns:
        () scalar.
    """
    _check_pair(pred, target)
    return l1_weight * (pred - target).abs().mean() + dice_weight * soft_dice_loss(pred, target, smooth)
