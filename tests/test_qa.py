"""gthd qa: each check on its own against glitches whose place is known, then the whole
tool on a simulated session with injected glitches, measured against the simulator's
glitch truth (not against the checks themselves)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gthd.cli import main
from gthd.hand import BONES
from gthd.qa import timing
from gthd.qa import tracker as tq
from gthd.sim.glitches import GLITCH_KINDS, _half_turn, parse_glitches, plan_events
from gthd.sim.kinematics import HandShape, forward_kinematics, pose_library
from gthd.sim.truth import session_truth

HZ = 110.0


# ------------------------------------------------------------------ a synthetic stream
def _stream(seconds: float = 5.0, noise_mm: float = 1.5, seed: int = 0):
    """A right hand moving and turning smoothly at 110 Hz, fingers flexing slowly, with
    the tracker's noise: times (T,) ns, joints (T, 21, 3) mm, the true joints, ids,
    and a function making the true joints with other angles."""
    rng = np.random.default_rng(seed)
    shape = HandShape.adult(1.0)
    t = np.arange(int(seconds * HZ)) / HZ
    base = pose_library(shape)["relaxed"]
    angles = base[None] + np.deg2rad(12) * np.sin(2 * np.pi * 0.4 * t)[:, None]

    def pose(ang):
        local = forward_kinematics(shape, ang, "right")
        yaw = 0.6 * np.sin(2 * np.pi * 0.3 * t)
        R = np.zeros((len(t), 3, 3))
        R[:, 0, 0] = R[:, 2, 2] = np.cos(yaw)
        R[:, 0, 2], R[:, 2, 0] = np.sin(yaw), -np.sin(yaw)
        R[:, 1, 1] = 1
        pos = np.stack([120 * np.sin(2 * np.pi * 0.25 * t), 250 + 60 * np.sin(2 * np.pi * 0.35 * t), 40 * np.cos(2 * np.pi * 0.2 * t)], axis=1)
        return np.einsum("tij,tkj->tki", R, local) + pos[:, None]

    true = pose(angles)
    joints = true + rng.normal(0, noise_mm, true.shape)
    t_ns = (1_000_000_000 + t * 1e9).astype(np.int64)
    return t_ns, joints, true, np.full(len(t), 7), angles, pose


def _found(t_ns, joints, ids, limits=tq.TrackerLimits()):
    d = tq.discontinuities(t_ns, joints, ids, limits)
    events = tq.find_events(d, limits)
    kind, spans = tq.glitch_spans(events, t_ns, ids, tq.still_frames(d, len(ids), limits), limits)
    return kind, spans


def test_clean_stream_has_no_glitch():
    t_ns, joints, _, ids, _, _ = _stream(noise_mm=2.0)
    kind, spans = _found(t_ns, joints, ids)
    assert spans == []
    score, flag = tq.bone_length_check(joints, ids)
    assert not flag.any()
    _, _, fast = tq.motion_check(tq.discontinuities(t_ns, joints, ids), len(ids))
    assert not fast.any()


@pytest.mark.parametrize("glitch", ["jump", "flip", "finger", "frozen"])
def test_tracker_glitches_are_found_where_they_are(glitch):
    t_ns, joints, true, ids, angles, pose = _stream()
    a, b = 200, 250  # the glitched frames, inclusive
    span = slice(a, b + 1)
    noise = joints - true
    if glitch == "jump":
        joints[span] += np.array([30.0, -20.0, 10.0])
    elif glitch == "flip":
        for k in range(a, b + 1):
            R = _half_turn(true[k, 9] - true[k, 0])
            c = joints[k, list(tq.PALM_JOINTS)].mean(axis=0)
            joints[k] = (joints[k] - c) @ R.T + c
    elif glitch == "finger":
        bent = angles.copy()
        bent[:, 5:8] = np.deg2rad([80, 100, 55])  # the index finger curled into a fist
        joints[span] = pose(bent)[span] + noise[span]
    else:
        joints[span] = true[a - 1] + noise[span]
    kind, spans = _found(t_ns, joints, ids)
    assert len(spans) == 1, spans
    s = spans[0]
    assert s["kind"] == glitch
    # a frozen hand is found from where it is still (within a few frames of its start)
    assert abs(s["first"] - a) <= (6 if glitch == "frozen" else 1) and abs(s["last"] - b) <= 1


def test_bone_lengths_that_change_are_flagged():
    t_ns, joints, _, ids, _, _ = _stream()
    bad = np.arange(100, 110)
    joints[bad, 5:9] = joints[bad, 5:6] + 1.4 * (joints[bad, 5:9] - joints[bad, 5:6])  # the index finger 40 % longer
    score, flag = tq.bone_length_check(joints, ids)
    assert flag[bad].all() and flag.sum() == len(bad)
    assert tq.bone_lengths(joints).shape == (len(ids), len(BONES))


def test_hand_type_volume_and_id_helpers():
    ids = np.array([-1, 3, 3, 3, 3, 3, -1, 4, 4, 5])
    assert tq.id_runs(ids) == [(1, 6), (7, 9), (9, 10)]
    assert tq.id_switches(ids).tolist() == [False] * 9 + [True]
    types = [None, "right", "left", "right", "right", "right", None, "left", "left", "right"]
    assert np.flatnonzero(tq.hand_type_check(types, ids)).tolist() == [2]
    palm = np.array([[0, 250, 0], [0, 700, 0], [600, 100, 0], [0, 50, 0]], float)
    joints = np.repeat(palm[:, None], 21, axis=1)
    margin, flag = tq.volume_check(joints)
    assert flag.tolist() == [False, True, True, True] and margin[0] > 50


def test_rigid_fit_recovers_a_motion():
    rng = np.random.default_rng(1)
    src = rng.normal(0, 50, (3, 21, 3))
    R = np.stack([_half_turn(rng.normal(0, 1, 3)) for _ in range(3)])
    dst = np.einsum("bij,bnj->bni", R, src) + np.array([1.0, 2.0, 3.0])
    R_fit, t_fit = tq.rigid_fit(src, dst)
    assert np.allclose(R_fit, R, atol=1e-9) and np.allclose(t_fit, [1, 2, 3], atol=1e-6)


# ------------------------------------------------------------------------- time check
def test_smoothing_and_interpolation_keep_linear_motion_and_ids():
    t = np.arange(40, dtype=np.int64) * 9_000_000
    j = np.zeros((40, 21, 3))
    j[..., 0] = t[:, None] / 1e6  # x in mm = time in ms
    ids = np.r_[np.full(20, 1), np.full(20, 2)]
    sm = timing.smooth_stream(t, j, ids)
    assert np.allclose(sm, j)
    q = np.array([t[5] + 4_500_000, t[19] + 4_500_000, t[39] + 1])
    out = timing.interpolate(q, t, j, ids, 50_000_000)
    assert np.isclose(out[0, 0, 0], q[0] / 1e6) and np.isnan(out[1:]).all()  # across an id change, past the end


def test_colour_model_prefers_the_hands_colour():
    fg = np.full(500, 7)
    bg = np.r_[np.full(450, 3), np.full(50, 7)]
    llr = timing.colour_model(fg, bg)
    assert llr[7] > 1 and llr[3] < -1


def test_outline_contrast_is_best_at_the_true_shift():
    """An image that is "hand" (+1) inside a drawn skeleton and not (-1) outside: the
    candidate whose skeleton is where the image's is costs least."""
    import cv2

    from gthd.hand import EDGES

    shape = HandShape.adult(1.0)
    local = forward_kinematics(shape, pose_library(shape)["spread"], "right")
    uv = local[:, :2] * 1.2 + np.array([160.0, 20.0])
    img = np.full((300, 320), -1.0, np.float32)
    radius = 9.0
    for a, b in EDGES:
        cv2.line(img, tuple(np.round(uv[a]).astype(int)), tuple(np.round(uv[b]).astype(int)), 1.0, int(2 * radius))
    shifts = np.arange(-8, 9, 2.0)  # px along x, standing for the candidates
    cand = uv[None] + np.stack([shifts, np.zeros_like(shifts)], axis=1)[:, None]
    pts, ok, sign = timing.edge_samples(cand, np.ones((len(shifts), 21), bool), np.full((len(shifts), 24), radius))
    cost = timing.appearance_costs(img, pts, ok, sign)
    assert shifts[np.argmin(cost)] == 0
    assert np.all(np.diff(cost[shifts >= 0]) > 0) and np.all(np.diff(cost[shifts <= 0]) < 0)


