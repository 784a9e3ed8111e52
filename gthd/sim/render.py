"""The simulator's renderer: a hand as depth-ordered, shaded capsules and a palm, over a
cluttered static scene with a person behind it, with motion blur, lighting changes and
sensor noise. Pure OpenCV/NumPy; fast enough to outrun a JPEG encoder (perf/simulate.py).

The scene is drawn once per session (a fixed camera sees a fixed room); per frame only
the moving parts are drawn: the person's head sways, the hand moves, the light drifts.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry import Camera
from ..hand import FINGER_BASES, NUM_JOINTS, WRIST, finger_joints, FINGERS
from .kinematics import HandShape

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """(h, w) float32 smooth noise in about [-1, 1]."""
    small = rng.normal(0, 1, (max(2, h * cells // w), cells)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _random_color(rng: np.random.Generator, lo=20, hi=235) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(lo, hi, 3))


@dataclass
class Person:
    """A person behind the hand: torso, neck, a face-like skin blob with hair and eyes."""

    centre: np.ndarray  # (2,) px, face centre
    axes: np.ndarray  # (2,) px, face half-axes
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shirt: tuple[int, int, int]
    sway_amp: np.ndarray  # (2,) px
    sway_freq: np.ndarray  # (2,) Hz
    sway_phase: np.ndarray  # (2,)

    def draw(self, img: np.ndarray, t_s: float, tone: np.ndarray) -> None:
        """Draw in place at time ``t_s``; colours go through the frame's tone curve."""
        lit = lambda c: tuple(int(v) for v in tone[np.asarray(c, dtype=np.intp)])  # noqa: E731
        c = self.centre + self.sway_amp * np.sin(2 * np.pi * self.sway_freq * t_s + self.sway_phase)
        ax = self.axes
        h, w = img.shape[:2]
        cx, cy = float(c[0]), float(c[1])
        torso = np.array(
            [[cx - 2.6 * ax[0], h + 10], [cx - 2.2 * ax[0], cy + 2.0 * ax[1]], [cx + 2.2 * ax[0], cy + 2.0 * ax[1]], [cx + 2.6 * ax[0], h + 10]]
        )
        cv2.fillConvexPoly(img, np.rint(torso * _ONE).astype(np.int32), lit(self.shirt), cv2.LINE_AA, _SHIFT)
        neck = np.array([[cx - 0.45 * ax[0], cy + 0.6 * ax[1]], [cx + 0.45 * ax[0], cy + 0.6 * ax[1]], [cx + 0.5 * ax[0], cy + 2.05 * ax[1]], [cx - 0.5 * ax[0], cy + 2.05 * ax[1]]])
        cv2.fillConvexPoly(img, np.rint(neck * _ONE).astype(np.int32), lit([int(v * 0.85) for v in self.skin]), cv2.LINE_AA, _SHIFT)
        skin = lit(self.skin)
        _ellipse(img, (cx, cy - 0.25 * ax[1]), (ax[0] * 1.08, ax[1] * 0.95), lit(self.hair))
        _ellipse(img, (cx, cy), tuple(ax), skin)
        _ellipse(img, (cx + 0.35 * ax[0], cy + 0.1 * ax[1]), (0.5 * ax[0], 0.75 * ax[1]), lit([int(v * 0.8) for v in self.skin]))
        _ellipse(img, (cx, cy), (0.8 * ax[0], 0.9 * ax[1]), skin)
        for sx in (-0.38, 0.38):
            _ellipse(img, (cx + sx * ax[0], cy - 0.15 * ax[1]), (0.13 * ax[0], 0.07 * ax[1]), lit((40, 40, 50)))
        _ellipse(img, (cx, cy + 0.5 * ax[1]), (0.28 * ax[0], 0.06 * ax[1]), lit((70, 70, 150)))


def _ellipse(img, centre, axes, color) -> None:
    c = (int(round(centre[0] * _ONE)), int(round(centre[1] * _ONE)))
    a = (max(1, int(round(axes[0] * _ONE))), max(1, int(round(axes[1] * _ONE))))
    cv2.ellipse(img, c, a, 0, 0, 360, color, -1, cv2.LINE_AA, _SHIFT)


