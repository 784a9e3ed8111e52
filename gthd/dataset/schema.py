"""The gthd dataset file: one HDF5 file, schema version 1 (docs/dataset-format.md).

::

    /                     attrs: format "gthd-dataset", schema_version 1, gthd_version,
                          joint_set, joint_names, edges (JSON), crop_size, crop_margin,
                          skeleton_thickness, splits, split_by, split_seed, sources (JSON)
    /images/frame_jpeg    (N,) vlen uint8  the whole frame, JPEG bytes
    /images/crop_jpeg     (N,) vlen uint8  the square hand crop, crop_size^2, JPEG bytes
                                           (empty for a NoHand sample)
    /images/skeleton_png  (N,) vlen uint8  the skeleton mask where it is not empty, PNG bytes:
                                           the frame's mask is zero but for this patch, whose
                                           top-left pixel is /labels/skeleton_origin
                                           (read_skeleton() pastes it into a whole frame)
    /labels/keypoints     (N, 21, 2) float32  px in the frame (NaN where unknown)
    /labels/visible       (N, 21) bool      in front of the camera and inside the image
    /labels/keypoints_crop (N, 21, 2) float32 px in the crop
    /labels/crop_box      (N, 4) float32    xyxy of the crop in the frame (square)
    /labels/skeleton_origin (N, 2) int32    (x, y) of the skeleton patch's top-left pixel
    /labels/box           (N, 4) float32    xyxy hand box (NaN for NoHand)
    /labels/has_hand      (N,) bool
    /labels/joints_cam    (N, 21, 3) float32 mm, camera frame (NaN when unknown)
    /labels/joints_tracker (N, 21, 3) float32 mm, tracker frame (NaN when unknown)
    /meta/image_size      (N, 2) int32 (width, height)
    /meta/session         (N,) int32  index into the root attr "sessions"
    /meta/subject         (N,) int32  index into the root attr "subjects"
    /meta/frame_index     (N,) int32  the frame in its session (or the image's index)
    /meta/t_host_ns       (N,) int64  the frame's host time (0 for imports)
    /meta/split           (N,) uint8  0 train, 1 val, 2 test
    /meta/name            (N,) vlen str  a readable id: "session/frame" or the image file

Arrays are chunked along N and written as the build streams (memory stays flat); the
file is written under a temporary name and renamed at the end.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field

try:
    import resource  # POSIX: the file-size limit
except ImportError:  # pragma: no cover (Windows)
    resource = None
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..fileio import FormatError
from ..hand import EDGES, JOINT_NAMES, NUM_JOINTS

DATASET_FORMAT = "gthd-dataset"
SCHEMA_VERSION = 1
SPLITS = ("train", "val", "test")
CROP_SIZE = 128

_VLEN_U8 = h5py.vlen_dtype(np.dtype("uint8"))
_STR = h5py.string_dtype()

# name: (group, per-sample shape, dtype, fill)
FIELDS: dict[str, tuple[str, tuple, object, object]] = {
    "frame_jpeg": ("images", (), _VLEN_U8, None),
    "crop_jpeg": ("images", (), _VLEN_U8, None),
    "skeleton_png": ("images", (), _VLEN_U8, None),
    "keypoints": ("labels", (NUM_JOINTS, 2), np.float32, np.nan),
    "visible": ("labels", (NUM_JOINTS,), np.bool_, False),
    "keypoints_crop": ("labels", (NUM_JOINTS, 2), np.float32, np.nan),
    "crop_box": ("labels", (4,), np.float32, np.nan),
    "skeleton_origin": ("labels", (2,), np.int32, 0),
    "box": ("labels", (4,), np.float32, np.nan),
    "has_hand": ("labels", (), np.bool_, False),
    "joints_cam": ("labels", (NUM_JOINTS, 3), np.float32, np.nan),
    "joints_tracker": ("labels", (NUM_JOINTS, 3), np.float32, np.nan),
    "image_size": ("meta", (2,), np.int32, 0),
    "session": ("meta", (), np.int32, 0),
    "subject": ("meta", (), np.int32, 0),
    "frame_index": ("meta", (), np.int32, -1),
    "t_host_ns": ("meta", (), np.int64, 0),
    "split": ("meta", (), np.uint8, 0),
    "name": ("meta", (), _STR, ""),
}


@dataclass
class Sample:
    """One sample as the writer takes it. Arrays in gthd's joint order; see the module
    docstring for shapes and units. Omitted labels are written as their fill (NaN, False)."""

    frame_jpeg: bytes
    image_size: tuple[int, int]
    has_hand: bool
    crop_jpeg: bytes = b""
    skeleton_png: bytes = b""
    keypoints: np.ndarray | None = None
    visible: np.ndarray | None = None
    keypoints_crop: np.ndarray | None = None
    crop_box: np.ndarray | None = None
    skeleton_origin: tuple[int, int] | None = None
    box: np.ndarray | None = None
    joints_cam: np.ndarray | None = None
    joints_tracker: np.ndarray | None = None
    session: int = 0
    subject: int = 0
    frame_index: int = -1
    t_host_ns: int = 0
    split: int = 0
    name: str = ""


def check_output(path: Path, force: bool = False) -> None:
    """Refuse to write a dataset file at ``path``: FileExistsError where one is there
    (unless ``force``), FileNotFoundError where its folder is not."""
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists (use --force to replace it)")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: no such folder")


UNCLOSABLE = False  # an HDF5 file of this process failed a write (see DatasetWriter._writing)


@dataclass
class DatasetWriter:
    """Streams samples into a new dataset file; ``close()`` renames it into place.

    Args:
        path: the final file; refused if it exists (unless ``force``).
        attrs: extra root attributes (JSON-serialisable values are stored as JSON text).
        chunk: samples per HDF5 chunk.

    Use as a context manager: on an exception the temporary file is removed and nothing
    is left under ``path``.
    """

    path: Path
    attrs: dict = field(default_factory=dict)
    force: bool = False
    chunk: int = 64

    def __post_init__(self):
        self.path = Path(self.path)
        check_output(self.path, self.force)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._f = h5py.File(self._tmp, "w")
        self._n = 0
        self._ds = {}
        for name, (group, shape, dtype, _) in FIELDS.items():
            self._ds[name] = self._f.require_group(group).create_dataset(
                name, shape=(0,) + shape, maxshape=(None,) + shape, dtype=dtype, chunks=(self.chunk,) + shape
            )
        base = {
            "format": DATASET_FORMAT,
            "schema_version": SCHEMA_VERSION,
            "gthd_version": __version__,
            "joint_set": "gthd21",
            "joint_names": list(JOINT_NAMES),
            "edges": [list(e) for e in EDGES],
            "crop_size": CROP_SIZE,
            "splits": list(SPLITS),
            "sessions": [],
            "subjects": [],
        }
        for k, v in {**base, **self.attrs}.items():
            self.set_attr(k, v)
        self._buf: list[Sample] = []

    def set_attr(self, key: str, value) -> None:
        self._f.attrs[key] = value if isinstance(value, (int, float, str, np.integer, np.floating)) else json.dumps(value)

    def add(self, s: Sample) -> int:
        """Queue one sample (written a chunk at a time). Returns its index."""
        self._buf.append(s)
        if len(self._buf) >= self.chunk:
            self._flush()
        return self._n + len(self._buf) - 1

    @contextlib.contextmanager
    def _writing(self):
        """HDF5 reports a failed write (a full disk) as RuntimeError with the C library's
        details: one OSError naming the file the user asked for. The file can no longer be
        closed cleanly, which HDF5 punishes with a crash at exit: :data:`UNCLOSABLE` tells
        the program to leave without running HDF5's shutdown."""
        try:
            yield
        except (RuntimeError, OSError) as e:
            global UNCLOSABLE
            UNCLOSABLE = True
            said = re.search(r"error message = '([^']*)'", str(e))
            raise OSError(errno.EIO, f"cannot write {self.path}: {said.group(1) if said else str(e).splitlines()[0]}") from None

    def _flush(self) -> None:
        if not self._buf:
            return
        self._check_room()
        with self._writing():
            self._write_buffer()

    def _check_room(self) -> None:
        """Refuse, with one clear line, a chunk the disk (or the process's file-size
        limit) has no room for, before HDF5 tries: a write HDF5 sees fail can crash the
        whole process inside the library (seen with h5py 3.16), beyond any except."""
        need = 2 * sum(len(s.frame_jpeg or b"") + len(s.crop_jpeg or b"") + len(s.skeleton_png or b"") for s in self._buf) + (4 << 20)
        size = self._tmp.stat().st_size
        st = os.statvfs(self._tmp.parent)
        free = st.f_bavail * st.f_frsize
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource is not None else -1
        room = min(free, limit - size) if limit not in (-1, getattr(resource, "RLIM_INFINITY", -1)) else free
        if room < need:
            raise OSError(
                errno.ENOSPC,
                f"cannot write {self.path}: no room for the next {len(self._buf)} samples "
                f"({need / 1e6:.1f} MB with a margin; {max(room, 0) / 1e6:.1f} MB left{' under the file-size limit' if room < free else ''})",
            )

    def _write_buffer(self) -> None:
        n0, n1 = self._n, self._n + len(self._buf)
        for name, (_, shape, dtype, fill) in FIELDS.items():
            ds = self._ds[name]
            ds.resize((n1,) + shape)
            vals = [getattr(s, name) for s in self._buf]
            if dtype is _VLEN_U8:
                rows = [np.frombuffer(v or b"", dtype=np.uint8) for v in vals]
                if len({len(r) for r in rows}) > 1:  # one call for the chunk
                    arr = np.empty(len(rows), dtype=object)
                    arr[:] = rows
                    ds[n0:n1] = arr
                else:  # equal-length rows would be read as a 2-D array: one at a time
                    for k, r in enumerate(rows):
                        ds[n0 + k] = r
            elif dtype is _STR:
                ds[n0:n1] = np.array(vals, dtype=object)
            else:
                out = np.full((len(vals),) + shape, fill, dtype=dtype)
                for k, v in enumerate(vals):
                    if v is not None:
                        out[k] = v
                ds[n0:n1] = out
        self._n = n1
        self._buf.clear()

    def __len__(self) -> int:
        return self._n + len(self._buf)

    def column(self, name: str) -> np.ndarray:
        """A written numeric column, read back whole (small ones: meta, labels)."""
        self._flush()
        return self._ds[name][...]

    def write_column(self, name: str, values) -> None:
        """Overwrite a whole column, e.g. ``split`` once every sample is known."""
        self._flush()
        values = np.asarray(values)
        if len(values) != self._n:
            raise ValueError(f"{name}: {len(values)} values for {self._n} samples")
        with self._writing():
            self._ds[name][...] = values

    def write_extra(self, key: str, values) -> None:
        """Add a whole array beside the schema's, one row per sample (``group/name``, e.g.
        LSMV's ``labels/palm``): readers that do not know it ignore it."""
        self._flush()
        values = np.asarray(values)
        if len(values) != self._n:
            raise ValueError(f"{key}: {len(values)} rows for {self._n} samples")
        with self._writing():
            self._f.create_dataset(key, data=values)

    def close(self) -> Path:
        """Write what is queued, close, fsync and rename into place."""
        self._flush()
        with self._writing():
            self._f.attrs["num_samples"] = self._n
            self._f.close()
        with open(self._tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(self._tmp, 0o644)
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._f.close()
        except (RuntimeError, OSError):  # a write had failed: HDF5 cannot flush it either
            pass
        finally:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def open_dataset(path: str | Path) -> h5py.File:
    """Open a dataset file read-only, checking its format, schema version and layout.

    Raises:
        FormatError: one line naming the file: missing, not HDF5, not a gthd dataset (no
            format attribute, or a group or array of the schema missing or of another
            shape), or a schema version this gthd does not read.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such dataset file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise FormatError(f"{path}: not an HDF5 file ({_first_line(e)})") from None
    try:
        _check_layout(path, f)
    except BaseException:
        f.close()
        raise
    return f


def _check_layout(path: Path, f: h5py.File) -> None:
    """FormatError unless ``f`` is a schema-1 gthd dataset: its root attributes, and
    every array of :data:`FIELDS` present with the per-sample shape and one length."""
    fmt = f.attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode(errors="replace")
    if fmt != DATASET_FORMAT:
        raise FormatError(f"{path}: not a gthd dataset (format {fmt!r}, expected {DATASET_FORMAT!r})")
    v = f.attrs.get("schema_version")
    try:
        version = None if v is None else int(v)
    except (TypeError, ValueError):
        version = v
    if version != SCHEMA_VERSION:
        shown = "missing" if v is None else version
        raise FormatError(f"{path}: dataset schema version {shown} is not one this gthd ({__version__}) reads (it reads {SCHEMA_VERSION}); upgrade gthd")
    lengths = set()
    for name, (group, shape, _, _) in FIELDS.items():
        key = f"{group}/{name}"
        ds = f.get(key)
        if not isinstance(ds, h5py.Dataset):
            raise FormatError(f"{path}: not a gthd dataset ({key} is missing)")
        if tuple(ds.shape[1:]) != shape or len(ds.shape) != 1 + len(shape):
            expected = "(" + ", ".join(["N", *map(str, shape)]) + ")"
            raise FormatError(f"{path}: not a gthd dataset ({key} is {ds.shape}, expected {expected})")
        lengths.add(ds.shape[0])
    n = f.attrs.get("num_samples")
    if len(lengths) > 1 or (n is not None and not (isinstance(n, (int, np.integer)) and int(n) in lengths)):
        raise FormatError(f"{path}: not a gthd dataset (its arrays have {sorted(lengths)} samples, num_samples says {n})")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def dataset_fingerprint(path: str | Path) -> str:
    """A dataset's identity by content: a short hash of its labels and splits.

    The same file under another name or in another folder has the same fingerprint; a
    file rebuilt at the same path with other samples or splits has another. What a run
    folder and its checkpoints record of their data, instead of its path.
    """
    h = hashlib.sha1()
    with open_dataset(path) as f:
        for key in ("labels/keypoints", "labels/box", "meta/split"):
            h.update(np.ascontiguousarray(f[key][...]).tobytes())
    return h.hexdigest()[:16]


def read_skeleton(f: h5py.File, i: int) -> np.ndarray:
    """Sample ``i``'s whole-frame skeleton mask, (H, W) uint8 (zeros for NoHand)."""
    import cv2

    w, h = (int(v) for v in f["meta/image_size"][i])
    mask = np.zeros((h, w), np.uint8)
    data = f["images/skeleton_png"][i]
    if len(data):
        patch = cv2.imdecode(np.asarray(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        x, y = (int(v) for v in f["labels/skeleton_origin"][i])
        mask[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
    return mask


def attr_json(f: h5py.File, key: str, default=None):
    """A root attribute stored as JSON text (lists, dicts), decoded."""
    v = f.attrs.get(key)
    if v is None:
        return default
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str):
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    return v


def assign_splits(n: int, groups: np.ndarray | None, fractions=(0.75, 0.10, 0.15), seed: int = 0) -> np.ndarray:
    """(n,) uint8 split of each sample: at random (the paper's 75/10/15) or, with
    ``groups`` (n,) ints (subject or session ids), whole groups to one split, the groups
    shuffled and assigned so the sample counts come closest to the fractions."""
    check_fractions(fractions)
    rng = np.random.default_rng(seed)
    out = np.zeros(n, dtype=np.uint8)
    if groups is None:
        order = rng.permutation(n)
        cuts = np.round(np.cumsum(fractions)[:-1] * n).astype(int)
        for k, part in enumerate(np.split(order, cuts)):
            out[part] = k
        return out
    groups = np.asarray(groups)
    ids = rng.permutation(np.unique(groups))
    counts = {g: int(np.sum(groups == g)) for g in ids}
    target = np.array(fractions) * n
    got = np.zeros(3)
    for g in sorted(ids, key=lambda g: -counts[g]):  # biggest groups first, to the neediest split
        k = int(np.argmax(target - got))
        out[groups == g] = k
        got[k] += counts[g]
    return out


def check_fractions(fractions) -> None:
    """ValueError unless ``fractions`` are three shares (train, val, test), >= 0, adding up to 1."""
    if len(fractions) != len(SPLITS) or not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"split fractions must be three shares >= 0 adding up to 1, got {fractions}")
