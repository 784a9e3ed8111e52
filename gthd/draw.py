"""Drawing helpers shared by the tools' pictures: skeletons, boxes, contact sheets."""

from __future__ import annotations

import cv2
import numpy as np

from .hand import EDGES, FINGER_COLORS_BGR, FINGERS, NUM_JOINTS, edge_color

_SHIFT = 4


def _pt(p) -> tuple[int, int]:
    return (int(round(p[0] * (1 << _SHIFT))), int(round(p[1] * (1 << _SHIFT))))


def draw_skeleton(img: np.ndarray, uv: np.ndarray, visible: np.ndarray | None = None, thickness: int = 2, radius: int = 3) -> np.ndarray:
    """Draw the 21-joint skeleton in place and return ``img``.

    Args:
        img: (H, W, 3) uint8 BGR. uv: (21, 2) pixels. visible: (21,) bool or None (all).
    """
    uv = np.asarray(uv, dtype=np.float64)
    if uv.shape != (NUM_JOINTS, 2):
        raise ValueError(f"uv: expected (21, 2), got {uv.shape}")
    vis = np.ones(NUM_JOINTS, bool) if visible is None else np.asarray(visible, bool)
    vis = vis & np.all(np.isfinite(uv), axis=1)
    for a, b in EDGES:
        if vis[a] and vis[b]:
            cv2.line(img, _pt(uv[a]), _pt(uv[b]), edge_color((a, b)), thickness, cv2.LINE_AA, _SHIFT)
    for j in range(NUM_JOINTS):
        if vis[j]:
            color = FINGER_COLORS_BGR["PALM"] if j == 0 else FINGER_COLORS_BGR[FINGERS[(j - 1) // 4]]
            cv2.circle(img, _pt(uv[j]), radius << _SHIFT, (255, 255, 255), -1, cv2.LINE_AA, _SHIFT)
            cv2.circle(img, _pt(uv[j]), max(1, radius - 1) << _SHIFT, color, -1, cv2.LINE_AA, _SHIFT)
    return img


def draw_box(img: np.ndarray, box: np.ndarray, color=(0, 255, 255), thickness: int = 1) -> np.ndarray:
    """Draw an ``xyxy`` box (pixels) in place and return ``img``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cv2.rectangle(img, _pt((x0, y0)), _pt((x1, y1)), color, thickness, cv2.LINE_AA, _SHIFT)
    return img


def label(img: np.ndarray, text: str, org=(6, 18), scale: float = 0.5) -> np.ndarray:
    """Write ``text`` with a dark outline so it reads on any background."""
    # The outline is the same text, same thickness, drawn dark at small offsets: a thicker
    # stroke would not do, as OpenCV 5's font widens its glyphs with the thickness.
    t = max(1, int(round(2 * scale)))
    r = max(1, t // 2 + 1)
    x, y = org
    for dx in (-r, 0, r):
        for dy in (-r, 0, r):
            if dx or dy:
                cv2.putText(img, text, (x + dx, y + dy), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), t, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), t, cv2.LINE_AA)
    return img


def contact_sheet(tiles: list[np.ndarray], cols: int = 4, tile_width: int = 320, gap: int = 4) -> np.ndarray:
    """Tile images (each (H, W, 3) uint8) into one sheet, each resized to ``tile_width``."""
    if not tiles:
        raise ValueError("contact_sheet needs at least one image")
    h0, w0 = tiles[0].shape[:2]
    th = int(round(h0 * tile_width / w0))
    rows = (len(tiles) + cols - 1) // cols
    sheet = np.full((rows * (th + gap) + gap, cols * (tile_width + gap) + gap, 3), 24, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        y, x = gap + r * (th + gap), gap + c * (tile_width + gap)
        sheet[y : y + th, x : x + tile_width] = cv2.resize(t, (tile_width, th), interpolation=cv2.INTER_AREA)
    return sheet


def close_window(title: str) -> None:
    """Close a highgui window if it is open (one more waitKey lets the window system
    take it away); quiet where there is no window system left."""
    try:
        cv2.destroyWindow(title)
        cv2.waitKey(1)
    except cv2.error:
        pass
