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
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .. import __version__
from ..fileio import FormatError, JsonlAppender, atomic_write_bytes, read_json, read_jsonl, write_json
from ..geometry import Camera, Transform
from ..hand import JOINT_INDEX, JOINT_NAMES

CLICKS_FORMAT = "gthd-clicks"
CLICKS_VERSION = 1
INTRINSICS_FORMAT = "gthd-intrinsics"
CALIBRATION_FORMAT = "gthd-calibration"
FILE_VERSION = 1


# ----------------------------------------------------------------------------- clicks
@dataclass(frozen=True)
class Click:
    """A clicked point: joint ``joint`` seen at pixel (u, v) in frame ``frame_index``
    (stamped ``t_host_ns`` on the host clock)."""

    frame_index: int
    t_host_ns: int
    joint: str
    u: float
    v: float

    def to_dict(self) -> dict:
        return {"frame_index": self.frame_index, "t_host_ns": self.t_host_ns, "joint": self.joint, "u": round(self.u, 3), "v": round(self.v, 3)}


def read_clicks(path: str | Path) -> tuple[dict, list[Click]]:
    """Read a clicks file. Returns (header, clicks); a torn last line is skipped.

    A line ``{"undo": true}`` removes the click before it (the window's undo key appends
    one rather than rewriting the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such clicks file")
    records, _ = read_jsonl(path)
    if not records or records[0].get("format") != CLICKS_FORMAT:
        raise FormatError(f"{path}: not a clicks file (expected a '{CLICKS_FORMAT}' header line)")
    if records[0].get("format_version") != CLICKS_VERSION:
        raise FormatError(f"{path}: clicks version {records[0].get('format_version')!r} is not one this gthd ({__version__}) reads")
    clicks: list[Click] = []
    for k, r in enumerate(records[1:], start=2):
        if r.get("undo"):
            if clicks:
                clicks.pop()
            continue
        try:
            c = Click(int(r["frame_index"]), int(r["t_host_ns"]), str(r["joint"]), float(r["u"]), float(r["v"]))
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"{path}: line {k} is not a click ({type(e).__name__}: {e})") from None
        if c.joint not in JOINT_INDEX:
            raise FormatError(f"{path}: line {k}: unknown joint {c.joint!r}")
        clicks.append(c)
    return records[0], clicks


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
        self._log = JsonlAppender(self.path, flush_every_s=0.0)
        if self._log.path.stat().st_size == 0:
            self._log.write({"format": CLICKS_FORMAT, "format_version": CLICKS_VERSION, "gthd_version": __version__, "session_id": session_id, "joint": joint})

    def add(self, click: Click) -> None:
        self._log.write(click.to_dict())

    def undo(self) -> None:
        self._log.write({"undo": True})

    def close(self) -> None:
        self._log.close()


# -------------------------------------------------------------------------- intrinsics
def write_intrinsics(stem: str | Path, camera: Camera, quality: dict) -> tuple[Path, Path]:
    """Write ``STEM.yaml`` (OpenCV FileStorage) and ``STEM.json`` (with quality). Returns both paths."""
    stem = Path(stem)
    yaml_path, json_path = stem.with_suffix(".yaml"), stem.with_suffix(".json")
    tmp = yaml_path.with_name(f".{yaml_path.name}.tmp.yaml")
    fs = cv2.FileStorage(str(tmp), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", int(camera.width))
    fs.write("image_height", int(camera.height))
    fs.write("camera_matrix", camera.K)
    fs.write("distortion_coefficients", camera.dist.reshape(1, 5))
    fs.write("gthd_version", __version__)
    fs.release()
    atomic_write_bytes(yaml_path, tmp.read_bytes())
    tmp.unlink()
    write_json(json_path, {"camera": camera.to_dict(), "quality": quality}, fmt=INTRINSICS_FORMAT, version=FILE_VERSION)
    return yaml_path, json_path


def read_intrinsics(path: str | Path) -> Camera:
    """A camera from an OpenCV FileStorage YAML/XML (``camera_matrix``,
    ``distortion_coefficients``, ``image_width``, ``image_height``), our JSON twin, or a
    ``calibration.json``."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such intrinsics file")
    if path.suffix.lower() == ".json":
        d = json.loads(path.read_text())
        if d.get("format") not in (INTRINSICS_FORMAT, CALIBRATION_FORMAT, "gthd-sim-truth"):
            raise FormatError(f"{path}: not an intrinsics or calibration file (format {d.get('format')!r})")
        return Camera.from_dict(d["camera"])
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    try:
        K, dist = fs.getNode("camera_matrix").mat(), fs.getNode("distortion_coefficients").mat()
        w, h = fs.getNode("image_width").real(), fs.getNode("image_height").real()
    finally:
        fs.release()
    if K is None or dist is None or not w or not h:
        raise FormatError(f"{path}: needs camera_matrix, distortion_coefficients, image_width and image_height")
    d = np.zeros(5)
    flat = np.asarray(dist, dtype=np.float64).ravel()
    d[: min(5, flat.size)] = flat[:5]
    return Camera(np.asarray(K, dtype=np.float64), d, int(w), int(h))


# ------------------------------------------------------------------------- calibration
@dataclass
class Calibration:
    """What ``calibration.json`` holds: the camera, ``T_cam_leap`` (FROM leap TO cam, mm)
    and the clock offset ``d`` (ns, docs/conventions.md)."""

    camera: Camera
    T_cam_leap: Transform
    clock_offset_ns: int
    quality: dict

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
    d = read_json(path, fmt=CALIBRATION_FORMAT, versions=(FILE_VERSION,))
    T = Transform.from_dict(d["T_cam_leap"])
    if (T.src, T.dst) != ("leap", "cam"):
        raise FormatError(f"{path}: T_cam_leap maps {T.src} to {T.dst}, expected leap to cam")
    return Calibration(Camera.from_dict(d["camera"]), T, int(d["clock_offset_ns"]), d.get("quality", {}))
