"""``gthd predict``: a run folder made by hand (untrained models, no training), run on an
image, a folder, a video; run.json errors as one line each."""

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gthd.benchmark.models import create_model
from gthd.benchmark.predict import WINDOW, load_run, read_run
from gthd.benchmark.train import save_checkpoint
from gthd.cli import main
from gthd.fileio import FormatError

W, H = 160, 120
REGRESSION = "direct regression (Gomez et al.)"


def _save(model: torch.nn.Module, path: Path, builder: str, kwargs: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, {"model": model.state_dict(), "config": {"model": builder, "model_kwargs": kwargs}})


def make_run(run: Path, threshold_pixels: float = -1.0, **overrides) -> Path:
    """A run folder as `gthd benchmark` leaves it: run.json and one last.pt per model.

    The detector's output layer is set by hand so that its mask is 1 everywhere (every
    frame is a hand, the box is the whole frame); the regression net's last layer
    likewise outputs the crop's centre for every joint."""
    torch.manual_seed(0)
    detector = create_model("skeleton_unet", width=4, depth=2)
    with torch.no_grad():
        detector.outc.weight.zero_()
        detector.outc.bias.fill_(10.0)
    _save(detector, run / "skeleton-unet-thick" / "last.pt", "skeleton_unet", {"width": 4, "depth": 2})
    _save(create_model("multiscale_skeleton", width=4), run / "ours" / "last.pt", "multiscale_skeleton", {"width": 4})
    regression = create_model("resnet50_regression", width=0.0625)
    with torch.no_grad():
        regression.fc.weight.zero_()
        regression.fc.bias.fill_(0.5)  # normalised 0.5: the crop's centre
    _save(regression, run / "direct-regression" / "last.pt", "resnet50_regression", {"width": 0.0625})
    manifest = {
        "format": "gthd-benchmark-run",
        "format_version": 1,
        "gthd_version": "0.1.0",
        "dataset": "benchmark/datasets/demo.h5",
        "profile": "quick",
        "crop_margin": 0.25,
        "pose": [
            {"method": "ours", "builder": "multiscale_skeleton", "model_kwargs": {"width": 4}, "checkpoint": "ours/last.pt"},
            {"method": REGRESSION, "builder": "resnet50_regression", "model_kwargs": {"width": 0.0625}, "checkpoint": "direct-regression/last.pt"},
        ],
        "detector": {
            "method": "skeleton UNet (ours)",
            "builder": "skeleton_unet",
            "model_kwargs": {"width": 4, "depth": 2},
            "checkpoint": "skeleton-unet-thick/last.pt",
            "frame_size": [64, 48],
            "threshold_pixels": threshold_pixels,
        },
    }
    manifest.update(overrides)
    (run / "run.json").write_text(json.dumps(manifest, indent=2))
    return run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "demo-quick")


