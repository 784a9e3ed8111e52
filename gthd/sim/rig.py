"""The simulated capture rig: a virtual RGB camera and a virtual Leap Motion controller,
each with its own clock, and the timing of both streams.

Time model (docs/conventions.md, "Clocks and time"). True time is the host clock
(``monotonic_ns``). The tracker stamps each frame with its own clock at the time of its
image; capture maps that onto the host clock by bracketing. The camera exposes at
``t_exp`` and the frame arrives, and is stamped, at ``t_cam = t_exp + latency + jitter``.
So the tracker state matching a camera frame is at host time ``t_cam + d`` with the
clock offset ``d = -latency`` (minus the mean jitter, which no calibration can tell
from latency: ground truth reports ``d`` including it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..clock import ClockMap
from ..geometry import Camera, Transform, distortion_is_monotonic, look_at
from .kinematics import HandShape

DIFFICULTIES = ("easy", "medium", "hard")


@dataclass(frozen=True)
class RigConfig:
    """What the user asks of the simulated rig (``gthd simulate`` options)."""

    duration_s: float = 10.0
    fps: float = 30.0
    tracker_hz: float = 110.0
    width: int = 640
    height: int = 480
    hand_size_px: tuple[float, float] = (40.0, 300.0)
    difficulty: str = "medium"
    clock_offset_ms: float | None = None  # None: drawn at random
    jpeg_quality: int | None = None  # None: drawn at random
    subject_scale: float | None = None  # None: drawn in 0.8-1.2
    tracker_noise_mm: float | None = None  # None: by difficulty (0.8, 1.3, 2.0)
    jitter_ms: float | None = None  # camera arrival jitter (mean); None: drawn in 0.5-2

    def __post_init__(self):
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {self.difficulty!r}")
        if not 0 < self.duration_s <= 3600:
            raise ValueError(f"duration must be in (0, 3600] s, got {self.duration_s}")
        if not 1 <= self.fps <= 240:
            raise ValueError(f"fps must be in [1, 240], got {self.fps}")
        if not 20 <= self.tracker_hz <= 500:
            raise ValueError(f"tracker rate must be in [20, 500] Hz, got {self.tracker_hz}")
        if not (160 <= self.width <= 4096 and 120 <= self.height <= 4096):
            raise ValueError(f"image size must be within 160x120 .. 4096x4096, got {self.width}x{self.height}")
        lo, hi = self.hand_size_px
        if not 10 <= lo < hi <= 2 * max(self.width, self.height):
            raise ValueError(f"hand size range must satisfy 10 <= MIN < MAX <= {2 * max(self.width, self.height)} px, got {lo}:{hi}")
        if self.clock_offset_ms is not None and not -1000 <= self.clock_offset_ms <= 0:
            raise ValueError(f"clock offset must be in [-1000, 0] ms (camera frames arrive late), got {self.clock_offset_ms}")
        if self.jpeg_quality is not None and not 10 <= self.jpeg_quality <= 100:
            raise ValueError(f"JPEG quality must be in [10, 100], got {self.jpeg_quality}")
        if self.subject_scale is not None and not 0.5 <= self.subject_scale <= 1.5:
            raise ValueError(f"subject scale must be in [0.5, 1.5], got {self.subject_scale}")
        if self.tracker_noise_mm is not None and not 0 <= self.tracker_noise_mm <= 20:
            raise ValueError(f"tracker noise must be in [0, 20] mm, got {self.tracker_noise_mm}")
        if self.jitter_ms is not None and not 0 <= self.jitter_ms <= 50:
            raise ValueError(f"camera jitter must be in [0, 50] ms, got {self.jitter_ms}")

    @property
    def level(self) -> int:
        return DIFFICULTIES.index(self.difficulty)


@dataclass(frozen=True)
class Rig:
    """One sampled rig: everything a session's randomness fixes at the start.

    Attributes:
        camera: intrinsics and distortion. T_cam_leap: FROM leap TO cam, mm.
        latency_ns: camera latency (exposure to arrival); jitter_ns: mean extra delay.
        clock_offset_ns: the true ``d`` (docs/conventions.md).
        leap_offset_us, leap_drift_ppm: the tracker clock against the host clock.
        host_start_ns: host clock at the session's start.
        shape, subject_scale, skin_bgr: the subject's hand.
    """

    config: RigConfig
    camera: Camera
    T_cam_leap: Transform
    latency_ns: int
    jitter_ns: int
    clock_offset_ns: int
    leap_offset_us: int
    leap_drift_ppm: float
    host_start_ns: int
    subject_id: str
    subject_scale: float
    shape: HandShape
    skin_bgr: tuple[int, int, int]
    jpeg_quality: int
    camera_drop_rate: float
    tracker_noise_mm: float
    tracker_loss_rate_hz: float

    def leap_us(self, t_host_ns) -> np.ndarray:
        """The tracker's clock (µs) at true host time(s) (ns): offset plus a few ppm drift."""
        t = np.asarray(t_host_ns, dtype=np.float64)
        return np.floor((t - self.host_start_ns) / 1e3 * (1 + self.leap_drift_ppm * 1e-6) + self.leap_offset_us).astype(np.int64)


