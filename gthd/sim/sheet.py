"""Contact sheets of a session's frames, with the simulator's ground truth drawn."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..draw import contact_sheet, draw_box, draw_skeleton, label
from ..fileio import atomic_write_bytes
from ..session import Session
from .truth import session_truth


def session_sheet(session: Session, out: str | Path, count: int = 12, cols: int = 4, truth: bool = True) -> int:
    """Write a PNG contact sheet of ``count`` frames spread over the session; returns how
    many frames it shows. With ``truth`` and a simulated session, the true keypoints,
    skeleton and box are drawn; frames with a hand are preferred."""
    n = len(session.frames)
    if n == 0:
        raise ValueError(f"{session.path}: the session has no frames")
    gt = session_truth(session)["frames"] if truth and session.has_ground_truth else None
    idx = np.linspace(0, n - 1, min(count, n)).round().astype(int)
    if gt is not None:  # prefer frames with a hand, still spread over the session
        with_hand = np.array([i for i in range(n) if gt[i]["hand"] is not None])
        if len(with_hand) >= len(idx):
            idx = with_hand[np.linspace(0, len(with_hand) - 1, len(idx)).round().astype(int)]
    tiles = []
    for i in np.unique(idx):
        img = session.image(int(i))
        t = (session.frames.t_host_ns[i] - session.frames.t_host_ns[0]) / 1e9
        if gt is not None and gt[i]["hand"] is not None:
            h = gt[i]["hand"]
            draw_box(img, h["box"])
            draw_skeleton(img, h["keypoints"], h["in_image"])
            size = max(h["box"][2] - h["box"][0], h["box"][3] - h["box"][1])
            label(img, f"#{i} t={t:.2f}s {h['handedness']} {size:.0f}px", org=(8, 30), scale=0.9)
        else:
            label(img, f"#{i} t={t:.2f}s" + (" no hand" if gt is not None else ""), org=(8, 30), scale=0.9)
        tiles.append(img)
    ok, enc = cv2.imencode(".png", contact_sheet(tiles, cols=cols))
    atomic_write_bytes(out, enc.tobytes())
    return len(tiles)
