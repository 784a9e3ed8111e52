"""The training loop (gthd.benchmark.train) on a tiny synthetic dataset: the loss falls,
checkpoints are plain (weights_only) and atomic, resume repeats an uninterrupted run,
a resume with another config is refused in one line."""

import json

import cv2
import numpy as np
import pytest
import torch

from gthd.benchmark.models import MODEL_INFO, MODELS
from gthd.benchmark.train import (
    CHECKPOINT,
    TrainConfig,
    TrainResult,
    load_checkpoint,
    make_codec,
    predict,
    train,
)
from gthd.dataset.codec import RegressionCodec
from gthd.dataset.samples import make_sample
from gthd.dataset.schema import DatasetWriter

W, H = 320, 240
N = 24


def _frame(rng, hand: bool):
    """A dark frame with a bright disc at each of 21 keypoints on a rotated grid."""
    img = np.full((H, W, 3), (110, 40, 25), np.float64) + rng.normal(0, 2, (H, W, 3))
    if not hand:
        return np.clip(img, 0, 255).astype(np.uint8), None, None
    grid = (np.array([(x, y) for y in range(5) for x in range(5)][:21], np.float64) - 2) * rng.uniform(12, 20)
    a = rng.uniform(0, 2 * np.pi)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    kp = grid @ R.T + rng.uniform([80, 80], [W - 80, H - 80])  # (21, 2)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for p in kp:
        cv2.circle(img, (round(p[0]), round(p[1])), 3, (40, 40, 230), -1)
    return img, kp, np.ones(21, bool)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("train") / "tiny.h5"
    rng = np.random.default_rng(0)
    with DatasetWriter(path) as w:
        for i in range(N):
            img, kp, vis = _frame(rng, hand=i % 6 != 5)
            _, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            w.add(make_sample(img, enc.tobytes(), kp, vis, split=0, name=f"tiny/{i}", frame_index=i))
    return path


def _cfg(data, **kw):
    base = {
        "model": "multiscale_skeleton",
        "model_kwargs": {"width": 4},
        "data": str(data),
        "epochs": 2,
        "batch_size": 4,
        "lr": 0.01,
        "max_samples": 16,
        "augment": False,
        "num_workers": 0,
        "device": "cpu",
        "seed": 3,
    }
    base.update(kw)
    return TrainConfig(**base)


def test_config_round_trip():
    c = TrainConfig(model="unet_heatmaps", model_kwargs={"width": 8}, data="x.h5", max_samples=5, frame_size=(128, 96))
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig(model="nope")
    with pytest.raises(ValueError, match="unknown TrainConfig fields: bogus"):
        TrainConfig.from_dict({**c.to_dict(), "bogus": 1})


def test_training_lowers_the_loss_and_writes_plain_checkpoints(data, tmp_path):
    seen = []
    r = train(_cfg(data, epochs=3), tmp_path / "run", progress=seen.append)
    assert isinstance(r, TrainResult)
    assert [p["epoch"] for p in seen] == [1, 2, 3]
    assert len(r.epoch_losses) == 3 and all(np.isfinite(r.epoch_losses))
    assert r.epoch_losses[-1] < r.epoch_losses[0], r.epoch_losses
    assert r.final_loss == r.epoch_losses[-1]
    assert r.parameters > 0 and r.samples_per_s > 0 and r.train_time_s > 0
    ck = load_checkpoint(tmp_path / "run" / CHECKPOINT)  # weights_only=True
    assert set(ck) >= {"model", "optimizer", "scheduler", "epoch", "config", "gthd_version"}
    assert ck["epoch"] == 3 and ck["config"]["model"] == "multiscale_skeleton"
    assert TrainConfig.from_dict(ck["config"]) == _cfg(data, epochs=3)
    assert not list((tmp_path / "run").glob("*.tmp"))
    saved = json.loads((tmp_path / "run" / "train.json").read_text())
    assert saved["result"]["final_loss"] == pytest.approx(r.final_loss)
    assert saved["result"]["parameters"] == r.parameters
    # the weights rebuild the model; predict gives keypoints inside the crop
    model = MODELS["multiscale_skeleton"](width=4)
    model.load_state_dict(ck["model"])
    x = torch.rand(2, 4, 128, 128)
    kp = predict(model, x)
    assert kp.shape == (2, 21, 2) and torch.isfinite(kp).all()
    assert kp.min() >= -1 and kp.max() <= 128, (kp.min(), kp.max())
    assert model.training  # predict restores the mode


