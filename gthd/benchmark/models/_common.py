"""Small helpers every model family shares: the input check at the public boundary
and the parameter count. Blocks live in their family's file."""

from __future__ import annotations

import copy

import torch
from torch import nn


def check_input(x: torch.Tensor, channels: int, size: tuple[int, int] | None = None, multiple: int = 1) -> None:
    """Raise a ValueError saying what was expected and what came, unless ``x`` is
    (B, channels, H, W) float with (H, W) == ``size`` (when given) and H, W multiples of
    ``multiple`` (when ``size`` is None)."""
    if size is not None:
        want = f"(B, {channels}, {size[0]}, {size[1]})"
        ok = x.ndim == 4 and x.shape[1] == channels and tuple(x.shape[2:]) == tuple(size)
    else:
        want = f"(B, {channels}, H, W)" + (f" with H and W multiples of {multiple}" if multiple > 1 else "")
        ok = x.ndim == 4 and x.shape[1] == channels and x.shape[2] % multiple == 0 and x.shape[3] % multiple == 0 and x.shape[2] > 0 and x.shape[3] > 0
    if not ok:
        raise ValueError(f"expected {want}, got {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise ValueError(f"expected a float tensor, got {x.dtype}")


class SquareInput:
    """For a model config whose ``input_size`` (an int) is the one square input it takes:
    :attr:`fixed_size` and :attr:`size_multiple`, as every config states them."""

    input_size: int

    @property
    def fixed_size(self) -> tuple[int, int]:
        """(H, W) the one input size it takes."""
        return (self.input_size, self.input_size)

    size_multiple = None
    """None: the size is fixed (:attr:`fixed_size`)."""


def shortcut(c_in: int, c_out: int, stride: int = 1) -> nn.Module | None:
    """A residual block's shortcut (He et al. 2016, option B): None, the identity, where
    the shape stays; else a strided 1x1 convolution and batch norm."""
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """An inference copy of ``model`` (in eval mode) with every batch norm folded into the
    convolution before it: the same outputs up to float rounding, fewer operations. A batch
    norm is folded where it follows a (transposed) convolution in an ``nn.Sequential``, or is
    the ``bnN`` beside a ``convN`` (the blocks' convention: ``self.bnN(self.convN(x))``);
    ``tests/test_models.py`` checks every registered model gives the same outputs."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    for parent in list(model.modules()):
        kids = parent._modules
        if isinstance(parent, nn.Sequential):
            pairs = list(zip(kids, list(kids)[1:]))
        else:
            pairs = [(name, "bn" + name[4:]) for name in kids if name.startswith("conv") and "bn" + name[4:] in kids]
        for a, b in pairs:
            conv, bn = kids[a], kids[b]
            if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(bn, nn.BatchNorm2d):
                kids[a] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
                kids[b] = nn.Identity()
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """The number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def normalised_to_px(points: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(..., 2) coordinates normalised to the image extent -> (..., 2) input px.

    Normalised 0 and 1 are the image's outer edges, which in OpenCV's pixel convention
    (docs/conventions.md: the centre of the top-left pixel is (0, 0)) lie at -0.5 and
    W - 0.5: ``u = n * W - 0.5``, ``v = n * H - 0.5``."""
    scale = points.new_tensor([width, height])
    return points * scale - 0.5


def px_to_normalised(points: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(..., 2) input px -> (..., 2) normalised to the image extent: the inverse of
    :func:`normalised_to_px`, ``n = (u + 0.5) / W``."""
    scale = points.new_tensor([width, height])
    return (points + 0.5) / scale
