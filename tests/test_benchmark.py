"""`gthd benchmark` end to end with a tiny profile: trains, scores, writes the leaderboard,
and a re-run reuses the checkpoints and gives the same numbers."""

import json

import cv2
import pytest
from click.testing import CliRunner

from gthd.benchmark.leaderboard import read_leaderboard
from gthd.benchmark.train import load_skeleton_crops
from gthd.calibration.files import Calibration
from gthd.cli import main
from gthd.dataset.build import build_dataset
from gthd.dataset.schema import open_dataset
from gthd.geometry import Camera, Transform
from gthd.session import Session
from gthd.sim.rig import RigConfig
from gthd.sim.simulate import simulate
from gthd.sim.truth import session_truth


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("bm")
    simulate(root / "s", 1, RigConfig(duration_s=6.0), boards=0, clicks=0)
    gt = session_truth(Session.open(root / "s"))
    cal = Calibration(Camera.from_dict(gt["camera"]), Transform.from_dict(gt["T_cam_leap"]), gt["clock"]["offset_ns"], {})
    build_dataset([root / "s"], [cal], root / "d.h5", nohand_share=0.3)
    profile = {
        "name": "tiny",
        "epochs": 1,
        "batch_size": 8,
        "lr": 0.002,
        "max_samples": 24,
        "num_workers": 0,
        "frame_size": [96, 64],
        "widths": {"multiscale_skeleton": 4, "multiscale_plain": 4, "unet_heatmaps": 4, "resnet50_regression": 0.0625, "skeleton_unet": 4, "box_regressor": 4},
        "thicknesses": ["thin", "thick"],
        "inherits": "paper",
        "deterministic": True,
    }  # the paper's recipe, tiny
    (root / "tiny.json").write_text(json.dumps(profile))
    return root


def test_benchmark_trains_scores_and_reruns_the_same(tiny):
    args = ["benchmark", str(tiny / "d.h5"), "--profile", str(tiny / "tiny.json"), "--out", str(tiny / "run")]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    for f in ("leaderboard.md", "leaderboard.csv", "leaderboard.json", "pck.png", "thresholds.png", "qualitative.png", "config.json", "run.json"):
        assert (tiny / "run" / f).stat().st_size > 0
    board = read_leaderboard(tiny / "run" / "leaderboard.json")
    assert {row["method"] for row in board["pose"]} == {
        "ours",
        "ours, true skeleton",
        "ours, end to end (detector's box)",
        "ours w/o skeleton",
        "single-scale heatmaps (UNet)",
        "direct regression (Gomez et al.)",
        "constant pose (training mean)",
    }
    # one detector per thickness of the profile, and the box baseline, named honestly
    assert [row["method"] for row in board["detection"]] == [
        "skeleton UNet (ours), thin skeleton",
        "skeleton UNet (ours), thick skeleton",
        "box-regression CNN (stand-in for Faster R-CNN)",
    ]
    # the pipeline row and the true-skeleton row are the same network fed different skeletons
    rows = {row["method"]: row for row in board["pose"]}
    assert rows["ours"]["params_m"] == rows["ours, true skeleton"]["params_m"]
    assert rows["ours"]["mjpe_px"] != rows["ours, true skeleton"]["mjpe_px"]
    # every row is measured against the constant pose, and carries a median error
    assert rows["constant pose (training mean)"]["vs_constant"] == 1.0 and rows["constant pose (training mean)"]["train_s"] == 0
    gt_crops = [r for m, r in rows.items() if "end to end" not in m]  # (a tiny detector may find no hand: NaN there)
    assert all(r["vs_constant"] == pytest.approx(r["mjpe_px"] / rows["constant pose (training mean)"]["mjpe_px"]) for r in gt_crops)
    assert all(r["median_px"] > 0 and r["seeds"] == 1 for r in gt_crops)
    # the end-to-end row: every test hand frame through detector + crop + pose, misses counted
    e2e = rows["ours, end to end (detector's box)"]
    assert 0 <= e2e["found"] <= 1 and e2e["missed"] >= 0 and 0 <= e2e["pck_0.2"] <= 1
    # "ours" trained on the thick detector's skeletons of the training crops (the paper's input)
    cfg = json.loads((tiny / "run" / "ours" / "train.json").read_text())["config"]
    assert cfg["skeleton_crops"].endswith("skeleton-unet-thick/skeletons-train.npz")
    with open_dataset(tiny / "d.h5") as f:
        n_train_hands = int(((f["meta/split"][...] == 0) & f["labels/has_hand"][...]).sum())
    assert len(load_skeleton_crops(cfg["skeleton_crops"])) == n_train_hands
    # run.json names what gthd predict loads: the thick detector with its chosen threshold
    run = json.loads((tiny / "run" / "run.json").read_text())
    assert run["format"] == "gthd-benchmark-run" and run["detector"]["thickness"] == "thick"
    assert run["detector"]["threshold_pixels"] == board["detection"][1]["threshold"]
    assert all((tiny / "run" / p["checkpoint"]).is_file() for p in run["pose"])
    img = cv2.imread(str(tiny / "run" / "qualitative.png"))
    assert img.shape[1] == 3 * (192 + 4)  # direct regression | ours | ground truth
    # what gthd predict loads from it runs on a frame of the session
    from gthd.benchmark.predict import load_run

    pipe = load_run(tiny / "run", "ours")
    assert pipe.threshold == run["detector"]["threshold_pixels"] and pipe.frame_size == (96, 64)
    d = pipe(Session.open(tiny / "s").image(10))
    assert isinstance(d.has_hand, bool) and (d.keypoints is None or d.keypoints.shape == (21, 2))
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
    r = CliRunner().invoke(
        main, ["benchmark", str(tmp_path / "x.h5"), "--profile", str(tiny / "tiny.json"), "--out", str(tmp_path / "r")], catch_exceptions=False
    )
    assert r.exit_code == 1 and "not an HDF5 file" in r.output


