"""Import the LSMV dataset (Gomez-Donoso et al., "Large-scale multiview 3D hand pose
dataset", 2017) into a gthd dataset file (schema v1, ``schema.py``).

Layouts, detected from the folder given (21 sequences ``data_1`` .. ``data_21``, four
640x480 webcams ``<c>`` = 1..4, ``<f>`` an unpadded frame index from 0)::

    release 1   data_<N>/<f>_webcam_<c>.jpg, <f>_jointsCam_<c>.txt, <f>_bbox_<c>.txt,
                <f>_joints.txt
    release 2   annotated_frames/data_<N>/<f>_webcam_<c>.jpg, <f>_joints.txt
                projections_2d/data_<N>/<f>_jointsCam_<c>.txt
                bounding_boxes/data_<N>/<f>_bbox_<c>.txt
                calibrations/data_<N>/webcam_<c>/rvec.pkl, tvec.pkl

Text files are ``NAME x y`` (2D, 21 lines), ``NAME x y z`` (3D, 22 lines: the 21 points
then PALM_NORMAL, a direction, dropped) and ``TOP v``, ``LEFT v``, ``BOTTOM v``,
``RIGHT v`` (box). Lines without the name (bare values, in that order) are read too.

What goes where in the dataset file:

- ``/labels/keypoints`` (N, 21, 2): the ``jointsCam`` 2D points, LSMV's own 2D labels
  (made with ``cv2.projectPoints``, so OpenCV's pixel convention, which is ours), put in
  our joint order by :func:`gthd.hand.from_lsmv`. ``visible``: inside the image (and,
  with a calibration, in front of the camera).
- **No wrist**: LSMV has none. The WRIST row is NaN and never visible, in every sample.
  The root attr ``joint_set`` is ``"lsmv20"`` and ``labelled_joints`` lists the 20 joint
  indices that carry labels (1..20): the paper's 20 heatmaps for LSMV.
- **The palm**: PALM_POSITION is no joint of ours and does not go into the 21 joints
  (in the WRIST slot every reader would take it for a wrist). It goes into extra
  datasets next to the schema's, mirroring the joints' three labels:
  ``/labels/palm`` (N, 2) float32 px, ``/labels/palm_cam`` (N, 3) float32 mm,
  ``/labels/palm_tracker`` (N, 3) float32 mm; and ``/meta/camera`` (N,) uint8, the
  webcam 1..4. The schema's fields are all there as usual, so the generic reader
  (``open_dataset``) reads the file and ignores the extras; the root attr
  ``extra_fields`` describes them.
- ``/labels/joints_tracker``: the 3D joints of ``<f>_joints.txt``, millimetres, in the
  Leap Motion's frame as LSMV gives it (the frame its calibrations start from).
- ``/labels/joints_cam`` (release 2): ``R @ p + t`` with ``R = Rodrigues(rvec)``, ``t =
  tvec`` of the sequence's webcam, i.e. ``T_cam_leap``, millimetres, OpenCV's camera
  frame. NaN in release 1 and where a calibration is missing or refused. The transforms
  are in the root attr ``calibrations``.
- ``/labels/box``: from the keypoints, as for every gthd dataset (``make_sample``: the
  visible joints' tight box plus 5 % of its larger side, clipped), so that ``box`` means
  one thing across datasets. LSMV's own boxes (the projected points plus 20 px at 390 mm
  depth, truncated to integers) are read only to report how well they agree (IoU).
- ``/meta/session``: the sequence, ``data_N`` -> N - 1 (root attr ``sessions`` lists
  ``data_1`` .. ``data_21`` whatever the folder holds, so the index is stable);
  ``subject`` 0 ("unknown": LSMV does not say); ``frame_index`` f; ``name``
  ``data_N/<f>_webcam_<c>.jpg``.
- ``/meta/split``: at random 75/10/15 (the paper split its 87,760 samples 60,000 /
  15,000 / 12,760), or whole sequences (``split_by="sequence"``).

Checks: with calibrations (release 2) the 3D joints are projected with each webcam's
rvec/tvec and the shared intrinsics (:data:`LSMV_CAMERA`, ``cv2.projectPoints``) and
compared with ``jointsCam``: RMS, worst residual and the worst frames by name go into the
report; ``jointsCam`` stays the 2D label.

Pickles: the calibrations are Python 2 pickles of numpy arrays. Unpickling runs whatever
callable the file names, so they are read by :func:`load_array_pickle`, an unpickler that
resolves only the few globals a numpy array needs (``_reconstruct``, ``ndarray``,
``dtype``, ``scalar``, ``_frombuffer``, and ``_codecs.encode`` for latin-1 bytes only) and refuses any
other with :class:`RefusedPickle` before anything runs. A refused calibration is reported
and its webcam's samples are imported without ``joints_cam``.

Skips: an image or a label file (2D or 3D) that is missing or unreadable skips that
sample (unreadable includes anything but a regular file, an image over 256 MB and a label
file over 1 MB: a ``/dev/zero`` or a FIFO under an image's name is not read forever); the
counts per reason (:data:`LEFT_OUT`), with examples, are in the report and in one warning
line. A missing or unreadable box file skips nothing (boxes are not labels here), it is
counted.

Frames are read and made into samples by threads; the file, its attributes, the splits
and the report are :class:`~gthd.dataset.writer.DatasetOutput`'s.
"""

