"""Codecs (gthd.dataset.codec): the heatmap codecs' pixel-centre convention at every
stride, the round trip decode(encode(k)) in NumPy and torch, invisible joints, known maps;
the structured decode (a bone prior against a wrong finger's peak); the regression codec
(round trip, the models' own numbers); one decode signature."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gthd.dataset.codec import (
    BonePrior,
    MultiScaleHeatmapCodec,
    RegressionCodec,
    SingleScaleHeatmapCodec,
    SkeletonMaskCodec,
    boxes_from_masks,
    default_sigma,
    foreground_pixels,
    local_maxima,
    refine_at,
    refine_peaks,
    resize_maps,
    resize_matrix,
)
from gthd.hand import BONES, finger_joints

J = 21


def _points(rng, shape, lo=-0.5, hi=127.5):
    return rng.uniform(lo, hi, shape + (2,)).astype(np.float32)


def _errors(out, kp):
    return np.hypot(*(np.asarray(out, np.float64) - kp).reshape(-1, 2).T)


def test_defaults_are_the_papers():
    c = MultiScaleHeatmapCodec()
    assert c.strides == (1, 2, 4, 2, 1)
    assert c.heatmap_sizes == [(128, 128), (64, 64), (32, 32), (64, 64), (128, 128)]
    assert c.weights == (1.0, 0.5, 0.25, 0.5, 1.0)  # the paper's deltas
    assert c.sigmas == (2.0, 1.0, 1.0, 1.0, 2.0)
    assert [default_sigma(s) for s in (1, 2, 4, 8)] == [2.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_peak_follows_the_pixel_centre_rule(stride):
    c = MultiScaleHeatmapCodec(strides=(stride,))
    sigma = c.sigmas[0]
    # u_s = (u + 0.5) / s - 0.5 lands on heatmap pixel (10, 5): the map is exactly 1 there
    u = np.array([[(10 + 0.5) * stride - 0.5, (5 + 0.5) * stride - 0.5]], np.float32)
    (hm,) = c.encode(u, np.array([True]))
    assert hm.shape == (1, 128 // stride, 128 // stride) and hm.dtype == np.float32
    assert hm[0, 5, 10] == pytest.approx(1.0, abs=1e-6)
    assert np.unravel_index(np.argmax(hm[0]), hm[0].shape) == (5, 10)
    # unnormalised Gaussian with sigma in heatmap pixels
    assert hm[0, 5, 11] == pytest.approx(np.exp(-1 / (2 * sigma**2)), rel=1e-5)
    assert hm[0, 5, 9] == pytest.approx(hm[0, 5, 11], rel=1e-6)
    assert hm[0, 7, 10] == pytest.approx(np.exp(-4 / (2 * sigma**2)), rel=1e-5)
    # a sub-pixel point: the map's own sub-pixel peak is at (u + 0.5) / s - 0.5
    rng = np.random.default_rng(stride)
    kp = _points(rng, (J,), 8, 120)
    (hm,) = c.encode(kp, np.ones(J, bool))
    peak, score = refine_peaks(hm)
    np.testing.assert_allclose(peak, (kp + 0.5) / stride - 0.5, atol=2e-3)
    np.testing.assert_allclose(c.to_heatmap(kp, stride), (kp + 0.5) / stride - 0.5)
    np.testing.assert_allclose(c.from_heatmap(c.to_heatmap(kp, stride), stride), kp, atol=1e-5)
    assert np.all(score <= 1.0) and np.all(score > np.exp(-1 / (4 * sigma**2)))


def test_round_trip_numpy():
    rng = np.random.default_rng(0)
    c = MultiScaleHeatmapCodec()
    kp = _points(rng, (J,), 2, 125)
    hms = c.encode(kp, np.ones(J, bool))
    assert [h.shape for h in hms] == [(J, 128, 128), (J, 64, 64), (J, 32, 32), (J, 64, 64), (J, 128, 128)]
    out, scores = c.decode(hms)
    assert out.shape == (J, 2) and out.dtype == np.float32 and scores.shape == (J,)
    assert _errors(out, kp).max() < 0.1
    assert np.all(scores > 0.8) and np.all(scores <= 1.0)


def test_round_trip_batched_including_borders():
    rng = np.random.default_rng(1)
    c = MultiScaleHeatmapCodec()
    kp = _points(rng, (64, J))
    # put some within 1 px of each edge (the image spans [-0.5, 127.5])
    kp[:8, :, 0] = rng.uniform(-0.5, 0.5, (8, J))
    kp[8:16, :, 1] = rng.uniform(126.5, 127.5, (8, J))
    out, scores = c.decode(c.encode(kp))
    assert out.shape == (64, J, 2) and scores.shape == (64, J)
    err = _errors(out, kp).reshape(64, J)
    interior = np.all((kp > 1.5) & (kp < 125.5), axis=-1)
    assert err[interior].max() < 0.1
    assert err.max() < 0.3  # the clamped upsampling of the coarse maps at the edge (documented)


def test_round_trip_torch_batched_matches_numpy():
    rng = np.random.default_rng(2)
    c = MultiScaleHeatmapCodec()
    kp = _points(rng, (8, J), 2, 125)
    vis = rng.random((8, J)) > 0.2
    hms_t = c.encode(torch.from_numpy(kp), torch.from_numpy(vis))
    hms_n = c.encode(kp, vis)
    for t, n in zip(hms_t, hms_n):
        assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
        np.testing.assert_allclose(t.numpy(), n, atol=1e-6)
    out, scores = c.decode(hms_t)
    assert isinstance(out, torch.Tensor) and out.shape == (8, J, 2) and scores.shape == (8, J)
    assert _errors(out.numpy()[vis], kp[vis]).max() < 0.1
    np.testing.assert_allclose(out.numpy(), c.decode(hms_n)[0], atol=1e-3)
    assert torch.all(scores[torch.from_numpy(~vis)] == 0)
    # float64 keypoints stay float64 in torch; repeated scales are copies, not views
    hms64 = c.encode(torch.from_numpy(kp.astype(np.float64)))
    assert hms64[0].dtype == torch.float64
    hms64[0][:] = 0
    assert hms64[4].abs().sum() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_torch_on_cuda():
    rng = np.random.default_rng(3)
    c = MultiScaleHeatmapCodec()
    kp = torch.from_numpy(_points(rng, (4, J), 2, 125)).cuda()
    hms = c.encode(kp)
    assert all(h.device == kp.device for h in hms)
    out, _ = c.decode(hms)
    assert out.device == kp.device
    assert (out - kp).norm(dim=-1).max().item() < 0.1


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_single_scale_round_trip_is_exact(stride):
    rng = np.random.default_rng(stride)
    c = SingleScaleHeatmapCodec(stride=stride)
    assert c.strides == (stride,) and c.num_scales == 1
    kp = _points(rng, (16, J))  # everywhere, borders included
    hms = c.encode(kp)
    assert len(hms) == 1 and hms[0].shape == (16, J, 128 // stride, 128 // stride)
    out, _ = c.decode(hms)
    assert _errors(out, kp).max() < 2e-3 * stride
    out2, _ = c.decode(hms[0])  # the bare map is accepted too
    np.testing.assert_array_equal(out, out2)


def test_invisible_joints_are_zero_with_zero_weight():
    c = MultiScaleHeatmapCodec()
    kp = np.full((J, 2), 64.0, np.float32)
    kp[3] = np.nan  # not finite: not visible even if said so
    vis = np.ones(J, bool)
    vis[5] = False
    hms = c.encode(kp, vis)
    for h in hms:
        assert np.all(h[3] == 0) and np.all(h[5] == 0) and not np.isnan(h).any()
        assert h[0].max() > 0.5
    w = c.target_weights(vis)
    assert w.dtype == np.float32 and w.shape == (J,) and w[5] == 0 and w[0] == 1
    wt = c.target_weights(torch.from_numpy(vis))
    assert wt.dtype == torch.float32 and wt[5] == 0
    # visible=None: every finite keypoint
    assert np.all(c.encode(kp)[0][3] == 0) and c.encode(kp)[0][5].max() > 0.5
    # a zero map decodes without NaN, with score 0
    out, scores = c.decode(hms)
    assert np.isfinite(out).all() and scores[5] == 0


def test_decode_known_maps():
    # a spike on a stride-4 map at heatmap pixel (10, 5) is input px ((10 + .5) * 4 - .5, ...)
    c4 = MultiScaleHeatmapCodec(strides=(4,))
    hm = np.zeros((2, 32, 32), np.float32)
    hm[0, 5, 10] = 0.7
    hm[1, 0, 31] = 0.3
    out, scores = c4.decode([hm])
    np.testing.assert_allclose(out, [[41.5, 21.5], [125.5, 1.5]])
    np.testing.assert_allclose(scores, [0.7, 0.3])
    # a Gaussian of another width, drawn here by formula: its centre comes back exactly
    c1 = SingleScaleHeatmapCodec()
    yy, xx = np.mgrid[0:128, 0:128]
    g = np.exp(-((xx - 40.3) ** 2 + (yy - 70.8) ** 2) / (2 * 3.0**2))[None].astype(np.float32)
    out, scores = c1.decode([g])
    np.testing.assert_allclose(out, [[40.3, 70.8]], atol=1e-3)
    # an anisotropic, rotated Gaussian (the 2-D Newton step uses the cross term)
    a, b = (xx - 60.4) * 0.8 + (yy - 50.7) * 0.6, -(xx - 60.4) * 0.6 + (yy - 50.7) * 0.8
    g = np.exp(-(a**2 / (2 * 4.0**2) + b**2 / (2 * 1.5**2)))[None].astype(np.float32)
    out, _ = c1.decode(g)
    np.testing.assert_allclose(out, [[60.4, 50.7]], atol=1e-2)
    # the weighted average: two scales voting for different places, the heavier one wins
    c = MultiScaleHeatmapCodec(strides=(1, 2), weights=(1.0, 3.0))
    fine = np.zeros((1, 128, 128), np.float32)
    fine[0, 10, 10] = 1.0
    coarse = np.zeros((1, 64, 64), np.float32)
    coarse[0, 40, 40] = 1.0
    out, _ = c.decode([fine, coarse])
    assert np.all(np.abs(out[0] - 80.5) <= 1.0)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_resize_is_pixel_centre_aware_and_agrees(mode):
    x = torch.rand(2, 3, 16, 32)
    ref = F.interpolate(x, size=(64, 128), mode=mode, align_corners=False)
    np.testing.assert_allclose(resize_maps(x, (128, 64), mode).numpy(), ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(resize_maps(x.numpy(), (128, 64), mode), ref.numpy(), atol=1e-5)
    My, Mx = resize_matrix(16, 64, mode), resize_matrix(32, 128, mode)
    np.testing.assert_allclose(My @ x.numpy() @ Mx.T, ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(My.sum(1), 1.0)


def test_shapes_are_checked():
    c = MultiScaleHeatmapCodec()
    with pytest.raises(ValueError, match=r"expected \(J, 2\) or \(B, J, 2\)"):
        c.encode(np.zeros((21, 3)))
    with pytest.raises(ValueError, match="visible"):
        c.encode(np.zeros((21, 2)), np.ones(20, bool))
    hms = c.encode(np.zeros((21, 2)))
    with pytest.raises(ValueError, match="expected 5 heatmaps"):
        c.decode(hms[:4])
    with pytest.raises(ValueError, match=r"heatmap 2 \(stride 4\): expected \(J, 32, 32\)"):
        c.decode(hms[:2] + [hms[1]] + hms[3:])
    with pytest.raises(ValueError, match="divisible"):
        MultiScaleHeatmapCodec(input_size=100, strides=(1, 8))
    with pytest.raises(ValueError, match="sigmas"):
        MultiScaleHeatmapCodec(sigmas=(2.0,))
    # a non-square input
    c = MultiScaleHeatmapCodec(input_size=(96, 64), strides=(1, 2))
    assert c.heatmap_sizes == [(96, 64), (48, 32)]
    kp = np.array([[80.3, 20.6], [10.2, 50.1]], np.float32)
    hms = c.encode(kp)
    assert hms[0].shape == (2, 64, 96) and hms[1].shape == (2, 32, 48)
    assert _errors(c.decode(hms)[0], kp).max() < 0.1


# ------------------------------------------------------------------ structured decode
def _hand(centre=(64.0, 100.0), up=-90.0) -> np.ndarray:
    """(21, 2) px: an open hand, fingers fanned 18 degrees apart, bones 16-36 px long."""
    kp = np.zeros((J, 2))
    kp[0] = centre
    for f, finger in enumerate(("THUMB", "INDEX", "MIDDLE", "RING", "PINKY")):
        a = np.radians(up + (f - 2) * 18)
        d = np.array([np.cos(a), np.sin(a)])
        pos = kp[0].copy()
        for k, (j, length) in enumerate(zip(finger_joints(finger), (36, 18, 14, 12))):
            pos = pos + d * (length if k else (20 if f == 0 else length))
            kp[j] = pos
    return kp.astype(np.float32)


def _prior(rng, sd: float | None = None) -> BonePrior:
    """Bone lengths of jittered copies of :func:`_hand` (their spread, or ``sd`` px)."""
    prior = BonePrior.from_keypoints(_hand()[None] + rng.normal(0, 1.0, (200, J, 2)))
    return prior if sd is None else BonePrior(prior.mean, np.full(len(prior.bones), sd))


def test_bone_prior_from_keypoints_and_checks():
    kp = np.stack([_hand(), _hand(up=-60.0)])  # a rotated hand: the same lengths
    vis = np.ones((2, J), bool)
    vis[:, 0] = False  # no wrist (LSMV): its five bones stay unconstrained
    prior = BonePrior.from_keypoints(kp, vis)
    assert prior.bones == BONES and prior.num_joints == J
    i = prior.bones.index((5, 6))  # INDEX_MCP -> INDEX_PIP
    assert prior.mean[i] == pytest.approx(18.0, abs=1e-3) and prior.sd[i] == 1.0  # min_sd
    wrist = [k for k, (p, _) in enumerate(prior.bones) if p == 0]
    assert np.isnan(prior.mean[wrist]).all()
    np.testing.assert_array_equal(prior.penalty(wrist[0], np.array([500.0]), 1.0), [0.0])
    np.testing.assert_allclose(prior.penalty(i, np.array([10.0, 18.0, 20.0]), 0.5), [0.0, 0.0, 1.0], atol=1e-5)  # only longer
    # children come before their parents' bones
    seen = set()
    for k in prior.order:
        p, c = prior.bones[k]
        assert all(pp != c or kk in seen for kk, (pp, _) in enumerate(prior.bones))
        seen.add(k)
    with pytest.raises(ValueError, match="cycle"):
        BonePrior([1.0, 1.0], [1.0, 1.0], bones=[(0, 1), (1, 0)])
    with pytest.raises(ValueError, match="child of one bone"):
        BonePrior([1.0, 1.0], [1.0, 1.0], bones=[(0, 2), (1, 2)])
    with pytest.raises(ValueError, match="means and sds"):
        BonePrior([1.0], [1.0, 1.0], bones=[(0, 1), (1, 2)])
    with pytest.raises(ValueError, match="sds must be > 0"):
        BonePrior([1.0], [0.0], bones=[(0, 1)])
    with pytest.raises(ValueError, match="BonePrior"):
        MultiScaleHeatmapCodec(bone_prior={"bones": BONES})
    with pytest.raises(ValueError, match="joints up to 20"):
        MultiScaleHeatmapCodec(strides=(1,), bone_prior=prior).decode([np.zeros((5, 128, 128), np.float32)])


def test_local_maxima_are_scipys_maximum_filter_peaks():
    """Every pixel no smaller than its window, as scipy's maximum_filter (nearest border)
    finds them, on noisy maps with plateaus and peaks on the border."""
    from scipy import ndimage

    rng = np.random.default_rng(4)
    maps = np.round(rng.random((2, 21, 32, 40)), 1).astype(np.float32)  # plateaus: ties
    maps[:, :, 0, :] += 0.5  # maxima on the border
    for radius in (1, 2, 4):
        values, ys, xs = local_maxima(maps, k=400, radius=radius)
        peak = maps >= ndimage.maximum_filter(maps, size=(1, 1, 2 * radius + 1, 2 * radius + 1), mode="nearest")
        for b, j in np.ndindex(2, 21):
            found = {(int(y), int(x)) for v, y, x in zip(values[b, j], ys[b, j], xs[b, j]) if v >= 0}
            assert found == set(zip(*np.nonzero(peak[b, j]))), (radius, b, j)


def test_local_maxima_and_refine_at():
    maps = np.zeros((1, 2, 32, 32), np.float32)
    maps[0, 0, 5, 6], maps[0, 0, 20, 25], maps[0, 0, 6, 7] = 0.9, 0.5, 0.8  # (6, 7) sits next to the top one
    maps[0, 1] = 0.1  # flat: every pixel ties; the argmax (the first) comes first
    values, ys, xs = local_maxima(maps, k=3, radius=2)
    np.testing.assert_allclose(values[0, 0], [0.9, 0.5, 0.0])  # then a flat zero's first pixel
    assert (ys[0, 0, :2].tolist(), xs[0, 0, :2].tolist()) == ([5, 20], [6, 25])
    assert (ys[0, 1, 0], xs[0, 1, 0]) == (0, 0)
    values, ys, xs = local_maxima(maps[:, :1, 3:9, 3:9], k=3, radius=3)  # one peak only: the rest missing
    assert values[0, 0].tolist() == [pytest.approx(0.9), -1.0, -1.0] and ys[0, 0].tolist() == [2, 2, 2] and xs[0, 0].tolist() == [3, 3, 3]
    # refine_at at the argmax is refine_peaks
    rng = np.random.default_rng(7)
    c = SingleScaleHeatmapCodec(64, sigma=2.5)
    (hm,) = c.encode(_points(rng, (3, 4), 3, 60))  # (3, 4, 64, 64)
    hm = hm + 0.05 * rng.random(hm.shape).astype(np.float32)
    kp, _ = refine_peaks(hm)
    flat = hm.reshape(3, 4, -1).argmax(-1)
    np.testing.assert_allclose(refine_at(hm, (flat // 64)[..., None], (flat % 64)[..., None])[:, :, 0], kp, atol=1e-4)


def test_structured_decode_round_trip_numpy_and_torch():
    """With a bone prior, clean targets come back as exactly as without one."""
    rng = np.random.default_rng(8)
    prior = _prior(rng)
    c = MultiScaleHeatmapCodec(bone_prior=prior)
    plain = MultiScaleHeatmapCodec()
    kp = np.stack([_hand(), _hand((60.0, 70.0), up=-45.0)]) + rng.normal(0, 0.5, (2, J, 2)).astype(np.float32)
    hms = c.encode(kp)
    out, scores = c.decode(hms)
    assert out.shape == (2, J, 2) and out.dtype == np.float32 and scores.dtype == np.float32
    np.testing.assert_allclose(out, plain.decode(hms)[0], atol=1e-4)
    np.testing.assert_allclose(scores, plain.decode(hms)[1], atol=1e-6)
    one, one_scores = c.decode([h[1] for h in hms])  # unbatched
    assert one.shape == (J, 2) and one_scores.shape == (J,)
    np.testing.assert_allclose(one, out[1], atol=1e-5)
    out_t, scores_t = c.decode([torch.from_numpy(h) for h in hms])
    assert isinstance(out_t, torch.Tensor) and isinstance(scores_t, torch.Tensor) and out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t.numpy(), out, atol=1e-4)
    assert "bone_prior" in repr(c) and "bone_prior" not in repr(plain)


def test_structured_decode_skips_a_spurious_peak():
    """A joint's map with a stronger peak on another finger, or far off: the paper's argmax
    takes it, the structured decode the joint's own weaker peak."""
    rng = np.random.default_rng(9)
    prior = _prior(rng)
    kp = _hand()
    codec = MultiScaleHeatmapCodec(strides=(1,), sigmas=(2.0,), weights=(1.0,), bone_prior=prior)
    plain = MultiScaleHeatmapCodec(strides=(1,), sigmas=(2.0,), weights=(1.0,))
    loose = _prior(rng, sd=10.0)  # bones that vary a lot: 26 px for a 12 px bone is not unlikely enough
    no_collision = MultiScaleHeatmapCodec(strides=(1,), sigmas=(2.0,), weights=(1.0,), bone_prior=loose, collision_weight=0.0)
    collision = MultiScaleHeatmapCodec(strides=(1,), sigmas=(2.0,), weights=(1.0,), bone_prior=loose)
    (hm,) = plain.encode(kp)
    index_tip, middle_tip = finger_joints("INDEX")[3], finger_joints("MIDDLE")[3]
    far = hm.copy()  # the index tip's map: its own peak 0.6, a stronger one 45 px away
    (spurious,) = plain.encode(kp[index_tip : index_tip + 1] + np.float32([45.0, 10.0]))
    far[index_tip] = 0.6 * hm[index_tip] + spurious[0]
    swap = hm.copy()  # ... or on the middle fingertip, where the middle tip's map peaks too
    swap[index_tip] = 0.6 * hm[index_tip] + hm[middle_tip]
    for maps in (far, swap):
        assert _errors(plain.decode([maps])[0][index_tip], kp[index_tip]).max() > 10  # the argmax is fooled
        out, scores = codec.decode([maps])
        assert _errors(out, kp).max() < 0.1
        assert scores[index_tip] == pytest.approx(0.6, abs=0.01)
    # with a loose prior: far off, the bone alone tells; on the next finger, the collision
    # with that finger's own tip
    assert _errors(no_collision.decode([far])[0], kp).max() < 0.1
    assert _errors(no_collision.decode([swap])[0][index_tip], kp[index_tip]).max() > 10
    assert _errors(collision.decode([swap])[0], kp).max() < 0.1


