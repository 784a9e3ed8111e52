"""PyTorch datasets over a gthd dataset file (schema in :mod:`gthd.dataset.schema`).

- :class:`HandDataset`: the hand crops of a split, for the pose network. Each item is
  the 128 x 128 crop (only its JPEG is decoded, never the whole frame), the skeleton mask
  drawn on the crop's keypoints, the keypoints, and optionally the heatmap targets of a
  codec (:mod:`gthd.dataset.codec`); optional augmentation (:class:`Augment`).
- :class:`FrameDataset`: whole frames resized to a fixed size with their skeleton masks,
  for the skeleton/hand detector.

The HDF5 file is opened lazily, once per process: ``h5py`` objects cannot be pickled or
shared across a fork, so a dataset keeps the path and opens the file on its first item in
each process (a ``DataLoader`` worker, after the fork, opens its own).

Example::

    import torch
    from torch.utils.data import DataLoader
    from gthd.dataset.codec import MultiScaleHeatmapCodec
    from gthd.dataset.torch_dataset import HandDataset

    codec = MultiScaleHeatmapCodec()
    ds = HandDataset("gthd.h5", split="train", augment=True)
    for batch in DataLoader(ds, batch_size=32, shuffle=True, num_workers=2):
        x = torch.cat([batch["image"], batch["skeleton"]], dim=1)  # (B, 4, 128, 128)
        targets = codec.encode(batch["keypoints"].cuda(), batch["visible"].cuda())  # on the GPU
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from ..fileio import FormatError
from ..hand import NUM_JOINTS
from .samples import THICKNESS, skeleton_mask, skeleton_patch
from .schema import CROP_SIZE, SPLITS, open_dataset, read_skeleton


def split_mask(splits: np.ndarray, split: str | int | None) -> np.ndarray:
    """(N,) bool: the samples of ``split`` ("train", "val", "test", its number, a list of
    these, or None for all) given the ``/meta/split`` column (N,) uint8."""
    splits = np.asarray(splits)
    if split is None:
        return np.ones(len(splits), bool)
    if isinstance(split, (list, tuple)):
        return np.any([split_mask(splits, s) for s in split], axis=0) if split else np.zeros(len(splits), bool)
    if isinstance(split, str):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)} (or None for all), got {split!r}")
        split = SPLITS.index(split)
    return splits == int(split)


class _LazyH5:
    """Keeps the path, opens the file (read-only, version checked) on first use in each
    process, and drops the handle when pickled."""

    path: Path
    _h5 = None
    _pid = None

    def _file(self):
        if self._h5 is None or self._pid != os.getpid():
            # a handle inherited across a fork belongs to the parent: never touch it here
            self._h5 = open_dataset(self.path)
            self._pid = os.getpid()
            self._columns = {}
            # (no cv2.setNumThreads(1) here: in a child forked after the parent used
            # OpenCV's thread pool it never returns)
        return self._h5

    def _bytes(self, name: str, row: int) -> np.ndarray:
        """Row ``row`` of the vlen uint8 column ``name`` (e.g. "images/crop_jpeg"), (n,)
        uint8. Through h5py's low-level API with a selection made once per process: half
        the cost of ``f[name][row]``, which rebuilds its selection on every call."""
        f = self._file()
        reader = self._columns.get(name)
        if reader is None:
            ds = f[name]
            reader = self._columns[name] = (ds.id, ds.id.get_space(), h5py.h5s.create_simple((1,)), np.empty((1,), ds.dtype))
        dsid, fspace, mspace, out = reader
        fspace.select_hyperslab((row,), (1,))
        dsid.read(mspace, fspace, out)
        return out[0]

    def close(self) -> None:
        """Close this process's handle (it reopens on the next item)."""
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5 = self._pid = None
        self._columns = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(_h5=None, _pid=None, _columns={})
        return state

    def __del__(self):
        # at interpreter exit h5py may already be torn down: nothing left to close then
        with contextlib.suppress(Exception):
            self.close()


