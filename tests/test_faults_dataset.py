"""Bad input to the dataset stage gives one clear line and leaves nothing behind.

The real command line (``python -m gthd``, a subprocess: its exit code and its stderr
as a user sees them) over hostile COCO files (paths out of the images folder, devices,
FIFOs, huge files), LSMV folders with devices under image names, and files that are not
gthd datasets; and the COCO reader under random damage (hypothesis): it reads a file or
refuses it with one FormatError line, and nothing else.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gthd.dataset import coco
from gthd.dataset.samples import make_sample
from gthd.dataset.schema import DatasetWriter
from gthd.dataset.torch_dataset import FrameDataset, HandDataset
from gthd.fileio import FormatError
from gthd.hand import LSMV_NAMES
from gthd.sim.truth import session_truth

W, H = 80, 60
OUTSIDE_PIXEL = 201  # the value of every pixel of the image outside the images folder


def gthd(*args, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """``gthd ARGS`` as a user runs it (a timeout: a read of a FIFO or /dev/zero hangs)."""
    return subprocess.run([sys.executable, "-m", "gthd", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(r: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit status not 0, stderr exactly one ``Error:`` line holding ``fragments``."""
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def files_in(folder: Path) -> set[str]:
    """Every file under ``folder`` (hidden temporary files too), relative."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


# ------------------------------------------------------------------------------ COCO
def _jpeg(value: int, w: int = W, h: int = H) -> bytes:
    img = np.full((h, w, 3), value, np.uint8)
    cv2.circle(img, (w // 2, h // 2), 10, (255 - value, 40, 90), -1)
    return cv2.imencode(".jpg", img)[1].tobytes()


def _keypoints() -> list[float]:
    """63 numbers: a hand well inside an 80 x 60 image, every joint labelled."""
    kp = np.column_stack([np.linspace(10, 50, 21), np.linspace(20, 40, 21), np.ones(21)])
    return kp.reshape(-1).tolist()


def coco_doc(file_names: list[str]) -> dict:
    """A COCO hand file: one image per name, one hand on each."""
    return {
        "info": {"description": "faults"},
        "images": [{"id": k + 1, "file_name": name, "width": W, "height": H} for k, name in enumerate(file_names)],
        "annotations": [{"id": k + 1, "image_id": k + 1, "category_id": 1, "iscrowd": 0, "keypoints": _keypoints()} for k in range(len(file_names))],
        "categories": [{"id": 1, "name": "hand", "keypoints": list(coco.MMPOSE_HAND_NAMES), "skeleton": []}],
    }


@pytest.fixture
def coco_root(tmp_path) -> Path:
    """tmp/images/{a,b}.jpg (the images folder), tmp/outside.jpg beside it, tmp/out/."""
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(_jpeg(60))
    (tmp_path / "images" / "b.jpg").write_bytes(_jpeg(120))
    (tmp_path / "outside.jpg").write_bytes(_jpeg(OUTSIDE_PIXEL))
    (tmp_path / "out").mkdir()
    return tmp_path


def _hostile(root: Path, kind: str) -> str:
    """Make what the hostile ``file_name`` of ``kind`` points at; return the name."""
    images = root / "images"
    if kind == "dotdot":
        return "../outside.jpg"
    if kind == "absolute":
        return str(root / "outside.jpg")
    if kind == "symlink out":
        (images / "link.jpg").symlink_to(root / "outside.jpg")
        return "link.jpg"
    if kind == "fifo out":  # opened, it would block the import forever
        os.mkfifo(root / "pipe.jpg")
        return "../pipe.jpg"
    if kind == "dev zero":
        return "/dev/zero"
    if kind == "symlink to dev zero":
        (images / "zero.jpg").symlink_to("/dev/zero")
        return "zero.jpg"
    if kind == "fifo inside":
        os.mkfifo(images / "pipe.jpg")
        return "pipe.jpg"
    if kind == "folder":
        (images / "sub.jpg").mkdir()
        return "sub.jpg"
    if kind == "huge":  # sparse: 257 MB on paper, nothing on disk
        with open(images / "huge.jpg", "wb") as f:
            f.truncate(257 * 1024**2)
        return "huge.jpg"
    raise ValueError(kind)


HOSTILE = {
    "dotdot": "leads outside images",
    "absolute": "is an absolute path",
    "symlink out": "leads outside images",
    "fifo out": "leads outside images",
    "dev zero": "is an absolute path",
    "symlink to dev zero": "leads outside images",
    "fifo inside": "is not a regular file",
    "folder": "is not a regular file",
    "huge": "more than the 256 MB",
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_import_coco_refuses_a_file_name_out_of_the_images_folder(coco_root, kind):
    name = _hostile(coco_root, kind)
    # the hostile entry last: every entry is checked before the first sample is written
    (coco_root / "ann.json").write_text(json.dumps(coco_doc(["a.jpg", "b.jpg", name])))
    r = gthd("import", "coco", "ann.json", "images", "-o", "out/out.h5", cwd=coco_root)
    line = assert_one_line_error(r, "ann.json: image entry 2 (id 3)", repr(name), HOSTILE[kind])
    assert files_in(coco_root / "out") == set()  # no out.h5, no temporary file
    assert r.stdout == "" and str(OUTSIDE_PIXEL) not in line


def test_import_coco_reads_a_clean_file_and_nothing_from_outside(coco_root):
    """The control: the same files, file names inside the folder, import; the outside
    image's pixels are in no sample."""
    (coco_root / "ann.json").write_text(json.dumps(coco_doc(["a.jpg", "b.jpg", "./sub/../b.jpg"])))
    r = gthd("import", "coco", "ann.json", "images", "-o", "out/out.h5", cwd=coco_root)
    assert r.returncode == 0, r.stderr
    assert files_in(coco_root / "out") == {"out.h5"}
    with h5py.File(coco_root / "out" / "out.h5", "r") as f:
        frames = [cv2.imdecode(f["images/frame_jpeg"][i], cv2.IMREAD_COLOR) for i in range(f["images/frame_jpeg"].shape[0])]
    assert len(frames) == 3
    assert all(abs(int(img[0, 0, 0]) - OUTSIDE_PIXEL) > 40 for img in frames)


