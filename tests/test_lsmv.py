"""The LSMV importer on small fixtures written in the dataset's two layouts: synthetic
640x480 frames with dots at the 2D joints, 3D joints in the Leap frame, calibrations
as protocol-2 pickles (Python 2's bytes and Python 3's), 2D labels projected with them."""

import json
import logging
import os
import pickle
import re
import struct

import cv2
import h5py
import numpy as np
import pytest

from gthd import hand
from gthd.dataset import lsmv
from gthd.dataset.inspect import contact_sheet_png, summary_lines
from gthd.dataset.schema import attr_json, open_dataset, read_skeleton
from gthd.fileio import FormatError
from gthd.geometry import box_from_points, look_at

CAM = lsmv.LSMV_CAMERA
CENTRE = np.array([0.0, 250.0, 0.0])  # mm, Leap frame (y up)
EYES = [(0, 260, 380), (360, 260, 120), (-360, 260, 120), (0, 300, -380)]


def _py2_pickle(a: np.ndarray) -> bytes:
    """The bytes Python 2's numpy wrote for a float64 array with protocol 2: numpy.core
    names, the data as a str (SHORT_BINSTRING), no _codecs."""
    a = np.ascontiguousarray(a, dtype="<f8")
    raw = a.tobytes()
    shape = b"(" + b"".join(b"K" + bytes([d]) for d in a.shape) + b"t"
    data = (b"U" + bytes([len(raw)]) if len(raw) < 256 else b"T" + struct.pack("<I", len(raw))) + raw
    return (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01" + shape
        + b"cnumpy\ndtype\nU\x02f8K\x00K\x01\x87R(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" + data + b"tb."
    )  # fmt: skip


class _Evil:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def _write_lines(path, rows, names=None, fmt="%.4f"):
    lines = [" ".join(([names[i]] if names else []) + [fmt % v for v in row]) for i, row in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")


def make_lsmv(root, release, seqs=(1, 2, 3), frames=3, seed=0, box_names=True):
    """An LSMV tree under ``root``; returns the truth: p3d[(n, f)] (21, 3) mm, uv[(n, f, c)]
    (21, 2) px (LSMV order), rt[(n, c)] (rvec, tvec)."""
    rng = np.random.default_rng(seed)
    truth = {"p3d": {}, "uv": {}, "rt": {}}
    for n in seqs:
        seq = f"data_{n}"
        img_dir = root / ("annotated_frames" if release == 2 else "") / seq
        j2d_dir = root / ("projections_2d" if release == 2 else "") / seq
        box_dir = root / ("bounding_boxes" if release == 2 else "") / seq
        for d in (img_dir, j2d_dir, box_dir):
            d.mkdir(parents=True, exist_ok=True)
        for c, eye in enumerate(EYES, start=1):
            T = look_at(np.array(eye, float), CENTRE, np.array([0.0, 1.0, 0.0]))
            truth["rt"][(n, c)] = (T.rvec.reshape(3, 1), T.t.reshape(3, 1))  # the shapes cv2 returns
            if release == 2:
                cal = root / "calibrations" / seq / f"webcam_{c}"
                cal.mkdir(parents=True)
                for name, a in zip(("rvec.pkl", "tvec.pkl"), truth["rt"][(n, c)]):
                    # webcams 1, 2: what Python 2 wrote; 3, 4: Python 3's protocol 2
                    (cal / name).write_bytes(_py2_pickle(a) if c <= 2 else pickle.dumps(a, protocol=2))
        for f in range(frames):
            shift = np.array([230.0, 0, 0]) if f == 2 else 0.0  # frame 2: partly out of view
            p3d = CENTRE + shift + rng.uniform(-55, 55, (21, 3))
            truth["p3d"][(n, f)] = p3d
            _write_lines(img_dir / f"{f}_joints.txt", np.vstack([p3d, [0, -1, 0]]), list(hand.LSMV_NAMES) + ["PALM_NORMAL"])
            for c in range(1, 5):
                rvec, tvec = truth["rt"][(n, c)]
                uv = cv2.projectPoints(p3d, rvec, tvec, CAM.K, CAM.dist)[0].reshape(21, 2)
                truth["uv"][(n, f, c)] = uv
                _write_lines(j2d_dir / f"{f}_jointsCam_{c}.txt", uv, list(hand.LSMV_NAMES))
                z = (cv2.Rodrigues(rvec)[0] @ p3d.T + tvec)[2].mean()
                off = 20 * z / 390  # as LSMV's own script
                tlbr = [int(uv[:, 1].min() - off), int(uv[:, 0].min() - off), int(uv[:, 1].max() + off), int(uv[:, 0].max() + off)]
                (box_dir / f"{f}_bbox_{c}.txt").write_text(
                    "".join(f"{k} {v}\n" for k, v in zip(("TOP", "LEFT", "BOTTOM", "RIGHT"), tlbr)) if box_names else "".join(f"{v}\n" for v in tlbr)
                )
                img = np.full((480, 640, 3), 40, np.uint8)
                for x, y in uv:
                    if -10 < x < 650 and -10 < y < 490:
                        cv2.circle(img, (round(x), round(y)), 4, (255, 255, 255), -1)
                (img_dir / f"{f}_webcam_{c}.jpg").write_bytes(cv2.imencode(".jpg", img)[1].tobytes())
    return truth


@pytest.fixture(scope="module")
def release2(tmp_path_factory):
    root = tmp_path_factory.mktemp("lsmv2")
    truth = make_lsmv(root / "lsmv", 2)
    report = lsmv.import_lsmv(root / "lsmv", root / "out.h5")
    return root / "out.h5", report, truth


def _read(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][...] for k in ("labels/keypoints", "labels/visible", "labels/box", "labels/joints_cam", "labels/joints_tracker",
                                       "labels/palm", "labels/palm_cam", "labels/palm_tracker", "labels/has_hand",
                                       "meta/session", "meta/subject", "meta/frame_index", "meta/name", "meta/camera", "meta/split")}  # fmt: skip


