"""The one dataset writer (gthd/dataset/writer.py): build-dataset, import coco and import
lsmv write their files and report through it, so the three agree on the output checks,
the attributes every file carries, the report and its record in the file."""

import json
import shutil

import cv2
import h5py
import numpy as np
import pytest

from gthd.dataset import coco, lsmv
from gthd.dataset.build import build_dataset
from gthd.dataset.schema import SPLITS, attr_json, open_dataset
from gthd.dataset.writer import DatasetReport
from gthd.hand import LSMV_NAMES

COMMAND = "gthd test-writer"


def _coco(root):
    """Two 80x60 images, one hand each, and one without annotation (NoHand)."""
    root.mkdir()
    kp = np.column_stack([np.linspace(10, 50, 21), np.linspace(20, 40, 21)])
    doc = {"images": [], "annotations": [], "categories": [coco.CATEGORY]}
    for k in range(1, 4):
        cv2.imwrite(str(root / f"{k}.jpg"), np.full((60, 80, 3), 40 * k, np.uint8))
        doc["images"].append({"id": k, "file_name": f"{k}.jpg", "width": 80, "height": 60})
    for k in (1, 2):
        flat = np.column_stack([kp + k, np.ones(21)]).reshape(-1).tolist()
        doc["annotations"].append({"id": k, "image_id": k, "category_id": 1, "keypoints": flat, "iscrowd": 0})
    (root / "ann.json").write_text(json.dumps(doc))
    return root / "ann.json", root


def _lsmv(root, frames=3):
    """Release 1, sequence 1, webcam 1: ``frames`` frames with their 2D and 3D joints."""
    seq = root / "data_1"
    seq.mkdir(parents=True)
    uv = np.column_stack([np.linspace(200, 400, len(LSMV_NAMES)), np.linspace(150, 300, len(LSMV_NAMES))])
    xyz = [(x - 300, y - 200, 400.0) for x, y in uv] + [(0.0, 0.0, 1.0)]
    for f in range(frames):
        (seq / f"{f}_jointsCam_1.txt").write_text("".join(f"{n} {x + f} {y}\n" for n, (x, y) in zip(LSMV_NAMES, uv)))
        (seq / f"{f}_joints.txt").write_text("".join(f"{n} {x} {y} {z}\n" for n, (x, y, z) in zip(LSMV_NAMES + ("PALM_NORMAL",), xyz)))
        (seq / f"{f}_webcam_1.jpg").write_bytes(cv2.imencode(".jpg", np.full((480, 640, 3), 90, np.uint8))[1].tobytes())
    return root


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, sim_session):
    """The three writers, each on a small input of its kind: ``write(out, **options)``."""
    root = tmp_path_factory.mktemp("writers")
    ann, images = _coco(root / "coco")
    lsmv_root = _lsmv(root / "lsmv")
    return {
        "sessions": lambda out, **kw: build_dataset([sim_session], [sim_session / "ground_truth.json"], out, workers=2, **kw),
        "coco": lambda out, **kw: coco.import_coco(ann, images, out, split="random", **kw),
        "lsmv": lambda out, **kw: lsmv.import_lsmv(lsmv_root, out, cameras=(1,), **kw),
    }


@pytest.fixture(scope="module")
def written(inputs, tmp_path_factory):
    """Each writer's report and file, every one given the same extra attribute."""
    out = tmp_path_factory.mktemp("written")
    return {kind: (write(out / f"{kind}.h5", attrs={"command": COMMAND}), out / f"{kind}.h5") for kind, write in inputs.items()}


