"""The calibration stage's files (docs/calibration.md):

- the clicks file (``gthd-clicks`` v1, JSON lines): the points a user clicked, appended as
  they happen, so a clicking session can be resumed;
- the intrinsics (OpenCV FileStorage YAML with ``camera_matrix``,
  ``distortion_coefficients``, ``image_width``, ``image_height``, which OpenCV, ROS and
  mrcal users read, and a JSON twin ``gthd-intrinsics`` v1 with the quality figures);
- ``calibration.json`` (``gthd-calibration`` v1): intrinsics, ``T_cam_leap``, the clock
  offset, and quality figures: what the dataset builder reads.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import __version__
from ..fileio import FormatError, JsonlAppender, atomic_write_bytes, read_input, read_json, write_json
from ..geometry import Camera, Transform
from ..hand import JOINT_INDEX, JOINT_NAMES

CLICKS_FORMAT = "gthd-clicks"
CLICKS_VERSION = 1
INTRINSICS_FORMAT = "gthd-intrinsics"
CALIBRATION_FORMAT = "gthd-calibration"
FILE_VERSION = 1
SIM_TRUTH_FORMAT = "gthd-sim-truth"  # a simulated session's ground truth holds a true camera and calibration


# ----------------------------------------------------------------------------- clicks
@dataclass(frozen=True)
class Click:
    """A clicked point: joint ``joint`` seen at pixel (u, v) in frame ``frame_index``
    (stamped ``t_host_ns`` on the host clock). ``line``: where it was read from (for
    messages; not part of its value)."""

    frame_index: int
    t_host_ns: int
    joint: str
    u: float
    v: float
    line: int | None = field(default=None, compare=False)

    def to_dict(self) -> dict:
        return {"frame_index": self.frame_index, "t_host_ns": self.t_host_ns, "joint": self.joint, "u": round(self.u, 3), "v": round(self.v, 3)}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    """A finite JSON number (an int too large for a float is not one)."""
    try:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    except OverflowError:
        return False


def _click_from(r, path: Path, k: int) -> Click:
    """A click from line ``k``'s record; FormatError naming what is wrong with it."""
    if not isinstance(r, dict):
        raise FormatError(f"{path}: line {k} is not a click (a JSON {type(r).__name__}, not an object)")
    missing = [key for key in ("frame_index", "t_host_ns", "joint", "u", "v") if key not in r]
    if missing:
        raise FormatError(f"{path}: line {k} is not a click (no {', '.join(missing)})")
    if not (_is_int(r["frame_index"]) and _is_int(r["t_host_ns"])):
        raise FormatError(f"{path}: line {k}: frame_index and t_host_ns must be integers, got {r['frame_index']!r} and {r['t_host_ns']!r}")
    if not (_is_num(r["u"]) and _is_num(r["v"])):
        raise FormatError(f"{path}: line {k}: the pixel (u, v) must be two finite numbers, got {r['u']!r}, {r['v']!r}")
    if r["joint"] not in JOINT_INDEX:
        raise FormatError(f"{path}: line {k}: unknown joint {r['joint']!r}")
    return Click(r["frame_index"], r["t_host_ns"], r["joint"], float(r["u"]), float(r["v"]), line=k)


def read_clicks(path: str | Path, warnings: list[str] | None = None) -> tuple[dict, list[Click]]:
    """Read a clicks file. Returns (header, clicks).

    A line ``{"undo": true}`` removes the click before it (the window's undo key appends
    one rather than rewriting the file). A torn last line (no newline: a write cut short,
    as ``kill -9`` leaves) is skipped and said in ``warnings``; any other damage raises.

    Args:
        path: the clicks file.
        warnings: if given, what was skipped is appended to it, one sentence each.

    Raises:
        FormatError: missing, unreadable, not a clicks file, an unknown version, a
            damaged line before the last, or a line that is not a click.
    """
    path = Path(path)
    data = read_input(path, "clicks file")
    lines = data.split(b"\n")
    records: list[tuple[int, object]] = []  # (line number, record)
    for k, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if k == len(lines):  # no newline after it: only a newline proves the line was finished
            if warnings is not None:
                warnings.append(f"{path}: skipped a torn last line (line {k}, {len(line)} bytes without a newline: a write cut short)")
            break
        try:
            records.append((k, json.loads(line)))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise FormatError(f"{path}: line {k} is damaged (not a JSON record); only a torn last line is skipped") from None
    head = records[0][1] if records else None
    if not isinstance(head, dict) or head.get("format") != CLICKS_FORMAT:
        raise FormatError(f"{path}: not a clicks file (expected a '{CLICKS_FORMAT}' header line)")
    if head.get("format_version") != CLICKS_VERSION:
        raise FormatError(f"{path}: clicks version {head.get('format_version')!r} is not one this gthd ({__version__}) reads")
    clicks: list[Click] = []
    for k, r in records[1:]:
        if isinstance(r, dict) and r.get("undo") is True:
            if clicks:
                clicks.pop()
            continue
        clicks.append(_click_from(r, path, k))
    return head, clicks


