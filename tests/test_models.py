"""The benchmark's models: one interface test over every registered builder (shapes, no
NaNs, a gradient for every parameter), then the losses, the fusion and tiny training runs.
Small widths and inputs keep it to seconds on two CPU cores."""

from __future__ import annotations

import math

import pytest
import torch

from gthd.benchmark.models import (
    CONFIGS,
    MODEL_INFO,
    MODELS,
    ModelInfo,
    box_loss,
    count_parameters,
    fold_batch_norms,
    fuse_heatmaps,
    keypoint_regression_loss,
    multiscale_loss,
    skeleton_loss,
    soft_dice_loss,
)
from gthd.benchmark.models.multiscale import scale_deltas

J = 5  # joints in the small models

# builder name -> (small kwargs, small (H, W) input the model allows)
SMALL = {
    "skeleton_unet": ({"width": 4}, (32, 48)),
    "unet_heatmaps": ({"width": 4, "joints": J}, (128, 128)),
    "multiscale_skeleton": ({"width": 4, "joints": J}, (128, 128)),
    "multiscale_plain": ({"width": 4, "joints": J}, (128, 128)),
    "resnet50_regression": ({"width": 1 / 16, "joints": J}, (128, 128)),
    "box_regressor": ({"width": 4, "hidden": 16}, (64, 96)),
}


def test_every_model_has_a_small_config_and_info():
    assert set(SMALL) == set(MODELS) == set(MODEL_INFO) == set(CONFIGS)
    for name, f in MODELS.items():
        assert f.__name__ == name


