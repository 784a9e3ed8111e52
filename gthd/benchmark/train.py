"""Train one benchmark model on a gthd dataset file (the paper's recipe, section IV).

The paper: Adam, learning rate 0.01, "decrease it after every eight epochs by 10%"
(StepLR step 8, gamma 0.9), batch 8, 30 epochs. :class:`TrainConfig` holds all of it and
is saved inside every checkpoint, next to the weights, optimizer, scheduler and epoch.
The loop in :func:`train` reads top to bottom.

What a model eats and how it is scored follows :data:`~gthd.benchmark.models.MODEL_INFO`:

- "pose-heatmap" (``multiscale_skeleton``, ``multiscale_plain``, ``unet_heatmaps``):
  :class:`~gthd.dataset.torch_dataset.HandDataset` crops (+ the skeleton channel when the
  model's inputs include "skeleton"); Gaussian targets made per batch on the device by a
  :class:`~gthd.dataset.codec.MultiScaleHeatmapCodec` (the model's strides, 2, 4, 2, 1, 1) or a
  :class:`~gthd.dataset.codec.SingleScaleHeatmapCodec`; :func:`multiscale_loss` with the
  visibility weights.
- "pose-regression" (``resnet50_regression``): crops; targets normalised to the crop's
  extent by a :class:`~gthd.dataset.codec.RegressionCodec`; :func:`keypoint_regression_loss`.
- "detector" (``skeleton_unet``): whole frames (:class:`FrameDataset`); :func:`skeleton_loss`
  on the skeleton mask.
- "box" (``box_regressor``): whole frames; :func:`box_loss`.

:func:`make_codec` makes a pose model's codec, whose ``decode`` turns the model's output
into keypoints, heatmaps or regression alike (:func:`predict`, the evaluation, the pipeline).

One process::

    from gthd.benchmark.train import TrainConfig, train
    result = train(TrainConfig(model="multiscale_skeleton", data="gthd.h5"), "runs/ours")

Several (DDP, detected from ``RANK``/``WORLD_SIZE``; ``batch_size`` is per process; gloo
on CPU, nccl on CUDA; only rank 0 logs and writes checkpoints)::

    torchrun --standalone --nproc_per_node=4 -m gthd.benchmark.train \\
        --model multiscale_skeleton --data gthd.h5 --out runs/ours

Resume after an interruption (same config; only ``epochs`` may grow)::

    python -m gthd.benchmark.train --model multiscale_skeleton --data gthd.h5 --out runs/ours --resume
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from .. import __version__
from ..dataset.codec import BonePrior, MultiScaleHeatmapCodec, PoseCodec, RegressionCodec, SingleScaleHeatmapCodec, default_sigma
from ..dataset.schema import dataset_fingerprint
from ..dataset.torch_dataset import Augment, FrameDataset, HandDataset
from ..fileio import FormatError, atomic_write_bytes
from .models import (
    MODEL_INFO,
    MODELS,
    ModelInfo,
    box_loss,
    count_parameters,
    create_model,
    keypoint_regression_loss,
    multiscale_loss,
    px_to_normalised,
    skeleton_loss,
)

CHECKPOINT = "last.pt"
"""The file name of the checkpoint in ``out_dir`` (rewritten atomically every epoch)."""

RESUMABLE = ("epochs",)
"""Config fields a resume may change (a run may be extended); any other difference is refused."""


# ------------------------------------------------------------------------------ config
@dataclass
class TrainConfig:
    """Everything that makes a training run (saved in each checkpoint).

    model: a :data:`~gthd.benchmark.models.MODELS` key. model_kwargs: its builder's
        keyword arguments (e.g. ``{"width": 64}``).
    data: the gthd dataset file. train_split: the split trained on.
    epochs, batch_size (per process), lr, lr_step, lr_gamma: the paper's 30, 8, 0.01,
        8, 0.9 (Adam; StepLR every ``lr_step`` epochs by ``gamma``).
    seed: seeds model init, shuffling and augmentation (each epoch from ``seed + epoch``,
        so a resumed run repeats an uninterrupted one).
    max_samples: a cap on the training samples (the first ones of the split; a quick
        profile), None for all.
    augment: HandDataset augmentation (pose models only). skeleton: the skeleton mask's
        line width ("thin", "medium", "thick"): the pose models' skeleton channel, the
        detector's target.
    num_workers: DataLoader workers. device: "auto" (cuda, then mps, then cpu) or a torch
        device string. amp: bfloat16 autocast, on CUDA only (ignored elsewhere).
    frame_size: (width, height) of the whole frames the detector/box models see.
    sigma: the heatmap targets' Gaussian sigma in input pixels at stride 1 (coarser maps:
        :func:`~gthd.dataset.codec.default_sigma`). The paper does not state it; 2 px is
        sharp, a wider one (3) gives the sigmoid outputs more to learn from early on.
    skeleton_crops: an .npz of the skeleton channel to train on instead of drawing it
        from the labels ("rows" (N,) dataset rows, "crops" (N, S, S) uint8): the
        detector's predicted skeletons, the paper's pose input (:func:`save_skeleton_crops`).
    schedule: "step" (the paper's: the learning rate times ``lr_gamma`` every ``lr_step``
        epochs) or "cosine" (from ``lr`` down to 0 over the run, step by step).
    warmup_steps: the learning rate rises linearly from ``lr / warmup_steps`` to ``lr``
        over the first optimizer steps (0: none).
    augment_kwargs: the :class:`~gthd.dataset.torch_dataset.Augment` fields, when
        ``augment`` (empty: its defaults, rotations of +-30 deg, scale 0.8-1.2, flips).
    heatmap_sigmas: the heatmap targets' sigma of each output, in that output's own
        heatmap pixels (None: from ``sigma``, :func:`~gthd.dataset.codec.default_sigma`).
    deterministic: ``torch.use_deterministic_algorithms`` (and no cuDNN autotuning):
        the same machine, thread count and seed give the same weights bit for bit.
        Off, a GPU may pick faster, non-deterministic kernels.
    compile: ``torch.compile`` the model (CUDA only; ignored elsewhere).
    """

    model: str = "multiscale_skeleton"
    model_kwargs: dict = field(default_factory=dict)
    data: str = ""
    train_split: str = "train"
    epochs: int = 30
    batch_size: int = 8
    lr: float = 0.01
    lr_step: int = 8
    lr_gamma: float = 0.9
    seed: int = 0
    max_samples: int | None = None
    augment: bool = True
    skeleton: str = "thick"
    num_workers: int = 2
    device: str = "auto"
    amp: bool = True
    frame_size: tuple[int, int] = (256, 192)
    sigma: float = 2.0
    skeleton_crops: str | None = None
    schedule: str = "step"
    warmup_steps: int = 0
    augment_kwargs: dict = field(default_factory=dict)
    heatmap_sigmas: list | None = None
    deterministic: bool = True
    compile: bool = False

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; known: {', '.join(MODELS)}")
        if min(self.epochs, self.batch_size, self.lr_step) < 1 or self.lr <= 0 or not 0 < self.lr_gamma <= 1:
            raise ValueError(f"epochs, batch_size, lr_step must be >= 1, lr > 0, 0 < lr_gamma <= 1; got {self}")
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"max_samples must be >= 1 or None, got {self.max_samples}")
        self.data = str(self.data)
        self.frame_size = (int(self.frame_size[0]), int(self.frame_size[1]))
        self.model_kwargs = dict(self.model_kwargs)
        if self.schedule not in ("step", "cosine"):
            raise ValueError(f"schedule must be step or cosine, got {self.schedule!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        unknown = set(self.augment_kwargs) - {f.name for f in fields(Augment)}
        if unknown:
            raise ValueError(f"augment_kwargs: unknown fields {sorted(unknown)}; known: {', '.join(f.name for f in fields(Augment))}")
        self.augment_kwargs = dict(self.augment_kwargs)
        if self.heatmap_sigmas is not None:
            self.heatmap_sigmas = [float(v) for v in self.heatmap_sigmas]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["frame_size"] = list(self.frame_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {', '.join(sorted(unknown))}")
        return cls(**d)


@dataclass
class TrainResult:
    """What a run did (also in ``out_dir/train.json``).

    epoch_losses: mean training loss of each epoch run by this call (resumed runs: only
    the new epochs). final_loss: the last of them. train_time_s, samples_per_s: of this
    call's epochs, all processes together. parameters: the model's parameter count.
    """

    model: str
    epochs: int
    start_epoch: int
    epoch_losses: list[float]
    final_loss: float
    train_time_s: float
    samples_per_s: float
    parameters: int
    world_size: int
    device: str
    checkpoint: str

    def to_dict(self) -> dict:
        return asdict(self)


def pick_device(name: str = "auto") -> torch.device:
    """ "auto": cuda, then mps, then cpu; else ``torch.device(name)``."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (all devices) generators."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


