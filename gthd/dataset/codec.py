"""Codecs: what a model's output means, and the training targets that mean the same.

A codec knows nothing about networks (docs/conventions.md, "Model outputs: heatmaps,
coordinates, codecs"): ``encode`` turns keypoints into training targets, ``decode`` turns
a model's output back into what it found. Every codec decodes with one signature::

    decode(output) -> (found, scores)

``output`` is what the model's ``forward`` returned (its dict), or the one entry of it the
codec reads (its ``key``). For the pose codecs (:class:`MultiScaleHeatmapCodec`,
:class:`SingleScaleHeatmapCodec`, :class:`RegressionCodec`) ``found`` is keypoints
(B, J, 2) in input pixels and ``scores`` (B, J) (B optional); for :class:`SkeletonMaskCodec`
it is boxes (N, 4) xyxy in mask pixels and scores (N,), the Hand/NoHand counts. The pose
codecs also have ``encode(keypoints, visible=None)`` and ``target_weights(visible)``, and
work on NumPy arrays and on torch tensors (on any device, batched or not): they look at
the type of their input and answer in kind, so targets can be made per batch on the
training device. The mask codec answers in NumPy.

Conventions:

- Pixels are OpenCV's (the centre of the top-left pixel is (0, 0)). A keypoint at input
  pixel ``u`` sits at ``u_s = (u + 0.5) / s - 0.5`` on a heatmap downscaled by the
  stride ``s``, and back: ``u = (u_s + 0.5) * s - 0.5``; normalised to the input's
  extent (the regression models' coordinates) at ``n = (u + 0.5) / W``, and back:
  ``u = n * W - 0.5``.
- Targets are unnormalised Gaussians, ``exp(-|p - u_s|^2 / (2 sigma^2))`` over the
  heatmap's pixel centres ``p``: the peak of the continuous Gaussian is 1 at the exact
  sub-pixel location (a pixel centre reaches 1 only when the keypoint falls on it).
  ``sigma`` is in heatmap pixels and stated per scale.
- A joint that is not visible (or not finite) gets an all-zero map (a regression target
  of 0) and weight 0.

The paper's network ("Skeleton-aware multi-scale heatmap regression", section III)
outputs its heatmaps at five scales, 128, 64, 32, 64, 128 for a 128 crop: strides
(1, 2, 4, 2, 1) in the order the paper lists them (gthd's network emits them as 64, 32,
64, 128, 128: strides (2, 4, 2, 1, 1), ``gthd.benchmark.models.multiscale.PAPER_STRIDES``; a codec
takes the strides in any order). Its loss weights them delta = 1, 1/2, 1/4 (1 / stride), and at test
time it takes a weighted average of the five maps brought to one resolution, then the
argmax. :class:`MultiScaleHeatmapCodec` does exactly that, adding a sub-pixel step. The
direct-regression baseline's coordinates are :class:`RegressionCodec`'s.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import cv2
import numpy as np
from scipy import ndimage

from ..hand import BONES

DEFAULT_SIGMA = 2.0
"""Gaussian sigma at stride 1, input pixels (a 128 crop of a hand: joints ~10 px apart)."""


_TINY = 1e-12  # Gaussian factors below this are set to 0 (see encode)


def default_sigma(stride: int, sigma: float = DEFAULT_SIGMA) -> float:
    """The default sigma, in heatmap pixels, of a map at ``stride``: ``sigma / stride``
    (the same spread in input pixels at every scale) but at least 1 heatmap pixel, below
    which a Gaussian sampled on the pixel grid stops being a smooth bump. For sigma 2:
    2, 1, 1 at strides 1, 2, 4 (2, 2, 4 input pixels)."""
    return max(1.0, float(sigma) / stride)


def _is_torch(x) -> bool:
    # torch is only looked up if something imported it already: NumPy callers never pay
    # for importing it, and an object can only be a tensor if torch is loaded.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _entry(output, key: str):
    """The entry ``key`` of a model's output dict; anything else is that entry already."""
    return output[key] if isinstance(output, dict) else output


def _check_keypoints(keypoints, visible):
    """(keypoints (..., 2) float, visible and finite (...) bool, whether torch) of an
    encode's arguments, or a ValueError naming the shape that is wrong."""
    torch_in = _is_torch(keypoints)
    if not torch_in:
        keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.ndim not in (2, 3) or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints: expected (J, 2) or (B, J, 2), got {tuple(keypoints.shape)}")
    if torch_in:
        import torch

        if not keypoints.is_floating_point():
            keypoints = keypoints.float()
        finite = torch.isfinite(keypoints).all(-1)  # (B, J)
        vis = finite if visible is None else torch.as_tensor(visible, device=keypoints.device).bool()
    else:
        finite = np.isfinite(keypoints).all(-1)
        vis = finite if visible is None else np.asarray(visible, dtype=bool)
    if tuple(vis.shape) != tuple(keypoints.shape[:-1]):
        raise ValueError(f"visible: expected {tuple(keypoints.shape[:-1])} to match keypoints, got {tuple(vis.shape)}")
    return keypoints, vis & finite, torch_in


def _input_size(input_size: int | tuple[int, int]) -> tuple[int, int]:
    """(width, height) of an int (square) or a (width, height) pair."""
    w, h = (input_size, input_size) if np.isscalar(input_size) else tuple(input_size)
    return int(w), int(h)