# Skin tones (BGR), light to dark, from which a subject's tone is drawn and jittered.
SKIN_TONES_BGR = np.array(
    [[189, 208, 255], [160, 190, 240], [130, 165, 225], [100, 140, 198], [75, 105, 160], [50, 75, 115]],
    dtype=np.float64,
)


def sample_camera(rng: np.random.Generator, width: int, height: int) -> Camera:
    """A webcam-like camera: f for a 55-70 degree horizontal field of view, principal
    point near the centre, and real (monotonic) lens distortion."""
    s = width / 640.0
    while True:
        f = rng.uniform(480, 620) * s
        K = np.array([[f, 0, width / 2 - 0.5 + rng.normal(0, 6 * s)], [0, f * rng.normal(1, 0.004), height / 2 - 0.5 + rng.normal(0, 5 * s)], [0, 0, 1]])
        dist = np.array([rng.uniform(-0.35, 0.05), rng.uniform(-0.05, 0.2), rng.normal(0, 0.0015), rng.normal(0, 0.0015), rng.uniform(-0.06, 0.02)])
        cam = Camera(K, dist, width, height)
        if distortion_is_monotonic(cam):
            return cam


def sample_rig(rng: np.random.Generator, config: RigConfig, subject_id: str = "S00") -> Rig:
    """Draw a rig for one session from ``rng`` (same rng state, same rig)."""
    camera = sample_camera(rng, config.width, config.height)
    # The camera stands across the tracker from the user, looking at the space above it,
    # so it sees the hand and, behind it, the user.
    eye = np.array([rng.uniform(-120, 120), rng.uniform(180, 380), rng.uniform(-620, -440)])
    target = np.array([rng.normal(0, 40), rng.uniform(200, 300), rng.uniform(-30, 120)])
    up = np.array([rng.normal(0, 0.05), 1.0, rng.normal(0, 0.05)])
    T_cam_leap = look_at(eye, target, up, world="leap")
    latency_ms = -config.clock_offset_ms if config.clock_offset_ms is not None else rng.uniform(20, 80)
    jitter_ns = int(rng.uniform(0.5, 2.0) * 1e6)
    if config.jitter_ms is not None:
        jitter_ns = int(config.jitter_ms * 1e6)
    latency_ns = int(round(latency_ms * 1e6)) - jitter_ns
    scale = config.subject_scale if config.subject_scale is not None else rng.uniform(0.8, 1.2)
    tone = SKIN_TONES_BGR[rng.integers(len(SKIN_TONES_BGR))] * rng.uniform(0.92, 1.05, 3)
    level = config.level
    return Rig(
        config=config,
        camera=camera,
        T_cam_leap=T_cam_leap,
        latency_ns=latency_ns,
        jitter_ns=jitter_ns,
        clock_offset_ns=-(latency_ns + jitter_ns),
        leap_offset_us=int(rng.integers(10**9, 10**10)),
        leap_drift_ppm=float(rng.uniform(-8, 8)),
        host_start_ns=int(rng.integers(10**11, 10**13)),
        subject_id=subject_id,
        subject_scale=float(scale),
        shape=HandShape.adult(scale, rng),
        skin_bgr=tuple(int(c) for c in np.clip(tone, 0, 255)),
        jpeg_quality=config.jpeg_quality if config.jpeg_quality is not None else int(rng.integers(80, 96)),
        camera_drop_rate=(0.0, 0.005, 0.02)[level],
        tracker_noise_mm=(0.8, 1.3, 2.0)[level] if config.tracker_noise_mm is None else config.tracker_noise_mm,
        tracker_loss_rate_hz=(0.0, 0.15, 0.5)[level],
    )


