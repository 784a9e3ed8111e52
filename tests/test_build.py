"""`gthd build-dataset` against the simulated rig's ground truth, and its bad input."""

import json

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from gthd.calibration.files import Calibration, write_calibration
from gthd.cli import main
from gthd.dataset.build import build_dataset
from gthd.dataset.samples import skeleton_mask, to_crop
from gthd.dataset.schema import SPLITS, open_dataset, read_skeleton
from gthd.fileio import FormatError
from gthd.geometry import Camera, Transform
from gthd.session import Session
from gthd.sim.rig import RigConfig
from gthd.sim.simulate import simulate
from gthd.sim.truth import session_truth


def _true_calibration(path) -> Calibration:
    gt = session_truth(Session.open(path))
    return Calibration(Camera.from_dict(gt["camera"]), Transform.from_dict(gt["T_cam_leap"]), gt["clock"]["offset_ns"], {})


@pytest.fixture(scope="module")
def ideal(tmp_path_factory):
    """A session from a perfect tracker with no camera jitter, and its dataset."""
    root = tmp_path_factory.mktemp("ideal")
    simulate(root / "s", 2, RigConfig(duration_s=6.0, tracker_noise_mm=0.0, jitter_ms=0.0), boards=0, clicks=0)
    report = build_dataset([root / "s"], [_true_calibration(root / "s")], root / "d.h5")
    return root, report


def test_keypoints_match_the_truth_with_the_true_calibration(ideal):
    root, report = ideal
    gt = session_truth(Session.open(root / "s"))["frames"]
    with open_dataset(root / "d.h5") as f:
        has, kp, vis, box = f["labels/has_hand"][...], f["labels/keypoints"][...], f["labels/visible"][...], f["labels/box"][...]
        fi = f["meta/frame_index"][...]
        assert report.hand > 100 and has.sum() == report.hand
        errs = []
        for k in np.flatnonzero(has):
            true = gt[fi[k]]["hand"]
            assert true is not None
            v = vis[k]
            np.testing.assert_array_equal(v, true["in_image"])
            errs.append(np.abs(kp[k][v] - true["keypoints"][v]).max())
            # the box holds every visible joint
            assert np.all(kp[k][v] >= box[k][:2] - 1e-3) and np.all(kp[k][v] <= box[k][2:] + 1e-3)
        assert max(errs) < 0.5, max(errs)


def test_masks_and_crops_agree_with_the_truth(ideal):
    root, _ = ideal
    gt = session_truth(Session.open(root / "s"))["frames"]
    with open_dataset(root / "d.h5") as f:
        has = f["labels/has_hand"][...]
        for k in np.flatnonzero(has)[::15]:
            true = gt[f["meta/frame_index"][k]]["hand"]
            mask = read_skeleton(f, k)
            assert mask.shape == (480, 640)
            ref = skeleton_mask(true["keypoints"], true["in_image"], (640, 480)) > 64
            got = mask > 64
            assert (got & ref).sum() / (got | ref).sum() > 0.9  # the truth's skeleton, drawn as the paper says
            crop = cv2.imdecode(f["images/crop_jpeg"][k], cv2.IMREAD_COLOR)
            assert crop.shape == (128, 128, 3)
            kc = f["labels/keypoints_crop"][k]
            np.testing.assert_allclose(kc, to_crop(f["labels/keypoints"][k], f["labels/crop_box"][k]), atol=1e-3)
            assert np.all((kc[true["in_image"]] > -0.5) & (kc[true["in_image"]] < 127.5))


def test_splits_are_disjoint_and_in_proportion(ideal, tmp_path):
    root, report = ideal
    with open_dataset(root / "d.h5") as f:
        split = f["meta/split"][...]
        n = len(split)
        for i, frac in enumerate((0.75, 0.10, 0.15)):
            assert abs((split == i).sum() - frac * n) <= 1
        assert report.splits == {s: int((split == i).sum()) for i, s in enumerate(SPLITS)}
    # by session: two sessions, each wholly in one split
    simulate(tmp_path / "b", 5, RigConfig(duration_s=3.0), boards=0, clicks=0)
    cal = _true_calibration(root / "s")
    cal_b = _true_calibration(tmp_path / "b")
    build_dataset([root / "s", tmp_path / "b"], [cal, cal_b], tmp_path / "d.h5", split_by="session")
    with open_dataset(tmp_path / "d.h5") as f:
        sess, split = f["meta/session"][...], f["meta/split"][...]
        for k in (0, 1):
            assert len(set(split[sess == k].tolist())) == 1