def _key(name):
    """'data_2/1_webcam_3.jpg' -> (2, 1, 3)."""
    seq, file = (name.decode() if isinstance(name, bytes) else name).split("/")
    f, _, c = file[:-4].split("_")
    return int(seq[5:]), int(f), int(c)


# ---------------------------------------------------------------------------- pickles
def test_pickle_loader_reads_python2_and_python3_protocol2_arrays(tmp_path):
    a = np.array([[0.1], [-2.5], [3e-7]])
    (tmp_path / "py2.pkl").write_bytes(_py2_pickle(a))
    (tmp_path / "py3.pkl").write_bytes(pickle.dumps(a, protocol=2))
    (tmp_path / "py3_5.pkl").write_bytes(pickle.dumps(a.astype(np.float32), protocol=5))
    for name in ("py2.pkl", "py3.pkl", "py3_5.pkl"):
        got = lsmv.load_array_pickle(tmp_path / name)
        assert got.shape == (3, 1) and np.allclose(got, a, rtol=1e-6)


@pytest.mark.parametrize(
    "payload",
    [
        lambda marker: pickle.dumps(_Evil(f"touch {marker}"), protocol=2),
        lambda marker: pickle.dumps(_Evil(f"touch {marker}"), protocol=0),
        # a bare call of eval
        lambda marker: b"\x80\x02cbuiltins\neval\nX" + struct.pack("<I", len(s := f"open({str(marker)!r}, 'w')")) + s.encode() + b"\x85R.",
    ],
    ids=["os.system-p2", "os.system-p0", "builtins.eval"],
)
def test_a_malicious_pickle_is_refused_without_running(tmp_path, payload):
    marker = tmp_path / "pwned"
    (tmp_path / "evil.pkl").write_bytes(payload(marker))
    with pytest.raises(lsmv.RefusedPickle, match=r"evil\.pkl: refused to load .*only numpy arrays"):
        lsmv.load_array_pickle(tmp_path / "evil.pkl")
    assert not marker.exists()


