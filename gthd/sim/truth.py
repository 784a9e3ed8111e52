"""``ground_truth.json``: what the simulator knows and no real capture does
(format ``gthd-sim-truth`` v1, docs/simulate.md). Arrays are nested lists; per-frame
entries are aligned with the session's frame index."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fileio import read_json, write_json

TRUTH_FORMAT = "gthd-sim-truth"
TRUTH_VERSION = 1


def write_truth(path: str | Path, truth: dict) -> None:
    write_json(path, truth, fmt=TRUTH_FORMAT, version=TRUTH_VERSION)


def read_truth(path: str | Path) -> dict:
    """Read a ground-truth file; per-frame arrays come back as NumPy arrays:
    ``keypoints`` (21, 2) px, ``in_image`` (21,) bool, ``joints_leap`` (21, 3) mm,
    ``box`` (4,) xyxy px (None where no hand)."""
    truth = read_json(path, fmt=TRUTH_FORMAT, versions=(TRUTH_VERSION,))
    for f in truth["frames"]:
        if f["hand"] is not None:
            h = f["hand"]
            h["keypoints"] = np.asarray(h["keypoints"], dtype=np.float64)
            h["in_image"] = np.asarray(h["in_image"], dtype=bool)
            h["joints_leap"] = np.asarray(h["joints_leap"], dtype=np.float64)
            h["box"] = None if h["box"] is None else np.asarray(h["box"], dtype=np.float64)
    return truth


def session_truth(session) -> dict:
    """The ground truth of a simulated session (a :class:`gthd.session.Session` or its
    folder), as :func:`read_truth` gives it. The session reader does not know this file:
    it belongs to the simulator, which sits above every stage."""
    path = Path(getattr(session, "path", session))
    return read_truth(path / "ground_truth.json")