def check_clicks(clicks: list[Click], frame_index: np.ndarray, t_host_ns: np.ndarray, camera: Camera, source: str) -> None:
    """Raise ValueError unless every click belongs to this session and camera: its frame
    is in the session's frame index, stamped as the session stamps it, and its pixel is
    inside the image.

    Args:
        clicks: as read by :func:`read_clicks`.
        frame_index, t_host_ns: (N,) the session's frame index and frame times.
        camera: the intrinsics (for the image size).
        source: the clicks' origin, for messages (a file name).
    """
    position = {int(f): k for k, f in enumerate(frame_index)}
    for n, c in enumerate(clicks, start=1):
        where = f"{source}: line {c.line}" if c.line is not None else f"{source}: click {n}"
        k = position.get(c.frame_index)
        if k is None:
            span = f"frames {int(frame_index.min())}-{int(frame_index.max())}" if len(frame_index) else "no frames"
            raise ValueError(f"{where}: frame {c.frame_index} is not in the session ({span}): are the clicks from this session?")
        if int(t_host_ns[k]) != c.t_host_ns:
            raise ValueError(
                f"{where}: frame {c.frame_index} is stamped {c.t_host_ns} ns here but {int(t_host_ns[k])} ns in the session: the clicks are from another recording"
            )
        if not camera.in_image(np.array([c.u, c.v])):
            raise ValueError(
                f"{where}: the pixel ({c.u:.1f}, {c.v:.1f}) is outside the {camera.width}x{camera.height} image: "
                "are the clicks and the intrinsics from the same camera and resolution?"
            )


class ClicksWriter:
    """Appends clicks to a clicks file as they happen (created with its header if new;
    an existing file of the same session is continued: resumable)."""

    def __init__(self, path: str | Path, session_id: str, joint: str):
        self.path = Path(path)
        if joint not in JOINT_INDEX:
            raise ValueError(f"unknown joint {joint!r}; one of {', '.join(JOINT_NAMES)}")
        if self.path.exists():
            header, _ = read_clicks(self.path)
            if header.get("session_id") not in (None, session_id):
                raise ValueError(f"{self.path} holds clicks of session {header.get('session_id')!r}, not {session_id!r}")
            _drop_torn_tail(self.path)
        self._log = JsonlAppender(self.path, flush_every_s=0.0)
        if self._log.path.stat().st_size == 0:
            self._log.write({"format": CLICKS_FORMAT, "format_version": CLICKS_VERSION, "gthd_version": __version__, "session_id": session_id, "joint": joint})

    def add(self, click: Click) -> None:
        self._log.write(click.to_dict())

    def undo(self) -> None:
        self._log.write({"undo": True})

    def close(self) -> None:
        self._log.close()


def _drop_torn_tail(path: Path) -> None:
    """Cut a torn last line (bytes after the last newline) off a log before appending to
    it: appended records would otherwise be glued onto it, one damaged line."""
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