def test_resume_repeats_an_uninterrupted_run(data, tmp_path):
    # with augmentation: each epoch's draws come from (seed, epoch), not from the run so far
    full = train(_cfg(data, epochs=2, augment=True), tmp_path / "full")
    part = train(_cfg(data, epochs=1, augment=True), tmp_path / "part")
    assert part.epoch_losses[0] == pytest.approx(full.epoch_losses[0], rel=1e-6)
    resumed = train(_cfg(data, epochs=2, augment=True), tmp_path / "part", resume=True)
    assert resumed.start_epoch == 1 and len(resumed.epoch_losses) == 1
    a = load_checkpoint(tmp_path / "full" / CHECKPOINT)
    b = load_checkpoint(tmp_path / "part" / CHECKPOINT)
    assert b["epoch"] == 2
    assert b["scheduler"]["last_epoch"] == 8  # the schedule steps per batch: 2 epochs of 4
    # Adam's step counters went on from the saved ones
    steps = {int(s["step"]) for s in b["optimizer"]["state"].values()}
    assert steps == {int(s["step"]) for s in a["optimizer"]["state"].values()} == {8}
    for k in a["model"]:
        torch.testing.assert_close(b["model"][k], a["model"][k], rtol=1e-5, atol=1e-6, msg=k)
    assert resumed.final_loss == pytest.approx(full.final_loss, rel=1e-5)


def test_resume_with_another_config_is_refused(data, tmp_path):
    train(_cfg(data, epochs=1), tmp_path / "run")
    with pytest.raises(ValueError) as e:
        train(_cfg(data, epochs=2, lr=0.001, batch_size=2), tmp_path / "run", resume=True)
    msg = str(e.value)
    assert "\n" not in msg and "config differs in batch_size, lr" in msg, msg


@pytest.mark.parametrize("name", ["unet_heatmaps", "resnet50_regression", "skeleton_unet", "box_regressor"])
def test_every_task_trains_one_epoch(data, tmp_path, name):
    kw = {"resnet50_regression": {"width": 0.125}, "box_regressor": {"width": 4, "hidden": 16}}.get(name, {"width": 4, "depth": 2})
    r = train(_cfg(data, model=name, model_kwargs=kw, epochs=1, max_samples=4, frame_size=(128, 96)), tmp_path / name)
    assert np.isfinite(r.final_loss)
    if MODEL_INFO[name].task.startswith("pose"):
        model = MODELS[name](**kw)
        model.load_state_dict(load_checkpoint(tmp_path / name / CHECKPOINT)["model"])
        assert predict(model, torch.rand(1, 3, 128, 128)).shape == (1, 21, 2)


def test_codecs_follow_the_model():
    assert make_codec("multiscale_skeleton", (128, 128)).strides == (2, 4, 2, 1, 1)
    assert make_codec("unet_heatmaps", (128, 128)).strides == (1,)
    regression = make_codec("resnet50_regression")
    assert isinstance(regression, RegressionCodec) and regression.input_size == (128, 128)
    assert make_codec("skeleton_unet") is None and make_codec("box_regressor") is None


