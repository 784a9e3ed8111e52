"""The benchmark's models, plain PyTorch, one file per family:

- :mod:`.unet`: UNet; ``skeleton_unet`` (the paper's skeleton detector) and
  ``unet_heatmaps`` (the single-scale heatmap baseline); ``skeleton_loss``.
- :mod:`.multiscale`: the paper's skeleton-aware multi-scale heatmap network;
  ``multiscale_skeleton`` ("ours"), ``multiscale_plain`` ("ours w/o skeleton");
  ``multiscale_loss``, ``fuse_heatmaps``.
- :mod:`.regression`: ``resnet50_regression`` (the direct-regression baseline [8]) and
  ``box_regressor`` (the stand-in for the Faster R-CNN box baseline).

:data:`MODELS` maps each builder's own name to the builder; :data:`MODEL_INFO` says, for
the same names, what a model does and eats. Every model's ``forward(x)`` takes one
(B, C, H, W) float tensor and returns a dict, by task:

- "detector": {"logits": (B, 1, H, W), "mask": (B, 1, H, W) sigmoid}
- "pose-heatmap": {"heatmaps": [(B, J, H_i, W_i), ...]} sigmoid maps, one per stride in
  ``ModelInfo.strides`` (a list of one for a single-scale model)
- "pose-regression": {"keypoints": (B, J, 2) input px, "keypoints_norm": (B, J, 2)}
- "box": {"box": (B, 4) input px xyxy, "box_norm": (B, 4), "hand_logit": (B,)}

and raises ValueError on an input of the wrong shape. Every model has ``.config``, a
frozen dataclass, and ``type(model).from_config(config)`` rebuilds it.

Example::

    from gthd.benchmark.models import MODELS, MODEL_INFO
    model = MODELS["multiscale_skeleton"](width=64)
    info = MODEL_INFO["multiscale_skeleton"]  # task, inputs, input_size, output, strides
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ._common import count_parameters, normalised_to_px, px_to_normalised
from .multiscale import (
    PAPER_STRIDES,
    MultiScaleNet,
    fuse_heatmaps,
    multiscale_loss,
    multiscale_plain,
    multiscale_skeleton,
)
from .regression import (
    BoxRegressor,
    ResNet,
    box_loss,
    box_regressor,
    keypoint_regression_loss,
    resnet50_regression,
)
from .unet import UNet, skeleton_loss, skeleton_unet, soft_dice_loss, unet_heatmaps

MODELS: dict[str, Callable[..., nn.Module]] = {
    f.__name__: f for f in (skeleton_unet, unet_heatmaps, multiscale_skeleton, multiscale_plain, resnet50_regression, box_regressor)
}
"""Builder name -> builder (the builder's own ``__name__``, never a type string)."""


@dataclass(frozen=True)
class ModelInfo:
    """What a model built by one builder does and eats.

    task: "detector", "pose-heatmap", "pose-regression" or "box".
    inputs: the channel groups concatenated in ``x``, in order: ("image",) (RGB, 3
        channels) or ("image", "skeleton") (RGB + skeleton mask, 4 channels).
    input_size: (H, W) the benchmark feeds it (the 128 crop; whole frames at 192 x 256).
    output: the key of its main output: "mask", "heatmaps", "keypoints" or "box".
    strides: the downscale factor of each heatmap output (heatmap models), else None.
    size_multiple: None if the model takes ``input_size`` only; else it takes any H, W
        that are multiples of this (the whole-frame models).
    """

    task: str
    inputs: tuple[str, ...]
    input_size: tuple[int, int]
    output: str
    strides: tuple[int, ...] | None = None
    size_multiple: int | None = None

    @property
    def in_channels(self) -> int:
        return 3 * ("image" in self.inputs) + ("skeleton" in self.inputs)


FRAME_SIZE = (192, 256)
"""(H, W) of the whole frames the detectors see (FrameDataset's default 256 x 192)."""
CROP_SIZE = (128, 128)
"""(H, W) of the hand crop the pose models see."""

MODEL_INFO: dict[str, ModelInfo] = {
    skeleton_unet.__name__: ModelInfo("detector", ("image",), FRAME_SIZE, "mask", size_multiple=16),
    unet_heatmaps.__name__: ModelInfo("pose-heatmap", ("image",), CROP_SIZE, "heatmaps", strides=(1,)),
    multiscale_skeleton.__name__: ModelInfo("pose-heatmap", ("image", "skeleton"), CROP_SIZE, "heatmaps", strides=PAPER_STRIDES),
    multiscale_plain.__name__: ModelInfo("pose-heatmap", ("image",), CROP_SIZE, "heatmaps", strides=PAPER_STRIDES),
    resnet50_regression.__name__: ModelInfo("pose-regression", ("image",), CROP_SIZE, "keypoints"),
    box_regressor.__name__: ModelInfo("box", ("image",), FRAME_SIZE, "box", size_multiple=32),
}
"""Builder name -> :class:`ModelInfo`, for every name in :data:`MODELS`."""


def create_model(name: str, **kwargs) -> nn.Module:
    """``MODELS[name](**kwargs)``, with a clear error for an unknown name."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](**kwargs)


__all__ = [
    "CROP_SIZE",
    "FRAME_SIZE",
    "MODELS",
    "MODEL_INFO",
    "BoxRegressor",
    "ModelInfo",
    "MultiScaleNet",
    "ResNet",
    "UNet",
    "box_loss",
    "box_regressor",
    "count_parameters",
    "create_model",
    "fuse_heatmaps",
    "keypoint_regression_loss",
    "multiscale_loss",
    "multiscale_plain",
    "multiscale_skeleton",
    "normalised_to_px",
    "px_to_normalised",
    "resnet50_regression",
    "skeleton_loss",
    "skeleton_unet",
    "soft_dice_loss",
    "unet_heatmaps",
]
