"""Every command of the CLI, driven through click's CliRunner on real inputs, in the order
a user runs them: simulate (and capture the simulated rig), look at the session, print a
board, calibrate (intrinsics, clicks, a detector), redraw the reports, build a dataset,
check it, export and import it, benchmark a tiny profile, predict on images. The last
check says no command was left out: a new command fails here until it is exercised."""

import json

import click
import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from gthd.benchmark.leaderboard import CONSTANT
from gthd.cli import main

TINY = {
    "name": "tiny",
    "epochs": 1,
    "batch_size": 8,
    "max_samples": 16,
    "num_workers": 0,
    "frame_size": [96, 64],
    "widths": {"multiscale_skeleton": 4, "multiscale_plain": 4, "unet_heatmaps": 4, "resnet50_regression": 0.0625, "skeleton_unet": 4, "box_regressor": 4},
    "methods": ["ours"],
    "thicknesses": ["thick"],
    "box_baseline": False,
    "deterministic": True,
}


def _leaves(group: click.Group, prefix: tuple = ()):
    """Every runnable command path: ("session", "info"), ("calibrate",) ..."""
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        if not isinstance(cmd, click.Group) or cmd.invoke_without_command:
            yield path
        if isinstance(cmd, click.Group):
            yield from _leaves(cmd, path)


class _Gthd:
    """CliRunner on ``main``, keeping which command each call ran."""

    def __init__(self):
        self.ran: set[tuple] = set()

    def __call__(self, *args) -> str:
        args = [str(a) for a in args]
        r = CliRunner().invoke(main, args, catch_exceptions=False)
        assert r.exit_code == 0, f"gthd {' '.join(args)}\n{r.output}"
        path, group = (), main
        for a in args:  # the command path: the leading names that are commands
            cmd = group.commands.get(a) if isinstance(group, click.Group) else None
            if cmd is None:
                break
            path, group = (*path, a), cmd
        self.ran.add(path)
        return r.stdout


@pytest.mark.timeout(600)
def test_every_command_on_real_inputs(tmp_path):
    gthd = _Gthd()
    s, cal = tmp_path / "s", tmp_path / "cal"

    out = gthd("simulate", s, "--seed", 5, "--duration", 4, "--boards", 12, "--clicks", 30)
    assert out.startswith(f"wrote {s}: ") and "24 board views, 30 clicks" in out
    out = gthd("capture", tmp_path / "cap", "--camera", "sim", "--tracker", "sim", "--duration", 2, "--speed", 0)
    assert f"wrote {tmp_path / 'cap'} (complete)" in out
    assert json.loads(gthd("session", "info", tmp_path / "cap", "--json"))["status"] == "complete"
    assert gthd("session", "check", s).splitlines()[-1].startswith("ok: ")
    assert gthd("session", "sheet", s, "-o", tmp_path / "sheet.png", "-n", 4) == f"wrote {tmp_path / 'sheet.png'} (4 frames)\n"
    assert cv2.imread(str(tmp_path / "sheet.png")).shape[2] == 3

    gthd("board", "charuco", "-o", tmp_path / "boards", "--dpi", 100)
    assert (tmp_path / "boards" / "charuco-8x6-30mm-22mm-DICT_5X5_100.json").is_file()
    out = gthd("calibrate", "intrinsics", s, "-o", tmp_path / "cam")
    assert "intrinsics.yaml" in out and (tmp_path / "cam" / "intrinsics.png").is_file()
    gthd(
        "calibrate", "--click", s, "--clicks", s / "clicks_simulated.jsonl", "--intrinsics", tmp_path / "cam" / "intrinsics.yaml", "-o", cal, "--bootstrap", 10
    )
    gthd("calibrate", "--auto", s, "--detector", "simulated", "-o", tmp_path / "auto", "--frames", 10, "--bootstrap", 10)
    for f in ("calibration.json", "report.txt", "overlay.png", "offset.png"):
        assert (cal / f).is_file() and (tmp_path / "auto" / f).is_file()
    report = gthd("calibrate", "report", cal / "calibration.json", "-o", tmp_path / "redrawn")
    assert report.splitlines()[0] == (cal / "report.txt").read_text().splitlines()[0]

    d = tmp_path / "d.h5"
    gthd("build-dataset", s, "--calibration", cal / "calibration.json", "-o", d, "--workers", 1)
    out = gthd("qa", s, "--calibration", cal / "calibration.json", "-o", tmp_path / "qa", "--no-time")
    assert (tmp_path / "qa" / "qa.json").is_file(), out
    summary = json.loads(gthd("inspect", d, "--json"))
    assert summary["samples"] > 0

    gthd("export", "coco", d, "-o", tmp_path / "coco")
    gthd("import", "coco", tmp_path / "coco" / "annotations" / "train.json", tmp_path / "coco" / "images", "-o", tmp_path / "back.h5")
    with h5py.File(d, "r") as a, h5py.File(tmp_path / "back.h5", "r") as b:
        train = (a["meta/split"][...] == 0) & a["labels/has_hand"][...]
        vis = a["labels/visible"][...][train]
        kp_a, kp_b = a["labels/keypoints"][...][train][vis], b["labels/keypoints"][...][b["labels/has_hand"][...]][vis]
    assert len(kp_a) > 0 and np.abs(kp_a - kp_b).max() < 0.01  # the same hands, the same keypoints (COCO keeps 2 decimals)
    from test_lsmv import make_lsmv

    make_lsmv(tmp_path / "lsmv", release=1, seqs=(1, 2), frames=2)
    assert gthd("import", "lsmv", tmp_path / "lsmv", "-o", tmp_path / "lsmv.h5").endswith(f"wrote {tmp_path / 'lsmv.h5'}\n")

    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    board = json.loads(gthd("benchmark", d, "--profile", tmp_path / "tiny.json", "-o", tmp_path / "run", "--json"))
    assert {r["method"] for r in board["pose"]} >= {"ours", CONSTANT, "ours, true skeleton"}
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["decode"] == "bone-tree" and len(run["bone_prior"]["sd"]) == 20  # quick's decode: predict decodes alike
    (tmp_path / "images").mkdir()
    for i in (0, 40):
        cv2.imwrite(str(tmp_path / "images" / f"{i}.png"), cv2.imread(str(s / "frames" / f"{i:06d}.jpg")))
    out = gthd("predict", tmp_path / "images", "--run", tmp_path / "run", "-o", tmp_path / "pred")
    assert out.startswith(f"wrote {tmp_path / 'pred'}: 2 drawn images")
    assert len((tmp_path / "pred" / "predictions.jsonl").read_text().splitlines()) == 2

    assert set(_leaves(main)) - gthd.ran == set()