def test_nohand_samples_rarely_hide_a_hand(tmp_path):
    simulate(tmp_path / "s", 0, RigConfig(duration_s=20.0), boards=0, clicks=0)
    gt = session_truth(Session.open(tmp_path / "s"))["frames"]
    r = build_dataset([tmp_path / "s"], [_true_calibration(tmp_path / "s")], tmp_path / "d.h5", nohand_share=0.5)
    with open_dataset(tmp_path / "d.h5") as f:
        fi = f["meta/frame_index"][...][~f["labels/has_hand"][...]]
    visible = [gt[i]["hand"] is not None and gt[i]["hand"]["in_image"].sum() >= 5 for i in fi]
    assert len(fi) > 30 and np.mean(visible) < 0.15
    assert r.left_out["nohand_near_hand"] > 0


def test_a_second_hand_never_takes_over_and_hand_picks_a_side(tmp_path):
    """Two hands, listed in alternating order as LeapC may, all of confidence 1.0: the
    labels stay on the hand followed from the start, and --hand picks one side."""
    simulate(tmp_path / "s", 1, RigConfig(duration_s=3.0, tracker_noise_mm=0.0, jitter_ms=0.0), boards=0, clicks=0)
    cal = _true_calibration(tmp_path / "s")
    write_calibration(tmp_path / "cal.json", cal)

    def build(name, *opts):
        args = ["build-dataset", str(tmp_path / "s"), "--calibration", str(tmp_path / "cal.json"), "-o", str(tmp_path / name), "--workers", "1"]
        r = CliRunner().invoke(main, args + list(opts), catch_exceptions=False)
        assert r.exit_code == 0, r.output
        with open_dataset(tmp_path / name) as f:
            has = f["labels/has_hand"][...]
            return f["meta/frame_index"][...][has], f["labels/keypoints"][...][has], f.attrs["hand"]

    fi, kp, _ = build("one.h5")  # one hand: the labels to keep
    assert len(fi) > 20
    lines = (tmp_path / "s" / "tracker.jsonl").read_text().splitlines()
    for k in range(1, len(lines)):  # after the header: the same hand, then a left one 40 mm away
        rec = json.loads(lines[k])
        if rec["hands"]:
            real = {**rec["hands"][0], "type": "right"}
            other = {**real, "id": 99_999, "type": "left", "confidence": 1.0,
                     "joints": (np.array(real["joints"]) + [40.0, 0.0, 0.0]).tolist()}  # fmt: skip
            rec["hands"] = [real, other] if k % 2 else [other, real]
        lines[k] = json.dumps(rec)
    (tmp_path / "s" / "tracker.jsonl").write_text("\n".join(lines) + "\n")
    for opts, side in [((), "any"), (("--hand", "right"), "right")]:
        fi2, kp2, attr = build(f"{side}.h5", *opts)
        assert attr == side
        np.testing.assert_array_equal(fi2, fi)
        np.testing.assert_array_equal(kp2, kp)
    fi_left, kp_left, attr = build("left.h5", "--hand", "left")
    common, a, b = np.intersect1d(fi, fi_left, return_indices=True)
    assert attr == "left" and len(common) > 20
    assert np.all(np.nanmax(np.abs(kp_left[b] - kp[a]), axis=(1, 2)) > 5)  # the other hand's labels


def test_same_inputs_same_dataset(ideal, tmp_path):
    root, _ = ideal
    build_dataset([root / "s"], [_true_calibration(root / "s")], tmp_path / "again.h5", workers=1)
    with open_dataset(root / "d.h5") as a, open_dataset(tmp_path / "again.h5") as b:
        for name in ("labels/keypoints", "labels/box", "labels/has_hand", "meta/split", "meta/frame_index"):
            np.testing.assert_array_equal(a[name][...], b[name][...])
        for k in range(0, a.attrs["num_samples"], 17):
            assert bytes(a["images/crop_jpeg"][k]) == bytes(b["images/crop_jpeg"][k])