# -------------------------------------------------------------------------- intrinsics
def write_intrinsics(stem: str | Path, camera: Camera, quality: dict, detections: dict | None = None) -> tuple[Path, Path]:
    """Write ``STEM.yaml`` (OpenCV FileStorage) and ``STEM.json`` (with the quality and,
    given, the detections the report is drawn from: ``gthd calibrate report`` redraws it),
    each atomically. Returns both paths."""
    stem = Path(stem)
    yaml_path, json_path = stem.with_suffix(".yaml"), stem.with_suffix(".json")
    fs = cv2.FileStorage(".yaml", cv2.FILE_STORAGE_WRITE | cv2.FILE_STORAGE_MEMORY)
    fs.write("image_width", int(camera.width))
    fs.write("image_height", int(camera.height))
    fs.write("camera_matrix", camera.K)
    fs.write("distortion_coefficients", camera.dist.reshape(1, 5))
    fs.write("gthd_version", __version__)
    atomic_write_bytes(yaml_path, fs.releaseAndGetString().encode())
    doc = {"camera": camera.to_dict(), "quality": quality, **({"detections": detections} if detections is not None else {})}
    write_json(json_path, doc, fmt=INTRINSICS_FORMAT, version=FILE_VERSION)
    return yaml_path, json_path


def read_intrinsics(path: str | Path) -> Camera:
    """A camera from an OpenCV FileStorage YAML or XML (``camera_matrix``,
    ``distortion_coefficients``, ``image_width``, ``image_height``), a ROS
    ``camera_info`` YAML (what ``camera_calibration`` writes), our JSON twin, or a
    ``calibration.json``.

    The YAML and XML are read by gthd's own strict readers, not by ``cv2.FileStorage``:
    OpenCV's parser corrupts its heap on some damaged files (found by the property tests
    of tests/test_calibration_files.py), and a crash is not an error message.

    Raises:
        FormatError: missing, unreadable, none of these formats, or intrinsics that
            cannot be right (:func:`checked_camera`); always one line.
    """
    path = Path(path)
    data = read_input(path, "intrinsics file")
    if path.suffix.lower() == ".json":
        return _intrinsics_from_json(data, path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not a text file (intrinsics are OpenCV YAML/XML, ROS camera_info YAML or gthd JSON)") from None
    if text.lstrip().startswith("<"):
        return _intrinsics_from_xml(text, path)
    return _intrinsics_from_yaml(text, path)


def checked_camera(K, dist, width, height, what: str | Path) -> Camera:
    """A Camera from raw values, refused (FormatError) unless it can be a real camera.

    Refused: a camera matrix that is not 3x3, not finite, with fx or fy <= 0, with skew
    (``cv2.projectPoints`` ignores it) or a bottom row other than [0, 0, 1]; a principal
    point outside the image; an image size that is not a positive integer; distortion
    beyond OpenCV's 5 terms (k1, k2, p1, p2, k3) that is not zero (gthd's lens model has
    only those: the others would be silently dropped). Fewer than 5 terms are padded with
    zeros.

    Args:
        what: the file (or thing) they come from, for the message.
    """
    try:
        K = np.asarray(K, dtype=np.float64)
        d = np.asarray(dist, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise FormatError(f"{what}: camera_matrix and distortion_coefficients must be numbers") from None
    if K.shape != (3, 3):
        raise FormatError(f"{what}: camera_matrix must be 3x3, got shape {K.shape}")
    if not (np.isfinite(K).all() and np.isfinite(d).all()):
        raise FormatError(f"{what}: camera_matrix and distortion_coefficients must be finite numbers")
    size = []
    for name, v in (("image_width", width), ("image_height", height)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (1 <= v <= 100_000) or v != int(v):
            raise FormatError(f"{what}: {name} must be a positive whole number of pixels, got {v!r}")
        size.append(int(v))
    w, h = size
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if not (fx > 0 and fy > 0):
        raise FormatError(f"{what}: the focal lengths must be > 0 px, got fx = {fx:g}, fy = {fy:g}")
    if abs(K[0, 1]) > 1e-9 * fx:
        raise FormatError(f"{what}: the camera matrix has a skew K[0][1] = {K[0, 1]:g}, which OpenCV's projection ignores: not a camera gthd can use")
    if np.abs(K[[1, 2, 2], [0, 0, 1]]).max() > 1e-12 or abs(K[2, 2] - 1) > 1e-12:
        raise FormatError(f"{what}: not a camera matrix (expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], got {np.round(K, 6).tolist()})")
    if not (0 <= cx <= w and 0 <= cy <= h):
        raise FormatError(f"{what}: the principal point ({cx:g}, {cy:g}) is outside the {w}x{h} image: wrong image size, or not this camera's intrinsics")
    if d.size > 5 and np.any(d[5:] != 0):
        raise FormatError(
            f"{what}: {d.size} distortion coefficients with non-zero terms beyond k1, k2, p1, p2, k3: gthd uses OpenCV's 5-term lens model; "
            "calibrate without the rational/thin-prism/tilt terms (gthd calibrate intrinsics does)"
        )
    dist5 = np.zeros(5)
    dist5[: min(5, d.size)] = d[:5]
    return Camera(K, dist5, w, h)


def _intrinsics_from_json(data: bytes, path: Path) -> Camera:
    """The camera of a gthd intrinsics JSON, a calibration.json or a simulated ground truth."""
    try:
        d = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise FormatError(f"{path}: not readable JSON ({type(e).__name__}: {_one_line(e)})") from None
    fmt = d.get("format") if isinstance(d, dict) else None
    if fmt not in (INTRINSICS_FORMAT, CALIBRATION_FORMAT, SIM_TRUTH_FORMAT):
        raise FormatError(f"{path}: not an intrinsics or calibration file (format {fmt!r})")
    if fmt != SIM_TRUTH_FORMAT and d.get("format_version") != FILE_VERSION:
        raise FormatError(f"{path}: {fmt} version {d.get('format_version')!r} is not one this gthd ({__version__}) reads (it reads {FILE_VERSION})")
    return _camera_from_dict(d.get("camera"), path)


def _camera_from_dict(cam, path: Path) -> Camera:
    if not isinstance(cam, dict):
        raise FormatError(f"{path}: no 'camera' object")
    missing = [k for k in ("camera_matrix", "distortion_coefficients", "image_width", "image_height") if k not in cam]
    if missing:
        raise FormatError(f"{path}: the camera has no {', '.join(missing)}")
    return checked_camera(cam["camera_matrix"], cam["distortion_coefficients"], cam["image_width"], cam["image_height"], path)


def _one_line(e: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(e).split())


def _matrix(doc: dict, name: str, what: str, shape: tuple[int, int] | None = None) -> list[float]:
    """The numbers of ``name`` (a map with rows, cols, data; OpenCV's also a dt)."""
    m = doc.get(name)
    if not isinstance(m, dict) or not isinstance(m.get("data"), list):
        raise FormatError(f"{what}: needs {name} with rows, cols and data: [...]")
    data, r, c = m["data"], m.get("rows"), m.get("cols")
    if not (_is_int(r) and _is_int(c)) or r * c != len(data) or (shape is not None and (r, c) != shape):
        expected = f" (expected {shape[0]}x{shape[1]})" if shape else ""
        raise FormatError(f"{what}: {name} has rows {r!r}, cols {c!r} and {len(data)} numbers{expected}")
    if "dt" in m and m["dt"] not in ("d", "f", "i", "s", "w", "u", "c"):
        raise FormatError(f"{what}: {name} has an element type dt {m['dt']!r} that is not a number type")
    return data


def _camera_from_maps(doc: dict, what: str) -> Camera:
    """A camera from the maps of an OpenCV FileStorage or ROS camera_info file."""
    K = np.array(_matrix(doc, "camera_matrix", what, (3, 3))).reshape(3, 3)
    dist = _matrix(doc, "distortion_coefficients", what)
    model = doc.get("distortion_model", "plumb_bob")
    if model not in ("plumb_bob", "rational_polynomial"):
        raise FormatError(f"{what}: distortion_model {model!r} is not OpenCV's 5-term model (plumb_bob) that gthd uses")
    if "image_width" not in doc or "image_height" not in doc:
        raise FormatError(f"{what}: needs image_width and image_height")
    return checked_camera(K, dist, doc["image_width"], doc["image_height"], what)


# The YAML read here: two levels of ``key: value``, as OpenCV's FileStorage writes it
#   %YAML:1.0 (or %YAML 1.2), ---
#   image_width: 640
#   camera_matrix: !!opencv-matrix          (then indented rows, cols, dt, data: [...])
# and as ROS's camera_info files are (camera_calibration_parsers, camera_calibration's ost.yaml)
#   image_width: 640
#   camera_matrix:                          (then indented rows, cols, data: [...])
#   distortion_model: plumb_bob
#   distortion_coefficients: ...            (rectification/projection_matrix: unused here)
# Lists are flow lists of numbers, possibly over several lines. Anything else is refused
# by line number: gthd does not depend on a YAML library.
_YAML_KEY = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_]*)\s*:(?:\s+(.*?))?\s*$")


def _strip_comment(line: str) -> str:
    """The line without a YAML comment (a '#' at its start or after a space, outside quotes)."""
    quote = None
    for k, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1] in " \t"):
            return line[:k]
    return line


