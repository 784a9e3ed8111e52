"""Bad input to the benchmark stage gives one clear line, trains nothing, writes nothing;
and a run is known by its content, not by how its paths are spelled.

Hostile and damaged checkpoints under ``gthd benchmark`` (resume) and ``gthd predict``
(a real subprocess: a pickle that would run ``os.system`` must not), a run.json that
points out of its folder, partial and mistyped profiles, and the resume of a run whose
dataset and folder are spelled otherwise, moved or renamed (a tiny one-epoch model).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gthd.benchmark.run import PROFILES, Profile
from gthd.cli import main
from gthd.dataset.samples import make_sample
from gthd.dataset.schema import DatasetWriter

W, H = 160, 120
MODEL = "direct-regression-gomez-et-al"  # the folder of the one model the tiny profile trains
TINY = {"epochs": 1, "batch_size": 4, "max_samples": 8, "warmup_steps": 0, "detector": False,
        "methods": ["direct regression (Gomez et al.)"], "widths": {"resnet50_regression": 0.0625}}  # fmt: skip
"""A partial profile: the rest comes from quick."""


class Hostile:
    """Unpickled, it runs a shell command: what a checkpoint from a stranger may hold."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_dataset(path: Path, seed: int) -> Path:
    """A small dataset: hands in every split (train 12, val 4, test 8), 160 x 120 frames."""
    rng = np.random.default_rng(seed)
    with DatasetWriter(path) as w:
        for i in range(24):
            img = np.full((H, W, 3), 80, np.uint8)
            cv2.circle(img, (int(rng.integers(50, 110)), int(rng.integers(40, 80))), 25, (200, 180, 160), -1)
            kp = rng.uniform([40, 30], [120, 90], (21, 2))
            jpeg = cv2.imencode(".jpg", img)[1].tobytes()
            w.add(make_sample(img, jpeg, kp, np.ones(21, bool), name=f"s/{i:03d}", frame_index=i, split=0 if i < 12 else 1 if i < 16 else 2))
    return path


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faults-bm")
    write_dataset(root / "base.h5", seed=0)
    write_dataset(root / "other.h5", seed=1)  # other labels: another dataset
    (root / "tiny.json").write_text(json.dumps(TINY))
    return root


def invoke(*args):
    """The CLI in this process (training twice in subprocesses would be slow)."""
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(exit_code: int, stderr: str, *fragments: str) -> str:
    assert exit_code != 0
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def gthd(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gthd", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------- checkpoints
def _damage(path: Path, kind: str, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "hostile pickle":
        torch.save({"model": Hostile(marker), "config": {}, "epoch": 1}, path)
    elif kind == "garbage":
        path.write_bytes(b"PK\x03\x04 not really a zip, not a pickle" * 3)
    elif kind == "not a checkpoint":
        torch.save([1, 2, 3], path)
    else:
        raise ValueError(kind)


DAMAGE = {
    "hostile pickle": "unsupported GLOBAL posix.system",
    "garbage": "not a readable checkpoint",
    "not a checkpoint": "not a gthd checkpoint (it holds a list)",
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_benchmark_refuses_a_damaged_or_hostile_checkpoint_in_its_run_folder(datasets, tmp_path, kind):
    marker = tmp_path / "PWNED"
    ckpt = tmp_path / "run" / MODEL / "last.pt"
    _damage(ckpt, kind, marker)
    r = gthd("benchmark", datasets / "base.h5", "--profile", datasets / "tiny.json", "--out", "run", cwd=tmp_path)
    assert_one_line_error(r.returncode, r.stderr, f"{MODEL}/last.pt", DAMAGE[kind], "delete it")
    assert not marker.exists()  # the pickle's command never ran
    assert sorted(p.name for p in (tmp_path / "run").rglob("*")) == [MODEL, "last.pt"]  # nothing trained or written


def _run_json(run: Path, detector_checkpoint: str = "det/last.pt") -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.json").write_text(json.dumps({
        "format": "gthd-benchmark-run", "format_version": 1, "gthd_version": "0.1.0", "crop_margin": 0.25,
        "pose": [{"method": "ours", "builder": "multiscale_skeleton", "model_kwargs": {"width": 4}, "checkpoint": "ours/last.pt"}],
        "detector": {"method": "skeleton UNet (ours)", "builder": "skeleton_unet", "model_kwargs": {"width": 4, "depth": 2},
                     "checkpoint": detector_checkpoint, "frame_size": [64, 48], "threshold_pixels": 1.0},
    }))  # fmt: skip