def _decode(buf: np.ndarray, flags: int, what: str, index: int) -> np.ndarray:
    img = cv2.imdecode(buf, flags) if len(buf) else None
    if img is None:
        raise FormatError(f"sample {index}: {what} is missing or not a readable image")
    return img


def _to_chw(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 BGR -> (3, H, W) float32 RGB in [0, 1]; (H, W) -> (1, H, W).

    NumPy and OpenCV only, no torch arithmetic: in the main process (num_workers=0) torch
    ops on small images go to its thread pool, whose spin-waits cost milliseconds when
    the cores are busy."""
    if img.ndim == 2:
        return torch.from_numpy(np.multiply(img, np.float32(1 / 255), dtype=np.float32)[None])  # (1, H, W)
    out = np.empty((3,) + img.shape[:2], np.float32)  # (3, H, W)
    for k, channel in enumerate(cv2.split(img)):  # B, G, R
        out[2 - k] = channel
    out *= np.float32(1 / 255)
    return torch.from_numpy(out)


# --------------------------------------------------------------------------- augmentation
@dataclass
class Augment:
    """Random augmentation of a hand crop (train time). The geometric part is one affine
    map about the crop's centre applied to the image (``cv2.warpAffine``) and to the
    keypoints alike; the photometric part changes colours only.

    rotate_deg: uniform in +-rotate_deg. scale: uniform in [lo, hi]. translate: a fraction
    of the crop side, uniform in +- per axis. flip: probability of a horizontal mirror (our
    21 joints have no left/right pairs, so keypoints just mirror; a left hand becomes a
    right one). brightness, contrast, saturation: factors uniform in 1 +- each.
    """

    rotate_deg: float = 30.0
    scale: tuple[float, float] = (0.8, 1.2)
    translate: float = 0.1
    flip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def matrix(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """(2, 3) affine FROM crop px TO augmented crop px (pixel centres at integers, the
        convention of both ``cv2.warpAffine`` and our keypoints, so no half-pixel term)."""
        c = (size - 1) / 2.0
        a = np.deg2rad(rng.uniform(-self.rotate_deg, self.rotate_deg))
        s = rng.uniform(*self.scale)
        t = rng.uniform(-self.translate, self.translate, 2) * size
        A = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        if rng.random() < self.flip:
            A = A @ np.diag([-1.0, 1.0])
        # p' = A (p - c) + c + t
        return np.hstack([A, (np.array([c, c]) + t - A @ np.array([c, c]))[:, None]])

    def colour(self, bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Jitter a (H, W, 3) uint8 BGR image: brightness (scale), contrast (blend with
        the mean grey), saturation (blend with each pixel's grey), in a random order. The
        three are affine colour maps, composed here into one and applied in one pass
        (``cv2.transform``), clipped to [0, 255] once at the end. Returns a new image."""
        luma = np.array([0.114, 0.587, 0.299])  # BGR
        A, b = np.eye(3), np.zeros(3)  # colour -> A colour + b
        mean = np.array(cv2.mean(bgr)[:3])  # (3,) BGR
        for k in rng.permutation(3):
            if k == 0 and self.brightness:
                f = rng.uniform(1 - self.brightness, 1 + self.brightness)
                A, b = f * A, f * b
            elif k == 1 and self.contrast:
                f = rng.uniform(1 - self.contrast, 1 + self.contrast)
                m = luma @ (A @ mean + b)  # the mean grey of the image so far
                A, b = f * A, f * b + (1 - f) * m
            elif k == 2 and self.saturation:
                f = rng.uniform(1 - self.saturation, 1 + self.saturation)
                G = np.outer(np.ones(3), luma)  # colour -> its grey in every channel
                A, b = f * A + (1 - f) * (G @ A), f * b + (1 - f) * (G @ b)
        return cv2.transform(bgr, np.hstack([A, b[:, None]]))


def warp_crop(image: np.ndarray, keypoints: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply a (2, 3) affine ``M`` (FROM crop px TO output px) to a square crop and its
    keypoints alike. image: (S, S, C) uint8; keypoints: (J, 2) px -> same shapes.
    Outside the crop the image is black."""
    s = image.shape[0]
    out = cv2.warpAffine(image, M, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out, keypoints @ M[:, :2].T + M[:, 2]


def _inside(keypoints: np.ndarray, width: int, height: int) -> np.ndarray:
    """(...,) bool of (..., 2) px: finite and within the image's extent [-0.5, W-0.5] x
    [-0.5, H-0.5]."""
    u, v = keypoints[..., 0], keypoints[..., 1]
    with np.errstate(invalid="ignore"):
        return np.isfinite(u) & np.isfinite(v) & (u >= -0.5) & (u <= width - 0.5) & (v >= -0.5) & (v <= height - 0.5)


# ----------------------------------------------------------------------------- datasets
class HandDataset(_LazyH5, Dataset):
    """The hand crops of one split (samples with ``has_hand``), for the pose network.

    Args:
        path: a gthd dataset file (refused with :class:`gthd.fileio.FormatError` if its
            format or schema version is unknown).
        split: "train", "val", "test", a list of them, or None for every split.
        codec: a heatmap codec (e.g. :class:`~gthd.dataset.codec.MultiScaleHeatmapCodec`)
            whose input size is the crop's; adds "heatmaps" and "weights" to each item.
            Targets are big (the paper's five maps: 3.5 MB a sample); on a GPU, rather make
            them per batch there: ``codec.encode(batch["keypoints"].cuda(), ...)``.
        augment: False, True (an :class:`Augment` with its defaults) or an :class:`Augment`.
        skeleton: the skeleton mask's line width ("thin", "medium", "thick", see
            :func:`gthd.dataset.samples.skeleton_mask`), or None for no "skeleton" entry.
        skeletons: instead of drawing it, the skeleton of each sample given: dataset row
            -> (S, S) uint8 crop (e.g. a detector's prediction, the paper's pose input),
            warped with the image when augmenting.
        seed: augmentation seed. Each process draws from a generator seeded with it and
            torch's seed for that process (a DataLoader gives each worker a new seed
            every epoch), so ``torch.manual_seed`` makes a run repeatable.

    Items, a dict:
        image: (3, S, S) float32 RGB in [0, 1] (S = the crop size, 128).
        skeleton: (1, S, S) float32 in [0, 1], drawn on the (augmented) crop keypoints.
        keypoints: (21, 2) float32 crop px (0 where unknown: see ``visible``).
        visible: (21,) bool: visible and inside the crop.
        index: int, the sample's row in the file.
        heatmaps: a list of the codec's maps, (21, H/s, W/s) float32 tensors (with a codec).
        weights: (21,) float32 loss weights (with a codec).
    """

    def __init__(
        self,
        path,
        split: str | int | None = "train",
        codec=None,
        augment=False,
        skeleton: str | None = "thick",
        seed: int = 0,
        skeletons: dict[int, np.ndarray] | None = None,
    ):
        self.path = Path(path)
        self.skeletons = skeletons
        if skeleton is not None and skeleton not in THICKNESS:
            raise ValueError(f"skeleton must be one of {', '.join(THICKNESS)} or None, got {skeleton!r}")
        with open_dataset(self.path) as f:
            keep = split_mask(f["meta/split"][...], split) & f["labels/has_hand"][...].astype(bool)
            self.indices = np.flatnonzero(keep)  # (M,) rows of the file
            self.crop_size = int(f.attrs.get("crop_size", CROP_SIZE))
            kp = f["labels/keypoints_crop"][...][self.indices].astype(np.float32)  # (M, 21, 2)
            vis = f["labels/visible"][...][self.indices].astype(bool)  # (M, 21)
        if kp.shape[1:] != (NUM_JOINTS, 2):
            raise FormatError(f"{self.path}: keypoints_crop: expected (N, {NUM_JOINTS}, 2), got {kp.shape}")
        self.visible = vis & _inside(kp, self.crop_size, self.crop_size)  # (M, 21)
        self.keypoints = np.where(self.visible[..., None], kp, 0.0).astype(np.float32)  # (M, 21, 2)
        if codec is not None and tuple(codec.input_size) != (self.crop_size, self.crop_size):
            raise ValueError(f"the codec's input size {tuple(codec.input_size)} is not the crop size {self.crop_size}")
        self.split, self.codec, self.skeleton, self.seed = split, codec, skeleton, int(seed)
        self.augment = Augment() if augment is True else (augment or None)
        self._rng_key = None

    def __len__(self) -> int:
        return len(self.indices)

    def _rng(self) -> np.random.Generator:
        info = torch.utils.data.get_worker_info()
        torch_seed = info.seed if info is not None else torch.initial_seed()
        key = (os.getpid(), torch_seed)
        if self._rng_key != key:
            self._rng_key = key
            self._gen = np.random.default_rng([self.seed, torch_seed % 2**63])
        return self._gen

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        row = int(self.indices[i])
        s = self.crop_size
        img = _decode(self._bytes("images/crop_jpeg", row), cv2.IMREAD_COLOR, "crop_jpeg", row)  # (S, S, 3) BGR
        if img.shape[:2] != (s, s):
            raise FormatError(f"{self.path}: sample {row}: crop is {img.shape[1]}x{img.shape[0]}, expected {s}x{s}")
        kp = self.keypoints[i].copy()  # (21, 2)
        known = self.visible[i].copy()  # (21,)
        rng = self._rng() if self.augment is not None else None
        given = self.skeletons.get(row) if self.skeletons is not None else None  # (S, S) uint8, e.g. a detector's
        if self.skeletons is not None and given is None:
            raise KeyError(f"sample {row}: no skeleton among the given ones")
        if rng is not None:
            M = self.augment.matrix(rng, s)
            img, kp = warp_crop(img, kp, M)
            if given is not None:
                given = cv2.warpAffine(given, M, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        visible = known & _inside(kp, s, s)
        if rng is not None:
            img = self.augment.colour(img, rng)
        out = {"image": _to_chw(img)}
        if given is not None:
            out["skeleton"] = _to_chw(given)  # (1, S, S), warped with the image
        elif self.skeleton is not None:
            # every known joint, even one the augmentation pushed out: its lines still
            # cross the crop (drawing clips them), as in a mask warped with the image
            out["skeleton"] = _to_chw(skeleton_mask(kp, known, (s, s), self.skeleton))  # (1, S, S)
        kp = np.where(visible[:, None], kp, 0.0).astype(np.float32)
        out.update(keypoints=torch.from_numpy(kp), visible=torch.from_numpy(visible), index=row)
        if self.codec is not None:
            out["heatmaps"] = [torch.from_numpy(h) for h in self.codec.encode(kp, visible)]
            out["weights"] = torch.from_numpy(self.codec.target_weights(visible))
        return out


_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}


def scale_points(points: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """(..., 2) px of an image -> px of the image resized by (sx, sy), pixel-centre aware:
    ``u' = (u + 0.5) * sx - 0.5`` (an image edge stays an edge)."""
    p = np.asarray(points, dtype=np.float64)
    return (p + 0.5) * np.array([sx, sy]) - 0.5


class FrameDataset(_LazyH5, Dataset):
    """Whole frames of one split, resized to one size, with their skeleton masks: the
    skeleton/hand detector's data (NoHand frames included, with an empty mask).

    Args:
        path: a gthd dataset file. split: as :class:`HandDataset`'s.
        size: (width, height) of every item; frames are resized to it (area-averaged
            when shrinking, bilinear when growing; the aspect ratio is not kept).
        skeleton: None for the stored masks (drawn at the build's thickness), or "thin",
            "medium", "thick" to draw them from the labels at that line width: at the
            frame's resolution, then resized like the image (the thickness ablation).

    Items, a dict:
        image: (3, H, W) float32 RGB in [0, 1].
        skeleton: (1, H, W) float32 in [0, 1], the frame's skeleton mask (stored,
            :func:`~gthd.dataset.schema.read_skeleton`, or drawn) resized like the image.
        has_hand: bool.
        box: (4,) float32 xyxy hand box in the resized image's px (0 for NoHand).
        keypoints: (21, 2) float32 px of the resized image (0 where unknown). visible: (21,) bool.
        index: int, the sample's row in the file.
    """

    def __init__(self, path, split: str | int | None = "train", size: tuple[int, int] = (256, 192), skeleton: str | None = None):
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        if min(self.size) < 1:
            raise ValueError(f"size must be positive (width, height), got {size}")
        if skeleton is not None and skeleton not in THICKNESS:
            raise ValueError(f"skeleton must be one of {', '.join(THICKNESS)} or None, got {skeleton!r}")
        with open_dataset(self.path) as f:
            if skeleton == f.attrs.get("skeleton_thickness"):
                skeleton = None  # the stored masks are that thickness already
            self.indices = np.flatnonzero(split_mask(f["meta/split"][...], split))
            self.image_size = f["meta/image_size"][...][self.indices].astype(np.int64)  # (M, 2) (w, h)
            self.has_hand = f["labels/has_hand"][...][self.indices].astype(bool)
            self.box = f["labels/box"][...][self.indices].astype(np.float64)  # (M, 4)
            self.keypoints = f["labels/keypoints"][...][self.indices].astype(np.float64)  # (M, 21, 2)
            self.visible = f["labels/visible"][...][self.indices].astype(bool)
        self.split, self.skeleton = split, skeleton

    def __len__(self) -> int:
        return len(self.indices)

    def _mask(self, row: int, i: int, fw: int, fh: int) -> np.ndarray:
        """(fh, fw) uint8: the stored skeleton mask, or one drawn at ``self.skeleton``."""
        if self.skeleton is None:
            return read_skeleton(self._file(), row)
        mask = np.zeros((fh, fw), np.uint8)
        if self.has_hand[i]:
            patch, (x, y) = skeleton_patch(self.keypoints[i], self.visible[i], (fw, fh), self.skeleton)
            mask[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
        return mask

    def _resize(self, img: np.ndarray) -> np.ndarray:
        w, h = self.size
        shrink = img.shape[1] > w or img.shape[0] > h
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        row = int(self.indices[i])
        w, h = self.size
        fw, fh = (int(v) for v in self.image_size[i])
        # decode at 1/4 or 1/2 scale when the item is that much smaller (libjpeg scales in
        # the DCT: a few times faster than a full decode and an area resize)
        scale = next(k for k in (4, 2, 1) if fw // k >= w and fh // k >= h)
        frame = _decode(self._bytes("images/frame_jpeg", row), _REDUCED[scale], "frame_jpeg", row)  # (H0/k, W0/k, 3)
        mask = self._mask(row, i, fw, fh)  # (H0, W0) uint8
        if mask.shape != (fh, fw):
            raise FormatError(f"{self.path}: sample {row}: skeleton mask {mask.shape[::-1]} is not the frame's size {(fw, fh)}")
        sx, sy = w / fw, h / fh
        kp = scale_points(self.keypoints[i], sx, sy)  # (21, 2)
        vis = self.visible[i] & _inside(kp, w, h)
        has = bool(self.has_hand[i])
        box = scale_points(self.box[i].reshape(2, 2), sx, sy).ravel() if has else np.zeros(4)
        return {
            "image": _to_chw(self._resize(frame)),  # (3, H, W)
            "skeleton": _to_chw(self._resize(mask)),  # (1, H, W)
            "has_hand": has,
            "box": torch.from_numpy(np.nan_to_num(box).astype(np.float32)),
            "keypoints": torch.from_numpy(np.where(vis[:, None], kp, 0.0).astype(np.float32)),
            "visible": torch.from_numpy(vis),
            "index": row,
        }