LOCATIONS = ("data", "skeleton_crops")
"""Config fields that say where a file is, not what it holds: a run is the same run
whatever the spelling of its dataset's path (``base.h5``, ``/abs/base.h5``) and wherever
its folder moved. The dataset is compared by its fingerprint (:func:`check_same_data`),
the skeleton crops (a file in the run folder) by their file name, which says how they
were made."""


def config_differences(saved: dict, given: dict, ignore=RESUMABLE) -> list[str]:
    """The names of the fields whose values differ between two ``to_dict`` configs
    (the :data:`LOCATIONS` compared by what they identify, not by their spelling)."""
    keys = sorted(set(saved) | set(given))
    return [k for k in keys if k not in ignore and _identity(k, saved.get(k)) != _identity(k, given.get(k))]


def _identity(key: str, v):
    """What a config value stands for, for comparison."""
    if key == "data":
        return None  # the dataset's content: compared by check_same_data
    if key == "skeleton_crops":
        return None if v is None else Path(str(v)).name
    return list(v) if isinstance(v, tuple) else v


def check_same_data(saved: dict, config: TrainConfig, fingerprint: str, where: Path) -> None:
    """Refuse a checkpoint trained on another dataset than ``config.data``.

    Args:
        saved: the checkpoint. fingerprint: ``config.data``'s
            (:func:`~gthd.dataset.schema.dataset_fingerprint`). where: the run folder, for
            the message.

    Raises:
        ValueError: the checkpoint's dataset fingerprint differs; or, for a checkpoint of
            an older gthd that saved none, its dataset path names another file.
    """
    theirs = saved.get("data_fingerprint")
    if theirs is not None:
        same = theirs == fingerprint
    else:  # written before fingerprints: the path is all there is (resolved: spelling aside)
        old = str(saved.get("config", {}).get("data", ""))
        same = old == config.data or Path(old).resolve() == Path(config.data).resolve()
    if not same:
        raise ValueError(f"{where} was trained with another config (data differ: another dataset than {config.data}): use another --out, or delete it")