# ------------------------------------------------------------------------- regression
def test_regression_round_trip_numpy_and_torch():
    rng = np.random.default_rng(7)
    c = RegressionCodec((96, 64))  # (width, height): a non-square input
    kp = rng.uniform(-0.5, 95.5, (3, J, 2)).astype(np.float32)
    kp[..., 1] *= 64 / 96
    norm = c.encode(kp)
    assert norm.shape == (3, J, 2) and norm.dtype == np.float32
    np.testing.assert_allclose(norm, (kp + 0.5) / np.array([96, 64], np.float32), rtol=1e-6)
    assert norm.min() >= 0 and norm.max() <= 1  # 0 and 1: the input's outer edges
    out, scores = c.decode(norm)
    assert out.dtype == np.float32 and scores.shape == (3, J) and np.all(scores == 1)
    np.testing.assert_allclose(out, kp, atol=1e-4)
    # torch: a tensor in, a tensor out, the same numbers
    kp_t = torch.from_numpy(kp).double()
    norm_t = c.encode(kp_t)
    assert isinstance(norm_t, torch.Tensor) and norm_t.dtype == torch.float64
    out_t, scores_t = c.decode(norm_t)
    assert out_t.dtype == scores_t.dtype == torch.float64 and torch.all(scores_t == 1)
    np.testing.assert_allclose(out_t.numpy(), kp, atol=1e-4)
    # unbatched, and the edges map exactly: n = 0 is u = -0.5, n = 1 is u = W - 0.5
    edges, _ = c.decode(np.array([[0.0, 0.0], [1.0, 1.0]], np.float32))
    np.testing.assert_array_equal(edges, [[-0.5, -0.5], [95.5, 63.5]])


