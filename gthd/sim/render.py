"""The simulator's renderer: a hand with a forearm and a sleeve, shaded as a surface, over a
photographic-looking room with a person behind it, with motion blur, lighting changes
and sensor noise. Pure OpenCV/NumPy, fast enough to outrun a JPEG encoder of the same
frames by a third (perf/simulate.py); a detector trained on real photos finds its hands
(perf/realism.py, docs/simulate.md).

Design, chosen by measured speed on two cores (docs/simulate.md, "The renderer"):

- The room is drawn once per session, so it can afford photographic statistics: a light
  gradient and vignetting, textured wall and desk, out-of-focus layers of furniture and
  objects, fine grain. The person behind the hand (torso, arms, head, sometimes a hand of
  their own) is a sprite drawn once and pasted per frame at its sway.
- The hand is a set of parts driven by the kinematic skeleton: tapered finger segments
  with rounded joints, a palm (a slab, not a sheet) reaching the knuckles, webbing
  between the fingers, the thenar eminence, a forearm and a sleeve. Each part is
  rasterised with OpenCV's C drawing into a label image (one label per part) in depth
  order: a z-buffer with one depth per part, which is exact between parts, and every
  visible pixel knows its part. Per-joint visibility comes from that buffer.
- Shading is computed per pixel from the label image, in the hand's box only, at a
  resolution capped at ``_WORK_PIXELS`` (bigger hands are shaded at a lower resolution
  and scaled up, which also softens their silhouettes as a lens does): a round profile
  across each part from the distance to its visible outline, a light direction from the
  profile's slope, soft shadows that nearer parts cast on farther ones, skin texture,
  light falling off with depth in the hand, shadows warmer than grey, palmar/dorsal and
  fingertip tones, nails, and creases and knuckle lines scaled to the hand's size.
- The hand layer (premultiplied colour and coverage) is motion-blurred along the hand's
  image motion and composited; then the whole frame gets sensor noise. JPEG comes when
  the frame is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..geometry import Camera
from ..hand import FINGERS, NUM_JOINTS, WRIST, finger_joints
from .kinematics import HandShape

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT
_WORK_PIXELS = 100 * 100  # the most pixels the hand's box is shaded at (cost cap)
_FAR = 1e5  # depth of the background in the part depth buffer, mm
_SHADOW_TINT = np.float32([1.25, 1.1, 0.92])  # BGR: how fast each channel darkens in shade
_TINT_MAP = np.stack([_SHADOW_TINT, 1 - _SHADOW_TINT], axis=1).astype(np.float32)  # (3, 2)
_LIGHT_SKIN, _DARK_SKIN = np.float32([189, 208, 255]), np.float32([50, 75, 115])  # BGR, the range of people's skin


# --------------------------------------------------------------------------- helpers
def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """(h, w) float32 smooth noise in about [-1, 1]."""
    small = rng.normal(0, 1, (max(2, h * cells // w), cells)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _fractal_noise(rng: np.random.Generator, h: int, w: int, octaves=(4, 12, 40, 120), falloff: float = 0.6) -> np.ndarray:
    """(h, w) float32 noise with a roughly 1/f spectrum (as photographs have), std ~1."""
    out = np.zeros((h, w), np.float32)
    amp = 1.0
    for cells in octaves:
        out += amp * _smooth_noise(rng, h, w, min(cells, w))
        amp *= falloff
    return out / max(float(out.std()), 1e-6)


def _natural_color(rng: np.random.Generator, sat=(0.05, 0.45), val=(60, 230)) -> np.ndarray:
    """A BGR colour of the kind rooms are made of: mostly muted, sometimes saturated."""
    hue = rng.uniform(0, 180)
    s = rng.uniform(*sat) if rng.random() < 0.8 else rng.uniform(0.4, 0.8)
    hsv = np.uint8([[[hue, s * 255, rng.uniform(*val)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _pt(p) -> tuple[int, int]:
    return (int(round(p[0] * _ONE)), int(round(p[1] * _ONE)))


def _ellipse(img, centre, axes, color, angle: float = 0.0, line=cv2.LINE_AA) -> None:
    a = (max(1, int(round(axes[0] * _ONE))), max(1, int(round(axes[1] * _ONE))))
    cv2.ellipse(img, _pt(centre), a, angle, 0, 360, color, -1, line, _SHIFT)


def _capsule(img, a, b, ra: float, rb: float, color, line=cv2.LINE_8) -> None:
    """A tapered capsule: discs of radius ``ra`` at ``a`` and ``rb`` at ``b`` (px) and the
    quad between them."""
    d = np.asarray(b, np.float64) - a
    n = np.hypot(*d)
    if n > 1e-6:
        p = np.array([-d[1], d[0]]) / n
        quad = np.array([a + p * ra, b + p * rb, b - p * rb, a - p * ra])
        cv2.fillConvexPoly(img, np.rint(quad * _ONE).astype(np.int32), color, line, _SHIFT)
    cv2.circle(img, _pt(a), max(1, int(round(ra * _ONE))), color, -1, line, _SHIFT)
    cv2.circle(img, _pt(b), max(1, int(round(rb * _ONE))), color, -1, line, _SHIFT)


# --------------------------------------------------------------------------- the room
@dataclass
class Person:
    """A person behind the hand, drawn once as a sprite and pasted at its sway.

    Attributes:
        sprite: (h, w, 3) uint8 BGR, edges already blended with the room behind.
        mask: (h, w) uint8, 255 where the person covers the room.
        origin: (2,) int, top-left of the sprite at rest, px.
    """

    sprite: np.ndarray
    mask: np.ndarray
    origin: np.ndarray
    sway_amp: np.ndarray  # (2,) px
    sway_freq: np.ndarray  # (2,) Hz
    sway_phase: np.ndarray  # (2,)
    hand_box: np.ndarray | None = None  # (4,) xyxy px at rest: the person's raised hand
    _lit: dict = field(default_factory=dict, repr=False)  # the sprite through each tone curve

    @classmethod
    def generate(cls, rng: np.random.Generator, room: np.ndarray, skin_bgr, distractor_hand: bool) -> "Person":
        """A person (torso, arms, neck, head with hair and a face), out of focus, over the
        room ``room`` (H, W, 3) uint8; with ``distractor_hand`` one forearm is raised and
        shows a loosely closed hand (a hand a detector must not take for the subject's)."""
        H, W = room.shape[:2]
        ax = rng.uniform(0.05, 0.09) * W  # face half-width
        cx, cy = rng.uniform(0.3, 0.7) * W, rng.uniform(0.18, 0.35) * H
        canvas = room.astype(np.float32).copy()
        cover = np.zeros((H, W), np.float32)
        skin = np.clip(np.asarray(skin_bgr, np.float32) * rng.uniform(0.85, 1.05, 3), 0, 255)
        shirt = _natural_color(rng, val=(40, 200))
        hair = _natural_color(rng, sat=(0.1, 0.5), val=(15, 90))

        def put(draw, color, shade=None):
            """Draw a shape with a soft shading ramp (light from above)."""
            m = np.zeros((H, W), np.uint8)
            draw(m)
            mf = m.astype(np.float32)[..., None] / 255.0
            paint = color[None, None, :] if shade is None else color[None, None, :] * shade[..., None]
            canvas[:] = canvas * (1 - mf) + paint * mf
            np.maximum(cover, mf[..., 0], out=cover)

        yy = np.linspace(0, 1, H, dtype=np.float32)[:, None] * np.ones((1, W), np.float32)
        sh = 0.9 + 0.2 * (1 - yy)  # a little brighter toward the top
        shoulder = cy + rng.uniform(1.9, 2.3) * ax
        sw = rng.uniform(2.2, 2.8) * ax
        torso = np.array(
            [
                [cx - sw * 1.1, H + 20],
                [cx - sw, shoulder + 0.3 * ax],
                [cx - 0.7 * sw, shoulder],
                [cx + 0.7 * sw, shoulder],
                [cx + sw, shoulder + 0.3 * ax],
                [cx + sw * 1.1, H + 20],
            ]
        )
        put(lambda m: cv2.fillPoly(m, [np.rint(torso * _ONE).astype(np.int32)], 255, cv2.LINE_AA, _SHIFT), shirt, sh)
        # Arms hanging at the sides, or one raised to the chest.
        raised = int(rng.integers(2)) if distractor_hand else -1
        hand_box = None
        for side in (0, 1):
            sx = -1 if side == 0 else 1
            s0 = np.array([cx + sx * 0.92 * sw, shoulder + 0.5 * ax])
            elbow = s0 + np.array([sx * rng.uniform(0.1, 0.5) * ax, rng.uniform(2.8, 3.4) * ax])
            put(lambda m: _capsule(m, s0, elbow, 0.55 * ax, 0.45 * ax, 255, cv2.LINE_AA), shirt * 0.85, sh)
            if side == raised:
                wrist = elbow + np.array([-sx * rng.uniform(1.2, 1.8) * ax, -rng.uniform(1.0, 2.0) * ax])
                put(lambda m: _capsule(m, elbow, wrist, 0.42 * ax, 0.3 * ax, 255, cv2.LINE_AA), skin * 0.92)
                d = (wrist - elbow) / np.linalg.norm(wrist - elbow)
                fist = wrist + d * 0.45 * ax
                put(lambda m: _ellipse(m, fist, (0.5 * ax, 0.4 * ax), 255, float(np.degrees(np.arctan2(d[1], d[0])))), skin * 0.97)
                for k in range(4):  # knuckles of curled fingers
                    q = fist + d * 0.35 * ax + np.array([-d[1], d[0]]) * (k - 1.5) * 0.2 * ax
                    put(lambda m: cv2.circle(m, _pt(q), int(0.13 * ax * _ONE), 255, -1, cv2.LINE_AA, _SHIFT), skin * 0.9)
                hand_box = np.concatenate([fist - 0.8 * ax, fist + 0.8 * ax])
        neck = np.array(
            [[cx - 0.42 * ax, cy + 0.5 * ax], [cx + 0.42 * ax, cy + 0.5 * ax], [cx + 0.5 * ax, shoulder + 0.2 * ax], [cx - 0.5 * ax, shoulder + 0.2 * ax]]
        )
        put(lambda m: cv2.fillConvexPoly(m, np.rint(neck * _ONE).astype(np.int32), 255, cv2.LINE_AA, _SHIFT), skin * 0.78)
        put(lambda m: _ellipse(m, (cx, cy - 0.2 * ax), (ax * 1.1, ax * 1.35), 255), hair)
        face_shade = 0.85 + 0.2 * np.clip(1 - np.abs(np.linspace(-1, 1, W, dtype=np.float32) * W / (2 * ax) - (cx - W / 2) / ax), 0, 1)[None, :] * np.ones(
            (H, 1), np.float32
        )
        put(lambda m: _ellipse(m, (cx, cy + 0.1 * ax), (ax, ax * 1.3), 255), skin, face_shade)
        for sx in (-0.38, 0.38):
            put(lambda m: _ellipse(m, (cx + sx * ax, cy - 0.05 * ax), (0.14 * ax, 0.07 * ax), 255), np.float32([45, 45, 55]))
            put(lambda m: _ellipse(m, (cx + sx * ax, cy - 0.25 * ax), (0.2 * ax, 0.04 * ax), 255), hair * 0.8)
        put(lambda m: _ellipse(m, (cx, cy + 0.3 * ax), (0.08 * ax, 0.18 * ax), 255), skin * 0.85)
        put(lambda m: _ellipse(m, (cx, cy + 0.72 * ax), (0.3 * ax, 0.07 * ax), 255), skin * np.float32([0.7, 0.7, 0.95]))
        # Out of focus: the person stands well behind the hand.
        sigma = rng.uniform(1.2, 2.4)
        canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
        cover = cv2.GaussianBlur(cover, (0, 0), sigma)
        ys, xs = np.nonzero(cover > 0.02)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        mask = (cover[y0:y1, x0:x1] > 0.02).astype(np.uint8) * 255
        return cls(
            sprite=np.clip(canvas[y0:y1, x0:x1], 0, 255).astype(np.uint8),
            mask=mask,
            origin=np.array([x0, y0]),
            sway_amp=rng.uniform(2, 10, 2),
            sway_freq=rng.uniform(0.05, 0.3, 2),
            sway_phase=rng.uniform(0, 2 * np.pi, 2),
            hand_box=hand_box,
        )

    def sway(self, t_s: float) -> np.ndarray:
        """(2,) int px: where the person has swayed to at ``t_s``."""
        return np.rint(self.sway_amp * np.sin(2 * np.pi * self.sway_freq * t_s + self.sway_phase)).astype(int)

    def hand_box_at(self, t_s: float) -> np.ndarray | None:
        """The person's own hand (xyxy px, a loose box) at ``t_s``, or None: a hand a
        detector may rightly find, which is not the subject's."""
        return None if self.hand_box is None else self.hand_box + np.tile(self.sway(t_s), 2)

    def draw(self, img: np.ndarray, t_s: float, tone: np.ndarray) -> None:
        """Paste in place at time ``t_s``, through the frame's tone curve."""
        x0, y0 = self.origin + self.sway(t_s)
        h, w = self.mask.shape
        H, W = img.shape[:2]
        ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
        if ax1 <= ax0 or ay1 <= ay0:
            return
        key = tone.tobytes()
        lit = self._lit.get(key)
        if lit is None:  # lit once per light step, as the room is
            if len(self._lit) >= 64:
                self._lit.pop(next(iter(self._lit)))
            lit = self._lit[key] = cv2.LUT(self.sprite, tone)
        src = lit[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0]
        cv2.copyTo(src, self.mask[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0], img[ay0:ay1, ax0:ax1])


def _room(rng: np.random.Generator, w: int, h: int, level: int, skin_bgr) -> np.ndarray:
    """A room with photographic statistics (float32 BGR): a wall lit by a gradient with a
    1/f texture, out-of-focus layers of furniture and objects (far ones blurred more), a
    desk with wood grain, vignetting and fine grain. Harder levels have more clutter and
    skin-coloured things."""
    wall = _natural_color(rng, sat=(0.03, 0.3), val=(110, 220))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    grad = 1 + rng.uniform(0.1, 0.35) * ((np.cos(ang) * (xx - w / 2) + np.sin(ang) * (yy - h / 2)) / max(w, h))
    img = wall[None, None, :] * grad[..., None]
    img *= (1 + rng.uniform(0.03, 0.08) * _fractal_noise(rng, h, w))[..., None]
    # Depth layers, far to near: each drawn on the room so far, then blurred by its defocus.
    n_far, n_mid = ((2, 1), (6, 5), (10, 9))[level]
    # (a webcam's depth of field is deep: the far layer is only a little soft)
    for n, sigma in ((n_far, rng.uniform(1.5, 3.0)), (n_mid, rng.uniform(0.5, 1.0))):
        layer = img.copy()
        for _ in range(n):
            _room_object(rng, layer, w, h)
        if level == 2 and sigma < 1.2:
            for _ in range(3):  # skin-coloured things: a photo of a face, wood, an arm
                tone = np.clip(np.asarray(skin_bgr, np.float32) * rng.uniform(0.75, 1.1), 0, 255)
                _ellipse(
                    layer,
                    (rng.uniform(0, w), rng.uniform(0, h)),
                    (rng.uniform(10, 60), rng.uniform(10, 40)),
                    tuple(float(c) for c in tone),
                    float(rng.uniform(0, 180)),
                )
        img = cv2.GaussianBlur(layer, (0, 0), sigma)
    if level >= 1:  # a desk along the bottom, with a wood-like grain, nearly in focus
        y = int(h * rng.uniform(0.74, 0.92))
        desk = _natural_color(rng, sat=(0.15, 0.5), val=(60, 190))
        grain = 1 + 0.07 * np.sin(np.linspace(0, rng.uniform(30, 90), w) + 3 * _smooth_noise(rng, h - y, w, 8)) + 0.05 * _smooth_noise(rng, h - y, w, 60)
        top = np.linspace(1.15, 0.85, h - y, dtype=np.float32)[:, None]
        img[y:] = desk[None, None, :] * (grain * top)[..., None]
        img[y : y + 2] *= 0.7  # its edge
        img = cv2.GaussianBlur(img, (0, 0), 0.7)
    r2 = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
    img *= (1 - rng.uniform(0.2, 0.5) * r2)[..., None]  # vignetting
    img += rng.normal(0, 1.2, (h, w, 1)).astype(np.float32)  # paint and paper grain
    return img


def _room_object(rng: np.random.Generator, img: np.ndarray, w: int, h: int) -> None:
    """One piece of furniture or clutter on ``img`` (float32), with soft shading."""
    kind = rng.integers(5)
    c = _natural_color(rng)
    col = tuple(float(v) for v in c)
    x0, y0 = float(rng.uniform(-0.1, 1.0) * w), float(rng.uniform(-0.1, 1.0) * h)
    if kind == 0:  # a shelf with books
        bw, bh = rng.uniform(60, 260), rng.uniform(40, 140)
        cv2.rectangle(img, (int(x0), int(y0)), (int(x0 + bw), int(y0 + bh)), tuple(float(v) for v in c * 0.6), -1)
        x = x0 + 3
        while x < x0 + bw - 4:
            bwid = rng.uniform(4, 14)
            bc = tuple(float(v) for v in _natural_color(rng, sat=(0.1, 0.7)))
            cv2.rectangle(img, (int(x), int(y0 + rng.uniform(2, bh * 0.3))), (int(x + bwid), int(y0 + bh - 2)), bc, -1)
            x += bwid + rng.uniform(0, 2)
    elif kind == 1:  # a framed picture or a window, with a textured inside
        bw, bh = int(rng.uniform(40, 200)), int(rng.uniform(40, 160))
        xi, yi = int(x0), int(y0)
        cv2.rectangle(img, (xi, yi), (xi + bw, yi + bh), tuple(float(v) for v in c * 0.5), -1)
        ys, xs = slice(max(yi + 4, 0), min(yi + bh - 4, h)), slice(max(xi + 4, 0), min(xi + bw - 4, w))
        if ys.stop > ys.start and xs.stop > xs.start:
            ph, pw = ys.stop - ys.start, xs.stop - xs.start
            inner = _natural_color(rng, val=(80, 250))[None, None, :] * (1 + 0.25 * _fractal_noise(rng, ph, pw, (2, 6, 20)))[..., None]
            img[ys, xs] = inner
    elif kind == 2:  # a lamp, a plant, a round thing
        _ellipse(img, (x0, y0), (rng.uniform(8, 60), rng.uniform(8, 60)), col, float(rng.uniform(0, 180)))
        _ellipse(img, (x0 - 4, y0 - 4), (rng.uniform(3, 20), rng.uniform(3, 20)), tuple(float(v) for v in np.clip(c * 1.25, 0, 255)))
    elif kind == 3:  # a door frame, a cable, a shelf edge
        p1 = (float(x0 + rng.uniform(-200, 200)), float(y0 + rng.uniform(-200, 200)))
        cv2.line(img, _pt((x0, y0)), _pt(p1), col, int(rng.integers(1, 10)), cv2.LINE_AA, _SHIFT)
    else:  # a box or a monitor
        bw, bh = rng.uniform(30, 180), rng.uniform(20, 120)
        dark = rng.random() < 0.4
        c2 = np.float32([30, 30, 34]) if dark else c
        cv2.rectangle(img, (int(x0), int(y0)), (int(x0 + bw), int(y0 + bh)), tuple(float(v) for v in c2), -1)
        cv2.rectangle(img, (int(x0), int(y0)), (int(x0 + bw), int(y0 + 0.25 * bh)), tuple(float(v) for v in c2 * 1.15), -1)


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
        """Draw a room. ``level``: 0 easy (a plain lit wall), 1 medium, 2 hard (more
        clutter, skin-coloured things, stronger light changes)."""
        h, w = height, width
        img = np.clip(_room(rng, w, h, level, skin_bgr), 0, 255).astype(np.uint8)
        people = []
        if level >= 1:  # someone else: their own skin tone, light to dark
            tone = _LIGHT_SKIN + (_DARK_SKIN - _LIGHT_SKIN) * rng.uniform(0, 1)
            people.append(Person.generate(rng, img, tone, distractor_hand=bool(rng.random() < 0.3)))
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


# --------------------------------------------------------------------------- the hand
@dataclass
class HandLook:
    """How a subject's hand looks.

    Attributes:
        skin_bgr: the back of the hand's colour. light_dir: (2,) unit vector in the
            image, toward the light.
        palm_bgr: the palm's colour (lighter than the back, markedly so on dark skin);
            None: derived from ``skin_bgr``.
        sleeve_bgr: the sleeve's colour; sleeve_mm: where the sleeve starts, from the
            wrist along the forearm (mm, at subject scale 1); forearm: draw the forearm
            and sleeve at all.
        texture: (S, S) float32 skin texture in about [-1, 1] (mottling, pores), or None.
    """

    skin_bgr: tuple[int, int, int]
    light_dir: np.ndarray
    palm_bgr: tuple[int, int, int] | None = None
    sleeve_bgr: tuple[int, int, int] = (90, 70, 60)
    sleeve_mm: float = 120.0
    forearm: bool = True
    texture: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def sample(cls, rng: np.random.Generator, skin_bgr, size: int = 512) -> "HandLook":
        """A subject's look: the light's direction, a sleeve, a skin texture."""
        light = rng.normal(0, 1, 2)
        tex = 0.6 * _smooth_noise(rng, size, size, 48) + 0.3 * _smooth_noise(rng, size, size, 180) + 0.25 * rng.normal(0, 1, (size, size)).astype(np.float32)
        return cls(
            skin_bgr=tuple(int(c) for c in skin_bgr),
            light_dir=light / np.linalg.norm(light),
            sleeve_bgr=tuple(int(c) for c in _natural_color(rng, sat=(0.05, 0.6), val=(30, 210))),
            sleeve_mm=float(rng.uniform(70, 170)),
            texture=np.clip(tex, -2.5, 2.5) / 2.5,
        )

    def colors(self) -> tuple[np.ndarray, np.ndarray]:
        """(back, palm) BGR float32. The palm is lighter and pinker than the back, the more
        so the darker the skin."""
        key = (self.skin_bgr, self.palm_bgr)
        if getattr(self, "_colors_key", None) != key:  # once per look, not per frame
            self._colors, self._colors_key = self._compute_colors(), key
        return self._colors

    def _compute_colors(self) -> tuple[np.ndarray, np.ndarray]:
        back = np.asarray(self.skin_bgr, np.float32)
        if self.palm_bgr is not None:
            return back, np.asarray(self.palm_bgr, np.float32)
        dark = 1 - float(back.mean()) / 200.0  # 0 light skin .. ~0.6 dark
        palm = back + (np.float32([175, 190, 235]) - back) * np.clip(0.15 + 0.6 * dark, 0, 0.6)
        return back, palm


# The hand's build (mm at subject scale 1).
_FINGER_SEGMENT_RADIUS_TAPER = 0.93  # a phalanx's far end against its knuckle
_FOREARM_LEN_MM = 230.0  # wrist to elbow (the sleeve runs on past it)
_CUFF_MM = 45.0  # the part of the sleeve drawn in the hand's box (the rest straight on the frame)
_PALM_THICKNESS_MM = 26.0  # an adult palm, back to front
_HAND_DEPTH_MM = 120.0  # depth over which the hand's far parts fall into shade


@dataclass
class _Part:
    """One part of the hand as drawn: a tapered capsule or a polygon, with its label's
    colour, depth and shading width; its index + 1 is its label in the part buffer."""

    depth: float  # mm, for the painter's order (far first)
    kind: str  # "capsule" or "poly"
    geom: tuple  # capsule: (a (2,), b (2,), ra, rb) px; poly: ((n, 2),)
    color: np.ndarray  # (3,) BGR float32, before shading
    radius: float  # px: the half-thickness of the part (its shading profile's width)
    owns: tuple = ()  # joints this part shows (a joint is visible where its part is)
    outline: str = "sides"  # what outline to draw: "sides", "tip" (and the far cap), "cuff", "poly", "none"
    dorsal: float | None = None  # phalanges: how much the back of the finger faces the camera
    nail: float | None = None  # fingertips: as ``dorsal``, for the nail
    cuff: bool = False  # the sleeve
    round_start: bool = True  # draw the disc at the start (the joint before: its own disc)


# The 14 phalanges drawn as capsules (the thumb's metacarpal is the thenar): their joints,
# digit and index within the digit.
_SEG_JOINTS = np.array([(finger_joints(f)[k], finger_joints(f)[k + 1]) for d, f in enumerate(FINGERS) for k in range(3) if d or k])
_SEG_DIGIT = np.array([d for d in range(5) for k in range(3) if d or k])
_SEG_INDEX = np.array([k for d in range(5) for k in range(3) if d or k])
# Per phalanx: a fingertip?, draw the disc at its start? (the first of a digit's chain),
# the joints it holds.
_SEG_FLAGS = [(bool(k == 2), bool(k == 0 or d == 0), (int(a), int(b))) for d, k, (a, b) in zip(_SEG_DIGIT, _SEG_INDEX, _SEG_JOINTS)]


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of (..., 3) arrays (np.cross costs more than this whole sum)."""
    return np.stack(
        [a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1], a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2], a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1
    )


def _pinhole(K: np.ndarray, p: np.ndarray) -> np.ndarray:
    return (p[..., :2] / p[..., 2:3]) @ K[:2, :2].T + K[:2, 2]


def hand_parts(uv: np.ndarray, jc: np.ndarray, shape: HandShape, K: np.ndarray, look: HandLook, handedness: str = "right") -> list[_Part]:
    """The hand's parts in image pixels, far first.

    Points that are not joints (the palm's edges, the forearm) are placed in 3D from the
    joints and projected as offsets from a joint's (distorted) projection with the pinhole
    model: they sit exactly on the joints where they meet them, and need no distortion
    model out of the image.

    Args:
        uv: (21, 2) joints, px. jc: (21, 3) joints in the camera frame, mm.
        handedness: which hand (the palm's side follows from it).
    """
    fx = float(K[0, 0])
    z = jc[:, 2]
    back, palm_c = look.colors()

    def at(p3: np.ndarray, j: int) -> np.ndarray:
        """Project 3D point(s) ``p3`` (..., 3) anchored at joint ``j``."""
        return uv[j] + _pinhole(K, p3) - _pinhole(K, jc[j])

    def px(r_mm: float, depth: float) -> float:
        return fx * r_mm / max(depth, 1.0)

    W = jc[WRIST]
    mcp = jc[[5, 9, 13, 17]]
    x_hat = mcp[0] - mcp[3]
    x_hat /= np.linalg.norm(x_hat) + 1e-9  # toward the thumb, either hand
    y_hat = jc[9] - W
    y_hat /= np.linalg.norm(y_hat) + 1e-9  # toward the fingers
    sign = 1.0 if handedness == "right" else -1.0
    palmar = sign * _cross(x_hat, y_hat)  # out of the palm
    palmar /= np.linalg.norm(palmar) + 1e-9
    view = -W / np.linalg.norm(W)  # toward the camera
    palm_facing = float(palmar @ view)  # 1: the palm faces the camera

    def side_color(facing: float) -> np.ndarray:
        w = np.clip(0.5 + 0.8 * facing, 0, 1)
        return (1 - w) * back + w * palm_c

    parts: list[_Part] = []
    r_fing = shape.radii
    palm_w = float(np.linalg.norm(mcp[0] - mcp[3])) + r_fing[1, 0] + r_fing[4, 0]
    wrist_hw_mm = 0.36 * palm_w
    # The wrist and forearm are flatter than round: their apparent half-width shrinks
    # toward their thickness as the palm turns edge-on.
    edge = abs(palm_facing)
    wrist_r = float(np.hypot(wrist_hw_mm * edge, 0.7 * wrist_hw_mm * np.sqrt(max(0.0, 1 - edge**2))))
    pz = float(np.mean(z[[0, 5, 9, 13, 17]]))
    palm_color = side_color(palm_facing)
    palm_r = px(0.9 * r_fing[2, 0] * 1.6, pz)

    # Palm: from the wrist's sides to the knuckles, with the hypothenar bulge.
    ring3 = np.array(
        [
            W + x_hat * wrist_hw_mm * 0.95,
            jc[1] + x_hat * 0.3 * r_fing[0, 0],
            mcp[0] + x_hat * r_fing[1, 0] * 1.05,
            mcp[0] + y_hat * 0.2 * r_fing[1, 0],
            mcp[1] + y_hat * 0.2 * r_fing[2, 0],
            mcp[2] + y_hat * 0.2 * r_fing[3, 0],
            mcp[3] + y_hat * 0.1 * r_fing[4, 0],
            mcp[3] - x_hat * r_fing[4, 0] * 1.1,
            0.5 * (mcp[3] + W) - x_hat * (r_fing[4, 0] + 0.5 * wrist_hw_mm),
            W - x_hat * wrist_hw_mm,
        ]
    )
    # The palm is a slab, not a sheet: its outline on both faces, and the hull of the two
    # (seen edge-on a palm is as thick as it is).
    half = 0.5 * _PALM_THICKNESS_MM * shape.length / 179.0
    faces = at(np.concatenate([ring3 + palmar * half, ring3 - palmar * half]), WRIST)
    hull = cv2.convexHull(faces.astype(np.float32))[:, 0, :].astype(np.float64)
    parts.append(_Part(pz, "poly", (hull,), palm_color, palm_r, owns=(0, 5, 9, 13, 17), outline="poly"))
    # Webbing between the fingers, to about a third of the proximal phalanges (one part:
    # three quads between the knuckles).
    base, mid = uv[[5, 9, 13, 17]], uv[[5, 9, 13, 17]] + 0.32 * (uv[[6, 10, 14, 18]] - uv[[5, 9, 13, 17]])
    webs = np.stack([base[:-1], mid[:-1], mid[1:], base[1:]], axis=1)  # (3, 4, 2)
    parts.append(_Part(pz - 0.5, "poly", (webs,), palm_color, palm_r, outline="none"))
    # Thenar eminence and the thumb's web: the thumb's metacarpal inside the palm's flesh.
    t = finger_joints("THUMB")
    tz = 0.5 * (z[t[0]] + z[t[1]])
    thenar_c = side_color(palm_facing)
    parts.append(_Part(tz, "capsule", (uv[t[0]], uv[t[1]], px(1.35 * r_fing[0, 0], z[t[0]]), px(1.0 * r_fing[0, 0], z[t[1]])), thenar_c, palm_r, owns=(1, 2)))
    web = np.array([jc[t[0]], jc[t[1]], jc[t[1]] + 0.3 * (jc[t[2]] - jc[t[1]]), mcp[0] - x_hat * 0.3 * r_fing[1, 0], W + x_hat * 0.6 * wrist_hw_mm])
    parts.append(_Part(max(tz, pz) + 0.5, "poly", (at(web, t[1]),), thenar_c, palm_r, outline="none"))
    # The digits: tapered phalanges with rounded joints, darker toward the knuckles' backs
    # and redder toward the tips.
    # (all 14 phalanges at once: per-part Python is what this renderer's time goes to)
    j0, j1 = _SEG_JOINTS[:, 0], _SEG_JOINTS[:, 1]
    seg = jc[j1] - jc[j0]
    seg /= np.linalg.norm(seg, axis=1, keepdims=True) + 1e-9
    dorsal = sign * _cross(seg, x_hat)  # the back of each phalanx (it turns with flexion)
    # The thumb is turned about its own axis: its nail faces away from the palm's side
    # and out toward the thumb's side.
    dorsal[_SEG_DIGIT == 0] = 0.8 * x_hat - 0.6 * palmar
    dorsal /= np.linalg.norm(dorsal, axis=1, keepdims=True) + 1e-9
    facing = dorsal @ view
    w = np.clip(0.5 - 0.8 * facing, 0, 1)[:, None]
    colors = ((1 - w) * back + w * palm_c) * np.where(_SEG_INDEX[:, None] == 2, np.float32([0.96, 0.97, 1.04]), 1.0)
    rad = r_fing[_SEG_DIGIT, _SEG_INDEX]
    r0 = fx * rad / z[j0]
    r1 = fx * rad * _FINGER_SEGMENT_RADIUS_TAPER / z[j1]
    # A fingertip keypoint marks the end of the finger: the distal phalanx's round cap
    # is centred short of it so the finger ends just past the point.
    tips = _SEG_INDEX == 2
    ends = uv[j1].copy()
    d2 = ends[tips] - uv[j0[tips]]
    ends[tips] -= d2 * np.minimum(0.75 * r1[tips] / (np.hypot(d2[:, 0], d2[:, 1]) + 1e-9), 0.5)[:, None]
    nxt = _SEG_INDEX < 2  # the next joint is as wide as the next phalanx's base
    r1[nxt] = np.maximum(r1[nxt], fx * 0.98 * r_fing[_SEG_DIGIT[nxt], _SEG_INDEX[nxt] + 1] / z[j1[nxt]])
    depth = (0.5 * (z[j0] + z[j1])).tolist()
    colors = colors.astype(np.float32)
    starts = uv[j0]
    r0l, r1l, facing_l = r0.tolist(), r1.tolist(), facing.tolist()
    for k, (tip, round_start, owns) in enumerate(_SEG_FLAGS):
        parts.append(
            _Part(
                depth[k],
                "capsule",
                (starts[k], ends[k], r0l[k], r1l[k]),
                colors[k],
                r0l[k],
                owns=owns,
                outline="tip" if tip else "sides",
                dorsal=facing_l[k],
                nail=facing_l[k] if tip else None,
                round_start=round_start,
            )
        )
    if look.forearm:
        # The forearm leaves the wrist opposite the fingers, bending a little away from
        # the camera (toward the user's body); the sleeve's cuff covers it further on.
        arm = -y_hat + np.array([0.0, 0.55, 0.35])  # toward the elbow: down, and back to the user
        arm /= np.linalg.norm(arm)
        scale = shape.length / 179.0
        L = (_FOREARM_LEN_MM + 300.0) * scale  # the forearm, then the upper arm in the sleeve
        if arm[2] < 0:  # never past the camera
            L = min(L, 0.6 * W[2] / -arm[2])
        s0 = min(look.sleeve_mm * scale, 0.5 * L)
        pts = np.array([W, W + arm * 0.45 * s0, W + arm * s0, W + arm * (s0 + _CUFF_MM * scale), W + arm * L])
        q = at(pts, WRIST)
        d2 = q[4] - q[3]  # the sleeve runs on out of the picture
        q[4] = q[3] + d2 / (np.hypot(*d2) + 1e-9) * 2.0 * fx
        rz = pts[:, 2]
        r_w = wrist_r
        fa_color = side_color(palm_facing * 0.5) * 0.97
        # Behind the palm in the painter's order, but at its depth for the shadows: the
        # wrist casts none on its own forearm.
        depth = pz + 1.0
        parts.append(_Part(depth, "capsule", (q[0], q[2], px(r_w, rz[0]), px(1.15 * r_w, rz[2])), fa_color, px(1.3 * r_w, rz[0]), owns=(0,)))
        sl = np.asarray(look.sleeve_bgr, np.float32)
        r_sl = px(1.75 * r_w, rz[2])
        parts.append(_Part(depth - 0.5, "capsule", (q[2], q[4], r_sl, 1.1 * r_sl), sl, r_sl, outline="cuff", cuff=True))
    parts.sort(key=lambda p: -p.depth)
    return parts


def _capsule_arrays(parts: list[_Part], idx: list[int], s: float, origin: np.ndarray) -> dict:
    """The capsules ``idx`` of ``parts`` at scale ``s`` from ``origin``, as arrays: ends
    ``a``, ``b`` (n, 2), radii ``ra``, ``rb`` (n,), unit direction ``u`` and normal ``e``
    (n, 2), length ``n`` (n,), in work pixels."""
    a = (np.array([parts[k].geom[0] for k in idx]) - origin) * s
    b = (np.array([parts[k].geom[1] for k in idx]) - origin) * s
    ra = np.array([parts[k].geom[2] for k in idx]) * s
    rb = np.array([parts[k].geom[3] for k in idx]) * s
    d = b - a
    n = np.hypot(d[:, 0], d[:, 1])
    u = d / np.maximum(n, 1e-6)[:, None]
    e = np.stack([-u[:, 1], u[:, 0]], axis=1)
    return {"a": a, "b": b, "ra": ra, "rb": rb, "u": u, "e": e, "n": n}


def _fx(p: np.ndarray) -> list:
    """Float px to cv2's fixed point (``_SHIFT`` bits), as nested lists of ints."""
    return np.rint(np.asarray(p) * _ONE).astype(np.int64).tolist()


def _draw_parts(parts: list[_Part], lab: np.ndarray, outline: np.ndarray, s: float, origin: np.ndarray) -> None:
    """Rasterise ``parts`` (far first) into the label buffer ``lab`` (part index + 1), at
    scale ``s`` from the image's ``origin``, and each part's outline into ``outline``
    with the part's own label: where ``outline == lab`` the outline is that of the part
    seen there (nearer parts hide the outlines of those behind). Outlines are the sides of
    a phalanx (not its joint ends, so a finger has no line across its joints), a
    fingertip's cap, the palm's sides and the sleeve's cuff."""
    caps = [k for k, p in enumerate(parts) if p.kind == "capsule"]
    c = _capsule_arrays(parts, caps, s, origin)
    a, b, ra, rb, e = c["a"], c["b"], c["ra"][:, None], c["rb"][:, None], c["e"]
    quads = np.rint(np.stack([a + e * ra, b + e * rb, b - e * rb, a - e * ra], axis=1) * _ONE).astype(np.int32)
    af, bf = _fx(a), _fx(b)
    raf, rbf = np.maximum(1, np.rint(c["ra"] * _ONE)).astype(int).tolist(), np.maximum(1, np.rint(c["rb"] * _ONE)).astype(int).tolist()
    s1a, s1b, s2a, s2b = _fx(a + e * ra), _fx(b + e * rb), _fx(a - e * ra), _fx(b - e * rb)
    ang = np.degrees(np.arctan2(c["u"][:, 1], c["u"][:, 0])).tolist()
    at = {k: i for i, k in enumerate(caps)}
    L8 = cv2.LINE_8
    for k, p in enumerate(parts):
        lbl = k + 1
        if p.kind == "poly":  # one polygon (n, 2) or several (m, n, 2)
            poly = np.rint(((p.geom[0] - origin) * s) * _ONE).astype(np.int32)
            cv2.fillPoly(lab, list(poly) if poly.ndim == 3 else [poly], lbl, L8, _SHIFT)
            if p.outline == "poly":  # the palm's edge (under the fingers where they are nearer)
                cv2.polylines(outline, [poly], True, lbl, 1, L8, _SHIFT)
            continue
        i = at[k]
        cv2.fillConvexPoly(lab, quads[i], lbl, L8, _SHIFT)
        if p.round_start and not p.cuff:  # a cuff ends straight; a joint is drawn once
            cv2.circle(lab, af[i], raf[i], lbl, -1, L8, _SHIFT)
        cv2.circle(lab, bf[i], rbf[i], lbl, -1, L8, _SHIFT)
        cv2.line(outline, s1a[i], s1b[i], lbl, 1, L8, _SHIFT)
        cv2.line(outline, s2a[i], s2b[i], lbl, 1, L8, _SHIFT)
        if p.outline == "tip":
            cv2.ellipse(outline, bf[i], (rbf[i], rbf[i]), ang[i], -90, 90, lbl, 1, L8, _SHIFT)
        elif p.outline == "cuff":
            cv2.line(outline, s1a[i], s2a[i], lbl, max(1, int(0.12 * c["ra"][i])), L8, _SHIFT)


def _details(col: np.ndarray, lab: np.ndarray, parts: list[_Part], s: float, origin: np.ndarray, palm_facing: float, uvw: np.ndarray) -> None:
    """Nails, knuckle lines and creases, drawn on the shaded colour ``col`` (float32) where
    their part shows, scaled to the hand's size (none below a few pixels)."""
    idx = [k for k, p in enumerate(parts) if p.dorsal is not None and p.geom[2] * s >= 3.0]
    if idx:
        c = _capsule_arrays(parts, idx, s, origin)
        mid = np.rint(0.5 * (c["a"] + c["b"])).astype(int)
        h, w = lab.shape
        inside = (mid[:, 0] >= 0) & (mid[:, 0] < w) & (mid[:, 1] >= 0) & (mid[:, 1] < h)
        shown = np.zeros(len(idx), bool)  # the part's middle shows: a cheap visibility test
        shown[inside] = lab[mid[inside, 1], mid[inside, 0]] == np.array(idx)[inside] + 1
        a, b, ra, rb, u, e, n = (c[key] for key in ("a", "b", "ra", "rb", "u", "e", "n"))
        ang = np.degrees(np.arctan2(u[:, 1], u[:, 0])).tolist()
        dorsal = np.array([parts[k].dorsal for k in idx])
        # Crease lines across each phalanx near its base joint: two faint wrinkles on the
        # back of the finger, one crease on the palmar side; in fixed point, all at once.
        offs = np.where(dorsal[:, None] > -0.2, [[0.2, np.nan]], [[0.1, np.nan]]) * ra[:, None]
        half = np.where(dorsal > -0.2, 0.4, 0.7) * ra
        q = a[:, None, :] + u[:, None, :] * offs[..., None]  # (n, 2 lines, 2)
        p1, p2 = _fx(np.nan_to_num(q + (e * half[:, None])[:, None, :])), _fx(np.nan_to_num(q - (e * half[:, None])[:, None, :]))
        ths = np.maximum(1, np.rint(0.08 * ra)).astype(int).tolist()
        draw_back = (dorsal <= -0.2) | (ra > 4)
        base = np.array([parts[k].color for k in idx])
        creases = (base * 0.86).tolist()
        for i in np.nonzero(shown & (n >= 1) & draw_back)[0].tolist():
            cv2.line(col, p1[i][0], p2[i][0], creases[i], ths[i], cv2.LINE_AA, _SHIFT)
        nails = (np.clip(base * 0.85 + np.float32([42, 42, 46]), 0, 255)).tolist()  # paler, greyer
        for i in np.nonzero(shown & (n >= 1))[0].tolist():
            p = parts[idx[i]]
            if p.nail is not None and p.nail > 0.15 and n[i] > 0.6 * rb[i]:
                centre = b[i] - u[i] * min(0.45 * n[i], 0.9 * rb[i])
                axes = (max(1.0, min(0.5 * n[i], rb[i] * 1.0) * (0.35 + 0.65 * p.nail)), 0.55 * rb[i])
                _ellipse(col, centre, axes, nails[i], ang[i])
    # Palm creases (palmar side, big enough): heart, head and life lines; on the back,
    # the knuckles' bumps catch the light.
    palm = next((p for p in parts if p.outline == "poly"), None)
    palm_r = palm.radius * s if palm is not None else 0.0
    if palm_facing < -0.2 and palm_r > 4:
        bump = tuple(float(v) for v in np.clip(palm.color * 1.12, 0, 255))
        for j in (5, 9, 13, 17):
            if 0 <= int(uvw[j, 1]) < lab.shape[0] and 0 <= int(uvw[j, 0]) < lab.shape[1] and lab[int(uvw[j, 1]), int(uvw[j, 0])]:
                _ellipse(col, uvw[j], (0.28 * palm_r, 0.2 * palm_r), bump)
    if palm_facing > 0.3 and palm_r > 4:
        W, T, I, M, R, P = (uvw[i] for i in (0, 1, 5, 9, 13, 17))
        lines = (
            (0.72 * P + 0.28 * W, 0.62 * R + 0.38 * W + 0.1 * (M - W), 0.8 * M + 0.2 * I - 0.15 * (M - W)),
            (0.55 * I + 0.45 * T, 0.5 * M + 0.5 * W, 0.48 * P + 0.52 * W),
            (0.55 * I + 0.45 * T, 0.5 * T + 0.3 * W + 0.2 * M, 0.85 * W + 0.15 * T),
        )
        col_c = tuple(float(v) for v in palm.color * 0.84)
        th = max(1, int(round(0.05 * palm_r)))
        cv2.polylines(col, [np.rint(np.array(ln) * _ONE).astype(np.int32) for ln in lines], False, col_c, th, cv2.LINE_AA, _SHIFT)


def shade_hand(
    parts: list[_Part], size: tuple[int, int], s: float, origin: np.ndarray, look: HandLook, uv: np.ndarray, palm_facing: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise and shade the hand at the work scale ``s``.

    Returns:
        colour (h, w, 3) float32 BGR (0-255, before the light's tone curve; 0 off the
        hand), coverage (h, w) uint8 (255 on the hand), and the label buffer (h, w) uint8
        (part index + 1).
    """
    h, w = size
    lab = np.zeros((h, w), np.uint8)
    outline = np.zeros((h, w), np.uint8)
    _draw_parts(parts, lab, outline, s, origin)
    n = len(parts)
    radius = np.array([p.radius for p in parts], np.float32) * s
    lut_r = np.ones(256, np.float32)
    lut_r[1 : n + 1] = np.maximum(radius, 0.8)
    lut_d = np.full(256, _FAR, np.float32)
    lut_d[1 : n + 1] = [p.depth for p in parts]
    lut_c = np.zeros((256, 1, 3), np.float32)
    # Parts deeper in the hand get less light (farther from it, more hidden by the rest):
    # up to a quarter darker a hand's length behind the nearest part.
    depths = lut_d[1 : n + 1]
    fall = 1.0 - 0.25 * np.clip((depths - depths.min()) / _HAND_DEPTH_MM, 0, 1)
    lut_c[1 : n + 1, 0] = np.array([p.color for p in parts]) * fall[:, None]
    fg = cv2.compare(lab, 0, cv2.CMP_GT)  # 255 on the hand
    edges = cv2.compare(outline, lab, cv2.CMP_EQ)  # visible outlines, and the background
    dist = cv2.distanceTransform(cv2.bitwise_not(edges), cv2.DIST_L2, cv2.DIST_MASK_5)
    r = cv2.LUT(lab, lut_r)
    u = np.minimum(dist / r, 1.0)
    hgt = np.sqrt(u * (2.0 - u))  # a round profile across each part: 0 at its outline
    hgt = cv2.GaussianBlur(hgt, (5, 5), 1.0)  # no facets from the distance's steps
    L = look.light_dir
    k = np.float32([[-L[0] - L[1], -2 * L[1], L[0] - L[1]], [-2 * L[0], 0, 2 * L[0]], [L[1] - L[0], 2 * L[1], L[0] + L[1]]]) / 8.0
    slope = np.clip(cv2.filter2D(hgt, -1, k) * r, -1.5, 1.5)  # rise toward the light
    shade = 0.74 + 0.24 * hgt + 0.2 * slope
    # Soft shadows: a pixel is shaded where a nearer part lies toward the light.
    depth = cv2.LUT(lab, lut_d)
    sh_px = max(1.0, 0.5 * float(np.sort(radius)[n // 2]))
    dx, dy = int(round(L[0] * sh_px)), int(round(L[1] * sh_px))
    near = np.full_like(depth, _FAR)  # the depth a shadow-casting distance toward the light
    near[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = depth[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    shadow = np.clip((depth - near - 3.0) * (1 / 12.0), 0, 1)
    shadow = cv2.blur(shadow, (max(1, int(sh_px)) | 1,) * 2)
    shade *= 1.0 - 0.3 * shadow
    tex = look.texture
    if tex is not None:
        th, tw = tex.shape
        oy, ox = int(uv[0, 1] * s) % max(1, th - h), int(uv[0, 0] * s) % max(1, tw - w)
        t = tex[oy : oy + h, ox : ox + w]
        if t.shape != shade.shape:  # a buffer longer than the texture: tile it
            t = np.tile(tex, (-(-h // th), -(-w // tw)))[:h, :w]
        shade *= 1.0 + 0.07 * t
    col = cv2.LUT(cv2.merge([lab, lab, lab]), lut_c)
    # Skin darkens warmer than grey (light scattered under the skin comes out red):
    # per channel 1 - (1 - shade) * tint, as one affine map of the shade.
    cv2.multiply(col, cv2.transform(shade[..., None], _TINT_MAP), dst=col)
    _details(col, lab, parts, s, origin, palm_facing, (uv - origin) * s)
    return col, fg, lab


def joint_visibility(lab: np.ndarray, parts: list[_Part], uvw: np.ndarray) -> np.ndarray:
    """(21,) bool: each joint's pixel (``uvw``, in the label buffer's pixels) shows a part
    that holds that joint (a phalanx next to it, the palm for the wrist and knuckles):
    False where another part lies in front, or the joint is outside the buffer. A joint
    counts as shown if its part covers any of its 3 x 3 pixels (a joint sits on its
    part's outline when the part is seen end-on)."""
    owners = np.zeros((len(parts) + 1, NUM_JOINTS), bool)
    rows = [k + 1 for k, p in enumerate(parts) for _ in p.owns]
    owners[rows, [j for p in parts for j in p.owns]] = True
    h, w = lab.shape
    q = np.rint(uvw).astype(int)
    ok = (q[:, 0] >= 0) & (q[:, 0] < w) & (q[:, 1] >= 0) & (q[:, 1] < h)
    ys = np.clip(q[:, 1, None] + _NEIGHBOURS[None, :, 0], 0, h - 1)  # (21, 9)
    xs = np.clip(q[:, 0, None] + _NEIGHBOURS[None, :, 1], 0, w - 1)
    labels = lab[ys, xs]
    return ok & owners[labels, np.arange(NUM_JOINTS)[:, None]].any(axis=1)


_NEIGHBOURS = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])


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


def _sleeve_rest(img: np.ndarray, parts: list[_Part], tone: np.ndarray, light_dir: np.ndarray) -> None:
    """The sleeve beyond the hand's box, drawn straight onto the frame (cloth needs no
    per-pixel shading): the cloth's darker tone and a band toward the light."""
    for p in parts:
        if not p.cuff:
            continue
        a, b, ra, rb = p.geom
        d = b - a
        n = np.hypot(*d)
        if n < 1:
            return
        e = np.array([-d[1], d[0]]) / n
        side = float(np.sign(e @ light_dir) or 1.0)
        # As dark as its cuff is shaded in the hand's box (light falling off with depth).
        fall = 1.0 - 0.25 * min(1.0, max(0.0, (p.depth - min(q.depth for q in parts)) / _HAND_DEPTH_MM))
        for f, w, off, line in ((0.8 * fall, 1.0, 0.0, cv2.LINE_AA), (0.95 * fall, 0.6, 0.25, cv2.LINE_8)):  # the cloth, a lit band
            color = tuple(int(c) for c in tone[np.clip(p.color * f, 0, 255).astype(np.intp)])
            o = e * side * off
            quad = np.array([a + e * ra * w, b + e * rb * w, b - e * rb * w, a - e * ra * w]) + np.array([o * ra, o * rb, o * rb, o * ra])
            cv2.fillConvexPoly(img, np.rint(quad * _ONE).astype(np.int32), color, line, _SHIFT)
        return


def render_frame(
    scene: Scene,
    t_s: float,
    rng: np.random.Generator,
    camera: Camera,
    joints_cam: np.ndarray | None,
    shape: HandShape,
    look: HandLook,
    blur_px: np.ndarray | None = None,
    handedness: str = "right",
) -> np.ndarray:
    """One camera frame (see :func:`render_frame_truth`, which also returns visibility)."""
    return render_frame_truth(scene, t_s, rng, camera, joints_cam, shape, look, blur_px, handedness)[0]


def render_frame_truth(
    scene: Scene,
    t_s: float,
    rng: np.random.Generator,
    camera: Camera,
    joints_cam: np.ndarray | None,
    shape: HandShape,
    look: HandLook,
    blur_px: np.ndarray | None = None,
    handedness: str = "right",
) -> tuple[np.ndarray, np.ndarray | None]:
    """One camera frame and the hand's per-joint visibility.

    Args:
        scene: the session's room. t_s: seconds since the start (for the moving parts).
        joints_cam: (21, 3) true joints in the camera frame, mm, or None (no hand).
        blur_px: (2,) image motion of the hand during the exposure, px.
        handedness: "right" or "left".

    Returns:
        (H, W, 3) uint8 BGR, and (21,) bool: the joint is in the image and not hidden
        behind another part of the hand (from the part buffer); None without a hand.
    """
    room, tone = scene.light(t_s, rng)
    img = room.copy()
    for person in scene.people:
        person.draw(img, t_s, tone)
    visible = None
    if joints_cam is not None and np.all(joints_cam[:, 2] > 10.0):
        if joints_cam.shape != (NUM_JOINTS, 3):
            raise ValueError(f"joints_cam: expected (21, 3), got {joints_cam.shape}")
        visible = _draw_hand(img, camera, joints_cam, shape, look, blur_px, handedness, tone)
    scene.add_noise(img, rng)
    return img, visible


def _draw_hand(img, camera: Camera, jc, shape, look, blur_px, handedness, tone) -> np.ndarray:
    """Render the hand onto ``img`` in place; returns the joints' visibility (21,)."""
    uv = camera.project(jc)
    K = camera.K
    h, w = img.shape[:2]
    parts = hand_parts(uv, jc, shape, K, look, handedness)
    _sleeve_rest(img, parts, tone, look.light_dir)
    caps = [p.geom for p in parts if p.kind == "capsule" and not p.cuff]
    ends = np.array([g[0] for g in caps] + [g[1] for g in caps])
    rad = np.array([g[2] for g in caps] + [g[3] for g in caps])[:, None]
    cuff = [p.geom for p in parts if p.cuff]
    polys = [p.geom[0].reshape(-1, 2) for p in parts if p.kind == "poly"]
    lo = np.min([(ends - rad).min(0)] + [q.min(0) for q in polys] + [g[0] - g[2] for g in cuff], axis=0)
    hi = np.max([(ends + rad).max(0)] + [q.max(0) for q in polys] + [g[0] + g[2] for g in cuff], axis=0)
    kernel_pad = float(np.hypot(*blur_px)) if blur_px is not None else 0.0
    x0, y0 = np.floor(lo - 3 - kernel_pad).astype(int)
    x1, y1 = np.ceil(hi + 3 + kernel_pad).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return np.zeros(NUM_JOINTS, bool)
    bw, bh = x1 - x0, y1 - y0
    # Small hands are drawn at up to 1.4 times the resolution and scaled down (anti-aliased
    # silhouettes); big ones at the work budget and scaled up.
    s = min(1.4, float(np.sqrt(_WORK_PIXELS / (bw * bh))))
    ww, wh = max(1, int(round(bw * s))), max(1, int(round(bh * s)))
    s = ww / bw  # the exact scale of the buffer's columns
    origin = np.array([x0, y0], np.float64)
    x_hat = jc[5] - jc[17]
    y_hat = jc[9] - jc[0]
    palmar = (1.0 if handedness == "right" else -1.0) * _cross(x_hat, y_hat)
    palm_facing = float(palmar @ -jc[0] / (np.linalg.norm(palmar) * np.linalg.norm(jc[0]) + 1e-9))
    col, fg, lab = shade_hand(parts, (wh, ww), s, origin, look, uv, palm_facing)
    visible = joint_visibility(lab, parts, (uv - origin) * s) & camera.in_image(uv, jc[:, 2])
    # A premultiplied BGRA layer (the colour is 0 off the hand already), motion-blurred
    # along the hand's image motion at the work scale, then scaled to the frame.
    bgr = cv2.LUT(np.clip(col, 0, 255).astype(np.uint8), tone)
    layer = cv2.merge([cv2.bitwise_and(bgr, bgr, mask=fg), fg])  # (details may stray off it)
    if blur_px is not None:
        k = motion_kernel(np.asarray(blur_px) * s)
        if k is not None:
            layer = cv2.filter2D(layer, -1, k)
    if s < 1.0:  # scaled up below: soften the buffer's pixel steps first (the more, the
        # more it is scaled), as a lens would
        sigma = float(np.clip(0.45 / np.sqrt(s), 0.5, 1.0))
        layer = cv2.GaussianBlur(layer, (5, 5), sigma)
    if (ww, wh) != (bw, bh):
        layer = cv2.resize(layer, (bw, bh), interpolation=cv2.INTER_LINEAR if s < 1.0 else cv2.INTER_AREA)
    a8 = layer[..., 3]
    roi = img[y0:y1, x0:x1]
    covered = cv2.multiply(roi, cv2.merge([a8, a8, a8]), scale=1.0 / 255.0)
    cv2.add(cv2.subtract(roi, covered), cv2.cvtColor(layer, cv2.COLOR_BGRA2BGR), dst=roi)
    return visible