@dataclass
class CameraTimeline:
    """Camera frames: (N,) arrays. ``seq`` skips where the driver dropped a frame."""

    seq: np.ndarray  # int64
    t_exposure_ns: np.ndarray  # int64, true time of the exposure (host clock)
    t_host_ns: np.ndarray  # int64, arrival stamp


def camera_timeline(rig: Rig, rng: np.random.Generator) -> CameraTimeline:
    """Exposures at the nominal rate (the camera's crystal is a little off too), each
    arriving ``latency + jitter`` later; the odd frame is dropped."""
    cfg = rig.config
    period = 1e9 / cfg.fps * (1 + rng.normal(0, 2e-5))
    n = int(cfg.duration_s * cfg.fps)
    seq = np.arange(n, dtype=np.int64)
    t_exp = rig.host_start_ns + int(rng.uniform(0, period)) + np.rint(seq * period + rng.normal(0, 5e4, n)).astype(np.int64)
    jitter = rng.exponential(rig.jitter_ns, n) if rig.jitter_ns > 0 else np.zeros(n)
    t_host = t_exp + rig.latency_ns + np.rint(jitter).astype(np.int64)
    t_host = np.maximum.accumulate(t_host)  # arrival stamps never go back
    keep = rng.random(n) >= rig.camera_drop_rate
    keep[0] = True
    return CameraTimeline(seq[keep], t_exp[keep], t_host[keep])


@dataclass
class TrackerTimeline:
    """Tracker frames: (T,) arrays, plus the clock brackets capture would record."""

    frame_id: np.ndarray  # int64
    t_true_ns: np.ndarray  # int64, true time of the tracker's image (host clock)
    t_device_us: np.ndarray  # int64, LeapC clock
    t_host_ns: np.ndarray  # int64, mapped to the host clock as capture does, causally
    t_arrival_ns: np.ndarray  # int64
    framerate: np.ndarray  # float64, the rate the tracker reports
    lost: np.ndarray  # bool, tracking lost (no hand reported even if one is there)
    clock_samples: np.ndarray  # (n, 3) int64: h0_ns, leap_us, h1_ns


def tracker_timeline(rig: Rig, rng: np.random.Generator, bracket_every_s: float = 0.5) -> TrackerTimeline:
    """Tracker frames at ~``tracker_hz`` with their device stamps mapped to the host clock
    by bracketing, exactly as capture does it (:class:`gthd.clock.ClockMap`)."""
    cfg = rig.config
    period = 1e9 / cfg.tracker_hz
    n = int(cfg.duration_s * cfg.tracker_hz) + 2
    t_true = rig.host_start_ns + np.rint(np.arange(n) * period + rng.normal(0, 0.25e6, n)).astype(np.int64)
    t_true = np.maximum.accumulate(t_true)
    t_dev = rig.leap_us(t_true)
    t_arrival = t_true + np.rint(rng.uniform(6e6, 9e6) + rng.exponential(0.7e6, n)).astype(np.int64)
    framerate = cfg.tracker_hz + rng.normal(0, 1.5, n)
    # Clock brackets: h0, then the device read after a short delay, then h1.
    n_b = int(cfg.duration_s / bracket_every_s) + 1
    h0 = rig.host_start_ns - int(20e6) + np.rint(np.arange(n_b) * bracket_every_s * 1e9).astype(np.int64)
    d1 = np.rint(rng.exponential(4e3, n_b) + 1e3).astype(np.int64)  # ns before the read
    d2 = np.rint(rng.exponential(4e3, n_b) + 1e3).astype(np.int64)  # ns after
    samples = np.stack([h0, rig.leap_us(h0 + d1), h0 + d1 + d2], axis=1)
    # Map each frame on arrival with the brackets taken before it (causal, as in capture).
    cm = ClockMap()
    t_host = np.empty(n, dtype=np.int64)
    k = 0
    for i in range(n):
        while k < n_b and samples[k, 2] <= t_arrival[i]:
            cm.add(*samples[k])
            k += 1
        t_host[i] = cm.to_host_ns(t_dev[i])
    # Lost tracking: bursts of frames with no hand, at a rate per second.
    lost = np.zeros(n, dtype=bool)
    n_loss = rng.poisson(rig.tracker_loss_rate_hz * cfg.duration_s)
    for start in rng.integers(0, n, n_loss):
        lost[start : start + int(rng.uniform(0.05, 0.6) * cfg.tracker_hz)] = True
    return TrackerTimeline(np.arange(n, dtype=np.int64) + int(rng.integers(1000, 100000)), t_true, t_dev, t_host, t_arrival, framerate, lost, samples)
