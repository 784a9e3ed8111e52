"""The benchmark's models, plain PyTorch, one file per family:

- :mod:`.unet`: UNet; ``skeleton_unet`` (the paper's skeleton detector) and
  ``unet_heatmaps`` (the single-scale heatmap baseline); ``skeleton_loss``.
- :mod:`.multiscale`: the paper's skeleton-aware multi-scale heatmap network;
  ``multiscale_skeleton`` ("ours"), ``multiscale_plain`` ("ours w/o skeleton");
  ``multiscale_loss``, ``fuse_heatmaps``.
- :mod:`.regression`: ``resnet50_regression`` (the direct-regression baseline [8]) and
  ``box_regressor`` (the stand-in for the Faster R-CNN box baseline).

:data:`MODELS` maps each builder's own name to the builder, :data:`CONFIGS` to the function
that makes the builder's config (the builder is ``Net.from_config(config_function(**kwargs))``);
:data:`MODEL_INFO` says, for the same names, what a model does and eats, read off its
default config (:meth:`ModelInfo.from_config`). Every model's ``forward(x)`` takes one
(B, C, H, W) float tensor and returns a dict, by task:

- "detector": {"logits": (B, 1, H, W), "mask": (B, 1, H, W) sigmoid}
- "pose-heatmap": {"heatmaps": [(B, J, H_i, W_i), ...]} sigmoid maps, one per stride in
  ``ModelInfo.strides`` (a list of one for a single-scale model)
- "pose-regression": {"keypoints": (B, J, 2) input px, "keypoints_norm": (B, J, 2)}
- "box": {"box": (B, 4) input px xyxy, "box_norm": (B, 4), "hand_logit": (B,)}

and raises ValueError on an input of the wrong shape. Every model has ``.config``, a
frozen dataclass, and ``type(model).from_config(config)`` rebuilds it. Every config says
``in_channels``, ``output`` (the main entry of the dict above), ``strides`` (of its
heatmaps, None without), ``fixed_size`` ((H, W) the one input size it takes, or None) and
``size_multiple`` (what H and W must be multiples of when the size is not fixed, or None).

Example::

    from gthd.benchmark.models import MODELS, MODEL_INFO
    model = MODELS["multiscale_skeleton"](width=64)
    info = MODEL_INFO["multiscale_skeleton"]  # task, inputs, input_size, output, strides
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ._common import count_parameters, fold_batch_norms, normalised_to_px, px_to_normalised
from .multiscale import (
    MultiScaleNet,
    fuse_heatmaps,
    multiscale_loss,
    multiscale_plain,
    multiscale_plain_config,
    multiscale_skeleton,
    multiscale_skeleton_config,
)
from .regression import (
    BoxRegressor,
    ResNet,
    box_loss,
    box_regressor,
    box_regressor_config,
    keypoint_regression_loss,
    resnet50_regression,
    resnet50_regression_config,
)
from .unet import UNet, skeleton_loss, skeleton_unet, skeleton_unet_config, soft_dice_loss, unet_heatmaps, unet_heatmaps_config

MODELS: dict[str, Callable[..., nn.Module]] = {
    f.__name__: f for f in (skeleton_unet, unet_heatmaps, multiscale_skeleton, multiscale_plain, resnet50_regression, box_regressor)
}
"""Builder name -> builder (the builder's own ``__name__``, never a type string)."""

CONFIGS: dict[str, Callable[..., Any]] = {
    skeleton_unet.__name__: skeleton_unet_config,
    unet_heatmaps.__name__: unet_heatmaps_config,
    multiscale_skeleton.__name__: multiscale_skeleton_config,
    multiscale_plain.__name__: multiscale_plain_config,
    resnet50_regression.__name__: resnet50_regression_config,
    box_regressor.__name__: box_regressor_config,
}
"""Builder name -> the function that makes its config (the same keyword arguments), no weights built."""

FRAME_SIZE = (192, 256)
"""(H, W) of the whole frames the detectors see (FrameDataset's default 256 x 192)."""
INPUTS = {3: ("image",), 4: ("image", "skeleton")}
"""A model's input channels -> the channel groups the benchmark concatenates for it."""
TASKS = {"mask": "detector", "heatmaps": "pose-heatmap", "keypoints": "pose-regression", "box": "box"}
"""A model's main output (its config's ``output``) -> its task."""


@dataclass(frozen=True)
class ModelInfo:
    """What a model does and eats, read off its config (:meth:`from_config`).

    task: "detector", "pose-heatmap", "pose-regression" or "box" (:data:`TASKS`).
    inputs: the channel groups concatenated in ``x``, in order: ("image",) (RGB, 3
        channels) or ("image", "skeleton") (RGB + skeleton mask, 4 channels).
    input_size: (H, W) the benchmark feeds it: the config's fixed size (the 128 crop), else
        :data:`FRAME_SIZE` (whole frames at 192 x 256).
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

    @classmethod
    def from_config(cls, config) -> ModelInfo:
        """The info of the models ``config`` builds (a ``.config`` of any family).

        Raises:
            ValueError: a model of other than 3 or 4 input channels (the benchmark has
                no other inputs for it).
        """
        if config.in_channels not in INPUTS:
            raise ValueError(f"{config}: the benchmark feeds a model 3 (RGB) or 4 (RGB + skeleton) channels, not {config.in_channels}")
        size = config.fixed_size or FRAME_SIZE
        return cls(TASKS[config.output], INPUTS[config.in_channels], size, config.output, config.strides, config.size_multiple)


MODEL_INFO: dict[str, ModelInfo] = {name: ModelInfo.from_config(make_config()) for name, make_config in CONFIGS.items()}
"""Builder name -> :class:`ModelInfo`, for every name in :data:`MODELS`."""


def create_model(name: str, **kwargs) -> nn.Module:
    """``MODELS[name](**kwargs)``, with a clear error for an unknown name."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](**kwargs)


__all__ = [
    "CONFIGS",
    "FRAME_SIZE",
    "INPUTS",
    "MODELS",
    "MODEL_INFO",
    "TASKS",
    "BoxRegressor",
    "ModelInfo",
    "MultiScaleNet",
    "ResNet",
    "UNet",
    "box_loss",
    "box_regressor",
    "count_parameters",
    "fold_batch_norms",
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