from __future__ import annotations

import array
import heapq
import io
import os
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from ..fileio import FormatError, read_regular_file
from ..geometry import Camera, Transform, box_iou
from ..hand import LSMV_NAMES, NUM_JOINTS, WRIST, from_lsmv
from ..images import decode_checked
from .samples import make_sample
from .writer import DatasetOutput, DatasetReport, SplitRule

LSMV_CAMERA = Camera(
    K=np.array([[614.878, 0.0, 313.219], [0.0, 615.479, 231.288], [0.0, 0.0, 1.0]]),
    dist=np.array([0.092701, -0.175877, -0.0035687, -0.00302299, 0.0]),
    width=640,
    height=480,
)
"""The intrinsics LSMV gives for all four webcams (k1, k2, p1, p2, k3)."""

NUM_SEQUENCES = 21
JOINT_SET = "lsmv20"
LABELLED_JOINTS = tuple(j for j in range(NUM_JOINTS) if j != WRIST)
"""Our joints that LSMV labels: all but the wrist (1..20)."""

SPLIT_BY = ("random", "sequence")
LEFT_OUT = {
    "missing_image": "missing images",
    "corrupt_image": "corrupt images",
    "missing_label": "missing label files",
    "corrupt_label": "corrupt label files",
}
"""Why an image is skipped, as the report says it (each skip is named: one warning line)."""
PROJECTION_TOL_PX = 1.0
"""A sample whose 3D joints project further than this from its jointsCam is counted."""

_MAX_LABEL_BYTES = 1024**2
"""A label file or calibration pickle is a few hundred bytes: anything over 1 MB (or a
device, a FIFO) is unreadable, not read until memory runs out."""

PALM = LSMV_NAMES.index("PALM_POSITION")
_BOX_NAMES = ("TOP", "LEFT", "BOTTOM", "RIGHT")

EXTRA_FIELDS = {
    "labels/palm": "(N, 2) float32 px: LSMV's PALM_POSITION in the frame (jointsCam)",
    "labels/palm_cam": "(N, 3) float32 mm: PALM_POSITION in the camera frame (NaN without calibration)",
    "labels/palm_tracker": "(N, 3) float32 mm: PALM_POSITION in the Leap Motion frame",
    "meta/camera": "(N,) uint8: the LSMV webcam, 1..4",
}


# ---------------------------------------------------------------------------- pickles
class RefusedPickle(pickle.UnpicklingError):
    """A pickle asked for something other than a numpy array; nothing of it was run."""


def _numpy_globals() -> dict:
    try:  # numpy >= 2 (numpy 1.26 has it too)
        from numpy._core import multiarray as ma
        from numpy._core import numeric
    except ImportError:  # pragma: no cover - older numpy
        from numpy.core import multiarray as ma
        from numpy.core import numeric

    def latin1_encode(text, encoding="latin1"):
        # how a protocol-2 pickle written by Python 3 spells bytes; nothing else passes
        if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
            raise RefusedPickle(f"refused _codecs.encode({type(text).__name__}, {encoding!r}): only latin-1 bytes are allowed")
        return text.encode("latin1")

    out = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): latin1_encode}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):  # Python 2 / numpy 1 and numpy 2 names
        out[(mod, "_reconstruct")] = ma._reconstruct
        out[(mod, "scalar")] = ma.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):  # protocol 5's out-of-band form
        out[(mod, "_frombuffer")] = numeric._frombuffer
    return out