def frame(seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 BGR: smooth colours with a bright disc (compresses like a photo)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W]
    img = np.stack([x * 255 // W, y * 255 // H, np.full_like(x, 60 + 40 * seed)], axis=-1).astype(np.uint8)
    cv2.circle(img, (int(rng.integers(30, W - 30)), int(rng.integers(30, H - 30))), 20, (230, 220, 200), -1)
    return img


def invoke(*args: str):
    return CliRunner().invoke(main, ["predict", *map(str, args)], catch_exceptions=False)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_one_line_error(r, *fragments: str) -> None:
    assert r.exit_code != 0
    assert "Traceback" not in r.output
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, r.output
    for fragment in fragments:
        assert fragment in errors[0], r.output


# ---------------------------------------------------------------------------- outputs
def test_an_image_gives_a_drawn_image_and_its_keypoints_in_frame_pixels(run_dir, tmp_path):
    src = tmp_path / "hand.png"
    cv2.imwrite(str(src), frame())
    r = invoke(src, "--run", run_dir, "--method", REGRESSION, "--device", "cpu", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert "1 drawn image (1 with a hand" in r.output
    drawn = cv2.imread(str(tmp_path / "out" / "hand.png"))
    assert drawn.shape == (H, W, 3) and np.abs(drawn.astype(int) - frame()).sum() > 0
    [rec] = read_jsonl(tmp_path / "out" / "predictions.jsonl")
    assert rec["source"] == "hand.png" and rec["has_hand"] is True and rec["score"] == 64 * 48
    kp = np.array(rec["keypoints"], float)
    assert kp.shape == (21, 2) and np.all(np.isfinite(kp))
    assert np.all((kp >= -0.5) & (kp <= [W - 0.5, H - 0.5]))
    # the mask is the whole frame, so the box is the frame (with the dataset's box margin,
    # if any) around its centre; every joint sits at the crop's centre, which is the
    # frame's centre (OpenCV pixel convention)
    x0, y0, x1, y1 = rec["box"]
    assert x0 <= -0.5 and y0 <= -0.5 and x1 >= W - 0.5 and y1 >= H - 0.5
    np.testing.assert_allclose([(x0 + x1) / 2, (y0 + y1) / 2], [(W - 1) / 2, (H - 1) / 2], atol=0.01)
    np.testing.assert_allclose(kp, np.tile([(W - 1) / 2, (H - 1) / 2], (21, 1)), atol=0.02)


def test_the_default_method_by_label_or_builder_name(run_dir, tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), frame())
    for method in ("ours", "multiscale_skeleton", "OURS"):
        r = invoke(tmp_path / "a.jpg", "--run", run_dir, "--method", method, "--device", "cpu")
        assert r.exit_code == 0, r.output
    [rec] = read_jsonl(tmp_path / "a-predict" / "predictions.jsonl")  # the default --out
    kp = np.array(rec["keypoints"], float)
    # the heatmap net (random weights) puts them somewhere in the square crop around the
    # box: side 1.5 x the box's larger side, around the frame's centre
    side = 1.5 * (rec["box"][2] - rec["box"][0])
    # (within a crop pixel of the crop's edge: the sub-pixel step may move a peak on the
    # border by up to half a pixel outward)
    assert kp.shape == (21, 2) and np.all(np.abs(kp - [(W - 1) / 2, (H - 1) / 2]) <= side / 2 + side / 128)


def test_no_hand_above_a_huge_threshold(tmp_path):
    run = make_run(tmp_path / "run", threshold_pixels=1e9)
    cv2.imwrite(str(tmp_path / "a.jpg"), frame())
    r = invoke(tmp_path / "a.jpg", "--run", run, "--device", "cpu", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    [rec] = read_jsonl(tmp_path / "out" / "predictions.jsonl")
    assert rec == {"source": "a.jpg", "has_hand": False, "score": 64 * 48, "box": None, "keypoints": None}
    assert not np.array_equal(cv2.imread(str(tmp_path / "out" / "a.jpg")), cv2.imread(str(tmp_path / "a.jpg")))  # "no hand" is written


def test_a_folder_of_images(run_dir, tmp_path):
    src = tmp_path / "frames"
    src.mkdir()
    names = ["a.jpg", "b.png", "c.BMP"]
    for i, name in enumerate(names):
        cv2.imwrite(str(src / name), frame(i))
    (src / "notes.txt").write_text("not an image")
    r = invoke(src, "--run", run_dir, "--device", "cpu", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(names + ["predictions.jsonl"])
    records = read_jsonl(tmp_path / "out" / "predictions.jsonl")
    assert [r["source"] for r in records] == names and all(r["has_hand"] for r in records)
    # --max-frames and --jsonl elsewhere
    r = invoke(src, "--run", run_dir, "--device", "cpu", "-o", tmp_path / "two", "--max-frames", "2", "--jsonl", tmp_path / "two.jsonl")
    assert r.exit_code == 0, r.output
    assert len(read_jsonl(tmp_path / "two.jsonl")) == 2 and sorted(p.name for p in (tmp_path / "two").iterdir()) == names[:2]


def test_a_video_gives_a_drawn_video_with_as_many_frames(run_dir, tmp_path):
    src = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (W, H))
    for i in range(5):
        writer.write(frame(i))
    writer.release()
    r = invoke(src, "--run", run_dir, "--device", "cpu")
    assert r.exit_code == 0, r.output
    out = tmp_path / "clip-predict.mp4"
    cap = cv2.VideoCapture(str(out))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0, abs=0.01)
    cap.release()
    assert len(frames) == 5 and frames[0].shape == (H, W, 3)
    records = read_jsonl(tmp_path / "clip-predict.jsonl")
    assert [r["source"] for r in records] == [0, 1, 2, 3, 4]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary leftovers


def test_load_run_returns_a_pipeline(run_dir):
    pipe = load_run(run_dir, "resnet50_regression")
    d = pipe(frame())
    assert d.has_hand and d.keypoints.shape == (21, 2)
    assert read_run(run_dir).frame_size == (64, 48)
    assert read_run(run_dir).skeleton_pass == "frame"  # a run.json that does not say: the frame's mask


def test_the_skeleton_pass_of_the_run_is_the_pipelines(tmp_path):
    run = make_run(tmp_path / "run")
    d = json.loads((run / "run.json").read_text())
    _rewrite(run, detector={**d["detector"], "skeleton_pass": "crop"})
    pipe = load_run(run, "ours")
    assert pipe.skeleton_pass == "crop"
    seen = []
    pipe.detector.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape)))
    det = pipe(frame())
    # the detector reads the frame (at its 64 x 48), then the 128 x 128 crop for the skeleton
    assert det.has_hand and det.keypoints.shape == (21, 2) and seen == [(1, 3, 48, 64), (1, 3, 128, 128)]
    _rewrite(run, detector={**d["detector"], "skeleton_pass": "hands"})
    with pytest.raises(FormatError, match="skeleton_pass must be one of frame, crop"):
        read_run(run)