def test_a_run_folder_of_another_config_or_version_is_refused(tiny, tmp_path):
    args = ["benchmark", str(tiny / "d.h5"), "--profile", str(tiny / "tiny.json"), "--out", str(tmp_path / "run")]
    profile = json.loads((tiny / "tiny.json").read_text())
    profile.update(methods=["direct regression (Gomez et al.)"], detector=False)
    (tmp_path / "p.json").write_text(json.dumps(profile))
    args[3] = str(tmp_path / "p.json")
    assert CliRunner().invoke(main, args, catch_exceptions=False).exit_code == 0
    # the same folder, another learning rate: refused, naming the difference
    profile["lr"] = 0.01
    (tmp_path / "p.json").write_text(json.dumps(profile))
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "trained with another config (lr differ)" in r.output
    # the same folder, the dataset rebuilt with other splits: refused
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    (tmp_path / "run" / "run.json").write_text(json.dumps({**run, "dataset_fingerprint": "0" * 16}))
    profile["lr"] = 0.002
    (tmp_path / "p.json").write_text(json.dumps(profile))
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 1 and "trained on other data" in r.output
    (tmp_path / "run" / "run.json").write_text(json.dumps(run))
    r = CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)  # the same again: reused
    assert r.exit_code == 0
    board = json.loads(r.stdout)  # --json: the leaderboard and nothing else on stdout
    assert board == json.loads((tmp_path / "run" / "leaderboard.json").read_text())
    assert [row["method"] for row in board["pose"]][:1] and board["format"] == "gthd-leaderboard"
    # a run folder written by a newer gthd
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    (tmp_path / "run" / "run.json").write_text(json.dumps({**run, "format_version": 99}))
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "cannot extend" in r.output and "upgrade gthd" in r.output


def test_the_shipped_profile_files_are_the_built_in_profiles():

    from gthd.benchmark.run import PROFILES, SHIPPED_PROFILES, Profile

    root = SHIPPED_PROFILES  # inside the package: usable by name outside the repository
    for name, built_in in PROFILES.items():
        assert Profile.load(str(root / f"{name}.json")) == built_in
    assert Profile.load("long") == Profile.load("long.json") == Profile.load(str(root / "long.json"))
    # every other shipped profile loads too, and is the quick recipe made longer or narrower
    others = {p.stem: Profile.load(str(p)) for p in root.glob("*.json") if p.stem not in PROFILES}
    assert {"long", "ours-long", "thickness"} <= set(others)
    for profile in others.values():
        assert (profile.lr, profile.schedule, profile.overrides) == (PROFILES["quick"].lr, "cosine", PROFILES["quick"].overrides)
        assert profile.decode == PROFILES["quick"].decode == "bone-tree"  # the quick profiles: the bone-tree decode
    assert PROFILES["paper"].decode == "argmax"  # the paper's protocol: its argmax


def test_the_decode_field_is_checked():
    from gthd.benchmark.run import Profile

    assert Profile("x", epochs=1, batch_size=8).decode == "argmax"  # the paper's, unless a profile says
    with pytest.raises(ValueError, match="decode must be one of argmax, bone-tree, got 'softmax'"):
        Profile("x", epochs=1, batch_size=8, decode="softmax")