def test_an_offset_change_is_located_and_none_is_invented():
    rng = np.random.default_rng(0)
    d = timing.DELTAS_MS
    n = 600
    true = np.where(np.arange(n) < 350, 0.0, -15.0)
    w = rng.uniform(0.2, 2.0, n)[:, None]  # how much each frame moves: how sharp its curve is
    cost = w * ((d[None] - true[:, None] - rng.normal(0, 6, (n, 1))) / 10) ** 2
    t = np.arange(n, dtype=np.int64) * 33_000_000
    ch = timing.locate_change(t, cost, np.ones(n, int))
    assert ch.found and abs(ch.pair - 350) <= 15
    assert abs(ch.before.delta_ms) < 2 and abs(ch.after.delta_ms + 15) < 2
    steady = w * ((d[None] - rng.normal(0, 6, (n, 1))) / 10) ** 2
    ch = timing.locate_change(t, steady, np.ones(n, int))
    assert not ch.found and abs(ch.before.delta_ms) < 2 and ch.before.std_ms < 2
    wins = timing.window_offsets(t, cost, np.ones(n, int), window_s=4, step_s=2)
    assert len(wins) > 5 and abs(wins[0]["delta_ms"]) < 4 and abs(wins[-1]["delta_ms"] + 15) < 4