# ----------------------------------------------------------------- data, targets, loss
def augment_of(config: TrainConfig) -> Augment | None:
    """The :class:`Augment` of a config (None: no augmentation)."""
    if not config.augment:
        return None
    kw = dict(config.augment_kwargs)
    if "scale" in kw:
        kw["scale"] = tuple(kw["scale"])
    return Augment(**kw)


def lr_factor(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate after ``step`` optimizer steps, as a factor of ``config.lr``:
    the schedule (step decay by epoch, or cosine over the run) times the warm-up ramp."""
    if config.schedule == "cosine":
        total = max(1, config.epochs * steps_per_epoch)
        f = 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    else:
        f = config.lr_gamma ** ((step // max(1, steps_per_epoch)) // config.lr_step)
    if config.warmup_steps:
        f *= min(1.0, (step + 1) / config.warmup_steps)
    return f


def make_dataset(config: TrainConfig):
    """The training dataset the model's task needs (capped to ``max_samples``)."""
    info = MODEL_INFO[config.model]
    if info.task in ("pose-heatmap", "pose-regression"):
        skel = config.skeleton if "skeleton" in info.inputs else None
        given = load_skeleton_crops(config.skeleton_crops) if skel and config.skeleton_crops else None
        augment = augment_of(config)
        ds = HandDataset(config.data, config.train_split, augment=augment, skeleton=skel, seed=config.seed, skeletons=given)
    else:
        skel = config.skeleton if info.task == "detector" else None  # the skeleton UNet's target
        ds = FrameDataset(config.data, config.train_split, size=config.frame_size, skeleton=skel)
    if len(ds) == 0:
        raise ValueError(f"{config.data}: no {info.task} samples in split {config.train_split!r}")
    if config.max_samples is not None and config.max_samples < len(ds):
        ds = Subset(ds, range(config.max_samples))
    return ds


def save_skeleton_crops(path, crops: dict[int, np.ndarray]) -> None:
    """Write skeleton crops (dataset row -> (S, S) float in [0, 1]) as an .npz of uint8
    (atomic)."""
    path = Path(path)
    rows = np.array(sorted(crops), np.int64)
    stack = np.stack([np.clip(np.rint(crops[r] * 255), 0, 255).astype(np.uint8) for r in rows]) if len(rows) else np.zeros((0, 1, 1), np.uint8)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, rows=rows, crops=stack)
    os.replace(tmp, path)