def _yaml_scalar(v: str, where: str):
    """A number (int or float) or a string (quotes removed); ``where``: for the message."""
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1]
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    if v[:1] in "[]{}&*!|>@`'\"":
        raise FormatError(f"{where}: {v[:40]!r} is not a value this reader knows (numbers, names and [a, b, ...] lists)")
    return v


def _yaml_list(v: str, what: str, k: int) -> list[float]:
    """A flow list of numbers ``[a, b, ...]``."""
    inner = v[1:-1].strip()
    try:
        return [float(x) for x in inner.split(",")] if inner else []
    except ValueError:
        raise FormatError(f"{what}: line {k}: expected a list of numbers, got {v[:60]!r}") from None


def _parse_yaml_maps(text: str, what: str) -> dict:
    """The two-level ``key: value`` maps of an intrinsics YAML; FormatError on anything else."""
    doc: dict = {}
    parent: dict | None = None  # the map that indented lines go into
    lines = text.splitlines()
    k = 0
    while k < len(lines):
        line = _strip_comment(lines[k]).rstrip()
        k += 1
        if not line.strip() or line.strip() in ("---", "...") or line.startswith("%"):
            continue
        m = _YAML_KEY.match(line)
        if m is None:
            raise FormatError(f"{what}: line {k}: not a 'key: value' line: {line.strip()[:60]!r}")
        indent, key, value = len(m.group(1)), m.group(2), m.group(3) or ""
        first = k
        if value.startswith("["):  # a flow list may go on over several lines
            while "]" not in value and k < len(lines):
                value += " " + _strip_comment(lines[k]).strip()
                k += 1
            if not value.endswith("]") or value.count("[") != 1 or value.count("]") != 1:
                raise FormatError(f"{what}: line {first}: a list that does not close with ']' (or nested lists)")
            parsed = _yaml_list(value, what, first)
        elif value and not re.fullmatch(r"!![A-Za-z-]+", value):  # a tag (!!opencv-matrix): a map follows
            parsed = _yaml_scalar(value, f"{what}: line {first}")
        else:
            parsed = None
        if indent == 0:
            target, parent = doc, None
            if parsed is None:
                parsed = parent = {}
        elif parent is not None and parsed is not None:
            target = parent
        else:
            raise FormatError(f"{what}: line {first}: unexpected indentation (two levels are read: key, then indented rows/cols/data)")
        if key in target:
            raise FormatError(f"{what}: line {first}: {key!r} appears twice")
        target[key] = parsed
    return doc