@pytest.mark.parametrize("kind", ["hostile pickle", "garbage"])
def test_predict_refuses_a_damaged_or_hostile_checkpoint(tmp_path, kind):
    marker = tmp_path / "PWNED"
    _run_json(tmp_path / "run")
    for name in ("det", "ours"):
        _damage(tmp_path / "run" / name / "last.pt", kind, marker)
    cv2.imwrite(str(tmp_path / "a.jpg"), np.full((H, W, 3), 90, np.uint8))
    r = gthd("predict", "a.jpg", "--run", "run", "--device", "cpu", "-o", "drawn", cwd=tmp_path)
    assert_one_line_error(r.returncode, r.stderr, "det/last.pt", DAMAGE[kind], "delete it")
    assert not marker.exists() and not (tmp_path / "drawn").exists()


@pytest.mark.parametrize("checkpoint, fragment", [("../../elsewhere/last.pt", "leads outside"), ("/etc/passwd", "is an absolute path")])
def test_predict_refuses_a_run_json_pointing_out_of_its_folder(tmp_path, checkpoint, fragment):
    _run_json(tmp_path / "runs" / "run", detector_checkpoint=checkpoint)
    _damage(tmp_path / "elsewhere" / "last.pt", "hostile pickle", tmp_path / "PWNED")  # never opened
    cv2.imwrite(str(tmp_path / "a.jpg"), np.full((H, W, 3), 90, np.uint8))
    r = invoke("predict", tmp_path / "a.jpg", "--run", tmp_path / "runs" / "run", "--device", "cpu")
    assert_one_line_error(r.exit_code, r.stderr, "run.json: 'detector.checkpoint'", repr(checkpoint), fragment)
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "a-predict").exists()


# ------------------------------------------------------------------------ profiles
def test_a_partial_profile_inherits_quick_and_says_so(tmp_path):
    (tmp_path / "mine.json").write_text(json.dumps({"epochs": 3, "seeds": 2}))
    p = Profile.load(str(tmp_path / "mine.json"))
    quick = PROFILES["quick"]
    assert (p.name, p.epochs, p.seeds, p.inherits) == ("mine", 3, 2, "quick")
    assert (p.frame_size, p.widths, p.schedule, p.box_baseline) == (quick.frame_size, quick.widths, quick.schedule, quick.box_baseline)
    (tmp_path / "big.json").write_text(json.dumps({"inherits": "paper", "epochs": 3}))
    p = Profile.load(str(tmp_path / "big.json"))
    assert (p.inherits, p.epochs, p.widths, p.num_workers) == ("paper", 3, PROFILES["paper"].widths, PROFILES["paper"].num_workers)


def test_a_runs_config_and_the_shipped_names_are_profiles(tmp_path, monkeypatch):
    """A run's config.json runs the same profile again; the shipped profiles load by name
    from any folder (not only inside the repository)."""
    from dataclasses import asdict

    long = Profile.load("long")
    (tmp_path / "config.json").write_text(json.dumps({"format": "gthd-benchmark-config", "format_version": 1, "profile": asdict(long), "seed": 0}))
    monkeypatch.chdir(tmp_path)
    assert Profile.load("config.json") == long
    old = {k: v for k, v in asdict(long).items() if k != "decode"}  # a run of a gthd before the bone-tree decode
    (tmp_path / "old.json").write_text(json.dumps({"format": "gthd-benchmark-config", "format_version": 1, "profile": old, "seed": 0}))
    assert Profile.load(str(tmp_path / "old.json")).decode == "argmax"  # it was scored with the argmax: run again, exactly
    assert Profile.load("long.json") == long and long.epochs == 30 and Profile.load("thickness").thicknesses == ["thin", "medium", "thick"]
    with pytest.raises(ValueError, match="unknown profile 'lng': quick, paper, long, ours-long"):
        Profile.load("lng")