class Scene:
    """A session's static room and its moving distractors.

    Attributes:
        background: (H, W, 3) uint8 BGR, the static scene.
        people: persons drawn behind the hand each frame.
    """

    def __init__(self, background: np.ndarray, people: list[Person], noise_sigma: float, lighting: dict, rng: np.random.Generator):
        self.background = background
        self.people = people
        self.lighting = lighting
        h, w = background.shape[:2]
        pad = 32
        noise = rng.normal(0, noise_sigma, (h + pad, w + pad, 3)).astype(np.float32)
        # Sensor noise bank, split in a positive and a negative part for saturating adds.
        self._noise_pos = np.clip(noise, 0, 255).astype(np.uint8)
        self._noise_neg = np.clip(-noise, 0, 255).astype(np.uint8)
        self._pad = pad
        self._lit: dict[int, np.ndarray] = {}

    @classmethod
    def generate(cls, rng: np.random.Generator, width: int, height: int, level: int, skin_bgr) -> "Scene":
        """Draw a cluttered room. ``level``: 0 easy (plain wall), 1 medium, 2 hard (more
        clutter, skin-coloured patches, stronger light changes)."""
        h, w = height, width
        wall = np.array(_random_color(rng, 90, 220), dtype=np.float32)
        grad = np.linspace(0.85, 1.1, h, dtype=np.float32)[:, None, None]
        img = wall[None, None, :] * grad * np.ones((h, w, 1), np.float32)
        img += (_smooth_noise(rng, h, w, 6) * (8 + 10 * level))[..., None]
        img = np.clip(img, 0, 255).astype(np.uint8)
        n_shapes = (0, 25, 60)[level]
        for _ in range(n_shapes):
            kind = rng.integers(5)
            color = _random_color(rng)
            if kind == 0:  # posters, shelves, windows
                x0, y0 = rng.integers(-50, w), rng.integers(-50, h)
                x1, y1 = x0 + rng.integers(20, 250), y0 + rng.integers(20, 200)
                cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), color, -1)
                if rng.random() < 0.5:  # stripes or a grid on it
                    step = int(rng.integers(4, 16))
                    c2 = _random_color(rng)
                    for x in range(int(x0), int(x1), step * 2):
                        cv2.rectangle(img, (x, int(y0)), (x + step, int(y1)), c2, -1)
            elif kind == 1:
                cv2.ellipse(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), (int(rng.integers(5, 80)), int(rng.integers(5, 80))), float(rng.uniform(0, 180)), 0, 360, color, -1, cv2.LINE_AA)
            elif kind == 2:
                pts = rng.integers(-40, max(w, h) + 40, (int(rng.integers(3, 7)), 2)).astype(np.int32)
                cv2.fillPoly(img, [cv2.convexHull(pts)], color, cv2.LINE_AA)
            elif kind == 3:  # cables, edges
                p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                cv2.line(img, p0, p1, color, int(rng.integers(1, 6)), cv2.LINE_AA)
            else:  # text-like marks
                cv2.putText(img, "".join(rng.choice(list("ABCDEFGHKLMNPRSTUVXYZ0123456789"), int(rng.integers(2, 8)))), (int(rng.integers(0, w)), int(rng.integers(0, h))), cv2.FONT_HERSHEY_SIMPLEX, float(rng.uniform(0.4, 2.0)), color, int(rng.integers(1, 4)), cv2.LINE_AA)
        if level >= 1:  # a desk along the bottom, with a wood-like grain
            y = int(h * rng.uniform(0.72, 0.9))
            desk = np.array(_random_color(rng, 50, 200), np.float32)
            grain = 1 + 0.08 * np.sin(np.linspace(0, rng.uniform(30, 90), w))[None, :, None] + 0.05 * _smooth_noise(rng, h - y, w, 40)[..., None]
            img[y:] = np.clip(desk * grain, 0, 255).astype(np.uint8)
        if level == 2:  # skin-coloured patches (arms, wooden things, photos of faces)
            for _ in range(4):
                tone = tuple(int(c) for c in np.clip(np.asarray(skin_bgr) * rng.uniform(0.8, 1.1), 0, 255))
                cv2.ellipse(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), (int(rng.integers(10, 60)), int(rng.integers(10, 40))), float(rng.uniform(0, 180)), 0, 360, tone, -1, cv2.LINE_AA)
        img = cv2.GaussianBlur(img, (0, 0), 0.8)  # the room is a little out of focus
        people = []
        if level >= 1:
            skin = tuple(int(c) for c in np.clip(np.asarray(skin_bgr) * rng.uniform(0.9, 1.05, 3), 0, 255))
            ax = rng.uniform(0.06, 0.11) * w
            people.append(
                Person(
                    centre=np.array([rng.uniform(0.3, 0.7) * w, rng.uniform(0.2, 0.4) * h]),
                    axes=np.array([ax, ax * 1.3]),
                    skin=skin,
                    hair=_random_color(rng, 10, 90),
                    shirt=_random_color(rng),
                    sway_amp=rng.uniform(2, 12, 2),
                    sway_freq=rng.uniform(0.05, 0.3, 2),
                    sway_phase=rng.uniform(0, 2 * np.pi, 2),
                )
            )
        lighting = {
            "gain": float(rng.uniform(0.85, 1.15)),
            "gamma": float(rng.uniform(0.85, 1.15)),
            "drift_amp": (0.02, 0.06, 0.15)[level],
            "drift_freq": float(rng.uniform(0.03, 0.15)),
            "flicker": (0.0, 0.01, 0.03)[level],
        }
        noise_sigma = (1.5, 3.0, 5.0)[level]
        return cls(img, people, noise_sigma, lighting, rng)

    def light(self, t_s: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The room lit at time ``t_s`` and the tone curve that lit it.

        The light's gain drifts slowly and flickers; it is quantised to 0.5 % steps so the
        lit room is computed once per step and reused (a full-frame LUT per frame would
        cost as much as the rest of the frame). Everything drawn on top goes through the
        same tone curve.

        Returns:
            room: (H, W, 3) uint8, shared: copy before drawing. tone: (256,) uint8.
        """
        L = self.lighting
        gain = L["gain"] * (1 + L["drift_amp"] * np.sin(2 * np.pi * L["drift_freq"] * t_s)) * (1 + rng.normal(0, L["flicker"] + 1e-9))
        step = int(round(gain * 200))
        x = np.arange(256, dtype=np.float32) / 255.0
        tone = np.clip(255.0 * (step / 200) * x ** L["gamma"], 0, 255).astype(np.uint8)
        room = self._lit.get(step)
        if room is None:
            if len(self._lit) >= 64:
                self._lit.pop(next(iter(self._lit)))
            room = self._lit[step] = cv2.LUT(self.background, tone)
        return room, tone

    def add_noise(self, img: np.ndarray, rng: np.random.Generator) -> None:
        """Add sensor noise in place, from the noise bank at a random offset."""
        h, w = img.shape[:2]
        dy, dx = (int(v) for v in rng.integers(0, self._pad, 2))
        cv2.add(img, self._noise_pos[dy : dy + h, dx : dx + w], dst=img)
        cv2.subtract(img, self._noise_neg[dy : dy + h, dx : dx + w], dst=img)


_PALM_RING = [WRIST] + list(FINGER_BASES)


@dataclass
class HandLook:
    """How a subject's hand looks: skin colour (BGR) and the light direction in the image."""

    skin_bgr: tuple[int, int, int]
    light_dir: np.ndarray  # (2,) unit vector in the image, toward the light


def hand_items(uv: np.ndarray, z: np.ndarray, shape: HandShape, fx: float) -> list[tuple[float, str, tuple]]:
    """The hand's drawable parts, far to near: (depth, kind, data). A finger is one item
    (its three segments drawn as one shaded chain), the palm another."""
    items = []
    for d, f in enumerate(FINGERS):
        j = finger_joints(f)
        zs = 0.5 * (z[list(j[:3])] + z[list(j[1:])])  # (3,) segment depths
        items.append((float(zs.mean()), "finger", (uv[list(j)], fx * shape.radii[d] / zs)))
    zp = float(np.mean(z[_PALM_RING]))
    items.append((zp + 0.5 * shape.palm_radius, "palm", (uv[_PALM_RING], fx * shape.palm_radius / zp)))
    items.sort(key=lambda it: -it[0])
    return items


def _pt(p) -> tuple[int, int]:
    return (int(round(p[0] * _ONE)), int(round(p[1] * _ONE)))


# Shading passes of a capsule: (brightness, width as a multiple of the radius, shift of
# the line toward the light as a multiple of the radius, smallest radius in px worth
# drawing it at): a dark rim, a mid tone, a sheen.
_PASSES = ((0.7, 2.0, 0.0, 0.0), (0.9, 1.45, 0.15, 1.0), (1.05, 0.7, 0.35, 1.8))


def _fixed(p: np.ndarray) -> list:
    """(..., 2) float px to nested lists of ints in cv2's fixed point (``_SHIFT`` bits)."""
    return np.rint(p * _ONE).astype(np.int64).tolist()


def draw_hand(
    img: np.ndarray,
    mask: np.ndarray | None,
    uv: np.ndarray,
    z: np.ndarray,
    shape: HandShape,
    look: HandLook,
    fx: float,
    offset: np.ndarray,
    tone: np.ndarray,
) -> None:
    """Draw the hand into ``img`` (and 255 into ``mask``), far parts first.

    Args:
        uv: (21, 2) joints in pixels of the full image; z: (21,) depth, mm.
        offset: (2,) top-left of ``img`` within the full image (for drawing into a crop).
        tone: (256,) uint8 tone curve of the frame's light.
    """
    skin = np.asarray(look.skin_bgr, dtype=np.float64)
    L = look.light_dir
    uv = uv - offset
    aa = cv2.LINE_AA
    for depth, kind, data in hand_items(uv, z, shape, fx):
        near = float(np.clip(1.12 - depth / 2500.0, 0.8, 1.1))
        if kind == "palm":
            ring, r = data
            edges = [(p, q) for p, q in zip(_fixed(ring), _fixed(np.roll(ring, -1, axis=0)))]
            for k, (f, w) in enumerate(((0.72, 2.0), (0.88, 1.2))):
                color = tuple(int(c) for c in tone[np.clip(skin * f * near, 0, 255).astype(np.intp)])
                th = max(1, int(w * r + 0.5))
                for p, q in edges:
                    cv2.line(img, p, q, color, th, aa, _SHIFT)
                    if mask is not None and k == 0:
                        cv2.line(mask, p, q, 255, th, cv2.LINE_8, _SHIFT)
            hull = cv2.convexHull(np.rint(ring * _ONE).astype(np.int32))
            color = tuple(int(c) for c in tone[np.clip(skin * 0.95 * near, 0, 255).astype(np.intp)])
            cv2.fillConvexPoly(img, hull, color, aa, _SHIFT)
            if mask is not None:
                cv2.fillConvexPoly(mask, hull, 255, cv2.LINE_8, _SHIFT)
            continue
        pts, radii = data  # (4, 2) px, (3,) px
        for f, w, shift, r_min in _PASSES:
            if radii.max() < r_min:
                continue
            color = tuple(int(c) for c in tone[np.clip(skin * f * near, 0, 255).astype(np.intp)])
            off = (L * shift) * radii[:, None]  # (3, 2)
            a, b = _fixed(pts[:3] + off), _fixed(pts[1:] + off)
            for s in range(3):
                cv2.line(img, a[s], b[s], color, max(1, int(w * radii[s] + 0.5)), aa, _SHIFT)
        if mask is not None:
            a, b = _fixed(pts[:3]), _fixed(pts[1:])
            for s in range(3):
                cv2.line(mask, a[s], b[s], 255, max(1, int(2.0 * radii[s] + 0.5)), cv2.LINE_8, _SHIFT)


def motion_kernel(v: np.ndarray) -> np.ndarray | None:
    """A line kernel for a blur of ``v`` (2,) pixels over the exposure, or None if < 1.5 px."""
    n = float(np.hypot(*v))
    if n < 1.5:
        return None
    size = int(np.ceil(n)) | 1
    k = np.zeros((size, size), np.float32)
    c = (size - 1) / 2
    d = v / n * (n - 1) / 2
    cv2.line(k, _pt((c - d[0], c - d[1])), _pt((c + d[0], c + d[1])), 1.0, 1, cv2.LINE_AA, _SHIFT)
    return k / k.sum()


def _motion_blur(layer: np.ndarray, mask: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blur a hand layer (h, w, 3) and its mask (h, w) along ``v`` (2,) px.

    A long blur is filtered at a lower resolution: the cost of a direct filter grows with
    the kernel's area, and a smear of tens of pixels has no sharp detail to lose.
    """
    n = float(np.hypot(*v))
    s = max(1, int(np.ceil(n / 12.0)))
    if s == 1:
        k = motion_kernel(v)
        return cv2.filter2D(layer, -1, k), cv2.filter2D(mask, -1, k)
    h, w = mask.shape
    size = (max(1, w // s), max(1, h // s))
    k = motion_kernel(v / s)
    small_l = cv2.filter2D(cv2.resize(layer, size, interpolation=cv2.INTER_AREA), -1, k)
    small_m = cv2.filter2D(cv2.resize(mask, size, interpolation=cv2.INTER_AREA), -1, k)
    return cv2.resize(small_l, (w, h), interpolation=cv2.INTER_LINEAR), cv2.resize(small_m, (w, h), interpolation=cv2.INTER_LINEAR)


def render_frame(
    scene: Scene,
    t_s: float,
    rng: np.random.Generator,
    camera: Camera,
    joints_cam: np.ndarray | None,
    shape: HandShape,
    look: HandLook,
    blur_px: np.ndarray | None = None,
) -> np.ndarray:
    """One camera frame.

    Args:
        scene: the session's room. t_s: seconds since the start (for the moving parts).
        joints_cam: (21, 3) true joints in the camera frame, mm, or None (no hand).
        blur_px: (2,) image motion of the hand during the exposure, px.

    Returns:
        (H, W, 3) uint8 BGR.
    """
    room, tone = scene.light(t_s, rng)
    img = room.copy()
    for person in scene.people:
        person.draw(img, t_s, tone)
    if joints_cam is not None and np.all(joints_cam[:, 2] > 10.0):
        if joints_cam.shape != (NUM_JOINTS, 3):
            raise ValueError(f"joints_cam: expected (21, 3), got {joints_cam.shape}")
        uv = camera.project(joints_cam)
        z = joints_cam[:, 2]
        h, w = img.shape[:2]
        fx = camera.K[0, 0]
        pad = fx * 2.2 * float(shape.radii.max()) / float(z.min()) + 4
        kernel = motion_kernel(blur_px) if blur_px is not None else None
        if kernel is not None:
            pad += kernel.shape[0]
        x0, y0 = np.floor(uv.min(0) - pad).astype(int)
        x1, y1 = np.ceil(uv.max(0) + pad).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 > x0 and y1 > y0:
            roi = img[y0:y1, x0:x1]
            offset = np.array([x0, y0], dtype=np.float64)
            if kernel is None:
                draw_hand(roi, None, uv, z, shape, look, fx, offset, tone)
            else:
                layer = np.zeros_like(roi)
                mask = np.zeros(roi.shape[:2], np.uint8)
                draw_hand(layer, mask, uv, z, shape, look, fx, offset, tone)
                layer, alpha = _motion_blur(layer, mask, blur_px)
                # The layer is premultiplied (drawn on black): out = roi * (1 - a) + layer.
                covered = cv2.multiply(roi, cv2.merge([alpha, alpha, alpha]), scale=1.0 / 255.0)
                cv2.add(cv2.subtract(roi, covered), layer, dst=roi)
    scene.add_noise(img, rng)
    return img