def test_the_bone_tree_decode_rescores_a_run_without_retraining(tiny, tmp_path):
    """A run trained and scored with the argmax, scored again with "decode": "bone-tree":
    nothing retrains, run.json gains the prior of the training labels, only the heatmap
    rows may change, and gthd predict decodes with the prior."""
    from gthd.benchmark.evaluate import fit_bone_prior
    from gthd.benchmark.predict import load_run

    profile = json.loads((tiny / "tiny.json").read_text())
    profile.update(methods=["ours", "direct regression (Gomez et al.)"], thicknesses=["thick"], box_baseline=False)
    (tmp_path / "p.json").write_text(json.dumps(profile))
    args = ["benchmark", str(tiny / "d.h5"), "--profile", str(tmp_path / "p.json"), "--out", str(tmp_path / "run")]
    assert CliRunner().invoke(main, args, catch_exceptions=False).exit_code == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["decode"] == "argmax" and "bone_prior" not in run  # the paper's profile: its argmax
    assert load_run(tmp_path / "run", "ours").codec.bone_prior is None
    before = read_leaderboard(tmp_path / "run" / "leaderboard.json")
    weights = {p: p.read_bytes() for p in (tmp_path / "run").glob("*/last.pt")}
    mtimes = {p: p.stat().st_mtime_ns for p in weights}

    (tmp_path / "p.json").write_text(json.dumps({**profile, "decode": "bone-tree"}))
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert {p: p.stat().st_mtime_ns for p in weights} == mtimes and all(p.read_bytes() == b for p, b in weights.items())  # nothing retrained
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    prior = fit_bone_prior(str(tiny / "d.h5"), "train")
    assert run["decode"] == "bone-tree" and run["bone_prior"]["bones"] == [list(b) for b in prior.bones]
    assert run["bone_prior"]["mean"] == pytest.approx(prior.mean.tolist()) and run["bone_prior"]["sd"] == pytest.approx(prior.sd.tolist())
    after = read_leaderboard(tmp_path / "run" / "leaderboard.json")
    assert after["config"]["profile"]["decode"] == "bone-tree" and before["config"]["profile"]["decode"] == "argmax"
    assert "decode: bone-tree" in (tmp_path / "run" / "leaderboard.md").read_text()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["profile"]["decode"] == "bone-tree"
    # the rows without heatmaps score the same; the heatmap rows are decoded anew
    scores = ("mjpe_px", "median_px", "epe_px", "pck_0.05", "pck_0.1", "pck_0.2", "auc")
    rows = lambda board: {r["method"]: {k: r[k] for k in scores} for r in board["pose"]}  # noqa: E731
    unchanged = {"direct regression (Gomez et al.)", "constant pose (training mean)"}
    assert {m: rows(before)[m] for m in unchanged} == {m: rows(after)[m] for m in unchanged}
    changed = {m for m in rows(before) if rows(before)[m] != rows(after)[m]}
    assert changed and changed <= {"ours", "ours, true skeleton", "ours, end to end (detector's box)"}  # (crafted maps: test_evaluate)
    # gthd predict decodes as the run was scored: the same prior
    pipe = load_run(tmp_path / "run", "ours")
    assert pipe.decode == "bone-tree" and pipe.codec.bone_prior.mean.tolist() == pytest.approx(prior.mean.tolist())


def test_seeds_train_each_model_again_and_report_mean_and_std(tiny, tmp_path):
    profile = json.loads((tiny / "tiny.json").read_text())
    profile.update(methods=["direct regression (Gomez et al.)"], detector=False)
    (tmp_path / "p.json").write_text(json.dumps(profile))
    args = ["benchmark", str(tiny / "d.h5"), "--profile", str(tmp_path / "p.json"), "--out", str(tmp_path / "run"), "--seed", "3", "--seeds", "2"]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    # the first seed in the run folder (what gthd predict loads), the next in seeds/<seed>/
    first = json.loads((tmp_path / "run" / "direct-regression-gomez-et-al" / "train.json").read_text())["config"]
    second = json.loads((tmp_path / "run" / "seeds" / "4" / "direct-regression-gomez-et-al" / "train.json").read_text())["config"]
    assert (first["seed"], second["seed"]) == (3, 4)
    board = read_leaderboard(tmp_path / "run" / "leaderboard.json")
    row = next(r for r in board["pose"] if r["method"] == "direct regression (Gomez et al.)")
    per_seed = [next(p for p in s["pose"] if p["method"] == row["method"])["mjpe_px"] for s in board["per_seed"]]
    assert [s["seed"] for s in board["per_seed"]] == [3, 4] and per_seed[0] != per_seed[1]  # two trainings, two results
    assert row["seeds"] == 2 and row["mjpe_px"] == pytest.approx(sum(per_seed) / 2)
    assert row["mjpe_px_std"] == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2**0.5)
    assert " ± " in (tmp_path / "run" / "leaderboard.md").read_text()
    # a re-run with more seeds reuses the two trained ones and adds the third
    r = CliRunner().invoke(main, args[:-1] + ["3"], catch_exceptions=False)
    assert r.exit_code == 0 and (tmp_path / "run" / "seeds" / "5").is_dir()
    again = read_leaderboard(tmp_path / "run" / "leaderboard.json")["per_seed"]
    assert [p["mjpe_px"] for p in again[1]["pose"]] == [p["mjpe_px"] for p in board["per_seed"][1]["pose"]] and len(again) == 3


def test_profile_overrides_set_a_models_own_fields():
    from gthd.benchmark.run import PROFILES, Profile, train_config

    quick = PROFILES["quick"]
    assert train_config("resnet50_regression", quick, "d.h5", 0).lr == quick.overrides["resnet50_regression"]["lr"] != quick.lr
    assert train_config("multiscale_skeleton", quick, "d.h5", 0).lr == quick.lr  # not overridden: the profile's
    with pytest.raises(ValueError, match="cannot be overridden"):
        Profile("x", epochs=1, batch_size=8, overrides={"resnet50_regression": {"model": "unet_heatmaps"}})
    with pytest.raises(ValueError, match="overrides"):
        Profile("x", epochs=1, batch_size=8, overrides={"resnet": {"lr": 0.1}})