def _bone_tree(prior=None) -> dict:
    """run.json's decode fields of a bone-tree run (a prior of an open hand by default)."""
    from gthd.benchmark.runfile import decode_fields
    from gthd.dataset.codec import BonePrior
    from gthd.hand import BONES

    mean = np.linspace(10.0, 30.0, len(BONES))
    mean[0] = np.nan  # a bone never seen in the labels: null in run.json, not constrained
    return decode_fields("bone-tree", prior or BonePrior(mean, np.full(len(BONES), 2.0)))


def test_the_decode_of_the_run_is_the_pipelines(tmp_path):
    run = make_run(tmp_path / "run")
    assert read_run(run).decode == "argmax" and read_run(run).bone_prior is None  # an older run.json: the argmax
    pipe = load_run(run, "ours")
    assert pipe.decode == "argmax" and pipe.codec.bone_prior is None
    fields = _bone_tree()
    assert fields["bone_prior"]["mean"][0] is None and json.loads(json.dumps(fields)) == fields  # JSON numbers (and a null)
    _rewrite(run, **fields)
    info = read_run(run)
    assert info.decode == "bone-tree" and info.bone_prior.sd.tolist() == fields["bone_prior"]["sd"]
    assert np.isnan(info.bone_prior.mean[0]) and info.bone_prior.mean[1:].tolist() == fields["bone_prior"]["mean"][1:]
    pipe = load_run(run, "ours")  # gthd predict decodes as the benchmark scored: with the run's prior
    assert pipe.decode == "bone-tree" and pipe.codec.bone_prior.mean[1:].tolist() == fields["bone_prior"]["mean"][1:]
    d = pipe(frame())
    assert d.has_hand and d.keypoints.shape == (21, 2) and np.isfinite(d.keypoints).all()
    assert load_run(run, REGRESSION).decode is None  # coordinates: nothing to decode from maps
    _rewrite(run, decode="argmax")  # a prior beside the argmax: not used
    assert load_run(run, "ours").codec.bone_prior is None


# ----------------------------------------------------------------------------- errors
def _rewrite(run: Path, **changes) -> None:
    d = json.loads((run / "run.json").read_text())
    d.update(changes)
    (run / "run.json").write_text(json.dumps(d))