def load_skeleton_crops(path) -> dict[int, np.ndarray]:
    """An .npz of :func:`save_skeleton_crops` as row -> (S, S) uint8 (no pickles)."""
    with np.load(path, allow_pickle=False) as z:
        rows, crops = z["rows"], z["crops"]
    if crops.ndim != 3 or len(rows) != len(crops):
        raise ValueError(f"{path}: expected rows (N,) and crops (N, S, S), got {rows.shape} and {crops.shape}")
    return {int(r): c for r, c in zip(rows, crops)}


def make_codec(
    model, input_size: tuple[int, int] | None = None, sigma: float = 2.0, sigmas: list | None = None, bone_prior: BonePrior | None = None
) -> PoseCodec | None:
    """The codec of a pose model, the one place codecs are made for models: its targets
    (``encode``) and its keypoints (``codec.decode(model(x))``, whatever the model).

    Args:
        model: a builder name or its :class:`ModelInfo`.
        input_size: (width, height) px; default the model's.
        sigma, sigmas: the heatmap targets' sigma, ``sigma`` input px at stride 1 or
            ``sigmas``, each output's own in its heatmap px (heatmap models only).
        bone_prior: heatmap models only: None, the paper's decode (the argmax); a
            :class:`~gthd.dataset.codec.BonePrior` in the input's pixels, the bone-tree
            decode (a profile's ``decode``: docs/benchmark.md, "Decoding"). A regression
            model's codec ignores it.

    Returns:
        a heatmap codec for a heatmap model (its strides), a :class:`RegressionCodec`
        for a regression model; None for a detector or box model.
    """
    info = MODEL_INFO[model] if isinstance(model, str) else model
    name = model if isinstance(model, str) else "the model"
    input_size = input_size or info.input_size[::-1]
    if info.task == "pose-regression":
        return RegressionCodec(input_size)
    if info.task != "pose-heatmap":
        return None
    if sigmas is not None and len(sigmas) != len(info.strides):
        raise ValueError(f"{name} has {len(info.strides)} outputs (strides {info.strides}): expected as many heatmap sigmas, got {len(sigmas)}")
    sigmas = list(sigmas) if sigmas is not None else [default_sigma(s, sigma) for s in info.strides]
    if len(info.strides) == 1:
        return SingleScaleHeatmapCodec(input_size, stride=info.strides[0], sigma=sigmas[0], bone_prior=bone_prior)
    return MultiScaleHeatmapCodec(input_size, strides=info.strides, sigmas=sigmas, bone_prior=bone_prior)


def make_input(batch: dict, in_channels: int) -> torch.Tensor:
    """(B, C, H, W) network input from a dataset batch: the image (B, 3, H, W), with the
    skeleton (B, 1, H, W) concatenated when the model takes 4 channels."""
    x = batch["image"]
    if in_channels == 4:
        x = torch.cat([x, batch["skeleton"]], dim=1)  # (B, 4, H, W)
    elif in_channels != 3:
        raise ValueError(f"expected a model of 3 or 4 input channels, got {in_channels}")
    return x