def test_regression_invisible_joints_are_zero_with_zero_weight():
    c = RegressionCodec(128)
    kp = np.full((2, J, 2), 40.0, np.float32)
    kp[1, 4] = np.nan
    visible = np.ones((2, J), bool)
    visible[0, 3] = False
    norm = c.encode(kp, visible)
    assert np.all(norm[0, 3] == 0) and np.all(norm[1, 4] == 0)  # finite: weight 0 removes them
    assert np.all(norm[0, 2] == np.float32(40.5 / 128))
    w = c.target_weights(visible & np.isfinite(kp).all(-1))
    assert w[0, 3] == 0 and w[1, 4] == 0 and w.sum() == 2 * J - 2
    t = c.encode(torch.from_numpy(kp), torch.from_numpy(visible))
    assert torch.isfinite(t).all() and torch.equal(t, torch.from_numpy(norm))


def test_regression_codec_gives_the_models_own_numbers():
    """What the benchmark did inline before the codec: the model's "keypoints" output
    as the prediction, px_to_normalised of the labels as the target. Bit for bit."""
    from gthd.benchmark.models import MODELS, keypoint_regression_loss, px_to_normalised

    torch.manual_seed(0)
    model = MODELS["resnet50_regression"](width=1 / 16).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 128, 128))
    c = RegressionCodec(128)
    kp, scores = c.decode(out)  # the output dict
    assert torch.equal(kp, out["keypoints"]) and scores.shape == (2, J)
    assert torch.equal(c.decode(out["keypoints_norm"])[0], kp)
    labels = torch.rand(2, J, 2) * 127
    visible = torch.rand(2, J) > 0.3
    target = c.encode(labels, visible)
    old = px_to_normalised(labels, 128, 128)
    assert torch.equal(target[visible], old[visible])
    new_loss = keypoint_regression_loss(out["keypoints_norm"], target, c.target_weights(visible))
    old_loss = keypoint_regression_loss(out["keypoints_norm"], old, visible.float())
    assert torch.equal(new_loss, old_loss)