def test_bad_input(tmp_path):
    simulate(tmp_path / "s", 1, RigConfig(duration_s=3.0), boards=0, clicks=0)
    cal = _true_calibration(tmp_path / "s")
    write_calibration(tmp_path / "cal.json", cal)
    # a corrupt frame is skipped and counted
    frames = sorted((tmp_path / "s" / "frames").iterdir())
    frames[10].write_bytes(b"not a jpeg")
    frames[11].write_bytes(frames[11].read_bytes()[:500])  # truncated
    r = CliRunner().invoke(
        main, ["build-dataset", str(tmp_path / "s"), "--calibration", str(tmp_path / "cal.json"), "-o", str(tmp_path / "a.h5")], catch_exceptions=False
    )
    assert r.exit_code == 0, r.output
    assert "2 corrupt frames" in r.output
    # a truncated session (killed capture: torn last line, manifest never finalised) builds what it can
    m = json.loads((tmp_path / "s" / "manifest.json").read_text())
    m["status"] = "recording"
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(m))
    with open(tmp_path / "s" / "tracker.jsonl", "a") as fh:
        fh.write('{"frame_id": 9999, "t_dev')
    r = CliRunner().invoke(
        main, ["build-dataset", str(tmp_path / "s"), "--calibration", str(tmp_path / "cal.json"), "-o", str(tmp_path / "b.h5")], catch_exceptions=False
    )
    assert r.exit_code == 0 and "not finalised" in r.output and "torn" in r.output
    # NaN joints in the tracker stream are left out and counted
    lines = (tmp_path / "s" / "tracker.jsonl").read_text().splitlines()[:-1]
    for k in range(50, 60):
        rec = json.loads(lines[k])
        if rec["hands"]:
            rec["hands"][0]["joints"][3][0] = float("nan")
        lines[k] = json.dumps(rec)
    (tmp_path / "s" / "tracker.jsonl").write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(
        main, ["build-dataset", str(tmp_path / "s"), "--calibration", str(tmp_path / "cal.json"), "-o", str(tmp_path / "c.h5")], catch_exceptions=False
    )
    assert r.exit_code == 0 and "0 with NaN joints" not in r.output
    # a calibration for another resolution: one line, nothing written
    big = Calibration(Camera(cal.camera.K, cal.camera.dist, 1280, 960), cal.T_cam_leap, cal.clock_offset_ns, {})
    write_calibration(tmp_path / "big.json", big)
    r = CliRunner().invoke(
        main, ["build-dataset", str(tmp_path / "s"), "--calibration", str(tmp_path / "big.json"), "-o", str(tmp_path / "d.h5")], catch_exceptions=False
    )
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "1280x960" in r.output and not (tmp_path / "d.h5").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".d.h5")]  # no half-written file either
    # an existing output is kept
    before = (tmp_path / "a.h5").read_bytes()
    r = CliRunner().invoke(
        main, ["build-dataset", str(tmp_path / "s"), "--calibration", str(tmp_path / "cal.json"), "-o", str(tmp_path / "a.h5")], catch_exceptions=False
    )
    assert r.exit_code == 1 and "exists" in r.output and (tmp_path / "a.h5").read_bytes() == before
    # a file of an unknown schema version
    with h5py.File(tmp_path / "a.h5", "r+") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(FormatError, match="schema version 99"):
        open_dataset(tmp_path / "a.h5")
    r = CliRunner().invoke(main, ["inspect", str(tmp_path / "a.h5")], catch_exceptions=False)
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "schema version 99" in r.output


def test_inspect_and_sheet(ideal, tmp_path):
    root, _ = ideal
    r = CliRunner().invoke(main, ["inspect", str(root / "d.h5"), "--sheet", str(tmp_path / "sheet.png"), "-n", "6"], catch_exceptions=False)
    assert r.exit_code == 0 and "splits: train" in r.output and "hand size" in r.output
    assert cv2.imread(str(tmp_path / "sheet.png")) is not None


def test_the_stored_skeleton_patch_is_the_whole_frame_mask():
    from gthd.dataset.samples import skeleton_patch

    rng = np.random.default_rng(0)
    for _ in range(20):
        kp = rng.uniform([-50, -30], [690, 500], (21, 2))
        vis = rng.random(21) > 0.2
        full = skeleton_mask(kp, vis, (640, 480))
        patch, (x, y) = skeleton_patch(kp, vis, (640, 480))
        pasted = np.zeros_like(full)
        pasted[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
        np.testing.assert_array_equal(pasted, full)