def compute_loss(task: str, out: dict, batch: dict, codec: PoseCodec | None = None) -> torch.Tensor:
    """The task's loss of the model output ``out`` on ``batch`` (tensors on one device).
    A pose model's targets are made here by its codec (:func:`make_codec`), per batch, on
    the batch's device."""
    if task == "pose-heatmap":
        kp, vis = batch["keypoints"], batch["visible"]  # (B, J, 2), (B, J)
        targets = codec.encode(kp, vis)  # k maps (B, J, H/s, W/s)
        maps = [h.float() for h in out["heatmaps"]]
        return multiscale_loss(maps, targets, codec.target_weights(vis))
    if task == "pose-regression":
        kp, vis = batch["keypoints"], batch["visible"]
        target = codec.encode(kp, vis)  # (B, J, 2) normalised
        return keypoint_regression_loss(out["keypoints_norm"].float(), target, codec.target_weights(vis))
    if task == "detector":
        return skeleton_loss(out["mask"].float(), batch["skeleton"])
    if task == "box":
        H, W = batch["image"].shape[-2:]
        target = px_to_normalised(batch["box"].view(-1, 2, 2), W, H).view(-1, 4)  # (B, 4)
        return box_loss(out["box_norm"].float(), out["hand_logit"].float(), target, batch["has_hand"])
    raise ValueError(f"unknown task {task!r}")


