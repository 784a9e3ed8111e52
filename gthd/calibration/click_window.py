"""The clicking window of ``gthd calibrate --click``: a person clicks one joint (say the
index fingertip) in a set of frames; each click, paired with the tracked 3D joint of its
frame, is one 2D-3D correspondence for the PnP solve of ``T_cam_leap``.

- :func:`choose_frames` picks frames where the tracker sees a hand, spread over time and
  over the joint's position (a PnP solve wants the points spread through the volume).
- :class:`ClickWindow` shows them one at a time in an OpenCV highgui window and appends
  each click to a clicks file at once (``gthd-clicks``, resumable, with undo lines).

The window's title says which frame is shown, in a form without regex characters (window
tools such as ``xdotool search --name`` take a regex)::

    gthd calibrate - frame 123 - click INDEX_TIP - 4 of 40 - 3 clicks
    gthd calibrate - frame 123 - click INDEX_TIP - 4 of 40 - 3 clicks - zoomed

(:func:`parse_title` reads it back). Mouse: left click = the joint is here. Keys: ``n`` or
space skips the frame, ``u`` or backspace undoes the last click (and goes back to its
frame), ``z`` toggles a zoom around the mouse, ``q`` or Esc quits (the clicks so far are
kept: run it again to go on).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..hand import JOINT_INDEX, JOINT_NAMES
from .files import Click, ClicksWriter, read_clicks

WINDOW = "gthd calibrate"  # the window's fixed name; its title changes with the frame
TITLE_PREFIX = "gthd calibrate"
_TITLE_RE = re.compile(
    r"^gthd calibrate - frame (?P<frame>\d+) - click (?P<joint>[A-Z_]+) - (?P<k>\d+) of (?P<n>\d+) - (?P<clicks>\d+) clicks?(?P<zoomed> - zoomed)?$"
)

# waitKeyEx codes. Checked on OpenCV 5.0 with Qt 5.15 under Xvfb: space 32, backspace 8,
# Esc 27, letters their ASCII code. The others are what GTK (X keysyms) and macOS send.
KEYS_SKIP = {ord("n"), ord("N"), ord(" ")}
KEYS_UNDO = {ord("u"), ord("U"), 8, 127, 0xFF08}
KEYS_ZOOM = {ord("z"), ord("Z")}
KEYS_QUIT = {ord("q"), ord("Q"), 27}

ESTIMATE_MIN_CLICKS = 6
ESTIMATE_BGR = (255, 0, 255)
CROSSHAIR_BGR = (0, 255, 255)

Predict = Callable[[int], np.ndarray | None]  # frame index -> (2,) pixel of the joint, or None
Estimate = Callable[[list[Click]], Predict | None]  # clicks -> a Predict, or None; may raise ValueError


# ------------------------------------------------------------------------ frame choice
def choose_frames(session, joint: str, n: int = 40, max_gap_ms: float = 50, offset_ns: int = 0) -> list[int]:
    """Frames worth clicking: the tracker sees a hand in them, and they are spread over the
    session's time and over the tracked joint's position.

    The frames where ``joints_at(t_host_ns + offset_ns)`` knows ``joint`` are cut into
    ``n`` runs of equal count, in time order; each run gives the frame farthest from the
    frames already picked, in normalised (time, x, y, z) (time over the tracked span, the
    position over its largest extent, one scale for x, y, z so that no axis is blown up).
    Deterministic.

    Args:
        session: a :class:`gthd.session.Session`.
        joint: a joint name (:data:`gthd.hand.JOINT_NAMES`), e.g. "INDEX_TIP".
        n: how many frames at most (all of them when fewer have a tracked hand).
        max_gap_ms: widest tracker gap to interpolate over.
        offset_ns: clock offset ``d``: the tracker state of frame t is at ``t + d``.

    Returns:
        Frame indices (the frame index's ``index``), in time order.

    Raises:
        ValueError: unknown joint, n < 1, or no frame with a tracked hand.
    """
    if joint not in JOINT_INDEX:
        raise ValueError(f"unknown joint {joint!r}; one of {', '.join(JOINT_NAMES)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    fr = session.frames
    t = fr.t_host_ns.astype(np.int64) + int(offset_ns)  # (N,)
    p = session.tracker.joints_at(t, max_gap_ns=int(round(max_gap_ms * 1e6)))[:, JOINT_INDEX[joint]]  # (N, 3) mm, leap
    cand = np.flatnonzero(np.all(np.isfinite(p), axis=1))  # positions in the frame index
    if len(cand) == 0:
        n_hand = sum(bool(h) for h in session.tracker.hands)
        raise ValueError(
            f"the session has no frames with a tracked hand: {session.path} has {len(fr)} frames and "
            f"{len(session.tracker)} tracker frames, {n_hand} of them with a hand" + (" (is the clock offset right?)" if n_hand and offset_ns else "")
        )
    if len(cand) <= n:
        return [int(i) for i in fr.index[cand]]
    tc, pc = t[cand].astype(np.float64), p[cand]  # (M,), (M, 3) mm
    feat = np.empty((len(cand), 4))  # (M, 4): time, x, y, z, normalised
    feat[:, 0] = (tc - tc.min()) / max(tc.max() - tc.min(), 1.0)
    feat[:, 1:] = (pc - pc.min(axis=0)) / max(float(np.ptp(pc, axis=0).max()), 1e-6)
    runs = np.array_split(np.arange(len(cand)), n)  # equal counts, time order (frames are)
    dmin = np.linalg.norm(feat - feat.mean(axis=0), axis=1)  # first pick: the most unusual
    picks = []
    for run in runs:
        k = run[np.argmax(dmin[run])]  # first of equals: deterministic
        picks.append(k)
        dmin = np.minimum(dmin, np.linalg.norm(feat - feat[k], axis=1))
    return [int(i) for i in fr.index[cand[np.sort(picks)]]]


# -------------------------------------------------------------------------------- view
@dataclass(frozen=True)
class View:
    """What the window shows of the image: window pixel (x, y) shows image point
    ``(x0 + x / scale, y0 + y / scale)``, pixel centres at integers in both (the OpenCV
    convention), so a click maps back exactly, to sub-pixel when zoomed. The window is as
    large as the image; ``View()`` is the whole image at 1:1."""

    x0: float = 0.0
    y0: float = 0.0
    scale: float = 1.0

    @classmethod
    def around(cls, center, zoom: float, width: int, height: int) -> View:
        """A ``zoom`` x view centred on image point ``center`` (u, v), shifted to stay
        inside the ``width`` x ``height`` image."""
        if zoom < 1:
            raise ValueError(f"zoom must be >= 1, got {zoom}")
        cu, cv = (float(c) for c in center)
        span_u, span_v = (width - 1) / zoom, (height - 1) / zoom  # image pixels the window spans
        x0 = float(np.clip(cu - span_u / 2, 0.0, (width - 1) - span_u))
        y0 = float(np.clip(cv - span_v / 2, 0.0, (height - 1) - span_v))
        return cls(x0, y0, float(zoom))

    @property
    def zoomed(self) -> bool:
        return self.scale != 1.0

    def to_image(self, xy) -> np.ndarray:
        """Window pixels (..., 2) -> image pixels (..., 2) float64."""
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([self.x0 + xy[..., 0] / self.scale, self.y0 + xy[..., 1] / self.scale], axis=-1)

    def to_window(self, uv) -> np.ndarray:
        """Image pixels (..., 2) -> window pixels (..., 2) float64."""
        uv = np.asarray(uv, dtype=np.float64)
        return np.stack([(uv[..., 0] - self.x0) * self.scale, (uv[..., 1] - self.y0) * self.scale], axis=-1)

    def apply(self, img: np.ndarray) -> np.ndarray:
        """The window's picture of ``img`` (H, W, 3): a new array of the same size."""
        if not self.zoomed and self.x0 == 0 and self.y0 == 0:
            return img.copy()
        s = self.scale
        M = np.array([[s, 0.0, -s * self.x0], [0.0, s, -s * self.y0]])  # image -> window
        return cv2.warpAffine(img, M, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def window_title(frame_index: int, joint: str, k: int, n: int, clicks: int, zoomed: bool) -> str:
    """The window's title: which frame is shown (``k`` of ``n``, 1-based) and how many
    clicks there are; no regex characters."""
    return f"{TITLE_PREFIX} - frame {frame_index} - click {joint} - {k} of {n} - {clicks} click{'' if clicks == 1 else 's'}" + (" - zoomed" if zoomed else "")


def parse_title(title: str) -> dict | None:
    """The fields of a :func:`window_title` (frame, joint, k, n, clicks, zoomed), or None
    when ``title`` is not one (e.g. the window's name before its first frame)."""
    m = _TITLE_RE.match(title.strip())
    if m is None:
        return None
    d = m.groupdict()
    return {"frame": int(d["frame"]), "joint": d["joint"], "k": int(d["k"]), "n": int(d["n"]), "clicks": int(d["clicks"]), "zoomed": bool(d["zoomed"])}


# ------------------------------------------------------------------------------ window
class ClickWindow:
    """The clicking window. ``run()`` shows the frames and returns the clicks.

    The state changes (:meth:`on_click`, :meth:`skip`, :meth:`undo`, :meth:`toggle_zoom`,
    :meth:`on_key`) and the drawing (:meth:`render`) need no screen; only :meth:`run`
    opens the window.

    Args:
        session: a :class:`gthd.session.Session`.
        joint: the joint to click, e.g. "INDEX_TIP".
        frames: frame indices to show, in order (e.g. from :func:`choose_frames`).
        clicks_path: the clicks file; created, or continued when it exists (frames it
            already has a click for are not shown again).
        estimate: optional ``estimate(clicks) -> (frame_index -> (2,) pixel or None)``, or
            None; called after a click (or undo) once there are >= 6 clicks, e.g. a PnP
            solve and projection. A ValueError from it is ignored. Its pixel for the
            shown frame is drawn (magenta circle and cross) so the user sees it converge.
        zoom: the zoom factor of ``z``.
    """

    def __init__(self, session, joint: str, frames, clicks_path: str | Path, estimate: Estimate | None = None, zoom: float = 2.0):
        if joint not in JOINT_INDEX:
            raise ValueError(f"unknown joint {joint!r}; one of {', '.join(JOINT_NAMES)}")
        if zoom < 1:
            raise ValueError(f"zoom must be >= 1, got {zoom}")
        self.session = session
        self.joint = joint
        self.estimate = estimate
        self.zoom = float(zoom)
        self._position = {int(ix): k for k, ix in enumerate(session.frames.index)}  # frame index -> position
        self.frames = [int(f) for f in frames]
        bad = [f for f in self.frames if f not in self._position]
        if bad:
            raise ValueError(f"frames not in the session: {bad[:5]} (it has {len(session.frames)} frames)")
        self.clicks_path = Path(clicks_path)
        self.clicks: list[Click] = []
        if self.clicks_path.exists():
            header, self.clicks = read_clicks(self.clicks_path)
            other = {c.joint for c in self.clicks} | {header.get("joint", joint)}
            if other != {joint}:
                raise ValueError(f"{self.clicks_path} holds clicks of {', '.join(sorted(other - {joint}))}, not {joint}: use another file")
        self._writer = ClicksWriter(self.clicks_path, session.manifest["session_id"], joint)
        self.skipped: set[int] = set()
        self.view = View()
        self.mouse: tuple[int, int] | None = None  # window pixels
        self.quit = False
        self._predict: Predict | None = None
        self._estimates = 0  # how many estimates were taken (the window redraws on a new one)
        self._predicted: dict[int, np.ndarray | None] = {}
        self._image: tuple[int, np.ndarray] | None = None
        self._pending_click: tuple[int, int] | None = None
        self.pos = -1
        self._advance()
        if len(self.clicks) >= ESTIMATE_MIN_CLICKS:
            self._update_estimate()

    # -- state
    @property
    def current(self) -> int | None:
        """The frame index shown, or None when every frame is done."""
        return self.frames[self.pos] if 0 <= self.pos < len(self.frames) else None

    @property
    def done(self) -> bool:
        return self.quit or self.current is None

    def _clicked(self) -> set[int]:
        return {c.frame_index for c in self.clicks}

    def _advance(self) -> None:
        """Go to the next frame that is neither clicked nor skipped (past the end: done)."""
        clicked = self._clicked()
        self.pos += 1
        while self.pos < len(self.frames) and (self.frames[self.pos] in clicked or self.frames[self.pos] in self.skipped):
            self.pos += 1

    def image(self, frame_index: int) -> np.ndarray:
        """Frame ``frame_index`` as (H, W, 3) uint8 BGR (the last one read is kept)."""
        if self._image is None or self._image[0] != frame_index:
            self._image = (frame_index, self.session.image(self._position[frame_index]))
        return self._image[1]

    def on_click(self, x: float, y: float) -> Click | None:
        """A left click at window pixel (x, y): the joint is there in the shown frame.
        Saves the click, advances, and updates the estimate."""
        f = self.current
        if f is None:
            return None
        u, v = (float(a) for a in self.view.to_image((x, y)))
        click = Click(f, int(self.session.frames.t_host_ns[self._position[f]]), self.joint, u, v)
        self._writer.add(click)
        self.clicks.append(click)
        self._advance()
        self._update_estimate()
        return click

    def skip(self) -> None:
        if self.current is not None:
            self.skipped.add(self.current)
            self._advance()

    def undo(self) -> Click | None:
        """Undo the last click (an undo line in the file) and show its frame again."""
        if not self.clicks:
            return None
        click = self.clicks.pop()
        self._writer.undo()
        f = click.frame_index
        self.skipped.discard(f)
        if f in self.frames:
            self.pos = self.frames.index(f)
        else:  # a click of an earlier run on a frame this run does not show: show it here
            self.pos = max(self.pos, 0)
            self.frames.insert(self.pos, f)
        self._update_estimate()
        return click

    def toggle_zoom(self) -> None:
        """Zoom in ``zoom`` x around the mouse (or the estimate, or the image centre); or
        back out. The zoom stays on from frame to frame until toggled off."""
        if self.view.zoomed or self.zoom == 1.0:
            self.view = View()
            return
        h, w = self.image(self.current).shape[:2] if self.current is not None else (1, 1)
        if self.mouse is not None:
            center = self.view.to_image(self.mouse)
        elif self.current is not None and self.predicted(self.current) is not None:
            center = self.predicted(self.current)
        else:
            center = ((w - 1) / 2, (h - 1) / 2)
        self.view = View.around(center, self.zoom, w, h)

    def on_key(self, key: int) -> None:
        """Act on a ``cv2.waitKeyEx`` code (-1: none)."""
        if key == -1:
            return
        if key in KEYS_SKIP:
            self.skip()
        elif key in KEYS_UNDO:
            self.undo()
        elif key in KEYS_ZOOM:
            self.toggle_zoom()
        elif key in KEYS_QUIT:
            self.quit = True

    def _update_estimate(self) -> None:
        self._predicted = {}
        if self.estimate is None or len(self.clicks) < ESTIMATE_MIN_CLICKS:
            self._predict = None
            return
        try:
            self._predict = self.estimate(list(self.clicks))
        except ValueError:
            pass  # a degenerate solve: keep the last estimate
        self._estimates += 1

    def predicted(self, frame_index: int) -> np.ndarray | None:
        """The estimate's (2,) pixel of the joint in a frame, or None."""
        if self._predict is None:
            return None
        if frame_index not in self._predicted:
            try:
                uv = self._predict(frame_index)
            except ValueError:
                uv = None
            uv = None if uv is None else np.asarray(uv, dtype=np.float64).reshape(2)
            self._predicted[frame_index] = uv if uv is not None and np.all(np.isfinite(uv)) else None
        return self._predicted[frame_index]

    def title(self) -> str:
        f = self.current
        return window_title(-1 if f is None else f, self.joint, self.pos + 1, len(self.frames), len(self.clicks), self.view.zoomed)

    # -- drawing
    def render(self, frame_index: int) -> np.ndarray:
        """The window's picture of frame ``frame_index``: the (zoomed) frame, the
        estimate's pixel, the mouse crosshair, a status line on top and the keys below.
        Returns (H, W, 3) uint8 BGR, the image's size."""
        img = self.view.apply(self.image(frame_index))
        h, w = img.shape[:2]
        uv = self.predicted(frame_index)
        if uv is not None:  # a circle with a cross through it, in window pixels
            c = self.view.to_window(uv)
            r = 7.0 * max(1.0, self.view.scale / 2)
            cv2.circle(img, _fixed(c), int(round(r * (1 << _SHIFT))), ESTIMATE_BGR, 1, cv2.LINE_AA, _SHIFT)
            for d in (np.array([1.0, 0.0]), np.array([0.0, 1.0])):
                cv2.line(img, _fixed(c - (r + 4) * d), _fixed(c + (r + 4) * d), ESTIMATE_BGR, 1, cv2.LINE_AA, _SHIFT)
        if self.mouse is not None:
            x, y = self.mouse
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                cv2.line(img, (x + 3 * dx, y + 3 * dy), (x + 10 * dx, y + 10 * dy), (0, 0, 0), 3)
                cv2.line(img, (x + 3 * dx, y + 3 * dy), (x + 10 * dx, y + 10 * dy), CROSSHAIR_BGR, 1)
        scale = float(np.clip(w / 1280, 0.4, 1.0))
        k = self.frames.index(frame_index) + 1 if frame_index in self.frames else 0
        status = f"click {self.joint}   {len(self.clicks)} clicks   frame {frame_index} ({k} of {len(self.frames)})"
        if self.view.zoomed:
            status += f"   zoom {self.view.scale:g}x"
        if self._predict is not None:
            status += "   magenta: the current calibration"
        _bar(img, status, scale, top=True)
        _bar(img, "click: the joint   n/space: skip   u/backspace: undo   z: zoom   q/esc: quit", scale, top=False)
        return img

    # -- the window
    def _on_mouse(self, event, x, y, flags, param) -> None:
        if event == cv2.EVENT_MOUSEMOVE:
            self.mouse = (int(x), int(y))
        elif event == cv2.EVENT_LBUTTONDOWN:  # a double click's second press comes as LBUTTONDBLCLK: ignored
            self.mouse = (int(x), int(y))
            if self._pending_click is None:  # one click per shown frame
                self._pending_click = (int(x), int(y))

    def run(self) -> list[Click]:
        """Show the frames until every one is clicked or skipped, or the user quits.
        Returns every click in the clicks file (those of earlier runs too), in order;
        no window opens when every frame already has a click."""
        if self.done:
            self.close()
            return list(self.clicks)
        flags = cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL  # GUI_NORMAL: no Qt toolbar, the image starts at (0, 0)
        cv2.namedWindow(WINDOW, flags)
        cv2.setMouseCallback(WINDOW, self._on_mouse)
        shown = None
        try:
            while not self.done:
                state = (self.current, len(self.clicks), self.view, self.mouse, self._estimates)
                if state != shown:
                    cv2.imshow(WINDOW, self.render(self.current))
                    cv2.setWindowTitle(WINDOW, self.title())
                    shown = state
                key = cv2.waitKeyEx(15)  # mouse events before the key come first: the click, then the key
                if self._pending_click is not None:
                    self.on_click(*self._pending_click)
                    self._pending_click = None
                self.on_key(key)
                if cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:  # closed by its title bar's X
                    self.quit = True
        finally:
            self.close()
            try:
                cv2.destroyWindow(WINDOW)
                cv2.waitKey(1)
            except cv2.error:
                pass
        return list(self.clicks)

    def close(self) -> None:
        self._writer.close()


_SHIFT = 4  # sub-pixel bits of cv2's drawing


def _bar(img: np.ndarray, text: str, scale: float, top: bool) -> None:
    """A line of white text on a darkened band across the top or bottom of ``img``.
    (Not draw.label's outline: OpenCV 5 draws thicker text with wider glyphs, so an
    outline drawn thicker no longer lines up with the text.)"""
    h = int(round(48 * scale))
    band = img[:h] if top else img[img.shape[0] - h :]
    band[:] = (band * 0.4).astype(np.uint8)
    y = int(round(0.72 * h)) if top else img.shape[0] - int(round(0.28 * h))
    cv2.putText(img, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _fixed(p) -> tuple[int, int]:
    return (int(round(p[0] * (1 << _SHIFT))), int(round(p[1] * (1 << _SHIFT))))
