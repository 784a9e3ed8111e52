"""The optional live preview of ``gthd capture --preview``: an OpenCV highgui window
with the latest camera frame and the latest tracked hand, projected into the image when
a calibration is given (the caller reads it), else drawn in a front view in the corner. ``q`` or Esc stops the
capture."""

from __future__ import annotations

import cv2
import numpy as np

from ..draw import close_window, draw_skeleton, label
from ..geometry import Camera, Transform

WINDOW = "gthd capture - press q to stop"  # no regex characters: window tools search titles by regex


class Preview:
    """Call with the running capture from the main thread; returns False to stop."""

    def __init__(self, projection: tuple[Camera, Transform] | None = None, window: bool = True):
        """``projection``: the camera and ``T_cam_leap`` to draw the hand into the image
        with (from a calibration file); None: a front view in the corner."""
        self.projection = projection
        if window:
            cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE)

    def render(self, capture) -> np.ndarray | None:
        """The picture the window shows: the latest frame with the latest hands drawn,
        or None before the first frame."""
        frame = capture.latest_frame
        if frame is None:
            return None
        img = frame.image.copy()
        for hand in capture.latest_hands:
            joints = np.asarray(hand["joints"])
            if self.projection is not None:
                cam, T = self.projection
                uv, visible = cam.see(T.apply(joints))
                if visible.any():
                    draw_skeleton(img, uv, visible)
            else:
                self._inset(img, joints)
        st = capture.cam_stats
        label(img, f"{st.written} frames  {capture.trk_stats.written} tracker  drops {st.dropped}", org=(8, 22), scale=0.55)
        return img

    def __call__(self, capture) -> bool:
        img = self.render(capture)
        if img is not None:
            cv2.imshow(WINDOW, img)
        key = cv2.waitKey(15) & 0xFF
        if key in (ord("q"), 27):
            self.close()
            return False
        return True

    @staticmethod
    def _inset(img: np.ndarray, joints: np.ndarray) -> None:
        """Front view of the hand (leap x right, y up) in a box in the top-right corner."""
        size = min(img.shape[0], img.shape[1]) // 3
        x0, y0 = img.shape[1] - size - 8, 8
        cv2.rectangle(img, (x0, y0), (x0 + size, y0 + size), (40, 40, 40), -1)
        c = joints[:, :2].mean(axis=0)
        scale = size / 260.0  # a 260 mm wide view around the hand
        uv = np.stack([x0 + size / 2 + (joints[:, 0] - c[0]) * scale, y0 + size / 2 - (joints[:, 1] - c[1]) * scale], axis=1)
        draw_skeleton(img, uv, thickness=1, radius=2)

    def close(self) -> None:
        close_window(WINDOW)
