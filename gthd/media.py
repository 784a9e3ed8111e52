"""Pictures and videos in and out, and a window to show them: what a tool that reads
images, folders, video files or cameras needs besides its own work (``gthd predict``;
``gthd capture`` spells its cameras with :func:`parse_source`).

- Sources: :func:`parse_source`, the one spelling of a camera for every command ("0" or
  "camera:0"); :func:`source_kind`, what a source argument names.
- Images: :func:`list_images`, :func:`read_image`.
- Videos: :class:`VideoIn` reads a file or a camera, :class:`VideoOut` writes an mp4v
  file atomically.
- A window: :func:`require_display`, :class:`Window` (q or Esc stops).

Frames are (H, W, 3) uint8 BGR, as OpenCV has them.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from .draw import close_window

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
"""The image files a folder source is read for."""
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi")
"""What a video file :class:`VideoOut` writes may be called (OpenCV puts an mp4v stream in any of these)."""
QUIT_KEYS = (ord("q"), ord("Q"), 27)
"""The keys that stop a :class:`Window`: q, Q, Esc."""


# ------------------------------------------------------------------------------- sources
def parse_source(s: str) -> int | str:
    """A camera source as ``cv2.VideoCapture`` wants it, spelled the same way for every
    command (``gthd capture --camera``, ``gthd predict``): a device index for ``N`` or
    ``camera:N`` ("0", "camera:0" -> 0), else the string unchanged (a video file path, a
    ``/dev/videoN`` node, or a stream URL). ValueError for ``camera:`` and no index."""
    s = s.strip()
    if s.startswith("camera:"):
        if not s[len("camera:") :].isdigit():
            raise ValueError(f"{s}: expected camera:INDEX, such as camera:0")
        return int(s[len("camera:") :])
    return int(s) if s.isdigit() else s


def parse_camera(source: str) -> int | None:
    """The camera index of ``camera:N`` or a bare integer ``N`` (:func:`parse_source`);
    None for anything else. ValueError for ``camera:`` followed by anything but an index."""
    parsed = parse_source(source)
    return parsed if isinstance(parsed, int) else None


def source_kind(source: str) -> str:
    """ "camera", "folder", "image" (by suffix: .jpg .jpeg .png .bmp) or "video" (any
    other file); FileNotFoundError when ``source`` does not exist."""
    if parse_camera(source) is not None:
        return "camera"
    path = Path(source)
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such file or folder (a camera is camera:0)")
    return "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"


# -------------------------------------------------------------------------------- images
def list_images(folder: Path) -> list[Path]:
    """The images directly in ``folder`` (:data:`IMAGE_SUFFIXES`, any case; hidden files
    left out), sorted by name; ValueError when there is none."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise ValueError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return files


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 BGR; ValueError when it cannot be decoded."""
    data = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: it fails silently and on non-ASCII paths
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise ValueError(f"{path}: not a readable image")
    return img


# -------------------------------------------------------------------------------- videos
class VideoIn:
    """The frames of a video file or a camera, through ``cv2.VideoCapture``; a context
    manager that releases the capture.

    Args:
        source: a video file's path, or a camera index.

    Attributes:
        fps: the frame rate the source states, None when it states none.
        count: the number of frames a file states, None when unknown (and for a camera).

    Raises:
        ValueError: one line, when OpenCV cannot open the source, or read a first frame
            from a file.
    """

    def __init__(self, source: str | os.PathLike | int):
        camera = isinstance(source, int)
        self._cap = cv2.VideoCapture(source if camera else str(source))
        self._first: np.ndarray | None = None
        try:
            if camera and not self._cap.isOpened():
                raise ValueError(f"camera:{source}: OpenCV cannot open this camera")
            if not camera:
                ok, self._first = self._cap.read() if self._cap.isOpened() else (False, None)
                if not ok or self._first is None:
                    raise ValueError(f"{source}: not a readable video (OpenCV cannot open it or read a frame)")
        except ValueError:
            self._cap.release()
            raise
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and math.isfinite(fps) and fps > 0 else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.count = count if count > 0 and not camera else None

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """(index from 0, frame) until the source ends or fails to deliver."""
        index, frame, self._first = 0, self._first, None  # a file's first frame, read to check it
        while True:
            if frame is None:
                ok, frame = self._cap.read()
                if not ok or frame is None:
                    return
            yield index, frame
            index, frame = index + 1, None

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoIn:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoOut:
    """An mp4v video written through ``cv2.VideoWriter`` into a temporary name beside
    ``path``, opened at the first frame (its size), renamed onto ``path`` by
    :meth:`finish`: a failed run never leaves a half-written video under its name."""

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path, self.fps = Path(path), fps
        self.writer: cv2.VideoWriter | None = None
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=self.path.suffix, dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)

    def write(self, frame: np.ndarray) -> None:
        """Append one frame; ValueError when OpenCV cannot write an mp4v video there."""
        if self.writer is None:
            h, w = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise ValueError(f"{self.path}: OpenCV cannot write an mp4v video there (use a .mp4 file name)")
        self.writer.write(frame)

    def finish(self) -> None:
        """Close the video and move it onto its name (nothing is written without a frame)."""
        if self.writer is not None:
            self.writer.release()
            os.replace(self.tmp, self.path)
        self.tmp.unlink(missing_ok=True)

    def discard(self) -> None:
        """Close the video and delete it."""
        if self.writer is not None:
            self.writer.release()
        self.tmp.unlink(missing_ok=True)


# -------------------------------------------------------------------------------- window
def require_display(why: str) -> None:
    """ValueError when no window can open (Linux without X11/Wayland): Qt would abort
    the whole process instead of raising. ``why``: what needs the window, for the message."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ValueError(f"{why} needs a window, and there is no display here (DISPLAY is not set)")


class Window:
    """A highgui window; :meth:`show` returns False once the user pressed q or Esc or
    closed the window.

    Args:
        title: the window's name (no regex characters: window tools search titles by regex).
    """

    def __init__(self, title: str):
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)

    def show(self, img: np.ndarray, wait_ms: int) -> bool:
        """Show ``img``; wait ``wait_ms`` ms for a key (0: until a key or the window closes)."""
        cv2.imshow(self.title, img)
        deadline = None if wait_ms <= 0 else time.monotonic() + wait_ms / 1000
        while True:
            key = cv2.waitKey(max(1, min(wait_ms, 50)) if wait_ms > 0 else 50)
            if key in QUIT_KEYS or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return False
            if key != -1 or (deadline is not None and time.monotonic() >= deadline):
                return True

    def close(self) -> None:
        close_window(self.title)