def _to(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def _unwrap(model: nn.Module) -> nn.Module:
    """The model itself, out of a DistributedDataParallel wrapper."""
    return model.module if hasattr(model, "module") else model


@torch.no_grad()
def predict(model: nn.Module, batch) -> torch.Tensor:
    """Keypoints (B, J, 2) input px of a pose model on a batch (a HandDataset batch dict,
    or the (B, C, H, W) input itself), in eval mode (the model's mode is restored):
    the output decoded by the model's codec (:func:`make_codec`; heatmap models: the
    paper's weighted average of the maps, its argmax and a sub-pixel step). Detector/box
    models raise ValueError.
    """
    info = ModelInfo.from_config(_unwrap(model).config)
    was_training = model.training
    model.eval()
    try:
        x = batch if isinstance(batch, torch.Tensor) else make_input(batch, info.in_channels)
        device = next(model.parameters()).device
        x = x.to(device)
        H, W = x.shape[-2:]
        codec = make_codec(info, (W, H))
        if codec is None:
            raise ValueError(f"predict needs a pose model, not a {info.task} model")
        kp, _ = codec.decode(model(x))
        return kp  # (B, J, 2)
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` to a temporary file, then rename over ``path`` (atomic)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


CHECKPOINT_FIELDS = ("model", "optimizer", "scheduler", "epoch", "config")
"""What :func:`train` writes into every checkpoint (and needs to resume from one)."""


def load_checkpoint(path, map_location="cpu", require: tuple[str, ...] = ("model",)) -> dict:
    """A checkpoint as plain dicts and tensors.

    ``weights_only=True``: torch's unpickler admits tensors and plain containers only,
    so a hostile file (a pickle whose ``__reduce__`` calls ``os.system``) is refused
    before anything in it runs.

    Args:
        path: the ``.pt`` file. map_location: as ``torch.load``'s.
        require: the entries it must hold (:data:`CHECKPOINT_FIELDS` to resume).

    Raises:
        FormatError: one line naming the file and how to recover (delete it: ``gthd
            benchmark`` trains the model again): damaged, not a checkpoint, hostile, or
            lacking a required entry. FileNotFoundError: no such file.
    """
    path = Path(path)
    recover = "delete it and re-run `gthd benchmark` to train this model again"
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    # Broad on purpose: a damaged or hostile file fails in whatever its unpickler or zip
    # reader hits (UnpicklingError, RuntimeError, EOFError, struct.error, ...)
    except Exception as e:  # noqa: BLE001
        raise FormatError(f"{path}: not a readable checkpoint ({type(e).__name__}: {_pickle_reason(e)}): {recover}") from None
    if not isinstance(state, dict):
        raise FormatError(f"{path}: not a gthd checkpoint (it holds a {type(state).__name__}): {recover}")
    missing = [k for k in require if k not in state]
    if missing:
        raise FormatError(f"{path}: not a complete gthd checkpoint (no {', '.join(missing)} in it): {recover}")
    wrong = [k for k, kind in (("model", dict), ("config", dict), ("epoch", int)) if k in require and not isinstance(state[k], kind)]
    if wrong:
        raise FormatError(f"{path}: not a gthd checkpoint (its {', '.join(wrong)} is not what gthd writes): {recover}")
    return state


def _pickle_reason(e: BaseException) -> str:
    """The line of a torch.load error that says what was wrong: torch's own first
    lines are boilerplate (and advise ``weights_only=False``, which would run the file)."""
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation")
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(boilerplate)]
    reason = (useful or lines or [type(e).__name__])[0].split(". ")[0]  # its first sentence: the rest is advice
    return reason if len(reason) <= 200 else reason[:197] + "..."


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


# ------------------------------------------------------------------------------ train
def train(
    config: TrainConfig,
    out_dir,
    resume: bool = False,
    progress: Callable[[dict], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train ``config.model`` on ``config.data``, writing ``out_dir/last.pt`` after every
    epoch and ``out_dir/train.json`` at the end.

    Args:
        config: the run. out_dir: the run's folder (created).
        resume: continue from ``out_dir/last.pt`` (weights, optimizer, scheduler, epoch).
            Its config must equal ``config`` but for ``epochs`` (ValueError naming the
            differing fields otherwise). Without a checkpoint there, starts afresh.
        progress: called on the main process after each epoch with
            {"epoch", "epochs", "loss", "lr", "samples_per_s"}; None: one line on stderr.
        on_batch: called on the main process after each batch with (batches done, batches
            of the whole run), for a progress bar.

    Returns:
        :class:`TrainResult`.
    """
    out_dir = Path(out_dir)
    info = MODEL_INFO[config.model]

    # -- processes and device: DDP when torchrun set RANK
    ddp = int(os.environ.get("RANK", "-1")) != -1 and int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = pick_device(config.device)
    owns_group = False
    if ddp:
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            owns_group = True
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
    else:
        rank, world = 0, 1
    is_main = rank == 0
    use_amp = config.amp and device.type == "cuda"
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    if progress is None:

        def progress(p):
            print(f"epoch {p['epoch']}/{p['epochs']} loss {p['loss']:.5g} lr {p['lr']:.3g} {p['samples_per_s']:.1f} samples/s", file=sys.stderr)

    # -- data (each rank takes every world-th sample: steps per epoch from that share)
    dataset = make_dataset(config)
    sample = dataset[0]
    H, W = sample["image"].shape[-2:]
    codec = make_codec(config.model, (W, H), config.sigma, config.heatmap_sigmas)
    steps_per_epoch = math.ceil(math.ceil(len(dataset) / world) / config.batch_size)

    # -- model, optimizer, schedule (the same init on every rank: one seed)
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(config.deterministic, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not config.deterministic  # autotuned kernels differ run to run
    seed_everything(config.seed)
    model = create_model(config.model, **config.model_kwargs).to(device)
    n_params = count_parameters(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(config, step, steps_per_epoch))  # stepped per batch
    start_epoch = 0
    ckpt_path = out_dir / CHECKPOINT
    fingerprint = dataset_fingerprint(config.data)  # saved with every checkpoint: the data's identity
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, map_location=device, require=CHECKPOINT_FIELDS)
        saved = ckpt["config"]
        diff = config_differences(saved, config.to_dict())
        if diff:
            was = ", ".join(f"{k}={saved.get(k)!r}" for k in diff)
            raise ValueError(f"cannot resume {ckpt_path}: config differs in {', '.join(diff)} (saved {was})")
        check_same_data(ckpt, config, fingerprint, out_dir)
        try:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            start_epoch = int(ckpt["epoch"])
        except (RuntimeError, ValueError, KeyError, TypeError) as e:  # weights of another shape, a mangled state
            raise FormatError(
                f"{ckpt_path}: its state does not fit {config.model} ({_first_line(e)}): delete it and re-run to train this model again"
            ) from None
    raw_model = model
    if config.compile and device.type == "cuda":
        model = torch.compile(model)
    if ddp:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    in_channels = raw_model.config.in_channels

    # -- the loop
    epoch_losses: list[float] = []
    samples = 0
    t0 = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        # every epoch's randomness from (seed, epoch, rank) alone: a resume repeats it
        torch.manual_seed(config.seed + 1000003 * epoch + 7919 * rank)
        # one permutation of (seed, epoch) for any world size: rank r takes its items r,
        # r + world, ... so a step of `world` processes sees the samples one process with
        # batch `world * batch_size` would (the last batch padded to an equal share)
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=config.seed)
        sampler.set_epoch(epoch)
        gen = torch.Generator().manual_seed(config.seed + 1000003 * epoch + 7919 * rank)  # worker seeds
        loader = DataLoader(
            dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.num_workers, pin_memory=device.type == "cuda", generator=gen
        )
        model.train()
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        n_sum = torch.zeros((), device=device, dtype=torch.float64)
        te = time.perf_counter()
        for step, batch in enumerate(loader):
            batch = _to(batch, device)
            x = make_input(batch, in_channels)  # (B, C, H, W)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                out = model(x)
            loss = compute_loss(info.task, out, batch, codec)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            B = x.shape[0]
            loss_sum += loss.detach().double() * B
            n_sum += B
            if on_batch is not None and is_main:
                on_batch(epoch * len(loader) + step + 1, config.epochs * len(loader))
        if ddp:
            dist.all_reduce(loss_sum)
            dist.all_reduce(n_sum)
        n_epoch = int(n_sum.item())
        samples += n_epoch
        epoch_loss = float(loss_sum.item() / max(n_epoch, 1))
        if not math.isfinite(epoch_loss):
            raise FloatingPointError(f"epoch {epoch + 1}: the training loss is {epoch_loss}")
        epoch_losses.append(epoch_loss)
        if is_main:
            save_checkpoint(
                ckpt_path,
                {
                    "model": raw_model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch + 1,
                    "config": config.to_dict(),
                    "data_fingerprint": fingerprint,
                    "gthd_version": __version__,
                    "loss": epoch_loss,
                },
            )
            dt = time.perf_counter() - te
            progress(
                {
                    "epoch": epoch + 1,
                    "epochs": config.epochs,
                    "loss": epoch_loss,
                    "lr": optimizer.param_groups[0]["lr"],
                    "samples_per_s": n_epoch / max(dt, 1e-9),
                }
            )
    train_time = time.perf_counter() - t0
    torch.use_deterministic_algorithms(deterministic)  # the caller's setting again

    result = TrainResult(
        model=config.model,
        epochs=config.epochs,
        start_epoch=start_epoch,
        epoch_losses=epoch_losses,
        final_loss=epoch_losses[-1] if epoch_losses else float("nan"),
        train_time_s=train_time,
        samples_per_s=samples / max(train_time, 1e-9),
        parameters=n_params,
        world_size=world,
        device=str(device),
        checkpoint=str(ckpt_path),
    )
    if is_main:
        atomic_write_bytes(out_dir / "train.json", json.dumps({"config": config.to_dict(), "result": result.to_dict()}, indent=2).encode())
    if ddp:
        dist.barrier()
        if owns_group:
            dist.destroy_process_group()
    return result


# -------------------------------------------------------------------------------- main
def main(argv=None) -> None:
    """Command line for torchrun (``python -m gthd.benchmark.train --help``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, choices=list(MODELS))
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--width", type=int, default=None, help="the model's width kwarg")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-amp", action="store_true")
    p.add_argument("--resume", action="store_true")
    a = p.parse_args(argv)
    cfg = TrainConfig(
        model=a.model,
        model_kwargs={} if a.width is None else {"width": a.width},
        data=a.data,
        epochs=a.epochs,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
        max_samples=a.max_samples,
        augment=not a.no_augment,
        num_workers=a.num_workers,
        device=a.device,
        amp=not a.no_amp,
    )
    result = train(cfg, a.out, resume=a.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result.to_dict(), indent=2))


if __name__ == "__main__":
    main()