@pytest.mark.parametrize("text, fragments", [
    ('{"epoch": 3}', ["unknown profile field 'epoch' (did you mean 'epochs'?)"]),
    ('{"colour": "red"}', ["unknown profile field 'colour'; the fields are name, epochs"]),
    ('{"epochs": "ten"}', ["field 'epochs' must be an integer >= 1, got \"ten\" (a string)"]),
    ('{"lr": -0.1}', ["field 'lr' must be a number > 0, got -0.1"]),
    ('{"detector": "yes"}', ["field 'detector' must be true or false"]),
    ('{"frame_size": [256]}', ["field 'frame_size' must be [width, height]"]),
    ('{"frame_size": [100, 70]}', ["frame_size must be multiples of 16"]),
    ('{"overrides": {"resnet50_regression": {"lr": "fast"}}}', ["overrides['resnet50_regression']: 'lr' must be a number > 0"]),
    ('{"decode": "mean"}', ["field 'decode' must be argmax or bone-tree, got \"mean\" (a string)"]),
    ('{"epochs": 3', ["not a readable profile JSON file"]),
    ('[{"epochs": 3}]', ["a profile is a JSON object of fields, got a list"]),
], ids=["typo", "unknown", "type", "range", "bool", "shape", "multiple", "override", "decode", "not json", "not an object"])  # fmt: skip
def test_a_bad_profile_is_one_line_before_anything_runs(datasets, tmp_path, text, fragments):
    (tmp_path / "my.json").write_text(text)
    r = invoke("benchmark", datasets / "base.h5", "--profile", tmp_path / "my.json", "--out", tmp_path / "run")
    assert_one_line_error(r.exit_code, r.stderr, "my.json: ", *fragments)
    assert isinstance(r.exception, SystemExit) and not (tmp_path / "run").exists()


# ------------------------------------------------------------------- resume by content
def test_a_run_resumes_whatever_the_spelling_of_its_paths_and_refuses_other_data(datasets, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(datasets / "base.h5", "base.h5")
    shutil.copy(datasets / "tiny.json", "tiny.json")
    r = invoke("benchmark", "base.h5", "--profile", "tiny.json", "--out", "run")
    assert r.exit_code == 0, r.output
    trained = (tmp_path / "run" / MODEL / "last.pt").read_bytes()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["profile"]["inherits"] == "quick" and config["profile"]["epochs"] == 1  # the resolved profile, recorded

    def interrupted(run: Path) -> None:
        """As a run killed after the model's last epoch, before its train.json and run.json."""
        (run / MODEL / "train.json").unlink()
        (run / "run.json").unlink()

    # the same dataset and folder, spelled as absolute paths: resumes (nothing retrained)
    interrupted(tmp_path / "run")
    r = invoke("benchmark", tmp_path / "base.h5", "--profile", tmp_path / "tiny.json", "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / MODEL / "last.pt").read_bytes() == trained
    # the run folder moved and the dataset renamed elsewhere: resumes too
    (tmp_path / "moved").mkdir()
    (tmp_path / "data").mkdir()
    shutil.move("run", "moved/run-2")
    shutil.move("base.h5", "data/renamed.h5")
    interrupted(tmp_path / "moved" / "run-2")
    r = invoke("benchmark", "data/renamed.h5", "--profile", "tiny.json", "--out", "moved/run-2")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "moved" / "run-2" / MODEL / "last.pt").read_bytes() == trained
    # another dataset under the very name of the first: refused, by run.json and by the checkpoint alone
    shutil.copy(datasets / "other.h5", "data/renamed.h5")
    r = invoke("benchmark", "data/renamed.h5", "--profile", "tiny.json", "--out", "moved/run-2")
    assert_one_line_error(r.exit_code, r.stderr, "trained on other data")
    (tmp_path / "moved" / "run-2" / "run.json").unlink()
    r = invoke("benchmark", "data/renamed.h5", "--profile", "tiny.json", "--out", "moved/run-2")
    assert_one_line_error(r.exit_code, r.stderr, "trained with another config (data differ")
    # the same data, another config: refused
    shutil.copy(datasets / "base.h5", "data/renamed.h5")
    (tmp_path / "tiny.json").write_text(json.dumps({**TINY, "batch_size": 2}))
    r = invoke("benchmark", "data/renamed.h5", "--profile", "tiny.json", "--out", "moved/run-2")
    assert_one_line_error(r.exit_code, r.stderr, "trained with another config (batch_size differ)")
    assert (tmp_path / "moved" / "run-2" / MODEL / "last.pt").read_bytes() == trained