_NUMPY_GLOBALS = _numpy_globals()


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _NUMPY_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedPickle(f"refused to load {module}.{name}: only numpy arrays are allowed") from None


def load_array_pickle(path: str | os.PathLike) -> np.ndarray:
    """A numeric numpy array from a pickle (Python 2 or 3, any protocol), running nothing
    but numpy's own array reconstruction.

    Raises:
        RefusedPickle: the pickle names any other global (``os.system``, ``eval``, a
            class...), or holds something other than a numeric array.
        FormatError: the file is missing or not a readable pickle.
    """
    path = Path(path)
    try:
        data = read_regular_file(path, _MAX_LABEL_BYTES)
    except OSError as e:
        raise FormatError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        # latin1: Python 2 pickled an array's bytes as a str
        obj = _ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except RefusedPickle as e:
        raise RefusedPickle(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - a malformed pickle fails in many ways; none of them ran code
        raise FormatError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from None
    if not isinstance(obj, np.ndarray) or obj.dtype.kind not in "biuf":
        what = f"a {obj.dtype} array" if isinstance(obj, np.ndarray) else type(obj).__name__
        raise RefusedPickle(f"{path}: holds {what}, not a numeric array")
    return obj


# ------------------------------------------------------------------------- text files
def read_points(path: str | os.PathLike, names: tuple[str, ...] = LSMV_NAMES, dims: int = 2, extra: tuple[str, ...] = ()) -> np.ndarray:
    """Points from a LSMV text file.

    Args:
        path: lines ``NAME v1 .. v_dims`` in any order, or bare ``v1 .. v_dims`` lines in
            ``names`` order (then ``extra`` trailing lines are allowed and dropped).
        names: the points wanted, e.g. :data:`gthd.hand.LSMV_NAMES`.
        extra: names present in the file that are dropped (``PALM_NORMAL``).

    Returns:
        (len(names), dims) float64, in ``names`` order.

    Raises:
        FileNotFoundError; OSError: not a regular file, or over 1 MB; FormatError on
        anything else than the above, or a non-finite value.
    """
    path = Path(path)
    rows = [ln.split() for ln in read_regular_file(path, _MAX_LABEL_BYTES).decode("ascii").splitlines() if ln.strip()]
    named = [r for r in rows if not _is_number(r[0])]
    try:
        if not named:
            if not len(names) <= len(rows) <= len(names) + len(extra) or any(len(r) != dims for r in rows):
                raise FormatError(f"expected {len(names)} lines of {dims} values, got {len(rows)} lines")
            pts = np.array([[float(v) for v in r] for r in rows[: len(names)]])
        else:
            if len(named) != len(rows):
                raise FormatError("some lines have a name and some do not")
            got = {}
            for r in rows:
                if len(r) != dims + 1:
                    raise FormatError(f"expected NAME and {dims} values, got {' '.join(r)!r}")
                if r[0] in got or (r[0] not in names and r[0] not in extra):
                    raise FormatError(f"{'repeated' if r[0] in got else 'unknown'} point {r[0]!r}")
                got[r[0]] = [float(v) for v in r[1:]]
            missing = [n for n in names if n not in got]
            if missing:
                raise FormatError(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
            pts = np.array([got[n] for n in names])
    except ValueError as e:  # FormatError, float('x')
        raise FormatError(f"{path}: {e}") from None
    if not np.all(np.isfinite(pts)):
        raise FormatError(f"{path}: non-finite values")
    return pts


def read_box(path: str | os.PathLike) -> np.ndarray:
    """(4,) float64 xyxy (LEFT, TOP, RIGHT, BOTTOM) from a LSMV box file: lines
    ``TOP v``, ``LEFT v``, ``BOTTOM v``, ``RIGHT v`` (any order) or four bare values in
    that order. Raises FileNotFoundError, FormatError."""
    v = read_points(path, _BOX_NAMES, dims=1)[:, 0]
    top, left, bottom, right = v
    if right < left or bottom < top:
        raise FormatError(f"{path}: an empty box (TOP {top:g} LEFT {left:g} BOTTOM {bottom:g} RIGHT {right:g})")
    return np.array([left, top, right, bottom])


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------- layouts
_SEQ = re.compile(r"data_(\d+)$")
_IMG = re.compile(r"(\d+)_webcam_(\d+)\.jpg$")
_J2D = re.compile(r"(\d+)_jointsCam_(\d+)\.txt$")
_J3D = re.compile(r"(\d+)_joints\.txt$")


@dataclass(frozen=True)
class _Layout:
    release: int
    root: Path

    def images(self, n: int) -> Path:
        return self.root / ("annotated_frames" if self.release == 2 else "") / f"data_{n}"

    def joints2d(self, n: int) -> Path:
        return self.root / ("projections_2d" if self.release == 2 else "") / f"data_{n}"

    def boxes(self, n: int) -> Path:
        return self.root / ("bounding_boxes" if self.release == 2 else "") / f"data_{n}"

    def calibration(self, n: int, cam: int) -> Path | None:
        return self.root / "calibrations" / f"data_{n}" / f"webcam_{cam}" if self.release == 2 else None

    def sequences(self) -> list[int]:
        dirs = [self.root / "annotated_frames", self.root / "projections_2d"] if self.release == 2 else [self.root]
        found = {int(m[1]) for d in dirs for name in _listdir(d) if (m := _SEQ.match(name)) and (d / name).is_dir()}
        return sorted(found)


def _listdir(d: Path) -> list[str]:
    try:
        return os.listdir(d)
    except OSError:
        return []


def _detect(root: Path) -> _Layout:
    if (root / "annotated_frames").is_dir() and any(_SEQ.match(n) for n in _listdir(root / "annotated_frames")):
        return _Layout(2, root)
    for name in _listdir(root):
        if _SEQ.match(name) and any(_IMG.match(n) or _J2D.match(n) for n in _listdir(root / name)):
            return _Layout(1, root)
    what = "no such folder" if not root.is_dir() else "not an LSMV dataset folder"
    raise ValueError(f"{root}: {what}: expected annotated_frames/data_<N>/ (release 2) or data_<N>/<f>_webcam_<c>.jpg (release 1)")


def _jobs(layout: _Layout, cameras: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(sequence, frame, webcam) of every sample any file speaks of, in order."""
    out = []
    for n in layout.sequences():
        pairs, frames = set(), set()
        for d in dict.fromkeys([layout.images(n), layout.joints2d(n)]):
            for name in _listdir(d):
                if m := _IMG.match(name) or _J2D.match(name):
                    pairs.add((int(m[1]), int(m[2])))
                elif m := _J3D.match(name):
                    frames.add(int(m[1]))
        pairs = {p for p in pairs if p[1] in cameras} | {(f, c) for f in frames for c in cameras}
        out.extend((n, f, c) for f, c in sorted(pairs))
    return out


@dataclass(frozen=True)
class _Calib:
    T_cam_leap: Transform
    rvec: np.ndarray  # (3,) radians
    tvec: np.ndarray  # (3,) mm


def _load_calibration(folder: Path) -> _Calib | None:
    """A webcam's calibration, None if its folder has none. Raises RefusedPickle, FormatError."""
    if not (folder / "rvec.pkl").exists() and not (folder / "tvec.pkl").exists():
        return None
    rt = []
    for name in ("rvec.pkl", "tvec.pkl"):
        a = load_array_pickle(folder / name)
        if a.size != 3 or not np.all(np.isfinite(a)):
            raise FormatError(f"{folder / name}: expected 3 finite values, got shape {a.shape}")
        rt.append(a.astype(np.float64).reshape(3))
    return _Calib(Transform.from_rvec(rt[0], rt[1], "cam", "leap"), rt[0], rt[1])


# ------------------------------------------------------------------------ per sample
@dataclass
class _Result:
    name: str
    skip: str = ""
    sample: object = None
    palm: np.ndarray | None = None  # (2,) px
    palm_cam: np.ndarray | None = None  # (3,) mm
    palm_tracker: np.ndarray | None = None  # (3,) mm
    box: str = "ok"  # ok, missing, corrupt
    iou: float = float("nan")
    residual: np.ndarray | None = None  # (21,) px, projection vs jointsCam


def _load(job: tuple[int, int, int], layout: _Layout, calibs: dict[tuple[int, int], _Calib], opts: dict) -> _Result:
    """One image's sample (or why it is skipped), with what LSMV adds to it (in a worker)."""
    n, f, c = job
    calib = calibs.get((n, c))
    r = _Result(f"data_{n}/{f}_webcam_{c}.jpg")
    try:
        data = read_regular_file(layout.images(n) / f"{f}_webcam_{c}.jpg")
    except FileNotFoundError:
        r.skip = "missing_image"
        return r
    except OSError:
        r.skip = "corrupt_image"
        return r
    try:
        uv = read_points(layout.joints2d(n) / f"{f}_jointsCam_{c}.txt", LSMV_NAMES, 2)  # (21, 2) px, LSMV order
        p3d = read_points(layout.images(n) / f"{f}_joints.txt", LSMV_NAMES, 3, extra=("PALM_NORMAL",))  # (21, 3) mm
    except FileNotFoundError:
        r.skip = "missing_label"
        return r
    except (OSError, UnicodeDecodeError, FormatError):
        r.skip = "corrupt_label"
        return r
    image, problem = decode_checked(data)  # a half-garbled JPEG is not an image to label
    if image is None or problem is not None:
        r.skip = "corrupt_image"
        return r
    h, w = image.shape[:2]
    keypoints, known = from_lsmv(uv)  # (21, 2), WRIST NaN
    inside = (keypoints[:, 0] >= -0.5) & (keypoints[:, 0] <= w - 0.5) & (keypoints[:, 1] >= -0.5) & (keypoints[:, 1] <= h - 0.5)
    joints_tracker = from_lsmv(p3d)[0]
    joints_cam = None
    r.palm, r.palm_tracker = uv[PALM], p3d[PALM]
    if calib is not None:
        p_cam = calib.T_cam_leap.apply(p3d)  # (21, 3) mm, camera frame
        joints_cam, r.palm_cam = from_lsmv(p_cam)[0], p_cam[PALM]
        inside &= joints_cam[:, 2] > 0  # in front of the camera too (NaN wrist: False)
        proj = cv2.projectPoints(p3d, calib.rvec, calib.tvec, LSMV_CAMERA.K, LSMV_CAMERA.dist)[0].reshape(-1, 2)
        r.residual = np.where(p_cam[:, 2] > 0, np.linalg.norm(proj - uv, axis=1), np.nan)
    r.sample = make_sample(
        image, data, keypoints, known & inside, **opts,
        session=n - 1, subject=0, frame_index=f, name=r.name, joints_cam=joints_cam, joints_tracker=joints_tracker,
    )  # fmt: skip
    try:
        file_box = read_box(layout.boxes(n) / f"{f}_bbox_{c}.txt")
        if r.sample.box is not None:
            file_box[[0, 2]] = np.clip(file_box[[0, 2]], -0.5, w - 0.5)
            file_box[[1, 3]] = np.clip(file_box[[1, 3]], -0.5, h - 0.5)
            r.iou = float(np.nan_to_num(box_iou(file_box, np.asarray(r.sample.box, np.float64))))
    except FileNotFoundError:
        r.box = "missing"
    except (OSError, UnicodeDecodeError, FormatError):
        r.box = "corrupt"
    return r


class _Tally:
    """What the samples add beyond the schema's arrays: the palm and the webcam (the extra
    arrays), and how well LSMV's own boxes and 3D joints agree with its 2D labels."""

    def __init__(self):
        self.palm, self.palm_cam, self.palm_tracker, self.camera = array.array("f"), array.array("f"), array.array("f"), array.array("B")
        self.box_files = {"missing": 0, "corrupt": 0}
        self.ious: list[float] = []
        self.worst: list[tuple[float, str]] = []  # a min-heap of the 5 worst samples
        self.sq, self.points, self.checked, self.over, self.max_px = 0.0, 0, 0, 0, 0.0

    def add(self, r: _Result, camera: int) -> None:
        self.palm.extend(r.palm)
        self.palm_cam.extend(r.palm_cam if r.palm_cam is not None else (np.nan,) * 3)
        self.palm_tracker.extend(r.palm_tracker)
        self.camera.append(camera)
        if r.box != "ok":
            self.box_files[r.box] += 1
        elif np.isfinite(r.iou):
            self.ious.append(r.iou)
        if r.residual is not None and np.any(np.isfinite(r.residual)):
            res = r.residual[np.isfinite(r.residual)]
            self.sq, self.points, self.checked = self.sq + float(res @ res), self.points + len(res), self.checked + 1
            worst_px = float(res.max())
            self.max_px, self.over = max(self.max_px, worst_px), self.over + (worst_px > PROJECTION_TOL_PX)
            heapq.heappush(self.worst, (worst_px, r.name))
            if len(self.worst) > 5:
                heapq.heappop(self.worst)

    def boxes(self) -> dict:
        iou = (round(float(np.mean(self.ious)), 4), round(float(np.min(self.ious)), 4)) if self.ious else (None, None)
        return {"compared": len(self.ious), "iou_mean": iou[0], "iou_min": iou[1], **self.box_files}

    def projection(self) -> dict:
        return {
            "samples": self.checked, "points": self.points,
            "rms_px": round(float(np.sqrt(self.sq / self.points)), 4) if self.points else None,
            "max_px": round(self.max_px, 4) if self.points else None,
            "tol_px": PROJECTION_TOL_PX, "over_tol": self.over,
            "worst": [[name, round(px, 4)] for px, name in sorted(self.worst, reverse=True)],
        }  # fmt: skip

    def extras(self) -> dict[str, np.ndarray]:
        return {
            "labels/palm": np.frombuffer(self.palm, np.float32).reshape(-1, 2),
            "labels/palm_cam": np.frombuffer(self.palm_cam, np.float32).reshape(-1, 3),
            "labels/palm_tracker": np.frombuffer(self.palm_tracker, np.float32).reshape(-1, 3),
            "meta/camera": np.frombuffer(self.camera, np.uint8),
        }


# ---------------------------------------------------------------------------- import
def import_lsmv(
    root: str | os.PathLike,
    out_h5: str | os.PathLike,
    *,
    cameras: tuple[int, ...] = (1, 2, 3, 4),
    split_by: str = "random",
    fractions=(0.75, 0.10, 0.15),
    seed: int = 0,
    thickness: str = "thick",
    box_margin: float = 0.05,
    crop_margin: float = 0.25,
    workers: int = 2,
    force: bool = False,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    attrs: dict | None = None,
) -> DatasetReport:
    """Import an LSMV folder (release 1 or 2, detected) into one gthd dataset file.

    Args:
        root: the folder holding ``data_<N>/`` (release 1) or ``annotated_frames/`` etc.
        out_h5: the dataset file to write; refused if it exists (unless ``force``).
        cameras: the webcams to import, among 1..4.
        split_by: ``"random"`` (per sample) or ``"sequence"`` (whole sequences).
        fractions: train/val/test shares.
        thickness, box_margin, crop_margin: as :func:`gthd.dataset.samples.make_sample`.
        workers: threads decoding frames and making crops.
        limit: import only the first ``limit`` images (sequence, frame, webcam order).
        progress: called with (done, total) images.
        attrs: more root attributes (``command``...).

    Returns:
        The :class:`~gthd.dataset.writer.DatasetReport`: ``left_out`` per
        :data:`LEFT_OUT` reason with ``examples``; ``nohand`` the samples whose joints
        are all out of view; ``details``: ``release``, ``root``, ``cameras``, ``boxes``
        {compared, iou_mean, iou_min, missing, corrupt}, ``calibrations`` {loaded,
        missing, refused, corrupt}, ``projection`` (release 2: {samples, points, rms_px,
        max_px, tol_px, over_tol, worst [[name, px], ...]}; None in release 1). Also in
        the file's root attr ``import_report``.

    Raises:
        ValueError: ``root`` is no LSMV folder; no usable sample; a bad option.
        FileExistsError: ``out_h5`` exists (unless ``force``).
    """
    if split_by not in SPLIT_BY:
        raise ValueError(f"split-by must be one of {', '.join(SPLIT_BY)}, got {split_by!r}")
    cameras = tuple(int(c) for c in cameras)
    if not cameras or len(set(cameras)) != len(cameras) or not set(cameras) <= {1, 2, 3, 4}:
        raise ValueError(f"cameras must be distinct webcams among 1, 2, 3, 4, got {cameras}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    root = Path(root)
    output = DatasetOutput(
        out_h5,
        kind="lsmv",
        origin=str(root),
        reasons=LEFT_OUT,
        split=SplitRule(by=split_by, group="session" if split_by == "sequence" else None, seed=seed, fractions=fractions),
        thickness=thickness,
        box_margin=box_margin,
        crop_margin=crop_margin,
        workers=workers,
        force=force,
        progress=progress,
    )
    layout = _detect(root)
    jobs = _jobs(layout, cameras)[:limit]
    calibs, loaded = _calibrations(layout, jobs, output)
    attrs = {
        "joint_set": JOINT_SET,
        "labelled_joints": list(LABELLED_JOINTS),
        "sessions": [{"id": f"data_{n}", "sequence": n} for n in range(1, max([NUM_SEQUENCES, *layout.sequences()]) + 1)],
        "subjects": ["unknown"],
        "lsmv_camera": LSMV_CAMERA.to_dict(),
        "extra_fields": EXTRA_FIELDS,
        "calibrations": [
            {"session": f"data_{n}", "webcam": c, "camera": LSMV_CAMERA.to_dict(), "T_cam_leap": cal.T_cam_leap.to_dict()} for (n, c), cal in calibs.items()
        ],
        **(attrs or {}),
    }
    tally = _Tally()
    with output.open(source={"release": layout.release, "root": str(root.resolve()), "cameras": list(cameras)}, attrs=attrs):
        for (_, _, c), r in output.results(jobs, partial(_load, layout=layout, calibs=calibs, opts=output.sample_options)):
            if r.skip:
                output.leave_out(r.skip, example=r.name)
            else:
                output.add(r.sample)
                tally.add(r, c)
        details = {
            "release": layout.release, "root": str(root), "cameras": list(cameras), "boxes": tally.boxes(), "calibrations": loaded,
            "projection": tally.projection() if layout.release == 2 else None,
        }  # fmt: skip
        if loaded["missing"]:
            output.warn(f"{loaded['missing']} webcams without calibration: their samples have no joints_cam")
        p = details["projection"]
        if p and p["over_tol"]:
            output.warn(
                f"{p['over_tol']} samples' 3D joints project more than {p['tol_px']} px from their jointsCam (worst {p['worst'][0][0]}: {p['worst'][0][1]} px)"
            )
        return output.finish(details=details, notes=_notes(details), extras=tally.extras())


def _calibrations(layout: _Layout, jobs: list[tuple[int, int, int]], output: DatasetOutput) -> tuple[dict[tuple[int, int], _Calib], dict[str, int]]:
    """Release 2: the calibration of each webcam the jobs need, by (sequence, webcam) in
    the jobs' order, and how many were loaded, missing, refused or corrupt. A refused or
    unreadable one is warned: its webcam's samples are imported without joints_cam."""
    counts = {"loaded": 0, "missing": 0, "refused": 0, "corrupt": 0}
    calibs = {}
    webcams = dict.fromkeys((n, c) for n, _, c in jobs) if layout.release == 2 else {}  # release 1 has none
    for n, c in webcams:
        try:
            cal = _load_calibration(layout.calibration(n, c))
        except RefusedPickle as e:
            counts["refused"] += 1
            output.warn(f"calibration refused, data_{n} webcam {c} imported without joints_cam: {e}")
            continue
        except FormatError as e:
            counts["corrupt"] += 1
            output.warn(f"calibration unreadable, data_{n} webcam {c} imported without joints_cam: {e}")
            continue
        counts["loaded" if cal is not None else "missing"] += 1
        if cal is not None:
            calibs[(n, c)] = cal
    return calibs, counts


def _notes(d: dict) -> list[str]:
    """The report's lines about LSMV: the release, its boxes and (release 2) its 3D joints."""
    b, p = d["boxes"], d["projection"]
    lines = [
        f"LSMV release {d['release']}, webcams {', '.join(map(str, d['cameras']))}; NoHand: the hand entirely out of view",
        f"LSMV boxes vs boxes from the keypoints: mean IoU {b['iou_mean']}, min {b['iou_min']} over {b['compared']} ({b['missing']} missing, {b['corrupt']} unreadable)",
    ]
    if p is not None:
        lines.append(
            f"3D joints projected vs jointsCam: RMS {p['rms_px']} px, worst {p['max_px']} px, {p['over_tol']} samples over {p['tol_px']} px ({p['samples']} checked)"
        )
        lines += [f"  {name}: {px} px" for name, px in p["worst"]]
    return lines