# ------------------------------------------------------------------ labels vs the image
def test_skeleton_evidence_and_pose_disagreement():
    from gthd.qa.evidence import pose_disagreement, skeleton_evidence

    shape = HandShape.adult(1.0)
    uv = forward_kinematics(shape, pose_library(shape)["open"], "right")[:, :2] * 0.5 + np.array([60.0, 5.0])
    mask = np.zeros((120, 120), np.float32)
    import cv2

    from gthd.hand import EDGES

    for a, b in EDGES:
        cv2.line(mask, tuple(np.round(uv[a]).astype(int)), tuple(np.round(uv[b]).astype(int)), 1.0, 3)
    vis = np.ones(21, bool)
    assert skeleton_evidence(mask, uv, vis) > 0.9  # the detector sees the labelled skeleton
    assert skeleton_evidence(mask, uv + [25, 0], vis) < 0.3  # labels beside the hand
    assert np.isnan(skeleton_evidence(mask, uv, np.zeros(21, bool)))
    pred = uv.copy()
    pred[5:9] += 30  # the network puts the index finger elsewhere
    assert pose_disagreement(uv, uv, vis) == 0 and pose_disagreement(pred, uv, vis) == 0
    pred[9:] += 30
    assert pose_disagreement(pred, uv, vis) == pytest.approx(np.hypot(30, 30))


def test_the_pose_check_decodes_as_the_run_was_scored(tmp_path, monkeypatch):
    """gthd qa --run: the pose network's heatmaps are decoded with run.json's decode (the
    bone-tree decode with its prior here), as gthd benchmark scored them."""
    import cv2
    from test_predict import _bone_tree, _rewrite, frame, make_run

    from gthd.dataset import codec
    from gthd.qa.evidence import score_frames

    run = make_run(tmp_path / "run")
    cv2.imwrite(str(tmp_path / "f.png"), frame())
    uv = np.stack([np.linspace(40, 120, 21), np.linspace(30, 90, 21)], -1)[None]  # (1, 21, 2) inside the 160 x 120 frame
    calls = []
    plain = codec.structured_choice
    monkeypatch.setattr(codec, "structured_choice", lambda *a, **k: calls.append(1) or plain(*a, **k))
    args = ([tmp_path / "f.png"], uv, np.ones((1, 21), bool), np.ones(1, bool))
    out = score_frames(run, *args)
    assert out["info"]["decode"] == "argmax" and not calls and np.isfinite(out["pose_px"]).all()
    _rewrite(run, **_bone_tree())
    out = score_frames(run, *args)
    assert out["info"]["decode"] == "bone-tree" and calls and np.isfinite(out["pose_px"]).all()


# ----------------------------------------------------------------- the simulator's side
def test_parse_glitches():
    assert parse_glitches("all") == GLITCH_KINDS
    assert parse_glitches("jump, flip") == ("flip", "jump")
    assert parse_glitches(None) == ()
    with pytest.raises(ValueError, match="unknown glitch 'spin'"):
        parse_glitches("flip,spin")


def test_planned_glitches_stay_inside_one_hand_id_and_apart():
    t = (np.arange(3000) / HZ * 1e9).astype(np.int64)
    ids = np.r_[np.full(1000, 1), np.full(200, -1), np.full(1800, 2)]
    events = plan_events(t, ids, ("flip", "frozen", "jump", "finger"), np.random.default_rng(3))
    assert len(events) >= 4
    for e in events:
        assert ids[e["first"]] == ids[e["last"]] >= 0 and (ids[e["first"] - 33 : e["last"] + 34] == ids[e["first"]]).all()
    for e1, e2 in zip(events, events[1:]):
        assert t[e2["first"]] - t[e1["last"]] > 0.8e9


@pytest.fixture(scope="module")
def glitched(tmp_path_factory):
    """A short simulated session with every glitch, its true calibration, and the qa
    report written by the command."""
    from gthd.calibration.files import Calibration, write_calibration
    from gthd.geometry import Camera, Transform
    from gthd.session import Session
    from gthd.sim.rig import RigConfig
    from gthd.sim.simulate import simulate

    root = tmp_path_factory.mktemp("qa")
    path = root / "s"
    simulate(path, 11, RigConfig(duration_s=14.0), boards=0, clicks=0, glitches=GLITCH_KINDS)
    gt = session_truth(Session.open(path))
    cal = Calibration(Camera.from_dict(gt["camera"]), Transform.from_dict(gt["T_cam_leap"]), int(gt["clock"]["offset_ns"]), {})
    write_calibration(root / "calibration.json", cal)
    r = CliRunner().invoke(main, ["qa", str(path), "--calibration", str(root / "calibration.json"), "-o", str(root / "qa")])
    assert r.exit_code == 0, r.output
    return path, root, gt