@pytest.mark.parametrize("kind", ["sessions", "coco", "lsmv"])
def test_every_writer_reports_what_its_file_holds(written, kind):
    report, path = written[kind]
    assert isinstance(report, DatasetReport) and report.kind == kind and report.path == path
    with open_dataset(path) as f:
        has_hand, split = f["labels/has_hand"][...], f["meta/split"][...]
        assert report.samples == int(f.attrs["num_samples"]) == len(has_hand) == report.hand + report.nohand > 0
        assert report.hand == int(has_hand.sum())
        assert report.splits == {s: int((split == i).sum()) for i, s in enumerate(SPLITS)}
        # the report, in the file: build_report for sessions, import_report for an import
        assert attr_json(f, "build_report" if kind == "sessions" else "import_report") == json.loads(json.dumps(report.record()))
        assert set(report.record()) == {"kind", "samples", "hand", "nohand", "splits", "left_out", "examples", "warnings", "details"}
    lines = report.lines()
    assert lines[0] == f"{report.samples} samples: {report.hand} with a hand, {report.nohand} NoHand"
    assert lines[1].startswith("left out: ") and lines[2] == "splits: " + ", ".join(f"{k} {v}" for k, v in report.splits.items())
    assert [ln[len("warning: ") :] for ln in lines if ln.startswith("warning: ")] == list(report.warnings)


def test_the_three_files_carry_the_same_attributes(written):
    common = {}
    for kind, (_, path) in written.items():
        with h5py.File(path, "r") as f:
            assert attr_json(f, "sources")[0]["kind"] == kind
            assert f.attrs["command"] == COMMAND and f.attrs["split_seed"] == 0 and f.attrs["split_by"] == "random"
            assert attr_json(f, "split_fractions") == [0.75, 0.1, 0.15]
            common[kind] = {k: f.attrs[k] for k in ("format", "schema_version", "gthd_version", "skeleton_thickness", "box_margin", "crop_margin", "crop_size")}
    assert common["sessions"] == common["coco"] == common["lsmv"]


@pytest.mark.parametrize("kind", ["sessions", "coco", "lsmv"])
def test_an_existing_file_is_refused_and_kept_then_replaced_with_force(inputs, written, tmp_path, kind):
    path = tmp_path / "out.h5"
    shutil.copy(written[kind][1], path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"out\.h5 exists \(use --force to replace it\)"):
        inputs[kind](path)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]
    again = inputs[kind](path, force=True)
    assert again.samples == written[kind][0].samples and list(tmp_path.iterdir()) == [path]


def test_no_usable_sample_is_one_error_naming_what_was_left_out_and_leaves_nothing(sim_session, tmp_path):
    ann, images = _coco(tmp_path / "coco")
    for k in (1, 2, 3):
        (images / f"{k}.jpg").write_bytes(b"\xff\xd8\xff not a JPEG")
    root = _lsmv(tmp_path / "lsmv", frames=2)
    for p in root.glob("data_1/*_jointsCam_1.txt"):
        p.unlink()
    (tmp_path / "out").mkdir()
    attempts = {
        # no tracker frames within 1 us of any camera frame: every frame is left out
        "frames without tracking within reach": lambda out: build_dataset([sim_session], [sim_session / "ground_truth.json"], out, max_gap_ms=1e-3),
        "3 images missing, unreadable": lambda out: coco.import_coco(ann, images, out),
        "2 missing label files": lambda out: lsmv.import_lsmv(root, out),
    }
    for said, attempt in attempts.items():
        with pytest.raises(ValueError, match="no usable sample") as e:
            attempt(tmp_path / "out" / "d.h5")
        assert said in str(e.value) and "\n" not in str(e.value)
        assert list((tmp_path / "out").iterdir()) == []


def test_the_file_is_the_same_with_any_number_of_workers(tmp_path):
    root = _lsmv(tmp_path / "lsmv", frames=20)
    lsmv.import_lsmv(root, tmp_path / "one.h5", workers=1)
    lsmv.import_lsmv(root, tmp_path / "three.h5", workers=3)
    with h5py.File(tmp_path / "one.h5", "r") as a, h5py.File(tmp_path / "three.h5", "r") as b:
        for key in ("meta/name", "meta/split", "labels/keypoints", "labels/palm"):
            np.testing.assert_array_equal(a[key][...], b[key][...])
        assert [bytes(v) for v in a["images/crop_jpeg"][...]] == [bytes(v) for v in b["images/crop_jpeg"][...]]