def _intrinsics_from_yaml(text: str, path: Path) -> Camera:
    """The camera of an OpenCV FileStorage YAML or a ROS camera_info YAML."""
    ros = "!!opencv-matrix" not in text and re.search(r"(?m)^camera_matrix:\s*(#.*)?$", text) is not None
    what = f"{path} (ROS camera_info)" if ros else str(path)
    return _camera_from_maps(_parse_yaml_maps(text, what), what)


def _intrinsics_from_xml(text: str, path: Path) -> Camera:
    """The camera of an OpenCV FileStorage XML (``<opencv_storage>``; matrices as
    ``<rows>``, ``<cols>``, ``<dt>``, ``<data>`` children, numbers split by spaces)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise FormatError(f"{path}: not readable XML ({e})") from None
    if root.tag != "opencv_storage":
        raise FormatError(f"{path}: not an OpenCV FileStorage XML (root <{root.tag}>, expected <opencv_storage>)")

    def value(s: str | None, name: str):
        return _yaml_scalar((s or "").strip(), f"{path}: <{name}>")

    doc: dict = {}
    for node in root:
        if len(node):
            m = {child.tag: value(child.text, child.tag) for child in node if child.tag != "data"}
            data = node.find("data")
            try:
                m["data"] = [float(x) for x in (data.text or "").split()] if data is not None else None
            except ValueError:
                raise FormatError(f"{path}: <{node.tag}> has data that are not numbers") from None
            doc[node.tag] = m
        else:
            doc[node.tag] = value(node.text, node.tag)
    return _camera_from_maps(doc, str(path))


# ------------------------------------------------------------------------- calibration
@dataclass
class Calibration:
    """What ``calibration.json`` holds: the camera, ``T_cam_leap`` (FROM leap TO cam, mm)
    and the clock offset ``d`` (ns, docs/conventions.md)."""

    camera: Camera
    T_cam_leap: Transform
    clock_offset_ns: int
    quality: dict

    def project_joints(self, joints_leap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(..., 3) tracked points (mm, ``leap``) into the image: (..., 2) px and (...,)
        visible (:meth:`gthd.geometry.Camera.see`)."""
        return self.camera.see(self.T_cam_leap.apply(joints_leap))

    def project(self, tracker, t_cam_ns, **joints_at) -> tuple[np.ndarray, np.ndarray]:
        """The tracked joints at camera time(s) ``t_cam_ns`` (the clock offset added:
        docs/conventions.md), projected: (..., 21, 2) px and (..., 21) visible. The one
        way every stage labels a frame; ``joints_at``: options of
        :meth:`gthd.session.TrackerStream.joints_at` (max_gap_ns, hand_type, smooth_ns)."""
        j3 = tracker.joints_at(np.asarray(t_cam_ns, dtype=np.int64) + self.clock_offset_ns, **joints_at)
        return self.project_joints(j3)

    def check_image_size(self, width: int, height: int, what: str = "the session") -> None:
        if (self.camera.width, self.camera.height) != (width, height):
            raise ValueError(
                f"the calibration is for {self.camera.width}x{self.camera.height} images but {what} has "
                f"{width}x{height}: calibrate at the resolution you capture"
            )