def test_the_glitch_truth_says_what_was_injected(glitched):
    path, root, gt = glitched
    g = gt["glitches"]
    assert {e["kind"] for e in g["events"]} == {"flip", "frozen", "jump", "finger"}
    assert g["offset_jump"]["offset_change_ns"] == -15_000_000
    from gthd.session import Session

    s = Session.open(path)
    i = g["offset_jump"]["frame"]
    # the frames after the jump arrive 15 ms later than their exposures say
    lag = s.frames.t_host_ns - np.array([f["t_exposure_ns"] for f in gt["frames"]])
    assert np.median(lag[i:]) - np.median(lag[:i]) == pytest.approx(15e6, abs=1.5e6)
    assert sum(f["harmful"] for f in g["frames"]) > 30


def test_qa_finds_the_injected_glitches_and_little_else(glitched):
    """Measured against the truth: most frames made wrong by a tracker glitch are
    flagged, few clean ones are, and the offset jump is found near where it happened."""
    path, root, gt = glitched
    doc = json.loads((root / "qa" / "qa.json").read_text())
    flagged = {f["frame"] for f in doc["flagged"]}
    g = gt["glitches"]
    wrong = {f["index"] for f in g["frames"] if f["harmful"] and set(f["kinds"]) - {"offset_jump"}}
    touched = {f["index"] for f in g["frames"]}
    assert len(wrong & flagged) >= 0.9 * len(wrong)
    rows = (root / "qa" / "qa.csv").read_text().splitlines()
    header = rows[0].split(",")
    labelled = [int(r.split(",")[0]) for r in rows[1:] if r.split(",")[header.index("labelled")] == "1"]
    clean = [i for i in labelled if i not in touched]
    assert len(clean) > 50 and sum(i in flagged for i in clean) <= 0.05 * len(clean)
    change = doc["time"]["change"]
    assert change["found"] and abs(change["t_host_ns"] - g["offset_jump"]["t_host_ns"]) < 2e9
    assert change["after"]["delta_ms"] - change["before"]["delta_ms"] == pytest.approx(-15, abs=5)
    assert (root / "qa" / "qa.png").stat().st_size > 10_000 and "flagged" in (root / "qa" / "qa.txt").read_text()


def test_build_dataset_drops_what_qa_flagged_and_qa_reads_the_dataset(glitched):
    import h5py

    path, root, gt = glitched
    doc = json.loads((root / "qa" / "qa.json").read_text())
    flagged = {f["frame"] for f in doc["flagged"]}
    out = root / "d.h5"
    args = ["build-dataset", str(path), "--calibration", str(root / "calibration.json"), "-o", str(out), "--workers", "1"]
    r = CliRunner().invoke(main, args + ["--qa", str(root / "qa" / "qa.json"), "--drop-flagged"])
    assert r.exit_code == 0, r.output
    assert "that gthd qa flagged" in r.output
    with h5py.File(out, "r") as f:
        frames = set(f["meta/frame_index"][...].tolist())
        qa_attr = json.loads(f.attrs["qa"])
    assert not frames & flagged and qa_attr["drop_flagged"] and sorted(qa_attr["flagged"]["0"]) == sorted(flagged)
    r = CliRunner().invoke(main, ["qa", str(out), "-o", str(root / "dqa")])
    assert r.exit_code == 0, r.output
    assert (root / "dqa" / "qa.csv").exists() and json.loads((root / "dqa" / "qa.json").read_text())["kind"] == "dataset"


def test_cli_errors_are_one_line(glitched, tmp_path):
    path, root, _ = glitched
    r = CliRunner().invoke(main, ["qa", str(path)])
    assert r.exit_code != 0 and r.output.strip().startswith("Error:") and "--calibration" in r.output
    r = CliRunner().invoke(main, ["qa", str(tmp_path / "nothing")])
    assert r.exit_code != 0 and "Error:" in r.output
    r = CliRunner().invoke(main, ["build-dataset", str(path), "--calibration", str(root / "calibration.json"), "-o", str(tmp_path / "x.h5"), "--drop-flagged"])
    assert r.exit_code != 0 and "Error:" in r.output and "--qa" in r.output and not (tmp_path / "x.h5").exists()
    r = CliRunner().invoke(main, ["simulate", str(tmp_path / "s"), "--glitches", "wobble"])
    assert r.exit_code != 0 and "unknown glitch" in r.output