def test_the_pickle_loader_refuses_non_numeric_arrays_and_other_codecs(tmp_path):
    (tmp_path / "obj.pkl").write_bytes(pickle.dumps(np.array(["a", 1], dtype=object), protocol=2))
    with pytest.raises(lsmv.RefusedPickle, match="object array, not a numeric array"):
        lsmv.load_array_pickle(tmp_path / "obj.pkl")
    (tmp_path / "codec.pkl").write_bytes(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(lsmv.RefusedPickle, match="only latin-1"):
        lsmv.load_array_pickle(tmp_path / "codec.pkl")
    (tmp_path / "torn.pkl").write_bytes(pickle.dumps(np.zeros(3), protocol=2)[:-20])
    with pytest.raises(FormatError, match="not a readable pickle"):
        lsmv.load_array_pickle(tmp_path / "torn.pkl")


# ------------------------------------------------------------------------- text files
def test_read_points_named_any_order_or_bare(tmp_path):
    pts = np.arange(42, dtype=float).reshape(21, 2)
    order = np.random.default_rng(1).permutation(21)
    _write_lines(tmp_path / "named.txt", pts[order], [hand.LSMV_NAMES[i] for i in order])
    _write_lines(tmp_path / "bare.txt", pts)
    assert np.array_equal(lsmv.read_points(tmp_path / "named.txt"), pts)
    assert np.array_equal(lsmv.read_points(tmp_path / "bare.txt"), pts)
    # 3D: the 22nd line (PALM_NORMAL) is dropped, named or bare
    p3 = np.arange(66, dtype=float).reshape(22, 3)
    _write_lines(tmp_path / "j.txt", p3, list(hand.LSMV_NAMES) + ["PALM_NORMAL"])
    _write_lines(tmp_path / "jb.txt", p3)
    for name in ("j.txt", "jb.txt"):
        assert np.array_equal(lsmv.read_points(tmp_path / name, dims=3, extra=("PALM_NORMAL",)), p3[:21])
    for bad in (pts[:20], np.vstack([pts[:20], [np.nan, 1]])):
        _write_lines(tmp_path / "bad.txt", bad, list(hand.LSMV_NAMES)[: len(bad)])
        with pytest.raises(FormatError, match="bad.txt"):
            lsmv.read_points(tmp_path / "bad.txt")
    (tmp_path / "bad.txt").write_text("F4_KNU1_A 1 2\n" * 21)
    with pytest.raises(FormatError, match="repeated point 'F4_KNU1_A'"):
        lsmv.read_points(tmp_path / "bad.txt")


def test_read_box_named_or_bare_to_xyxy(tmp_path):
    (tmp_path / "a.txt").write_text("TOP 100\nLEFT 50\nBOTTOM 300\nRIGHT 250\n")
    (tmp_path / "b.txt").write_text("100\n50\n300\n250\n")
    (tmp_path / "c.txt").write_text("RIGHT 250\nBOTTOM 300\nLEFT 50\nTOP 100\n")
    for n in "abc":
        assert lsmv.read_box(tmp_path / f"{n}.txt").tolist() == [50, 100, 250, 300]
    (tmp_path / "d.txt").write_text("TOP 300\nLEFT 50\nBOTTOM 100\nRIGHT 250\n")
    with pytest.raises(FormatError, match="empty box"):
        lsmv.read_box(tmp_path / "d.txt")


# ---------------------------------------------------------------------------- release 2
def test_release2_maps_every_lsmv_point_to_our_joint(release2):
    path, report, truth = release2
    d = _read(path)
    assert report.details["release"] == 2 and report.samples == 3 * 3 * 4 == len(d["meta/name"])
    assert sum(report.left_out.values()) == 0
    for i, name in enumerate(d["meta/name"]):
        n, f, c = _key(name)
        uv = truth["uv"][(n, f, c)]
        assert (d["meta/session"][i], d["meta/frame_index"][i], d["meta/camera"][i]) == (n - 1, f, c)
        # named spot checks, then the whole table
        assert np.allclose(d["labels/keypoints"][i, hand.JOINT_INDEX["INDEX_TIP"]], uv[hand.LSMV_NAMES.index("F4_KNU3_A")], atol=1e-3)
        assert np.allclose(d["labels/keypoints"][i, hand.JOINT_INDEX["THUMB_CMC"]], uv[hand.LSMV_NAMES.index("TH_KNU1_B")], atol=1e-3)
        assert np.allclose(d["labels/keypoints"][i, hand.JOINT_INDEX["PINKY_MCP"]], uv[hand.LSMV_NAMES.index("F1_KNU1_B")], atol=1e-3)
        for k, ours in enumerate(hand.LSMV_TO_OURS):
            if ours >= 0:
                assert np.allclose(d["labels/keypoints"][i, ours], uv[k], atol=1e-3)
                assert np.allclose(d["labels/joints_tracker"][i, ours], truth["p3d"][(n, f)][k], atol=1e-3)
        # the palm is stored beside the joints, never in them
        assert np.allclose(d["labels/palm"][i], uv[lsmv.PALM], atol=1e-3)
        assert np.allclose(d["labels/palm_tracker"][i], truth["p3d"][(n, f)][lsmv.PALM], atol=1e-3)
    # no wrist: NaN and never visible, in pixels and in 3D
    assert np.all(np.isnan(d["labels/keypoints"][:, hand.WRIST])) and not d["labels/visible"][:, hand.WRIST].any()
    assert np.all(np.isnan(d["labels/joints_cam"][:, hand.WRIST])) and np.all(np.isnan(d["labels/joints_tracker"][:, hand.WRIST]))
    assert np.all(np.isfinite(d["labels/keypoints"][:, 1:]))
    assert (d["meta/subject"] == 0).all()


def test_release2_file_is_a_schema_v1_dataset_with_documented_extras(release2):
    path, report, _ = release2
    with open_dataset(path) as f:
        assert f.attrs["joint_set"] == "lsmv20"
        assert attr_json(f, "labelled_joints") == list(range(1, 21))
        assert attr_json(f, "joint_names") == list(hand.JOINT_NAMES)
        sessions = attr_json(f, "sessions")
        assert len(sessions) == 21 and sessions[2]["id"] == "data_3"
        assert set(attr_json(f, "extra_fields")) == {"labels/palm", "labels/palm_cam", "labels/palm_tracker", "meta/camera"}
        assert attr_json(f, "import_report") == json.loads(json.dumps(report.record()))
        assert len(attr_json(f, "calibrations")) == 3 * 4
        n = int(f.attrs["num_samples"])
        for key in ("labels/palm", "labels/palm_cam", "labels/palm_tracker", "meta/camera"):
            assert len(f[key]) == n
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_release2_file_reads_with_the_generic_tools(release2, tmp_path):
    path, _, _ = release2
    assert "joint set lsmv20" in summary_lines(path)[0]
    assert contact_sheet_png(path, tmp_path / "sheet.png", count=4) == 4 and (tmp_path / "sheet.png").stat().st_size > 0
    with open_dataset(path) as f:
        mask = read_skeleton(f, 0)
        kp = f["labels/keypoints"][0]
    assert mask.shape == (480, 640) and mask.max() == 255
    x, y = np.rint(kp[hand.JOINT_INDEX["MIDDLE_TIP"]]).astype(int)
    assert mask[y, x] > 200  # a blob on a labelled joint


def test_release2_joints_cam_is_R_p_plus_t_and_projects_onto_jointscam(release2):
    path, report, truth = release2
    d = _read(path)
    for i, name in enumerate(d["meta/name"]):
        n, f, c = _key(name)
        rvec, tvec = truth["rt"][(n, c)]
        p_cam = truth["p3d"][(n, f)] @ cv2.Rodrigues(rvec)[0].T + tvec.reshape(3)  # mm
        ours = np.array([hand.LSMV_TO_OURS.index(j) for j in range(1, 21)])
        assert np.allclose(d["labels/joints_cam"][i, 1:], p_cam[ours], atol=1e-2)
        assert np.allclose(d["labels/palm_cam"][i], p_cam[lsmv.PALM], atol=1e-2)
        # the 3D joints in the camera frame project onto the 2D labels (OpenCV's model)
        proj = cv2.projectPoints(d["labels/joints_cam"][i, 1:].astype(np.float64), np.zeros(3), np.zeros(3), CAM.K, CAM.dist)[0].reshape(-1, 2)
        assert np.allclose(proj, d["labels/keypoints"][i, 1:], atol=0.05)
    p = report.details["projection"]
    assert p["samples"] == report.samples and p["points"] == 21 * report.samples
    assert p["rms_px"] < 1e-3 and p["over_tol"] == 0 and len(p["worst"]) == 5
    assert report.details["calibrations"] == {"loaded": 12, "missing": 0, "refused": 0, "corrupt": 0}


def test_release2_visibility_boxes_and_image_agree_with_the_keypoints(release2):
    path, report, _ = release2
    d = _read(path)
    kp, vis = d["labels/keypoints"], d["labels/visible"]
    inside = (kp[..., 0] >= -0.5) & (kp[..., 0] <= 639.5) & (kp[..., 1] >= -0.5) & (kp[..., 1] <= 479.5)
    assert np.array_equal(vis[:, 1:], inside[:, 1:])
    assert (~vis[:, 1:]).any() and vis[:, 1:].any(axis=1).all()  # frame 2 is partly out of view
    assert report.hand == report.samples and report.nohand == 0
    for i in range(len(kp)):
        # the box comes from the keypoints (make_sample's tight box + 5 %), not from the box files
        assert np.allclose(d["labels/box"][i], box_from_points(kp[i], vis[i], 640, 480, margin=0.05), atol=1e-3)
    b = report.details["boxes"]
    assert b["compared"] == report.samples and b["missing"] == 0 and b["iou_mean"] > 0.6
    with h5py.File(path, "r") as f:
        i = int(np.flatnonzero(vis[:, hand.JOINT_INDEX["INDEX_TIP"]])[0])
        frame = cv2.imdecode(f["images/frame_jpeg"][i], cv2.IMREAD_GRAYSCALE)
    for j in np.flatnonzero(vis[i]):
        x, y = np.rint(kp[i, j]).astype(int)
        assert frame[y, x] > 200, f"no dot under {hand.JOINT_NAMES[j]}"


def test_release2_projection_check_flags_an_inconsistent_jointscam(tmp_path, caplog):
    truth = make_lsmv(tmp_path / "lsmv", 2, seqs=(4,), frames=1)
    uv = truth["uv"][(4, 0, 2)].copy()
    uv[hand.LSMV_NAMES.index("F3_KNU2_A")] += (3.0, 4.0)  # 5 px off its projection
    _write_lines(tmp_path / "lsmv/projections_2d/data_4/0_jointsCam_2.txt", uv, list(hand.LSMV_NAMES))
    with caplog.at_level(logging.WARNING, logger="gthd.dataset"):
        report = lsmv.import_lsmv(tmp_path / "lsmv", tmp_path / "out.h5")
    assert [r.getMessage() for r in caplog.records] == list(report.warnings) and "1 samples' 3D joints project more than 1.0 px" in report.warnings[0]
    p = report.details["projection"]
    assert p["over_tol"] == 1 and p["worst"][0][0] == "data_4/0_webcam_2.jpg" and abs(p["worst"][0][1] - 5.0) < 1e-3
    with h5py.File(tmp_path / "out.h5", "r") as f:  # jointsCam stays the label
        i = list(f["meta/name"].asstr()[...]).index("data_4/0_webcam_2.jpg")
        assert np.allclose(f["labels/keypoints"][i, hand.JOINT_INDEX["MIDDLE_DIP"]], uv[hand.LSMV_NAMES.index("F3_KNU2_A")], atol=1e-3)
    assert any("3D joints projected vs jointsCam" in ln for ln in report.lines())


def test_a_malicious_calibration_is_refused_and_its_webcam_imported_without_joints_cam(tmp_path, caplog):
    make_lsmv(tmp_path / "lsmv", 2, seqs=(1,), frames=2)
    marker = tmp_path / "pwned"
    (tmp_path / "lsmv/calibrations/data_1/webcam_3/rvec.pkl").write_bytes(pickle.dumps(_Evil(f"touch {marker}"), protocol=2))
    with caplog.at_level(logging.WARNING, logger="gthd.dataset"):
        report = lsmv.import_lsmv(tmp_path / "lsmv", tmp_path / "out.h5")
    assert len(caplog.records) == 1 and re.search(r"calibration refused, data_1 webcam 3 .*refused to load posix\.system", caplog.records[0].getMessage())
    assert not marker.exists()
    assert report.details["calibrations"] == {"loaded": 3, "missing": 0, "refused": 1, "corrupt": 0}
    assert report.samples == 8 and report.details["projection"]["samples"] == 6
    d = _read(tmp_path / "out.h5")
    cam3 = d["meta/camera"] == 3
    assert np.isnan(d["labels/joints_cam"][cam3]).all() and np.isnan(d["labels/palm_cam"][cam3]).all()
    assert np.isfinite(d["labels/joints_cam"][~cam3][:, 1:]).all()
    assert np.isfinite(d["labels/joints_tracker"][:, 1:]).all()


# ---------------------------------------------------------------------------- release 1
def test_release1_flat_layout_with_bare_boxes(tmp_path):
    truth = make_lsmv(tmp_path / "lsmv", 1, seqs=(2, 5), frames=2, box_names=False)
    report = lsmv.import_lsmv(tmp_path / "lsmv", tmp_path / "out.h5", cameras=(1, 4))
    assert report.details["release"] == 1 and report.samples == 2 * 2 * 2 and report.details["projection"] is None
    assert report.details["boxes"]["compared"] == 8 and report.details["boxes"]["iou_mean"] > 0.6
    d = _read(tmp_path / "out.h5")
    assert set(d["meta/camera"]) == {1, 4} and set(d["meta/session"]) == {1, 4}
    assert np.isnan(d["labels/joints_cam"]).all() and np.isnan(d["labels/palm_cam"]).all()
    for i, name in enumerate(d["meta/name"]):
        n, f, c = _key(name)
        assert np.allclose(d["labels/keypoints"][i, hand.JOINT_INDEX["INDEX_TIP"]], truth["uv"][(n, f, c)][hand.LSMV_NAMES.index("F4_KNU3_A")], atol=1e-3)
        assert np.allclose(d["labels/joints_tracker"][i, hand.JOINT_INDEX["RING_DIP"]], truth["p3d"][(n, f)][hand.LSMV_NAMES.index("F2_KNU2_A")], atol=1e-3)
    assert not d["labels/visible"][:, hand.WRIST].any()


# ----------------------------------------------------------------------------- splits
def test_random_splits_follow_the_fractions_and_the_seed(release2, tmp_path):
    path, report, _ = release2
    split = _read(path)["meta/split"]
    n = len(split)
    assert report.splits == {"train": round(0.75 * n), "val": round(0.85 * n) - round(0.75 * n), "test": n - round(0.85 * n)}
    assert np.bincount(split, minlength=3).tolist() == list(report.splits.values())
    again = lsmv.import_lsmv(path.parent / "lsmv", tmp_path / "again.h5", seed=0)
    assert np.array_equal(_read(tmp_path / "again.h5")["meta/split"], split) and again.splits == report.splits


def test_splits_by_sequence_keep_each_sequence_whole(release2, tmp_path):
    root = release2[0].parent / "lsmv"
    report = lsmv.import_lsmv(root, tmp_path / "seq.h5", split_by="sequence", seed=3, workers=1)
    d = _read(tmp_path / "seq.h5")
    for s in np.unique(d["meta/session"]):
        assert len(np.unique(d["meta/split"][d["meta/session"] == s])) == 1
    assert sum(report.splits.values()) == 36 and len(np.unique(d["meta/split"])) >= 2
    with h5py.File(tmp_path / "seq.h5", "r") as f:
        assert f.attrs["split_by"] == "sequence"


# ------------------------------------------------------------------------------- skips
def test_missing_and_corrupt_files_are_skipped_counted_and_warned_once(tmp_path, caplog):
    make_lsmv(tmp_path / "lsmv", 2, seqs=(1, 2), frames=3)
    a, p2, bb = (tmp_path / "lsmv" / d for d in ("annotated_frames", "projections_2d", "bounding_boxes"))
    (a / "data_1/0_webcam_1.jpg").unlink()  # missing image
    (a / "data_1/0_webcam_2.jpg").write_bytes(b"\xff\xd8 not a jpeg")  # corrupt image
    (p2 / "data_1/1_jointsCam_3.txt").unlink()  # missing 2D label
    (p2 / "data_2/0_jointsCam_4.txt").write_text("F4_KNU1_A 1 2\n")  # corrupt 2D label
    (a / "data_2/2_joints.txt").unlink()  # missing 3D label: the frame's 4 images
    (bb / "data_2/1_bbox_1.txt").unlink()  # a box file: counted, nothing skipped
    (bb / "data_2/1_bbox_2.txt").write_text("TOP x\n")
    with caplog.at_level(logging.WARNING, logger="gthd.dataset"):
        report = lsmv.import_lsmv(tmp_path / "lsmv", tmp_path / "out.h5")
    assert report.left_out == {"missing_image": 1, "corrupt_image": 1, "missing_label": 1 + 4, "corrupt_label": 1}
    assert report.examples["missing_image"] == ["data_1/0_webcam_1.jpg"]
    assert report.samples == 24 - 8
    boxes = report.details["boxes"]
    assert (boxes["missing"], boxes["corrupt"], boxes["compared"]) == (1, 1, 14)
    assert len(caplog.records) == 1 and "\n" not in caplog.records[0].getMessage()
    assert (
        caplog.records[0]
        .getMessage()
        .startswith("left out 1 missing images, 1 corrupt images, 5 missing label files, 1 corrupt label files: data_1/0_webcam_1.jpg, ")
    )
    names = set(_read(tmp_path / "out.h5")["meta/name"].astype(str))
    assert "data_2/1_webcam_1.jpg" in names and "data_1/0_webcam_1.jpg" not in names


def test_a_folder_of_neither_layout_is_one_clear_error(tmp_path):
    (tmp_path / "data_1").mkdir()
    (tmp_path / "data_1" / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match=r"not an LSMV dataset folder: expected annotated_frames/data_<N>/ \(release 2\) or data_<N>/") as e:
        lsmv.import_lsmv(tmp_path, tmp_path / "out.h5")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="no such folder"):
        lsmv.import_lsmv(tmp_path / "nope", tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_no_usable_sample_leaves_no_file(tmp_path):
    make_lsmv(tmp_path / "lsmv", 1, seqs=(1,), frames=1)
    for p in (tmp_path / "lsmv/data_1").glob("*_jointsCam_*"):
        p.unlink()
    with pytest.raises(ValueError, match="no usable sample .*4 missing label"):
        lsmv.import_lsmv(tmp_path / "lsmv", tmp_path / "out.h5")
    assert list(tmp_path.iterdir()) == [tmp_path / "lsmv"]


def test_options_limit_progress_and_force(tmp_path):
    make_lsmv(tmp_path / "lsmv", 1, seqs=(1,), frames=2)
    calls = []
    report = lsmv.import_lsmv(tmp_path / "lsmv", tmp_path / "out.h5", limit=5, progress=lambda d, t: calls.append((d, t)))
    assert report.samples == 5 and calls[-1] == (5, 5)
    assert _read(tmp_path / "out.h5")["meta/name"].astype(str).tolist()[:5] == [f"data_1/0_webcam_{c}.jpg" for c in (1, 2, 3, 4)] + ["data_1/1_webcam_1.jpg"]
    with pytest.raises(FileExistsError, match="--force"):
        lsmv.import_lsmv(tmp_path / "lsmv", tmp_path / "out.h5")
    assert lsmv.import_lsmv(tmp_path / "lsmv", tmp_path / "out.h5", force=True).samples == 8
    for kw, msg in [({"split_by": "subject"}, "split-by must be one of random, sequence"), ({"cameras": (0, 1)}, "cameras must be"), ({"limit": 0}, "limit")]:
        with pytest.raises(ValueError, match=msg):
            lsmv.import_lsmv(tmp_path / "lsmv", tmp_path / "x.h5", **kw)
