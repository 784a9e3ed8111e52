"""`gthd benchmark` end to end with a tiny profile: trains, scores, writes the leaderboard,
and a re-run reuses the checkpoints and gives the same numbers."""

import json

import pytest
from click.testing import CliRunner

from gthd.benchmark.leaderboard import read_leaderboard
from gthd.calibration.files import Calibration
from gthd.cli import main
from gthd.dataset.build import build_dataset
from gthd.geometry import Camera, Transform
from gthd.session import Session
from gthd.sim.rig import RigConfig
from gthd.sim.simulate import simulate


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("bm")
    simulate(root / "s", 1, RigConfig(duration_s=6.0), boards=0, clicks=0)
    gt = Session.open(root / "s").ground_truth()
    cal = Calibration(Camera.from_dict(gt["camera"]), Transform.from_dict(gt["T_cam_leap"]), gt["clock"]["offset_ns"], {})
    build_dataset([root / "s"], [cal], root / "d.h5", nohand_share=0.3)
    profile = {"name": "tiny", "epochs": 1, "batch_size": 8, "lr": 0.002, "max_samples": 24, "num_workers": 0, "frame_size": [96, 64],
               "widths": {"multiscale_skeleton": 4, "multiscale_plain": 4, "unet_heatmaps": 4, "resnet50_regression": 0.0625, "skeleton_unet": 4}}
    (root / "tiny.json").write_text(json.dumps(profile))
    return root


def test_benchmark_trains_scores_and_reruns_the_same(tiny):
    args = ["benchmark", str(tiny / "d.h5"), "--profile", str(tiny / "tiny.json"), "--out", str(tiny / "run")]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    for f in ("leaderboard.md", "leaderboard.csv", "leaderboard.json", "pck.png", "config.json"):
        assert (tiny / "run" / f).stat().st_size > 0
    board = read_leaderboard(tiny / "run" / "leaderboard.json")
    assert {row["method"] for row in board["pose"]} == {"ours", "ours w/o skeleton", "single-scale heatmaps (UNet)", "direct regression (Gomez et al.)"}
    assert board["detection"][0]["method"].startswith("skeleton UNet")
    md = (tiny / "run" / "leaderboard.md").read_text()
    assert "paper's MJPE (GTHD)" in md and "5.51" in md  # the paper's own figure for "ours", marked
    # a re-run reuses the checkpoints (no training) and gives the same numbers
    r2 = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r2.exit_code == 0
    again = read_leaderboard(tiny / "run" / "leaderboard.json")
    assert [row["mjpe_px"] for row in again["pose"]] == [row["mjpe_px"] for row in board["pose"]]


def test_benchmark_bad_input(tiny, tmp_path):
    r = CliRunner().invoke(main, ["benchmark", str(tiny / "d.h5"), "--profile", "enormous"], catch_exceptions=False)
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "unknown profile" in r.output
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    r = CliRunner().invoke(main, ["benchmark", str(tmp_path / "x.h5"), "--profile", str(tiny / "tiny.json"), "--out", str(tmp_path / "r")], catch_exceptions=False)
    assert r.exit_code == 1 and "not an HDF5 file" in r.output


def test_the_shipped_profile_files_are_the_built_in_profiles():
    from pathlib import Path

    from gthd.benchmark.run import PROFILES, Profile

    root = Path(__file__).resolve().parents[1] / "benchmark" / "profiles"
    for name, built_in in PROFILES.items():
        assert Profile.load(str(root / f"{name}.json")) == built_in