def resize_taps(n_in: int, n_out: int, mode: str = "bilinear") -> tuple[np.ndarray, np.ndarray]:
    """How each output pixel of a 1-D resampling draws on the input: ``y[o] = sum_k
    weight[o, k] * x[index[o, k]]``.

    Pixel-centre aware: output pixel ``o`` samples the input at ``(o + 0.5) * n_in /
    n_out - 0.5``, as ``torch.nn.functional.interpolate(..., align_corners=False)`` and
    ``cv2.resize`` do. ``bilinear`` clamps the sample position into the signal;
    ``bicubic`` is Keys' cubic with a = -0.75 and replicated borders. The reference for
    :func:`resize_maps`, which calls torch or OpenCV (tested to agree with it).

    Returns:
        index: (n_out, T) int64 and weight: (n_out, T) float64, T = 2 (bilinear) or 4.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"sizes must be >= 1, got {n_in} -> {n_out}")
    x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    if mode == "bilinear":
        x = np.maximum(x, 0.0)
        i0 = np.minimum(np.floor(x).astype(np.int64), n_in - 1)
        t = x - i0
        index = np.stack([i0, np.minimum(i0 + 1, n_in - 1)], axis=1)
        weight = np.stack([1 - t, t], axis=1)
    elif mode == "bicubic":
        a = -0.75
        i0 = np.floor(x).astype(np.int64)
        t = x - i0

        def near(d):  # |d| <= 1
            return ((a + 2) * d - (a + 3)) * d * d + 1

        def far(d):  # 1 < |d| < 2
            return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

        index = np.clip(i0[:, None] + np.arange(-1, 3), 0, n_in - 1)
        weight = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)
    else:
        raise ValueError(f"mode must be bilinear or bicubic, got {mode!r}")
    return index, weight


def resize_matrix(n_in: int, n_out: int, mode: str = "bilinear") -> np.ndarray:
    """(n_out, n_in) float64 matrix of :func:`resize_taps`: ``y = M @ x``; a 2-D map
    (H, W) resizes as ``My @ map @ Mx.T``."""
    index, weight = resize_taps(n_in, n_out, mode)
    M = np.zeros((n_out, n_in))
    np.add.at(M, (np.repeat(np.arange(n_out), index.shape[1]), index.ravel()), weight.ravel())
    return M


def resize_maps(maps, size: tuple[int, int], mode: str = "bilinear"):
    """Resample maps to ``size`` = (width, height), pixel-centre aware: torch's
    ``interpolate(..., align_corners=False)`` for tensors, ``cv2.resize`` for NumPy, which
    give the numbers of :func:`resize_matrix` (tested).

    Args:
        maps: (..., h, w) float NumPy or torch.

    Returns:
        (..., height, width), NumPy float32 or a float tensor on the maps' device.
    """
    if mode not in ("bilinear", "bicubic"):
        raise ValueError(f"mode must be bilinear or bicubic, got {mode!r}")
    h, w = maps.shape[-2:]
    W, H = size
    lead = tuple(maps.shape[:-2])
    if _is_torch(maps):
        import torch.nn.functional as F

        x = maps.float().reshape((-1, 1, h, w))  # (N, 1, h, w)
        return F.interpolate(x, size=(H, W), mode=mode, align_corners=False).reshape(lead + (H, W))
    import cv2

    flags = cv2.INTER_LINEAR if mode == "bilinear" else cv2.INTER_CUBIC
    x = np.asarray(maps, dtype=np.float32).reshape((-1, h, w))  # (N, h, w)
    out = np.empty((len(x), H, W), np.float32)
    for i, m in enumerate(x):  # one map at a time: OpenCV takes <= 128 channels, and packing is no faster
        out[i] = cv2.resize(m, (W, H), interpolation=flags)
    return out.reshape(lead + (H, W))


class PoseCodec:
    """What every keypoint codec has: ``key``, the model output's entry it decodes;
    ``encode(keypoints, visible=None)``, the training targets; ``decode(output)``,
    keypoints (B, J, 2) input px and scores (B, J); and :meth:`target_weights`."""

    key: str

    def target_weights(self, visible):
        """(J,) or (B, J) loss weight per joint: 1 visible, 0 not (float32, or the tensor's
        device for torch input)."""
        if _is_torch(visible):
            import torch

            return visible.to(torch.float32)
        return np.asarray(visible, dtype=bool).astype(np.float32)


class MultiScaleHeatmapCodec(PoseCodec):
    """Keypoints <-> Gaussian heatmaps at several scales (the paper's five outputs).

    Args:
        input_size: the network input, an int (square) or (width, height), pixels. Every
            size divided by every stride must be a whole number.
        strides: the downscale factor of each output, in the network's output order. The
            paper's k = 5 outputs of a 128 input: (1, 2, 4, 2, 1), i.e. 128, 64, 32, 64, 128.
        sigmas: the Gaussian sigma of each output in *its own* heatmap pixels. Default
            :func:`default_sigma`: ``max(1, 2 / stride)``, (2, 1, 1, 1, 2) for the paper's
            strides = 2, 2, 4, 2, 2 input pixels.
        weights: each output's weight in the decoding average. Default the paper's loss
            weights delta = 1 / stride: (1, 1/2, 1/4, 1/2, 1), which lean on the sharp
            full-resolution maps (the round trip is also more exact with them: the coarse
            maps, upsampled, are the least symmetric around the peak). Use the same numbers
            to weight the loss (``codec.weights``).
        upsample: how decode brings each map to the input resolution: ``bilinear`` (the
            default, torch's ``align_corners=False``) or ``bicubic``.
        bone_prior: None (the default), the paper's decode: each joint at its averaged
            map's argmax. A :class:`BonePrior`: the structured decode
            (:func:`structured_choice`): each joint at one of its map's
            :data:`STRUCTURE_CANDIDATES` highest local maxima, chosen together so that
            bones are not longer than the prior's and joints that share no bone do not
            sit on one place: far fewer joints land on another finger's peak.
        structure_weight, collision_weight: the structured decode's weights (with a
            ``bone_prior`` only): of a bone longer than its prior's mean, and of two
            joints that share no bone on one place (0: no collision step).

    Shapes (B optional everywhere, J joints, (W, H) the input size):
        encode(keypoints (B, J, 2) input px, visible (B, J) bool) -> k maps (B, J, H/s, W/s)
        decode(k maps (B, J, H/s, W/s), or the model's output dict) -> keypoints (B, J, 2)
        input px, scores (B, J)

    NumPy in, float32 NumPy out; a torch tensor in, a tensor out on its device.

    Decoding brings every map to the finest output's resolution (the input's, for the
    paper's strides), averages them with ``weights``, takes the argmax and refines it to
    sub-pixel (:func:`refine_peaks`); with a ``bone_prior``, it takes one of the averaged
    map's local maxima instead, refined alike. Round trip ``decode(encode(k))`` with the
    defaults: under 0.06 px for points 2 px or more inside the input, under 0.25 px closer
    to its edge (the upsampled coarse maps are clamped there); exact (< 1e-3 px) for one
    scale.
    """

    key = "heatmaps"

    def __init__(
        self,
        input_size: int | tuple[int, int] = 128,
        strides: Sequence[int] = (1, 2, 4, 2, 1),
        sigmas: Sequence[float] | None = None,
        weights: Sequence[float] | None = None,
        upsample: str = "bilinear",
        bone_prior: BonePrior | None = None,
        structure_weight: float = 0.3,
        collision_weight: float = 1.0,
    ):
        self.input_size = w, h = _input_size(input_size)
        self.strides = tuple(int(s) for s in strides)
        if not self.strides or min(self.strides) < 1:
            raise ValueError(f"strides must be >= 1, got {strides}")
        for s in self.strides:
            if w % s or h % s:
                raise ValueError(f"input size {self.input_size} is not divisible by stride {s}")
        k = len(self.strides)
        self.sigmas = tuple(float(v) for v in sigmas) if sigmas is not None else tuple(default_sigma(s) for s in self.strides)
        self.weights = tuple(float(v) for v in weights) if weights is not None else tuple(1.0 / s for s in self.strides)
        if len(self.sigmas) != k or len(self.weights) != k:
            raise ValueError(f"{k} strides need {k} sigmas and {k} weights, got {len(self.sigmas)} and {len(self.weights)}")
        if min(self.sigmas) <= 0 or min(self.weights) < 0 or sum(self.weights) <= 0:
            raise ValueError(f"sigmas must be > 0 and weights >= 0 (not all 0), got {self.sigmas}, {self.weights}")
        if upsample not in ("bilinear", "bicubic"):
            raise ValueError(f"upsample must be bilinear or bicubic, got {upsample!r}")
        self.upsample = upsample
        if bone_prior is not None and not isinstance(bone_prior, BonePrior):
            raise ValueError(f"bone_prior must be a BonePrior or None, got {type(bone_prior).__name__}")
        if structure_weight < 0 or collision_weight < 0:
            raise ValueError(f"structure_weight and collision_weight must be >= 0, got {structure_weight}, {collision_weight}")
        self.bone_prior = bone_prior
        self.structure_weight, self.collision_weight = float(structure_weight), float(collision_weight)

    def __repr__(self) -> str:
        structure = (
            f", bone_prior={self.bone_prior!r}, structure_weight={self.structure_weight}, collision_weight={self.collision_weight}"
            if self.bone_prior is not None
            else ""
        )
        return (
            f"{type(self).__name__}(input_size={self.input_size}, strides={self.strides}, "
            f"sigmas={self.sigmas}, weights={self.weights}, upsample={self.upsample!r}{structure})"
        )

    @property
    def num_scales(self) -> int:
        return len(self.strides)

    @property
    def heatmap_sizes(self) -> list[tuple[int, int]]:
        """(width, height) of each output."""
        w, h = self.input_size
        return [(w // s, h // s) for s in self.strides]

    # ------------------------------------------------------------------------- coordinates
    @staticmethod
    def to_heatmap(points, stride: int):
        """(..., 2) input px -> (..., 2) heatmap px at ``stride``: ``(u + 0.5) / s - 0.5``."""
        return (points + 0.5) / stride - 0.5

    @staticmethod
    def from_heatmap(points, stride: int):
        """(..., 2) heatmap px at ``stride`` -> (..., 2) input px: ``(u_s + 0.5) * s - 0.5``."""
        return (points + 0.5) * stride - 0.5

    # ------------------------------------------------------------------------------ encode
    def encode(self, keypoints, visible=None) -> list:
        """Gaussian targets at every scale.

        Args:
            keypoints: (J, 2) or (B, J, 2) input px (NumPy or torch, float).
            visible: (J,) or (B, J) bool; None: every finite keypoint. Non-finite
                keypoints count as not visible.

        Returns:
            a list of ``num_scales`` maps, (J, H/s, W/s) or (B, J, H/s, W/s), float32 for
            NumPy input, the keypoints' float dtype and device for torch; all-zero maps
            for joints that are not visible.
        """
        kp, vis, torch_in = _check_keypoints(keypoints, visible)
        if torch_in:
            import torch

            kp = torch.where(vis[..., None], kp, torch.zeros((), dtype=kp.dtype, device=kp.device))
            mask = vis.to(kp.dtype)[..., None]  # (B, J, 1)
            xp, arange = torch, lambda n: torch.arange(n, dtype=kp.dtype, device=kp.device)
        else:
            kp = np.where(vis[..., None], kp, 0).astype(np.float32)
            mask = vis.astype(np.float32)[..., None]
            xp, arange = np, lambda n: np.arange(n, dtype=np.float32)
        out, cache = [], {}
        for (w, h), s, sigma in zip(self.heatmap_sizes, self.strides, self.sigmas):
            key = (s, sigma)
            if key in cache:  # a repeated scale (the paper's 64 and 128 come twice): copy
                g = cache[key]
                out.append(g.clone() if torch_in else g.copy())
                continue
            ks = self.to_heatmap(kp, s)  # (B, J, 2) heatmap px
            # separable: exp(-(dx^2 + dy^2) / 2s^2) = gx * gy. Factors under _TINY (beyond
            # 7.4 sigma) become exact zeros: their products would be float32 subnormals,
            # which CPUs multiply some 50 times slower.
            gx = xp.exp(-((arange(w) - ks[..., 0:1]) ** 2) / (2 * sigma**2)) * mask  # (B, J, W)
            gy = xp.exp(-((arange(h) - ks[..., 1:2]) ** 2) / (2 * sigma**2))  # (B, J, H)
            gx, gy = gx * (gx >= _TINY), gy * (gy >= _TINY)
            g = gy[..., :, None] * gx[..., None, :]  # (B, J, H, W)
            cache[key] = g
            out.append(g)
        return out

    # ------------------------------------------------------------------------------ decode
    def _check_heatmaps(self, heatmaps) -> list:
        heatmaps = _entry(heatmaps, self.key)
        if not isinstance(heatmaps, (list, tuple)):
            if self.num_scales == 1:
                heatmaps = [heatmaps]
            else:
                raise ValueError(f"expected a list of {self.num_scales} heatmaps, got {type(heatmaps).__name__}")
        if len(heatmaps) != self.num_scales:
            raise ValueError(f"expected {self.num_scales} heatmaps (strides {self.strides}), got {len(heatmaps)}")
        lead = None
        for i, (hm, (w, h)) in enumerate(zip(heatmaps, self.heatmap_sizes)):
            if hm.ndim not in (3, 4) or tuple(hm.shape[-2:]) != (h, w) or (lead is not None and tuple(hm.shape[:-2]) != lead):
                want = f"({'B, ' if hm.ndim == 4 else ''}J, {h}, {w})"
                raise ValueError(f"heatmap {i} (stride {self.strides[i]}): expected {want}, got {tuple(hm.shape)}")
            lead = tuple(hm.shape[:-2])
        return list(heatmaps)

    def combine(self, heatmaps):
        """The weighted average of the maps, each brought to the resolution of the finest
        one (stride ``s0 = min(strides)``: the input resolution for the paper's strides)
        by :func:`resize_maps` (``upsample``, pixel-centre aware).

        Args:
            heatmaps: ``num_scales`` maps (J, H/s, W/s) or (B, J, H/s, W/s), or the
                model's output dict (its "heatmaps").

        Returns:
            (J, H/s0, W/s0) or (B, J, H/s0, W/s0): float32 NumPy, or a float tensor on the
            maps' device.
        """
        heatmaps = self._check_heatmaps(heatmaps)
        torch_in = _is_torch(heatmaps[0])
        s0 = min(self.strides)
        W, H = self.input_size[0] // s0, self.input_size[1] // s0
        total = None
        wsum = sum(self.weights)
        for hm, s, wt in zip(heatmaps, self.strides, self.weights):
            if wt == 0:
                continue
            if torch_in:
                hm = hm.float()
            else:
                hm = np.asarray(hm, dtype=np.float32)
            if s != s0:
                hm = resize_maps(hm, (W, H), self.upsample)  # (B, J, H, W)
            term = hm * (wt / wsum)
            total = term if total is None else total + term
        return total

    def decode(self, output):
        """Keypoints from heatmaps: the weighted average at the finest resolution
        (:meth:`combine`), its argmax, then a sub-pixel step (:func:`refine_peaks`),
        mapped back to input pixels. With a ``bone_prior``: the local maximum of the
        average that :func:`structured_choice` picks for each joint, refined alike.

        Args:
            output: a list of ``num_scales`` maps, (J, H/s, W/s) or (B, J, H/s, W/s),
                NumPy or torch (e.g. a network's sigmoid outputs, or :meth:`encode`'s), or
                the model's output dict (its "heatmaps").

        Returns:
            keypoints: (J, 2) or (B, J, 2) input px. scores: (J,) or (B, J), the averaged
            map's value at the chosen maximum. float32 NumPy, or tensors on the maps'
            device (the structured decode itself runs in NumPy on the CPU).
        """
        fused = self.combine(output)
        s0 = min(self.strides)
        if self.bone_prior is None:
            kp, scores = refine_peaks(fused)
            return self.from_heatmap(kp, s0), scores
        torch_in = _is_torch(fused)
        maps = fused.detach().cpu().numpy() if torch_in else fused
        single = maps.ndim == 3
        maps = maps[None] if single else maps  # (B, J, H, W)
        values, ys, xs = local_maxima(maps, STRUCTURE_CANDIDATES, PEAK_RADIUS)  # (B, J, K)
        points = self.from_heatmap(refine_at(maps, ys, xs), s0)  # (B, J, K, 2) input px
        choice = structured_choice(values, points, self.bone_prior, self.structure_weight, self.collision_weight)  # (B, J)
        kp = np.take_along_axis(points, choice[..., None, None], axis=2)[:, :, 0].astype(np.float32)  # (B, J, 2)
        scores = np.maximum(np.take_along_axis(values, choice[..., None], axis=2)[..., 0], 0).astype(np.float32)
        if single:
            kp, scores = kp[0], scores[0]
        if torch_in:
            import torch

            return torch.from_numpy(kp).to(fused.device), torch.from_numpy(scores).to(fused.device)
        return kp, scores


class SingleScaleHeatmapCodec(MultiScaleHeatmapCodec):
    """One heatmap (the UNet baseline's): :class:`MultiScaleHeatmapCodec` with one
    stride. ``encode`` still returns a list (of one map) and ``decode`` takes a list or
    the bare map, so every model keeps one interface.

    Args:
        input_size: int or (width, height). stride: the map's downscale factor.
        sigma: in heatmap pixels; default :func:`default_sigma` (2 at stride 1).
        bone_prior, structure_weight, collision_weight: the structured decode, as
            :class:`MultiScaleHeatmapCodec`'s (None: the argmax).
    """

    def __init__(
        self,
        input_size: int | tuple[int, int] = 128,
        stride: int = 1,
        sigma: float | None = None,
        bone_prior: BonePrior | None = None,
        structure_weight: float = 0.3,
        collision_weight: float = 1.0,
    ):
        super().__init__(
            input_size,
            (stride,),
            None if sigma is None else (sigma,),
            (1.0,),
            bone_prior=bone_prior,
            structure_weight=structure_weight,
            collision_weight=collision_weight,
        )


class RegressionCodec(PoseCodec):
    """Keypoints <-> coordinates normalised to the input's extent: the direct-regression
    models' targets and their ``keypoints_norm`` output.

    ``n = (u + 0.5) / W`` and back ``u = n * W - 0.5`` (``v`` likewise with H):
    normalised 0 and 1 are the input's outer edges in OpenCV's pixel convention, so
    decoding gives the numbers of the models' own ``keypoints`` output
    (:func:`gthd.benchmark.models.normalised_to_px`).

    Args:
        input_size: the network input, an int (square) or (width, height), pixels.

    Shapes (B optional everywhere, J joints):
        encode(keypoints (B, J, 2) input px, visible (B, J) bool) -> (B, J, 2) normalised
        decode((B, J, 2) normalised, or the model's output dict) -> keypoints (B, J, 2)
        input px, scores (B, J)

    NumPy in, float32 NumPy out; a torch tensor in, a tensor out on its device.
    """

    key = "keypoints_norm"

    def __init__(self, input_size: int | tuple[int, int] = 128):
        self.input_size = _input_size(input_size)
        if min(self.input_size) < 1:
            raise ValueError(f"input size must be >= 1 px, got {self.input_size}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(input_size={self.input_size})"

    def _extent(self, like):
        """(2,) the input's (width, height), of ``like``'s kind, dtype and device."""
        return like.new_tensor(self.input_size) if _is_torch(like) else np.asarray(self.input_size, np.float32)

    def encode(self, keypoints, visible=None):
        """Regression targets.

        Args:
            keypoints: (J, 2) or (B, J, 2) input px (NumPy or torch, float).
            visible: (J,) or (B, J) bool; None: every finite keypoint. Non-finite
                keypoints count as not visible.

        Returns:
            (J, 2) or (B, J, 2) normalised, ``(u + 0.5) / W``: float32 for NumPy input, the
            keypoints' float dtype and device for torch; 0 for joints that are not visible
            (finite, so that their weight 0 takes them out of a loss).
        """
        kp, vis, torch_in = _check_keypoints(keypoints, visible)
        norm = (kp + 0.5) / self._extent(kp)
        if torch_in:
            import torch

            return torch.where(vis[..., None], norm, torch.zeros((), dtype=norm.dtype, device=norm.device))
        return np.where(vis[..., None], norm, 0).astype(np.float32)

    def decode(self, output):
        """Keypoints from normalised coordinates: ``u = n * W - 0.5``.

        Args:
            output: (J, 2) or (B, J, 2) normalised, NumPy or torch, or the model's output
                dict (its "keypoints_norm").

        Returns:
            keypoints: (J, 2) or (B, J, 2) input px. scores: (J,) or (B, J), all 1 (a
            regression model states no confidence). float32 NumPy, or tensors of the
            input's float dtype on its device.
        """
        norm = _entry(output, self.key)
        if _is_torch(norm):
            import torch

            norm = norm if norm.is_floating_point() else norm.float()
            ones = torch.ones(norm.shape[:-1], dtype=norm.dtype, device=norm.device)
        else:
            norm = np.asarray(norm, dtype=np.float32)
            ones = np.ones(norm.shape[:-1], np.float32)
        if norm.ndim not in (2, 3) or norm.shape[-1] != 2:
            raise ValueError(f"normalised keypoints: expected (J, 2) or (B, J, 2), got {tuple(norm.shape)}")
        return norm * self._extent(norm) - 0.5, ones


# ---------------------------------------------------------------------------- sub-pixel
def refine_peaks(heatmaps, eps: float = 1e-10):
    """Argmax of each map, refined to sub-pixel accuracy by one Newton step on the log of
    the map (DARK, Zhang et al. 2020): ``p = c - H^-1 g`` with the gradient ``g`` and
    Hessian ``H`` of ``log(map)`` by central differences on the 3x3 pixels around ``c``.
    A sampled Gaussian's log is exactly quadratic, so a Gaussian target comes back exactly.
    At the border the 3x3 stencil moves inward (one-sided, still exact for a Gaussian).
    Where the Hessian is not negative definite (a flat or empty map) the argmax stays; the
    step is clipped to 1 px from the argmax per axis.

    Args:
        heatmaps: (J, H, W) or (B, J, H, W), NumPy or torch.

    Returns:
        keypoints: (..., 2) px of the maps (u = column, v = row). scores: (...), the maximum.
        float32 NumPy, or tensors on the input's device.
    """
    torch_in = _is_torch(heatmaps)
    if heatmaps.ndim < 2:
        raise ValueError(f"heatmaps: expected (..., H, W), got {tuple(heatmaps.shape)}")
    H, W = heatmaps.shape[-2:]
    lead = tuple(heatmaps.shape[:-2])
    if torch_in:
        import torch

        flat = heatmaps.float().reshape(lead + (H * W,))  # (B, J, H*W)
        scores, idx = flat.max(dim=-1)
        ys, xs = idx // W, idx % W
        cy, cx = ys.clamp(1, max(H - 2, 1)), xs.clamp(1, max(W - 2, 1))

        def at(dy, dx):  # the log map at (cy + dy, cx + dx), clamped into the map
            i = (cy + dy).clamp(0, H - 1) * W + (cx + dx).clamp(0, W - 1)
            return torch.log(torch.gather(flat, -1, i[..., None])[..., 0].clamp_min(eps))

        xp, where = torch, torch.where
    else:
        flat = np.asarray(heatmaps, dtype=np.float32).reshape(lead + (H * W,))  # (B, J, H*W)
        idx = np.argmax(flat, axis=-1)
        scores = np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
        ys, xs = idx // W, idx % W
        cy, cx = np.clip(ys, 1, max(H - 2, 1)), np.clip(xs, 1, max(W - 2, 1))

        def at(dy, dx):
            i = np.clip(cy + dy, 0, H - 1) * W + np.clip(cx + dx, 0, W - 1)
            return np.log(np.maximum(np.take_along_axis(flat, i[..., None], axis=-1)[..., 0], eps)).astype(np.float64)

        xp, where = np, np.where
    c = at(0, 0)
    l, r, u, d = at(0, -1), at(0, 1), at(-1, 0), at(1, 0)
    gx, gy = (r - l) / 2, (d - u) / 2
    hxx, hyy = r - 2 * c + l, d - 2 * c + u
    hxy = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / 4
    if W < 3:  # too narrow for a stencil along an axis: no step along it
        gx, hxx, hxy = gx * 0, hxx * 0 - 1, hxy * 0
    if H < 3:
        gy, hyy, hxy = gy * 0, hyy * 0 - 1, hxy * 0
    det = hxx * hyy - hxy * hxy
    ok = (hxx < 0) & (det > 0)  # negative definite: a maximum
    safe = where(ok, det, xp.ones_like(det))
    # p - c = -H^-1 g, H^-1 = [[hyy, -hxy], [-hxy, hxx]] / det
    dx = -(hyy * gx - hxy * gy) / safe
    dy = -(hxx * gy - hxy * gx) / safe
    px = where(ok, cx + dx, xs)  # no maximum to refine: the argmax itself
    py = where(ok, cy + dy, ys)
    if torch_in:
        px = torch.minimum(torch.maximum(px, xs - 1.0), xs + 1.0)
        py = torch.minimum(torch.maximum(py, ys - 1.0), ys + 1.0)
        return torch.stack([px, py], dim=-1).float(), scores
    px, py = np.clip(px, xs - 1, xs + 1), np.clip(py, ys - 1, ys + 1)
    return np.stack([px, py], axis=-1).astype(np.float32), scores.astype(np.float32)


# ------------------------------------------------------------------ structured decoding
# The heatmap networks' maps are often multimodal: a joint's map peaks on its own joint
# and on the same joint of another finger (a fingertip map on two or three fingertips).
# The argmax then takes the wrong finger now and then, far from the truth, while the
# right place is one of the map's next local maxima. A structured decode chooses among
# them for all joints together: a bone much longer than a hand's is unlikely, and so are
# two joints that share no bone on one place.

STRUCTURE_CANDIDATES = 5
"""Local maxima of each averaged map the structured decode chooses among (its argmax and
the next four)."""

PEAK_RADIUS = 3
"""A local maximum is the largest value within this many pixels (of the finest map) of it,
so that the candidates of one joint are distinct peaks, not neighbours on one slope."""

COLLISION_RADIUS = 4.0
"""Input px: how near two joints that share no bone must come to pay the collision
penalty (a Gaussian of this sigma)."""

_UNARY_EPS = 1e-3  # a candidate's score is log(value + this): a peak of 0 is unlikely, not impossible
_INVALID = -1e9  # the score of a missing candidate (a map with fewer local maxima than asked)


class BonePrior:
    """How long a hand's bones are, in input pixels: the prior of
    :class:`MultiScaleHeatmapCodec`'s structured decode (:func:`structured_choice`).

    Args:
        mean, sd: each bone's length and its spread, input px. A bone whose mean is NaN
            (never seen: LSMV has no wrist) is not constrained; ``sd`` must be > 0.
        bones: (parent, child) joint pairs that make a tree or a forest (each joint the child
            of at most one bone, no cycle): default :data:`gthd.hand.BONES`, the wrist to
            each finger's base, then the phalanges.

    Make one from training labels with :meth:`from_keypoints`.
    """

    def __init__(self, mean: Sequence[float], sd: Sequence[float], bones: Sequence[tuple[int, int]] = BONES):
        self.bones = tuple((int(p), int(c)) for p, c in bones)
        self.mean = np.asarray(mean, np.float64).reshape(-1)
        self.sd = np.asarray(sd, np.float64).reshape(-1)
        if len(self.mean) != len(self.bones) or len(self.sd) != len(self.bones):
            raise ValueError(f"{len(self.bones)} bones need {len(self.bones)} means and sds, got {len(self.mean)} and {len(self.sd)}")
        if not np.all(self.sd[np.isfinite(self.mean)] > 0):
            raise ValueError(f"bone sds must be > 0, got {self.sd.tolist()}")
        children = [c for _, c in self.bones]
        if min((j for b in self.bones for j in b), default=0) < 0 or len(set(children)) != len(children):
            raise ValueError(f"bones must be (parent, child) pairs of joint indices >= 0, each joint the child of one bone at most: {self.bones}")
        parent = {c: p for p, c in self.bones}
        depth: dict[int, int] = {}

        def depth_of(j: int, seen=()) -> int:
            if j not in depth:
                if j in seen:
                    raise ValueError(f"bones must make a tree, not a cycle: {self.bones}")
                depth[j] = 0 if j not in parent else depth_of(parent[j], seen + (j,)) + 1
            return depth[j]

        # bone indices, deepest child first: a child's own bones come before the bone to its parent
        self.order = tuple(sorted(range(len(self.bones)), key=lambda i: -depth_of(self.bones[i][1])))
        self.num_joints = 1 + max((j for b in self.bones for j in b), default=-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.bones)} bones, mean {np.round(self.mean, 1).tolist()} px)"

    @classmethod
    def from_keypoints(cls, keypoints, visible=None, bones: Sequence[tuple[int, int]] = BONES, min_sd: float = 1.0) -> BonePrior:
        """The mean and standard deviation of each bone's length over labelled poses (e.g.
        the training split's crop keypoints, in the codec's input pixels).

        Args:
            keypoints: (N, J, 2) px. visible: (N, J) bool; None: every finite keypoint.
            min_sd: the least sd, px (a bone seen once, or never changing).
        """
        kp = np.asarray(keypoints, np.float64)
        if kp.ndim != 3 or kp.shape[-1] != 2:
            raise ValueError(f"keypoints: expected (N, J, 2), got {kp.shape}")
        vis = np.isfinite(kp).all(-1) & (True if visible is None else np.asarray(visible, bool))
        mean, sd = [], []
        for p, c in bones:
            ok = vis[:, p] & vis[:, c]
            length = np.linalg.norm(kp[ok, c] - kp[ok, p], axis=-1)
            mean.append(length.mean() if len(length) else np.nan)
            sd.append(max(length.std(), min_sd) if len(length) else 1.0)
        return cls(mean, sd, bones)

    def penalty(self, i: int, length, weight: float):
        """The structured decode's cost of bone ``i`` at ``length`` px: ``weight / 2 * z^2``
        for ``z = (length - mean) / sd > 0``, nothing for a shorter bone (a finger seen
        end-on is foreshortened, not a mistake) or one without a prior."""
        if not np.isfinite(self.mean[i]):
            return np.zeros_like(length)
        z = np.maximum((length - self.mean[i]) / self.sd[i], 0.0)
        return 0.5 * weight * z * z


def local_maxima(maps: np.ndarray, k: int = STRUCTURE_CANDIDATES, radius: int = PEAK_RADIUS):
    """The ``k`` highest local maxima of each map, highest first: pixels no smaller than
    any within ``radius`` px (a square window). The argmax is always among them.

    Args:
        maps: (..., H, W) NumPy.

    Returns:
        values (..., k) float32 (-1 where a map has fewer local maxima), ys, xs (..., k)
        int64 pixel rows and columns (those of the highest maximum where missing).
    """
    maps = np.asarray(maps, np.float32)
    lead, (H, W) = maps.shape[:-2], maps.shape[-2:]
    flat = maps.reshape(-1, H * W)  # (M, H*W)
    # the window's maximum: OpenCV's dilation, several times faster than scipy's
    # maximum_filter and equal to it (a replicated border adds no new value to a maximum)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    window_max = np.stack([cv2.dilate(m, kernel, borderType=cv2.BORDER_REPLICATE) for m in maps.reshape(-1, H, W)])
    peak = (maps.reshape(-1, H, W) >= window_max).reshape(flat.shape)
    m, pix = np.nonzero(peak)  # every map has one at least: its argmax
    v = flat[m, pix]
    order = np.lexsort((-v, m))  # by map, then highest first (stable: ties as argmax breaks them)
    m, pix, v = m[order], pix[order], v[order]
    rank = np.arange(len(m)) - np.searchsorted(m, np.arange(len(flat)))[m]
    keep = rank < k
    idx = np.full((len(flat), k), -1, np.int64)
    values = np.full((len(flat), k), -1.0, np.float32)
    idx[m[keep], rank[keep]], values[m[keep], rank[keep]] = pix[keep], v[keep]
    idx = np.where(idx < 0, idx[:, :1], idx).reshape(lead + (k,))
    return values.reshape(lead + (k,)), idx // W, idx % W


def refine_at(maps: np.ndarray, ys, xs, eps: float = 1e-10) -> np.ndarray:
    """:func:`refine_peaks`' sub-pixel step around given pixels instead of the argmax:
    one Newton step on the log of the map over the 3x3 pixels around each, clipped to 1 px
    per axis; the pixel itself where the map is not peaked there.

    Args:
        maps: (B, J, H, W) NumPy. ys, xs: (B, J, K) int pixel rows and columns.

    Returns:
        (B, J, K, 2) float64 px of the maps (u = column, v = row).
    """
    maps = np.asarray(maps, np.float32)
    B, J, H, W = maps.shape
    flat = maps.reshape(B, J, H * W)
    ys, xs = np.asarray(ys), np.asarray(xs)
    cy, cx = np.clip(ys, 1, max(H - 2, 1)), np.clip(xs, 1, max(W - 2, 1))

    def at(dy, dx):
        i = np.clip(cy + dy, 0, H - 1) * W + np.clip(cx + dx, 0, W - 1)
        return np.log(np.maximum(np.take_along_axis(flat, i, axis=-1), eps)).astype(np.float64)

    c = at(0, 0)
    l, r, u, d = at(0, -1), at(0, 1), at(-1, 0), at(1, 0)
    gx, gy = (r - l) / 2, (d - u) / 2
    hxx, hyy = r - 2 * c + l, d - 2 * c + u
    hxy = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / 4
    if W < 3:
        gx, hxx, hxy = gx * 0, hxx * 0 - 1, hxy * 0
    if H < 3:
        gy, hyy, hxy = gy * 0, hyy * 0 - 1, hxy * 0
    det = hxx * hyy - hxy * hxy
    ok = (hxx < 0) & (det > 0)
    safe = np.where(ok, det, 1.0)
    px = np.where(ok, cx - (hyy * gx - hxy * gy) / safe, xs)
    py = np.where(ok, cy - (hxx * gy - hxy * gx) / safe, ys)
    return np.stack([np.clip(px, xs - 1, xs + 1), np.clip(py, ys - 1, ys + 1)], axis=-1)


def structured_choice(
    values: np.ndarray,
    points: np.ndarray,
    prior: BonePrior,
    structure_weight: float = 0.3,
    collision_weight: float = 1.0,
    sweeps: int = 3,
) -> np.ndarray:
    """Which candidate each joint takes: the structured decode.

    Each candidate ``k`` of joint ``j`` scores ``log(value + 1e-3)``; each bone costs
    :meth:`BonePrior.penalty` (``structure_weight``: only a bone longer than the prior's
    mean). The best sum over the prior's tree is exact (max-sum dynamic programming from
    the fingertips to the wrist, then back). Then, with ``collision_weight`` > 0, up to
    ``sweeps`` rounds of iterated conditional modes add a cost of ``collision_weight *
    exp(-d^2 / (2 * COLLISION_RADIUS^2))`` for every other joint ``d`` px away that shares
    no bone with ``j`` (two fingertips on one fingertip's peak).

    Chosen on the demo run's validation split (weights 0.3 and 1, 5 candidates): MJPE 11.46 -> 9.76 px for "ours" and 9.89 -> 7.64 for "ours w/o
    skeleton" on val, 12.69 -> 11.87 and 11.14 -> 9.68 on test, with a lower median and a
    higher PCK too.

    Args:
        values: (B, J, K) each candidate's map value (< 0: no candidate).
        points: (B, J, K, 2) px, the candidates (the same pixels as ``prior``).
        prior: its bones index the J joints.

    Returns:
        (B, J) int64 candidate index per joint.
    """
    values = np.asarray(values, np.float64)
    points = np.asarray(points, np.float64)
    B, J, K = values.shape
    if prior.num_joints > J:
        raise ValueError(f"the bone prior joins joints up to {prior.num_joints - 1}, but the maps have {J} joints")
    unary = np.where(values >= 0, np.log(np.maximum(values, 0) + _UNARY_EPS), _INVALID)  # (B, J, K)
    rows = np.arange(B)
    # max-sum over the tree: belief[j] = unary[j] + the best of each child's subtree
    belief, best = unary.copy(), {}
    for i in prior.order:
        p, c = prior.bones[i]
        length = np.linalg.norm(points[:, c, :, None] - points[:, p, None, :], axis=-1)  # (B, Kc, Kp)
        total = belief[:, c, :, None] - prior.penalty(i, length, structure_weight)
        best[i] = total.argmax(axis=1)  # (B, Kp) the child's best candidate for each of the parent's
        belief[:, p] += total.max(axis=1)
    choice = belief.argmax(axis=-1)  # right for the roots (and joints in no bone) ...
    for i in reversed(prior.order):  # ... and, from them down, for every child
        p, c = prior.bones[i]
        choice[:, c] = best[i][rows, choice[:, p]]
    if collision_weight <= 0:
        return choice
    # the collision penalty joins joints across the tree: iterated conditional modes
    neighbours: list[list[tuple[int, int]]] = [[] for _ in range(J)]
    apart = ~np.eye(J, dtype=bool)  # the joint pairs that share no bone
    for i, (p, c) in enumerate(prior.bones):
        neighbours[c].append((p, i))
        neighbours[p].append((c, i))
        apart[p, c] = apart[c, p] = False
    for _ in range(sweeps):
        changed = False
        for j in range(J):
            now = np.take_along_axis(points, choice[..., None, None], axis=2)[:, :, 0]  # (B, J, 2)
            score = unary[:, j].copy()  # (B, K)
            for o, i in neighbours[j]:
                score -= prior.penalty(i, np.linalg.norm(points[:, j] - now[:, o, None], axis=-1), structure_weight)
            d = np.linalg.norm(points[:, j, :, None] - now[:, None, apart[j]], axis=-1)  # (B, K, others)
            score -= collision_weight * np.exp(-0.5 * (d / COLLISION_RADIUS) ** 2).sum(-1)
            new = score.argmax(axis=-1)
            changed |= bool((new != choice[:, j]).any())
            choice[:, j] = new
        if not changed:
            break
    return choice


# ------------------------------------------------------------------- skeleton masks
# A predicted skeleton mask decodes into the detector's two answers: a Hand/NoHand score
# (its foreground pixels) and the hand's box (the paper's region growing). Evaluation and
# inference both decode through here.

HAND_REGION_SHARE = 0.2
"""The hand's region in a predicted skeleton: the connected components of at least this
share of the largest (:func:`boxes_from_masks`), so that a finger the threshold cut off
still counts and small distractor blobs do not."""


def _masks(masks) -> np.ndarray:
    """(N, H, W) float from (N, H, W) or (N, 1, H, W) (a network's one-channel output)."""
    m = masks.detach().cpu().numpy() if hasattr(masks, "detach") else np.asarray(masks)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]  # (N, H, W)
    if m.ndim != 3:
        raise ValueError(f"masks: expected (N, H, W) or (N, 1, H, W), got {tuple(np.shape(m))}")
    return m


def foreground_pixels(masks, thr: float = 0.5) -> np.ndarray:
    """Number of pixels above ``thr`` (strict) in each mask: the Hand/NoHand score of
    a predicted skeleton (paper, section IV-B; compare with :func:`gthd.benchmark.metrics.best_threshold`).

    Args:
        masks: (N, H, W) or (N, 1, H, W), e.g. sigmoid outputs in [0, 1].

    Returns:
        (N,) int64 pixel counts.
    """
    m = _masks(masks)
    return (m > thr).reshape(len(m), -1).sum(axis=1).astype(np.int64)


def boxes_from_masks(masks, thr: float = 0.5, min_share: float = 1.0) -> np.ndarray:
    """Hand boxes from (predicted) skeleton masks: the paper's post-processing
    (section II): foreground pixels, then connected regions ("region growing"), then
    the horizontal and vertical bounds of the hand's region.

    The foreground is ``mask > thr``; regions are 8-connected (a thin diagonal skeleton
    line stays one region). The hand's region is the union of the components whose
    pixel count is at least ``min_share`` x that of the largest: the default 1.0 keeps
    only the largest (and any tied with it), rejecting small distractor blobs; a lower
    share, e.g. 0.2, also keeps a finger the threshold cut off.

    The box is in the mask's pixels (OpenCV convention): if the region's extreme pixels
    are columns ``c0..c1`` and rows ``r0..r1``, the box is
    ``(c0 - 0.5, r0 - 0.5, c1 + 0.5, r1 + 0.5)``, the edges of those pixels, so a
    region one pixel wide has width 1. A mask that is a crop or a patch of a frame gives
    a box in that crop's pixels: add its origin (or map it) to get frame pixels.

    Args:
        masks: (N, H, W) or (N, 1, H, W). thr: foreground threshold.
        min_share: in (0, 1].

    Returns:
        (N, 4) float64 xyxy; a row of NaN where the mask has no foreground pixel.
    """
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share: expected a share in (0, 1], got {min_share}")
    m = _masks(masks)
    out = np.full((len(m), 4), np.nan)
    structure = np.ones((3, 3), dtype=bool)  # 8-connectivity
    for i, mi in enumerate(m):
        lab, n = ndimage.label(mi > thr, structure=structure)  # (H, W) int
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]  # (n,) pixels per component
        keep = sizes >= min_share * sizes.max()
        slices = [s for s, k in zip(ndimage.find_objects(lab), keep) if k]
        r0 = min(s[0].start for s in slices)
        r1 = max(s[0].stop for s in slices) - 1
        c0 = min(s[1].start for s in slices)
        c1 = max(s[1].stop for s in slices) - 1
        out[i] = (c0 - 0.5, r0 - 0.5, c1 + 0.5, r1 + 0.5)
    return out


class SkeletonMaskCodec:
    """Decodes predicted skeleton masks (N, H, W) or (N, 1, H, W), sigmoid outputs, into
    the detector's answers.

    Args:
        box_margin: the box grown by this share of its larger side on every side (the
            dataset's boxes are the keypoints' bounds grown so: the two are comparable).
        thr: a pixel's foreground threshold.
    """

    key = "mask"

    def __init__(self, box_margin: float = 0.05, thr: float = 0.5):
        self.box_margin, self.thr = float(box_margin), float(thr)

    def boxes(self, masks) -> np.ndarray:
        """(N, 4) xyxy mask px, NaN where the mask is empty."""
        boxes = boxes_from_masks(masks, self.thr, min_share=HAND_REGION_SHARE)
        m = self.box_margin * np.max(boxes[:, 2:] - boxes[:, :2], axis=1, keepdims=True)  # (N, 1)
        return boxes + np.concatenate([-m, -m, m, m], axis=1)

    def decode(self, output) -> tuple[np.ndarray, np.ndarray]:
        """(boxes (N, 4) xyxy mask px, NaN where none; scores (N,) foreground pixels) of
        masks, or of the model's output dict (its "mask")."""
        masks = _entry(output, self.key)
        return self.boxes(masks), foreground_pixels(masks, self.thr)