def write_calibration(path: str | Path, cal: Calibration, extra: dict | None = None) -> None:
    write_json(
        path,
        {
            "camera": cal.camera.to_dict(),
            "image_size": [cal.camera.width, cal.camera.height],
            "T_cam_leap": cal.T_cam_leap.to_dict(),
            "clock_offset_ns": int(cal.clock_offset_ns),
            "clock_offset_meaning": "the tracker state matching a camera frame stamped t_cam is at host time t_cam + clock_offset_ns",
            "quality": cal.quality,
            **(extra or {}),
        },
        fmt=CALIBRATION_FORMAT,
        version=FILE_VERSION,
    )


def read_calibration(path: str | Path) -> Calibration:
    """Read a ``calibration.json``, or a simulated session's ``ground_truth.json`` as the
    true calibration (its camera, ``T_cam_leap`` and clock offset: what the simulator's
    users compare against); FormatError (one line) on anything wrong with it."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise FormatError(f"{path}: not a regular file")
    try:
        d = read_json(path, fmt=(CALIBRATION_FORMAT, SIM_TRUTH_FORMAT), versions=(FILE_VERSION,))
        if d["format"] == SIM_TRUTH_FORMAT:
            clock = d.get("clock")
            d = {
                "camera": d.get("camera"),
                "T_cam_leap": d.get("T_cam_leap"),
                "clock_offset_ns": clock.get("offset_ns") if isinstance(clock, dict) else None,
                "quality": {"source": "the simulator's ground truth"},
            }
    except FormatError:
        raise
    except (ValueError, RecursionError) as e:  # digits beyond Python's int limit, deep nesting
        raise FormatError(f"{path}: not readable JSON ({type(e).__name__}: {_one_line(e)})") from None
    camera = _camera_from_dict(d.get("camera"), path)
    T = d.get("T_cam_leap")
    try:
        T = Transform.from_dict(T)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise FormatError(f"{path}: T_cam_leap is not a transform with from, to, R (a rotation) and t ({type(e).__name__}: {_one_line(e)})") from None
    if (T.src, T.dst) != ("leap", "cam"):
        raise FormatError(f"{path}: T_cam_leap maps {T.src} to {T.dst}, expected leap to cam")
    if not np.isfinite(T.t).all():
        raise FormatError(f"{path}: T_cam_leap's t is not finite")
    offset, quality = d.get("clock_offset_ns"), d.get("quality", {})
    if not _is_int(offset):
        raise FormatError(f"{path}: clock_offset_ns must be an integer (ns), got {offset!r}")
    if not isinstance(quality, dict):
        raise FormatError(f"{path}: quality must be an object")
    return Calibration(camera, T, offset, quality)