def test_regression_shapes_are_checked():
    c = RegressionCodec((64, 32))
    assert c.input_size == (64, 32) and repr(c) == "RegressionCodec(input_size=(64, 32))"
    with pytest.raises(ValueError, match=r"keypoints: expected \(J, 2\) or \(B, J, 2\)"):
        c.encode(np.zeros((21, 3)))
    with pytest.raises(ValueError, match="visible"):
        c.encode(np.zeros((21, 2)), np.ones(20, bool))
    with pytest.raises(ValueError, match=r"normalised keypoints: expected \(J, 2\) or \(B, J, 2\), got \(2, 21\)"):
        c.decode(np.zeros((2, 21)))
    with pytest.raises(ValueError, match="input size"):
        RegressionCodec(0)


# ------------------------------------------------------------ one decode signature
def test_every_codec_decodes_a_model_output_dict():
    """decode(output) -> (what it found, scores): the model's dict or its codec's entry."""
    rng = np.random.default_rng(3)
    kp = _points(rng, (2, J), 4, 124)
    c = MultiScaleHeatmapCodec(strides=(2, 4, 2, 1, 1))
    hms = [torch.from_numpy(h) for h in c.encode(kp)]
    for a, b in zip(c.decode({"heatmaps": hms}), c.decode(hms)):
        assert torch.equal(a, b)
    assert torch.equal(c.combine({"heatmaps": hms}), c.combine(hms))
    single = SingleScaleHeatmapCodec(128)
    (hm,) = single.encode(kp)
    for a, b in zip(single.decode({"heatmaps": [hm]}), single.decode(hm)):
        np.testing.assert_array_equal(a, b)
    masks = np.zeros((2, 1, 32, 32), np.float32)
    masks[0, 0, 4:20, 6:10] = 0.9
    boxes, scores = SkeletonMaskCodec(0.0).decode({"mask": torch.from_numpy(masks)})
    np.testing.assert_array_equal(scores, foreground_pixels(masks))
    np.testing.assert_array_equal(boxes, boxes_from_masks(masks, min_share=0.2))
    assert scores.tolist() == [64, 0] and np.isnan(boxes[1]).all()
    assert [type(x).key for x in (c, single, RegressionCodec(), SkeletonMaskCodec())] == ["heatmaps", "heatmaps", "keypoints_norm", "mask"]
