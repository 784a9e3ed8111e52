"""Decoding stored images so that a damaged one is noticed, not used.

OpenCV's decoders do not fail on every damaged file: a JPEG whose entropy-coded data is
overwritten or cut decodes "successfully" into a half-garbled picture, and libjpeg only
prints ``Corrupt JPEG data: ...`` or ``Premature end of JPEG file`` on the process's
stderr (libpng likewise prints its warnings). :func:`decode_checked` listens on file
descriptor 2 while it decodes and returns what the decoder said, so that ``session check
--decode`` and ``build-dataset`` can name the frame and leave it out.

Descriptor 2 belongs to the whole process: the decode runs under a lock (one checked
decode at a time per process; ``build-dataset``'s workers are processes, each with its
own), and text other threads write to stderr during those few milliseconds lands in the
listener rather than on the terminal.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading

import cv2
import numpy as np

_lock = threading.Lock()
_sink: tuple[int, int] | None = None  # (pid, fd) of this process's listening file
_SINK_MAX = 1 << 20


def _sink_fd() -> int:
    """An unlinked temporary file per process (a forked child makes its own)."""
    global _sink
    if _sink is None or _sink[0] != os.getpid():
        fd, name = tempfile.mkstemp(prefix="gthd-decode-", suffix=".log")
        os.unlink(name)
        _sink = (os.getpid(), fd)
    return _sink[1]


def decode_checked(data: bytes, flags: int = cv2.IMREAD_COLOR) -> tuple[np.ndarray | None, str | None]:
    """Decode an encoded image (JPEG, PNG, ...) and say whether the decoder complained.

    Args:
        data: the file's bytes.
        flags: ``cv2.imdecode`` flags (e.g. ``cv2.IMREAD_REDUCED_COLOR_2``).

    Returns:
        image: the decoded array, or None when nothing could be decoded.
        problem: None for a clean decode; else the decoder's first complaint (e.g.
            "Corrupt JPEG data: premature end of data segment") or "not a decodable
            image". An image that comes with a problem must not be trusted.
    """
    buf = np.frombuffer(data, np.uint8)
    if buf.size == 0:
        return None, "empty file"
    with _lock:
        sink = _sink_fd()
        start = os.lseek(sink, 0, os.SEEK_END)
        if start > _SINK_MAX:
            os.ftruncate(sink, 0)
            start = os.lseek(sink, 0, os.SEEK_SET)
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(sink, 2)
            img = cv2.imdecode(buf, flags)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        end = os.lseek(sink, 0, os.SEEK_END)
        said = os.pread(sink, end - start, start).decode("utf-8", "replace") if end > start else ""
    if img is None:
        return None, "not a decodable image"
    lines = [ln.strip() for ln in said.splitlines() if ln.strip()]
    return img, (lines[0] if lines else None)