@pytest.mark.parametrize("name", ["unet_heatmaps", "multiscale_skeleton", "resnet50_regression"])
def test_every_pose_model_decodes_through_its_codec(name):
    # one call for any pose model: codec.decode(model(x)), what predict does
    kw = {"resnet50_regression": {"width": 1 / 16}}.get(name, {"width": 4})
    torch.manual_seed(0)
    model = MODELS[name](**kw).eval()
    x = torch.rand(2, MODEL_INFO[name].in_channels, 128, 128)
    with torch.no_grad():
        kp, scores = make_codec(name).decode(model(x))
    assert kp.shape == (2, 21, 2) and scores.shape == (2, 21)
    assert torch.equal(predict(model, x), kp)
    with pytest.raises(ValueError, match="predict needs a pose model, not a detector model"):
        predict(MODELS["skeleton_unet"](width=4, depth=2), torch.rand(1, 3, 32, 32))


# ----------------------------------------------------------------------------- DDP
def _frozen_batchnorm():
    """Keep every BatchNorm in eval mode (running stats, still learnable affine), so the
    model treats each sample alone: a batch split over processes then gives exactly
    the gradient of the whole batch (CPU has no SyncBatchNorm)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    if not getattr(_BatchNorm, "_frozen_for_test", False):
        orig = _BatchNorm.train
        _BatchNorm.train = lambda self, mode=True: orig(self, False)
        _BatchNorm._frozen_for_test = True


def _ddp_worker(rank, world, port, cfg_dict, out):
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    _frozen_batchnorm()
    train(TrainConfig.from_dict(cfg_dict), out, progress=lambda p: None)


def test_two_process_ddp_matches_one_process_with_the_total_batch(data, tmp_path, monkeypatch):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ddp_cfg = _cfg(data, epochs=2, batch_size=2, max_samples=8)
    mp.spawn(_ddp_worker, args=(2, port, ddp_cfg.to_dict(), str(tmp_path / "ddp")), nprocs=2, join=True)
    a = load_checkpoint(tmp_path / "ddp" / CHECKPOINT)
    saved = json.loads((tmp_path / "ddp" / "train.json").read_text())["result"]
    assert saved["world_size"] == 2

    for k in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    _frozen_batchnorm()  # the same model behaviour in this process (the patch stays: only BN's train mode)
    try:
        single = train(_cfg(data, epochs=2, batch_size=4, max_samples=8), tmp_path / "one")
    finally:
        from torch.nn.modules.batchnorm import _BatchNorm

        del _BatchNorm.train, _BatchNorm._frozen_for_test  # back to nn.Module.train
    b = load_checkpoint(tmp_path / "one" / CHECKPOINT)
    assert single.world_size == 1
    assert a["epoch"] == b["epoch"] == 2
    for k in b["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-4, atol=1e-5, msg=k)
    assert saved["final_loss"] == pytest.approx(single.final_loss, rel=1e-4)


def test_learning_rate_schedules():
    from gthd.benchmark.train import lr_factor

    paper = TrainConfig(model="multiscale_skeleton", epochs=30, lr_step=8, lr_gamma=0.9)
    # the paper's: -10 % after every 8 epochs, whatever the step within the epoch
    assert [lr_factor(paper, e * 100 + 50, 100) for e in (0, 7, 8, 16, 29)] == pytest.approx([1, 1, 0.9, 0.81, 0.729])
    cos = TrainConfig(model="multiscale_skeleton", epochs=10, schedule="cosine", warmup_steps=100)
    steps = 10 * 50
    assert lr_factor(cos, 0, 50) == pytest.approx(0.01 * (0.5 * (1 + np.cos(0))))  # the first warm-up step
    assert lr_factor(cos, 99, 50) == pytest.approx(0.5 * (1 + np.cos(np.pi * 99 / steps)))  # warm-up done
    assert lr_factor(cos, steps // 2, 50) == pytest.approx(0.5)
    assert lr_factor(cos, steps, 50) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(model="multiscale_skeleton", schedule="linear")
    with pytest.raises(ValueError, match="augment_kwargs"):
        TrainConfig(model="multiscale_skeleton", augment_kwargs={"rotation": 10})