@pytest.mark.parametrize(
    "damage, fragments",
    [
        (lambda run: (run / "run.json").unlink(), ["not a benchmark run folder (no run.json)", "gthd benchmark"]),
        (lambda run: _rewrite(run, format="gthd-benchmark-config"), ["expected a 'gthd-benchmark-run' file"]),
        (lambda run: _rewrite(run, format_version=99, gthd_version="9.9.9"), ["written by a newer gthd (9.9.9", "upgrade"]),
        (lambda run: (run / "ours" / "last.pt").unlink(), ["ours/last.pt", "checkpoint", "missing"]),
        (lambda run: (run / "ours" / "last.pt").write_bytes(b"not a checkpoint"), ["ours/last.pt: not a readable checkpoint"]),
        (lambda run: _rewrite(run, detector=None), ["no hand detector"]),
        (lambda run: (run / "run.json").write_text("{"), ["not readable JSON"]),
        (lambda run: _rewrite(run, crop_margin="wide"), ["'crop_margin' is 'wide'"]),
        (
            lambda run: _rewrite(run, pose=[{"method": "ours", "builder": "multiscale_skeleton", "model_kwargs": {"width": 8}, "checkpoint": "ours/last.pt"}]),
            ["weights do not fit multiscale_skeleton(width=8)"],
        ),
        (lambda run: _rewrite(run, decode="softmax"), ["'decode' must be one of argmax, bone-tree, got 'softmax'"]),
        (lambda run: _rewrite(run, decode="bone-tree"), ["missing 'bone_prior'"]),
        (lambda run: _rewrite(run, **{**_bone_tree(), "bone_prior": {**_bone_tree()["bone_prior"], "sd": [0.0] * 20}}), ["'bone_prior': bone sds must be > 0"]),
        (lambda run: _rewrite(run, **{**_bone_tree(), "bone_prior": {**_bone_tree()["bone_prior"], "bones": [[0, 99]]}}), ["'bone_prior.bones'"]),
    ],
    ids=[
        "no run.json",
        "format",
        "newer",
        "no checkpoint",
        "bad checkpoint",
        "no detector",
        "bad json",
        "bad field",
        "wrong kwargs",
        "bad decode",
        "no prior",
        "bad prior",
        "bad bones",
    ],
)
def test_a_bad_run_folder_is_one_clear_line(tmp_path, damage, fragments):
    run = make_run(tmp_path / "run")
    damage(run)
    cv2.imwrite(str(tmp_path / "a.jpg"), frame())
    r = invoke(tmp_path / "a.jpg", "--run", run, "--device", "cpu", "-o", tmp_path / "out")
    assert_one_line_error(r, *fragments)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "make_source, extra, fragments",
    [
        (lambda d: d / "missing.jpg", [], ["missing.jpg: no such file or folder"]),
        (lambda d: (d / "broken.jpg").write_bytes(b"\xff\xd8 not really") and d / "broken.jpg", [], ["broken.jpg: not a readable image"]),
        (lambda d: (d / "clip.mp4").write_bytes(b"not a video") and d / "clip.mp4", [], ["clip.mp4: not a readable video"]),
        (lambda d: (d / "empty").mkdir() or d / "empty", [], ["no images"]),
        (lambda d: "camera:abc", [], ["camera:abc: expected camera:INDEX"]),
        (
            lambda d: cv2.imwrite(str(d / "a.jpg"), frame()) and d / "a.jpg",
            ["--method", "nope"],
            ["no pose method 'nope'", "'ours' (multiscale_skeleton)", REGRESSION],
        ),
        (lambda d: cv2.imwrite(str(d / "a.jpg"), frame()) and d / "a.jpg", ["-o", "."], ["where the input images are"]),
    ],
    ids=["missing", "bad image", "bad video", "empty folder", "camera:abc", "unknown method", "out is the input folder"],
)
def test_bad_input_is_one_clear_line(run_dir, tmp_path, monkeypatch, make_source, extra, fragments):
    monkeypatch.chdir(tmp_path)
    source = make_source(tmp_path)
    r = invoke(source, "--run", run_dir, "--device", "cpu", *extra)
    assert_one_line_error(r, *fragments)


def test_a_camera_without_a_display_is_refused(run_dir, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    r = invoke("camera:0", "--run", run_dir, "--device", "cpu")
    assert_one_line_error(r, "camera:0 needs a window")


# ----------------------------------------------------------------------------- window
def test_show_steps_through_images_with_a_key_and_q_stops(run_dir, tmp_path, xvfb):
    """The real highgui window under Xvfb, driven by xdotool: space shows the next image,
    q stops; what was shown is written."""
    src = tmp_path / "frames"
    src.mkdir()
    for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg"]):
        cv2.imwrite(str(src / name), frame(i))
    cmd = [sys.executable, "-m", "gthd", "predict", str(src), "--run", str(run_dir), "--device", "cpu", "--show", "-o", str(tmp_path / "out")]
    p = subprocess.Popen(cmd, env=xvfb, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wid = None
        end = time.monotonic() + 60
        while time.monotonic() < end and wid is None and p.poll() is None:
            r = subprocess.run(["xdotool", "search", "--name", WINDOW], check=False, env=xvfb, capture_output=True, text=True)
            wid = r.stdout.split()[0] if r.stdout.strip() else None
            time.sleep(0.2)
        if not wid:
            p.kill()
            pytest.fail("the window never appeared: " + p.communicate()[0][-2000:])
        time.sleep(1.0)  # a key sent before the window is ready for it is lost
        subprocess.run(["xdotool", "windowactivate", "--sync", wid], check=False, env=xvfb, capture_output=True)
        subprocess.run(["xdotool", "key", "--window", wid, "space"], env=xvfb, check=True)
        end = time.monotonic() + 20
        while not (tmp_path / "out" / "b.jpg").exists() and time.monotonic() < end:  # b is written, then shown
            time.sleep(0.1)
        time.sleep(0.5)
        subprocess.run(["xdotool", "key", "--window", wid, "q"], env=xvfb, check=True)
        out, _ = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 0, out
    assert "stopped after 2 frames" in out
    assert [r["source"] for r in read_jsonl(tmp_path / "out" / "predictions.jsonl")] == ["a.jpg", "b.jpg"]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.jpg")) == ["a.jpg", "b.jpg"]