@pytest.mark.parametrize("name", sorted(MODELS))
def test_folded_batch_norms_give_the_same_outputs(name):
    """Every batch norm is folded (none left), the outputs are the model's (after a little
    training, so the norms' statistics are not the identity), and the model is untouched."""
    kwargs, (h, w) = SMALL[name]
    torch.manual_seed(0)
    model = MODELS[name](**kwargs)
    c = MODEL_INFO[name].in_channels
    model.train()
    with torch.no_grad():
        for _ in range(3):  # running statistics away from (0, 1)
            model(torch.rand(4, c, h, w) * 3 + 1)
    model.eval()
    folded = fold_batch_norms(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    x = torch.rand(2, c, h, w) * 3 + 1
    with torch.no_grad():
        a, b = model(x), folded(x)
    for key in a:
        for u, v in zip(a[key] if isinstance(a[key], list) else [a[key]], b[key] if isinstance(b[key], list) else [b[key]]):
            torch.testing.assert_close(v, u, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_info_is_what_the_built_model_does(name):
    """MODEL_INFO is read off each builder's config: a built model's config and its
    forward output agree with it (strides from the output shapes, the sizes it takes)."""
    info = MODEL_INFO[name]
    assert MODELS[name]().config == CONFIGS[name]()  # the builder builds its config function's config
    kwargs, _ = SMALL[name]
    model = MODELS[name](**kwargs).eval()
    assert ModelInfo.from_config(model.config) == info  # width and joints change none of it
    assert model.config.in_channels == info.in_channels == {("image",): 3, ("image", "skeleton"): 4}[info.inputs]
    H, W = info.input_size
    c = info.in_channels
    with torch.no_grad():
        out = model(torch.rand(1, c, H, W))
        assert info.output in out
        if info.task == "pose-heatmap":
            assert tuple(W // h.shape[-1] for h in out["heatmaps"]) == info.strides
            assert all((h.shape[-2] * s, h.shape[-1] * s) == (H, W) for h, s in zip(out["heatmaps"], info.strides))
        else:
            assert info.strides is None
        m = info.size_multiple
        if m is None:  # the one size only
            with pytest.raises(ValueError, match=rf"expected \(B, {c}, {H}, {W}\)"):
                model(torch.rand(1, c, H + 32, W + 32))
        else:  # any multiple of m, nothing else
            model(torch.rand(1, c, 2 * m, 3 * m))
            with pytest.raises(ValueError, match=f"multiples of {m}"):
                model(torch.rand(1, c, 2 * m, 3 * m + m // 2))


def _tensors(out: dict) -> list[torch.Tensor]:
    return [t for v in out.values() for t in (v if isinstance(v, list) else [v])]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_interface(name):
    torch.manual_seed(0)
    kwargs, (H, W) = SMALL[name]
    info = MODEL_INFO[name]
    model = MODELS[name](**kwargs)
    B = 2
    x = torch.rand(B, info.in_channels, H, W)
    out = model(x)

    if info.task == "detector":
        assert set(out) == {"logits", "mask"}
        assert out["logits"].shape == out["mask"].shape == (B, 1, H, W)
        assert torch.allclose(out["mask"], torch.sigmoid(out["logits"]))
        assert out["mask"].mean() < 0.1  # starts near its prior (0.01), not at 0.5
    elif info.task == "pose-heatmap":
        assert set(out) == {"heatmaps"}
        assert [tuple(h.shape) for h in out["heatmaps"]] == [(B, J, H // s, W // s) for s in info.strides]
        assert all(((h >= 0) & (h <= 1)).all() for h in out["heatmaps"])
    elif info.task == "pose-regression":
        assert out["keypoints"].shape == out["keypoints_norm"].shape == (B, J, 2)
        # normalised to the input's extent: u = n * W - 0.5 (OpenCV pixel centres)
        assert torch.allclose(out["keypoints"], out["keypoints_norm"] * torch.tensor([W, H]) - 0.5)
        assert torch.allclose(out["keypoints_norm"], torch.full_like(out["keypoints_norm"], 0.5), atol=0.1)  # starts near the centre
    elif info.task == "box":
        assert out["box"].shape == out["box_norm"].shape == (B, 4) and out["hand_logit"].shape == (B,)
        b = out["box"]
        assert (b[:, 0] <= b[:, 2]).all() and (b[:, 1] <= b[:, 3]).all()
        assert torch.allclose(out["box"], out["box_norm"] * torch.tensor([W, H, W, H]) - 0.5)
    else:
        pytest.fail(f"unknown task {info.task}")
    assert info.output in out

    tensors = _tensors(out)
    assert all(torch.isfinite(t).all() for t in tensors)
    sum(t.sum() for t in tensors).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"

    # the config rebuilds the same model; eval mode runs too
    twin = type(model).from_config(model.config)
    twin.load_state_dict(model.state_dict())
    assert count_parameters(twin) == count_parameters(model)
    with torch.no_grad():
        model.eval(), twin.eval()
        for a, b in zip(_tensors(model(x)), _tensors(twin(x))):
            assert torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_wrong_input_shape_is_a_clear_error(name):
    kwargs, (H, W) = SMALL[name]
    info = MODEL_INFO[name]
    model = MODELS[name](**kwargs)
    x = torch.rand(1, info.in_channels + 1, H, W)
    with pytest.raises(ValueError, match=rf"expected \(B, {info.in_channels}, .*got \(1, {info.in_channels + 1}, {H}, {W}\)"):
        model(x)
    with pytest.raises(ValueError, match="expected"):
        model(torch.rand(info.in_channels, H, W))  # no batch axis


def test_fixed_size_message():
    model = MODELS["multiscale_skeleton"](width=4)
    with pytest.raises(ValueError, match=r"^expected \(B, 4, 128, 128\), got \(2, 4, 96, 96\)$"):
        model(torch.rand(2, 4, 96, 96))
    with pytest.raises(ValueError, match="multiples of 16"):
        MODELS["skeleton_unet"](width=4)(torch.rand(1, 3, 40, 48))


def test_multiscale_resolutions_and_channels():
    for name, c in (("multiscale_skeleton", 4), ("multiscale_plain", 3)):
        model = MODELS[name](width=4, joints=21)
        assert model.config.in_channels == MODEL_INFO[name].in_channels == c
        out = model(torch.rand(1, c, 128, 128))["heatmaps"]
        # a head after each downsampling and upsampling, the fifth after the final layer
        assert [h.shape[-1] for h in out] == [64, 32, 64, 128, 128]
        assert [h.shape[-2] for h in out] == [64, 32, 64, 128, 128]
        assert all(h.shape[1] == 21 for h in out)
        assert model.config.strides == MODEL_INFO[name].strides == (2, 4, 2, 1, 1)


def _maps(B=2, J=3, sizes=(128, 64, 32, 64, 128), fill=0.0):
    return [torch.full((B, J, s, s), fill) for s in sizes]


def test_multiscale_loss_weights_each_scale_by_its_delta():
    assert scale_deltas(_maps()) == [1, 0.5, 0.25, 0.5, 1]
    targets = _maps()
    for i, delta in enumerate([1, 0.5, 0.25, 0.5, 1]):
        outputs = _maps()
        outputs[i][0, 1, 5, 7] = 0.3  # one error of 0.3 in sample 0 at scale i
        outputs[i][0, 2, 0, 0] = -0.2
        sq = 0.3**2 + 0.2**2
        loss = multiscale_loss(outputs, targets)
        assert loss.item() == pytest.approx(delta * sq / 2)  # mean over the batch of 2
    # a single-scale model: delta 1; the model's dict is accepted too
    out = {"heatmaps": [torch.ones(1, 2, 8, 8)]}
    assert multiscale_loss(out, [torch.zeros(1, 2, 8, 8)]).item() == pytest.approx(2 * 64)
    with pytest.raises(ValueError, match="target 1"):
        multiscale_loss(_maps(), _maps(sizes=(128, 32, 32, 64, 128)))


def test_invisible_joints_contribute_nothing():
    torch.manual_seed(1)
    targets = [torch.rand_like(t) for t in _maps()]
    outputs = [torch.rand_like(t).requires_grad_() for t in _maps()]
    weights = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])  # (B, J)
    loss = multiscale_loss(outputs, targets, weights)
    loss.backward()
    for o in outputs:
        assert (o.grad[0, 1] == 0).all() and (o.grad[1, 2] == 0).all()
        assert (o.grad[0, 0] != 0).any()
    changed = [o.detach().clone() for o in outputs]
    for c in changed:
        c[0, 1] += 5.0
        c[1, 2] -= 3.0
    assert multiscale_loss(changed, targets, weights).item() == pytest.approx(loss.item(), rel=1e-6)
    assert multiscale_loss(outputs, targets).item() > loss.item()  # all weights 1 counts them

    pred, target = torch.rand(2, 3, 2), torch.rand(2, 3, 2)
    w = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    moved = pred.clone()
    moved[0, 1] += 10
    assert keypoint_regression_loss(moved, target, w).item() == pytest.approx(keypoint_regression_loss(pred, target, w).item())


def test_fuse_heatmaps_of_constant_maps_is_the_weighted_mean():
    values = [0.1, 0.2, 0.4, 0.6, 0.9]
    outputs = [torch.full((2, 3, s, s), v) for s, v in zip((128, 64, 32, 64, 128), values)]
    fused = fuse_heatmaps(outputs)
    assert fused.shape == (2, 3, 128, 128)
    default = [1, 0.5, 0.25, 0.5, 1]
    want = sum(w * v for w, v in zip(default, values)) / sum(default)
    assert torch.allclose(fused, torch.full_like(fused, want))
    custom = [1, 0, 0, 0, 3]
    assert torch.allclose(fuse_heatmaps(outputs, custom), torch.full_like(fused, (0.1 + 3 * 0.9) / 4))
    with pytest.raises(ValueError, match="weights"):
        fuse_heatmaps(outputs, [1, 1])


def test_fuse_heatmaps_keeps_a_peak_in_place():
    # a peak at the same input pixel on every scale stays at that pixel after fusion
    u, v = 37, 90  # input px; at stride s: (u + 0.5) / s - 0.5
    maps = []
    for s in (1, 2, 4, 2, 1):
        n = 128 // s
        ys, xs = torch.meshgrid(torch.arange(n, dtype=torch.float32), torch.arange(n, dtype=torch.float32), indexing="ij")
        us, vs = (u + 0.5) / s - 0.5, (v + 0.5) / s - 0.5
        maps.append(torch.exp(-((xs - us) ** 2 + (ys - vs) ** 2) / (2 * 1.5**2))[None, None])
    fused = fuse_heatmaps(maps)[0, 0]
    row, col = divmod(int(fused.argmax()), 128)
    assert (col, row) == (u, v)


def test_soft_dice_and_skeleton_loss_by_hand():
    t = torch.zeros(1, 1, 4, 4)
    t[0, 0, 1, :] = 1  # 4 pixels
    assert soft_dice_loss(t, t, smooth=0).item() == pytest.approx(0.0)
    assert soft_dice_loss(1 - t, t, smooth=0).item() == pytest.approx(1.0)
    p = t * 0.5  # 2 * (4 * 0.5) / (4 * 0.25 + 4) = 4 / 5
    assert soft_dice_loss(p, t, smooth=0).item() == pytest.approx(1 - 0.8)
    l1 = (p - t).abs().mean().item()  # 4 * 0.5 / 16
    assert skeleton_loss(p, t, smooth=0).item() == pytest.approx(0.4 * l1 + 0.6 * 0.2)
    # an empty target (NoHand) still pulls the prediction to 0 with the default smoothing
    q = torch.full((1, 1, 4, 4), 0.3, requires_grad=True)
    soft_dice_loss(q, torch.zeros(1, 1, 4, 4)).backward()
    assert (q.grad > 0).all()


def test_box_loss_ignores_boxes_of_nohand_frames():
    pred = torch.tensor([[0.1, 0.1, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0]])
    target = torch.tensor([[0.2, 0.1, 0.5, 0.7], [0.3, 0.3, 0.4, 0.4]])
    logit = torch.tensor([2.0, -2.0])
    has = torch.tensor([True, False])
    base = box_loss(pred, logit, target, has)
    moved = pred.clone()
    moved[1] = 0.5
    assert box_loss(moved, logit, target, has).item() == pytest.approx(base.item())
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, has.float()).item()
    assert base.item() == pytest.approx((0.1 + 0.2) / 4 + bce)


def _gaussians(B, J, size, sigma, seed):
    g = torch.Generator().manual_seed(seed)
    kp = torch.rand(B, J, 2, generator=g) * (size - 20) + 10  # (B, J, 2) px
    maps = []
    for s in (2, 4, 2, 1, 1):  # the model's outputs
        n = size // s
        ks = (kp + 0.5) / s - 0.5
        ar = torch.arange(n, dtype=torch.float32)
        sg = max(1.0, sigma / s)
        gx = torch.exp(-((ar - ks[..., 0:1]) ** 2) / (2 * sg**2))  # (B, J, n)
        gy = torch.exp(-((ar - ks[..., 1:2]) ** 2) / (2 * sg**2))
        maps.append(gy[..., :, None] * gx[..., None, :])  # (B, J, n, n)
    return kp, maps


def test_tiny_training_lowers_the_multiscale_loss():
    torch.manual_seed(0)
    B = 2
    model = MODELS["multiscale_skeleton"](width=4, joints=3)
    _, targets = _gaussians(B, 3, 128, 2.0, seed=3)
    x = torch.rand(B, 4, 128, 128)
    weights = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = multiscale_loss(model(x), targets, weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0], losses[::5]
    # below what predicting 0 everywhere scores: it learnt peaks, not only the background
    assert losses[-1] < multiscale_loss([torch.zeros_like(t) for t in targets], targets, weights).item()


def test_tiny_training_lowers_the_skeleton_loss():
    torch.manual_seed(0)
    model = MODELS["skeleton_unet"](width=8, depth=3)  # width 4 sometimes stalls on dead ReLUs
    x = torch.rand(2, 3, 32, 48)
    target = torch.zeros(2, 1, 32, 48)
    target[0, 0, 10:13, 5:30] = 1  # a bar: the "skeleton"
    target[0, 0, 5:25, 20:23] = 1
    x[0, :, 10:13, 5:30] += 0.5  # visible in the image
    x[0, :, 5:25, 20:23] += 0.5  # sample 1: an empty frame (NoHand)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = skeleton_loss(model(x)["mask"], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0], losses[::5]
    mask = model(x)["mask"].detach()
    assert mask[target > 0].mean() > 0.5 > mask[target == 0].mean()


def test_parameter_counts(capsys):
    counts = {name: count_parameters(f()) for name, f in MODELS.items()}  # default widths
    with capsys.disabled():
        print("\nparameters at default widths: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    # torchvision's resnet50 has 25,557,032 parameters; its 1000-way fc has 2,049,000 of
    # them, ours (2048 -> 42) 86,058: the same backbone, block for block
    assert counts["resnet50_regression"] == 25_557_032 - 2_049_000 + 86_058
    assert counts["multiscale_skeleton"] - counts["multiscale_plain"] == 64 * 49  # one more input channel in the 7x7 stem
    assert all(v > 0 for v in counts.values())


def test_outputs_fit_the_codec():
    # the heatmap models' outputs are what gthd.dataset.codec decodes, and fuse_heatmaps
    # is the codec's combine (same default weights, same pixel-centre resampling)
    from gthd.dataset.codec import MultiScaleHeatmapCodec

    codec = MultiScaleHeatmapCodec(strides=MODEL_INFO["multiscale_skeleton"].strides)
    model = MODELS["multiscale_skeleton"](width=4, joints=21).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 4, 128, 128))["heatmaps"]
    assert torch.allclose(codec.combine(out), fuse_heatmaps(out), atol=1e-6)
    kp, _scores = codec.decode(out)
    assert kp.shape == (2, 21, 2)
    visible = torch.ones(2, 21, dtype=torch.bool)
    visible[0, 3] = False
    targets = codec.encode(torch.rand(2, 21, 2) * 100 + 10, visible)
    assert multiscale_loss(targets, targets, codec.target_weights(visible)).item() == 0
    assert multiscale_loss(out, targets, codec.target_weights(visible)).item() > 0