def test_import_coco_leaves_out_a_jpeg_the_decoder_complains_about(coco_root):
    """Entropy-coded data overwritten: OpenCV decodes a half-garbled picture and libjpeg
    only complains on stderr; the import hears it and leaves the image out."""
    big = np.random.default_rng(1).integers(0, 255, (240, 320, 3), np.uint8)
    data = bytearray(cv2.imencode(".jpg", big)[1].tobytes())
    n = len(data)
    data[n // 2 : n // 2 + 400] = bytes(400)
    (coco_root / "images" / "c.jpg").write_bytes(bytes(data))
    doc = coco_doc(["a.jpg", "c.jpg"])
    doc["images"][1].update(width=320, height=240)
    (coco_root / "ann.json").write_text(json.dumps(doc))
    r = gthd("import", "coco", "ann.json", "images", "-o", "out/out.h5", cwd=coco_root)
    assert r.returncode == 0, r.stderr
    assert "c.jpg" in r.stdout + r.stderr
    with h5py.File(coco_root / "out" / "out.h5", "r") as f:
        assert f["images/frame_jpeg"].shape[0] == 1


# ---------------------------------------------------------------------- build-dataset
@pytest.mark.parametrize("damage", ["name out", "symlink out", "symlink to dev zero"])
def test_build_dataset_refuses_a_frame_file_out_of_the_session(sim_session, tmp_path, damage):
    from gthd.calibration.files import Calibration, write_calibration
    from gthd.geometry import Camera, Transform
    from gthd.session import Session

    shutil.copytree(sim_session, tmp_path / "s")
    gt = session_truth(Session.open(tmp_path / "s"))
    write_calibration(tmp_path / "cal.json", Calibration(Camera.from_dict(gt["camera"]), Transform.from_dict(gt["T_cam_leap"]), gt["clock"]["offset_ns"], {}))
    (tmp_path / "outside.jpg").write_bytes((tmp_path / "s" / "frames" / "000003.jpg").read_bytes())
    index = tmp_path / "s" / "frames.jsonl"
    lines = index.read_text().splitlines()
    record = json.loads(lines[-1])  # the last frame: every frame is checked before the first is written
    frame = tmp_path / "s" / record["file"]
    if damage == "name out":  # the frame index itself names a file outside
        lines[-1] = json.dumps({**record, "file": "../outside.jpg"})
        index.write_text("\n".join(lines) + "\n")
        fragments = ["'../outside.jpg'"]
    else:  # a well-formed name, a link out of the session folder
        frame.unlink()
        frame.symlink_to(tmp_path / "outside.jpg" if damage == "symlink out" else "/dev/zero")
        fragments = [f"frame {record['index']}", repr(record["file"]), "leads outside"]
    (tmp_path / "out").mkdir()
    r = gthd("build-dataset", "s", "--calibration", "cal.json", "-o", "out/d.h5", "--workers", "1", cwd=tmp_path)
    assert_one_line_error(r, *fragments)
    assert files_in(tmp_path / "out") == set()


# ------------------------------------------------------------------------------ LSMV
def _lsmv_sample(folder: Path, f: int, image: bytes | None) -> None:
    """Release-1 files of frame ``f``, webcam 1: 2D and 3D joints; the image if given."""
    uv = np.column_stack([np.linspace(200, 400, len(LSMV_NAMES)), np.linspace(150, 300, len(LSMV_NAMES))])
    (folder / f"{f}_jointsCam_1.txt").write_text("".join(f"{n} {x} {y}\n" for n, (x, y) in zip(LSMV_NAMES, uv)))
    xyz = [(x - 300, y - 200, 400.0) for x, y in uv] + [(0.0, 0.0, 1.0)]
    (folder / f"{f}_joints.txt").write_text("".join(f"{n} {x} {y} {z}\n" for n, (x, y, z) in zip(LSMV_NAMES + ("PALM_NORMAL",), xyz)))
    if image is not None:
        (folder / f"{f}_webcam_1.jpg").write_bytes(image)


def test_import_lsmv_skips_a_device_or_fifo_under_an_image_name(tmp_path):
    seq = tmp_path / "lsmv" / "data_1"
    seq.mkdir(parents=True)
    _lsmv_sample(seq, 0, _jpeg(90, 640, 480))
    _lsmv_sample(seq, 1, None)
    (seq / "1_webcam_1.jpg").symlink_to("/dev/zero")  # read whole, it never ends
    _lsmv_sample(seq, 2, None)
    os.mkfifo(seq / "2_webcam_1.jpg")  # opened plainly, it blocks
    r = gthd("import", "lsmv", "lsmv", "-o", "lsmv.h5", "--camera", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "1 samples" in r.stdout and "2 corrupt image" in r.stdout
    # only the hostile ones: no usable sample, one line, no file
    (seq / "0_webcam_1.jpg").unlink()
    (seq / "0_webcam_1.jpg").symlink_to("/dev/zero")
    r = gthd("import", "lsmv", "lsmv", "-o", "out.h5", "--camera", "1", cwd=tmp_path)
    assert_one_line_error(r, "no usable sample", "3 corrupt image")
    assert not list(tmp_path.glob("*out.h5*"))


# -------------------------------------------------------------- not a gthd dataset
def _not_gthd(path: Path, kind: str) -> None:
    if kind == "other hdf5":
        with h5py.File(path, "w") as f:
            f.create_group("experiment").create_dataset("x", data=np.arange(5))
            f.attrs["owner"] = "someone else"
    elif kind == "gthd attrs, no arrays":
        with h5py.File(path, "w") as f:
            f.attrs["format"] = "gthd-dataset"
            f.attrs["schema_version"] = 1
    elif kind == "text":
        path.write_text("hello, not HDF5\n")
    else:
        raise ValueError(kind)


NOT_GTHD = {
    "other hdf5": "not a gthd dataset (format None",
    "gthd attrs, no arrays": "not a gthd dataset (images/frame_jpeg is missing)",
    "text": "not an HDF5 file",
}


@pytest.mark.parametrize("kind", list(NOT_GTHD))
@pytest.mark.parametrize(
    "command",
    [["inspect", "X.h5", "--sheet", "out/sheet.png"], ["export", "coco", "X.h5", "out/exported"], ["benchmark", "X.h5", "--out", "out/run"]],
    ids=["inspect", "export", "benchmark"],
)
def test_a_file_that_is_not_a_gthd_dataset_is_one_line(tmp_path, kind, command):
    _not_gthd(tmp_path / "X.h5", kind)
    (tmp_path / "out").mkdir()
    r = gthd(*command, cwd=tmp_path)
    assert_one_line_error(r, "X.h5: ", NOT_GTHD[kind])
    assert files_in(tmp_path / "out") == set() and not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("kind", list(NOT_GTHD))
def test_the_torch_readers_refuse_what_is_not_a_gthd_dataset(tmp_path, kind):
    _not_gthd(tmp_path / "X.h5", kind)
    for reader in (HandDataset, FrameDataset):
        with pytest.raises(FormatError) as e:
            reader(tmp_path / "X.h5", "train")
        assert NOT_GTHD[kind] in str(e.value) and "\n" not in str(e.value)


def test_a_gthd_dataset_with_arrays_of_unequal_length_is_refused(tmp_path):
    path = tmp_path / "d.h5"
    with DatasetWriter(path) as w:
        img = np.full((H, W, 3), 90, np.uint8)
        w.add(make_sample(img, _jpeg(90), None, None, name="x"))
    with h5py.File(path, "r+") as f:
        del f["labels/box"]
        f.create_dataset("labels/box", data=np.zeros((3, 4), np.float32))
    r = gthd("inspect", "d.h5", cwd=tmp_path)
    assert_one_line_error(r, "not a gthd dataset", "samples")


# ------------------------------------------------------------ the COCO reader, fuzzed
GOOD = coco_doc(["a.jpg", "b.jpg"])
GOOD["annotations"].append({"id": 3, "image_id": 2, "category_id": 1, "iscrowd": 1, "keypoints": [0] * 63})
GOOD["images"].append({"id": 3, "file_name": "c.jpg"})  # no size, no annotation: a NoHand image
GOOD_BYTES = json.dumps(GOOD).encode()


def _paths(doc, prefix=()) -> list[tuple]:
    """Every place in a JSON document, as a key/index path."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


PLACES = _paths(GOOD)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.just(10**400) | st.floats() | st.text(max_size=6) | st.sampled_from(["../x.jpg", "/dev/zero", "a.jpg"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6) | st.sampled_from(["id", "keypoints", "image_id"]), inner, max_size=3),
    max_leaves=10,
)


@st.composite
def damaged_bytes(draw) -> bytes:
    """The good file cut short, or with bytes replaced, inserted or deleted."""
    data = bytearray(GOOD_BYTES)
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        b = draw(st.integers(0, 255) | st.sampled_from(list(b'[]{}",:0-9e.')))
        if op == "replace":
            data[i] = b
        elif op == "insert":
            data.insert(i, b)
        else:
            del data[i]
    return bytes(data)


@st.composite
def damaged_documents(draw) -> bytes:
    """The good document with one to three values, anywhere, replaced by any JSON value."""
    doc = json.loads(GOOD_BYTES)
    for _ in range(draw(st.integers(1, 3))):
        place = draw(st.sampled_from(PLACES))
        value = draw(JSON_VALUES)
        if not place:
            doc = value
            continue
        try:
            parent = doc
            for key in place[:-1]:
                parent = parent[key]
            parent[place[-1]] = value
        except (KeyError, IndexError, TypeError):
            pass  # an earlier change removed that place
    return json.dumps(doc).encode()


def _read_or_refuse(path: Path, data: bytes):
    """The property: read_coco reads ``data`` (consistently) or raises one FormatError
    line; any other exception fails the test."""
    path.write_bytes(data)
    try:
        c = coco.read_coco(path)
    except FormatError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e)
        return None
    assert len(c.hands) == len(c.images) and c.order in ("coco", "rhd")
    for im in c.images:
        assert isinstance(im["file_name"], str) and im["width"] >= 0 and im["height"] >= 0
    for hands in c.hands:
        for crowd, uv, vis in hands:
            assert crowd or (uv.shape == (21, 2) and vis.shape == (21,) and vis.dtype == bool)
    try:
        same = json.loads(data) == GOOD
    except ValueError:
        same = False
    if same:  # another spelling of the good document: the good reading
        assert [im["file_name"] for im in c.images] == ["a.jpg", "b.jpg", "c.jpg"] and [len(h) for h in c.hands] == [1, 2, 0]
    return c


FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=damaged_bytes())
def test_the_coco_reader_reads_or_refuses_damaged_bytes(tmp_path, data):
    _read_or_refuse(tmp_path / "ann.json", data)


@FUZZ
@given(data=damaged_documents())
def test_the_coco_reader_reads_or_refuses_damaged_documents(tmp_path, data):
    _read_or_refuse(tmp_path / "ann.json", data)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=damaged_documents())
def test_import_coco_of_a_damaged_document_writes_a_dataset_or_nothing(coco_root, data):
    """The whole import, images read: a dataset, or a ValueError (FormatError, "no usable
    sample") and no file; never another exception, never a file from outside."""
    (coco_root / "ann.json").write_bytes(data)
    out = coco_root / "out" / "out.h5"
    try:
        coco.import_coco(coco_root / "ann.json", coco_root / "images", out, force=True)
    except ValueError as e:
        assert "\n" not in str(e)
        assert files_in(coco_root / "out") - {"out.h5"} == set()  # no temporary file (an earlier example's out.h5 may stay)
        return
    with h5py.File(out, "r") as f:
        for i in range(f["images/frame_jpeg"].shape[0]):
            img = cv2.imdecode(f["images/frame_jpeg"][i], cv2.IMREAD_COLOR)
            assert abs(int(img[0, 0, 0]) - OUTSIDE_PIXEL) > 40


def test_known_crashes_of_the_reader_are_refusals(tmp_path):
    """Values that used to escape as TypeError/OverflowError/ValueError tracebacks."""
    cases = {
        "unhashable image id": lambda d: d["images"][0].update(id=[1]),
        "unhashable image_id": lambda d: d["annotations"][0].update(image_id={"a": 1}),
        "width is text": lambda d: d["images"][0].update(width="wide"),
        "width is a list": lambda d: d["images"][0].update(width=[80]),
        "keypoints beyond float64": lambda d: d["annotations"][0].update(keypoints=[10**400] * 63),
        "category keypoints a number": lambda d: d.update(categories=[{"id": 1, "keypoints": 5}]),
        "unhashable category id": lambda d: d["categories"][0].update(id=[1]),
    }
    for what, damage in cases.items():
        doc = json.loads(GOOD_BYTES)
        damage(doc)
        path = tmp_path / "ann.json"
        try:
            _read_or_refuse(path, json.dumps(doc).encode())
        except Exception as e:  # noqa: BLE001 - the test names what escaped
            pytest.fail(f"{what}: {type(e).__name__}: {e}")
    # a number of 5000 digits and arrays nested 100000 deep: not readable JSON, one line
    for text in ["[" + "9" * 5000 + "]", "[" * 100_000]:
        (tmp_path / "ann.json").write_text(text)
        with pytest.raises(FormatError, match="not readable JSON"):
            coco.read_coco(tmp_path / "ann.json")
