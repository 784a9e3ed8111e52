"""Tracker-to-camera extrinsics and the clock offset from 2D-3D correspondences.

Each observation pairs a pixel (a click, or a detector's keypoint) in a camera frame
stamped ``t`` (host clock) with the tracked 3D joint at host time ``t + d``, where ``d`` is
the clock offset (docs/conventions.md). For a given ``d`` the pose is a PnP problem:
initialised with SQPnP inside RANSAC (threshold in pixels), refined with
``cv2.solvePnPRefineLM`` on the inliers. The offset minimises a robust reprojection cost
(truncated quadratic: an outlier costs the threshold squared, whatever its error) over a
coarse grid, then a bounded 1-D refinement. A bootstrap over the observations gives the
spread of rotation, translation and offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import minimize_scalar

from ..geometry import Camera, Transform
from ..session import TrackerStream

MIN_POINTS = 6

# How loosely a solution may be pinned down before it is refused as weak (unless the user
# accepts it: ``gthd calibrate --accept-weak``). The spread is the larger of the
# linearised one (Gauss-Newton, :func:`pose_std`) and the bootstrap's. Measured on the
# simulated rig (docs/calibration.md, "Weak clicks"): good click sets (20-40 clicks
# spread over 3-60 s, 2 px noise) give at most 0.41 deg and 3.2 mm; 14 clicks within
# 0.6 s (the hand barely moving) give 1.75-39 deg and 11-372 mm, and errors up to 178 deg.
MAX_ROTATION_STD_DEG = 1.0
MAX_TRANSLATION_STD_MM = 8.0
MIN_FRAMES = 6  # distinct frames among the inliers (--auto has 21 joints in one frame)


@dataclass
class Observations:
    """N correspondences (arrays aligned, shapes in brackets).

    Attributes:
        t_host_ns: (N,) int64 camera frame times (host clock).
        joint: (N,) int64 joint indices (gthd order).
        uv: (N, 2) float64 pixels.
        frame_index: (N,) int64 frames of the session (for reports).
    """

    t_host_ns: np.ndarray
    joint: np.ndarray
    uv: np.ndarray
    frame_index: np.ndarray

    def __post_init__(self):
        self.t_host_ns = np.asarray(self.t_host_ns, dtype=np.int64).reshape(-1)
        self.joint = np.asarray(self.joint, dtype=np.int64).reshape(-1)
        self.uv = np.ascontiguousarray(np.asarray(self.uv, dtype=np.float64).reshape(-1, 2))
        self.frame_index = np.asarray(self.frame_index, dtype=np.int64).reshape(-1)
        n = len(self.t_host_ns)
        if not (len(self.joint) == len(self.uv) == len(self.frame_index) == n):
            raise ValueError(f"observations: arrays of different lengths ({n}, {len(self.joint)}, {len(self.uv)}, {len(self.frame_index)})")

    def __len__(self) -> int:
        return len(self.t_host_ns)

    def subset(self, idx: np.ndarray) -> "Observations":
        return Observations(self.t_host_ns[idx], self.joint[idx], self.uv[idx], self.frame_index[idx])

    @classmethod
    def from_clicks(cls, clicks) -> "Observations":
        from ..hand import JOINT_INDEX

        return cls([c.t_host_ns for c in clicks], [JOINT_INDEX[c.joint] for c in clicks], [[c.u, c.v] for c in clicks], [c.frame_index for c in clicks])


@dataclass
class ExtrinsicsResult:
    """The solution and its quality.

    Attributes:
        T_cam_leap: FROM leap TO cam, mm. clock_offset_ns: ``d``.
        residuals_px: (N,) reprojection error of every observation (NaN: no tracked joint).
        inliers: (N,) bool.
        rms_px, worst_px: over the inliers.
        offset_curve: (K, 2) the coarse search: offset (ms), robust cost (px^2).
        bootstrap: spreads (std) of rotation (deg), translation (mm), offset (ms).
        pose_std: the linearised spread of rotation (deg) and translation (mm) at the
            solution (:func:`pose_std`); there even without a bootstrap.
        weakness: why the observations do not pin the pose down (:func:`judge`), or None.
    """

    T_cam_leap: Transform
    clock_offset_ns: int
    residuals_px: np.ndarray
    inliers: np.ndarray
    rms_px: float
    worst_px: float
    offset_curve: np.ndarray
    ransac_px: float
    bootstrap: dict = field(default_factory=dict)
    pose_std: dict = field(default_factory=dict)
    weakness: str | None = None

    def record(self, obs: Observations) -> dict:
        """What the report is drawn from, for calibration.json: every observation (time,
        joint, pixel, frame), whether it is an inlier, the offset search's curve and the
        verdict; :func:`read_solution` turns it back into a result."""
        curve = [[round(float(o), 3), None if not np.isfinite(c) else round(float(c), 4)] for o, c in self.offset_curve]
        return {
            "t_host_ns": obs.t_host_ns.tolist(),
            "joint": obs.joint.tolist(),
            "uv": np.round(obs.uv, 3).tolist(),
            "frame_index": obs.frame_index.tolist(),
            "inlier": self.inliers.astype(bool).tolist(),
            "offset_curve": curve,
            "weakness": self.weakness,
        }

    def quality(self, obs: Observations) -> dict:
        """JSON-friendly figures for calibration.json and the report."""
        outliers = ~self.inliers
        return {
            "observations": int(len(self.inliers)),
            "inliers": int(self.inliers.sum()),
            "outliers": int(outliers.sum()),
            "outlier_frames": obs.frame_index[outliers].tolist(),
            "rms_px": round(self.rms_px, 4),
            "worst_px": round(self.worst_px, 4),
            "ransac_px": self.ransac_px,
            "residuals_px": [None if not np.isfinite(r) else round(float(r), 3) for r in self.residuals_px],
            "clock_offset_ms": round(self.clock_offset_ns / 1e6, 3),
            "bootstrap_std": {k: round(float(v), 4) for k, v in self.bootstrap.items()},
            "pose_std_linearised": {k: round(float(v), 4) for k, v in self.pose_std.items()},
        }


def check_geometry(obj: np.ndarray, img: np.ndarray, camera: Camera) -> None:
    """Raise ValueError unless the points can pin a pose down: at least 6, inside the
    image, spread out and not collinear (EPnP quietly returns zeros on collinear input).

    Args:
        obj: (N, 3) mm. img: (N, 2) px.
    """
    n = len(obj)
    if n < MIN_POINTS:
        raise ValueError(f"only {n} usable points: at least {MIN_POINTS} are needed (click the joint in more frames where the tracker sees the hand)")
    inside = camera.in_image(img)
    if not inside.all():
        k = int(np.flatnonzero(~inside)[0])
        raise ValueError(
            f"point {k} at ({img[k, 0]:.1f}, {img[k, 1]:.1f}) is outside the {camera.width}x{camera.height} image: check that the clicks belong to this camera"
        )
    _check_spread(obj, "tracked 3D joints", "mm", 20.0)
    _check_spread(img, "clicked pixels", "px", 10.0)


def _check_spread(pts: np.ndarray, what: str, unit: str, min_spread: float) -> None:
    """Raise ValueError if the points (N, 2 or 3) are clustered or collinear."""
    s = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False) / np.sqrt(len(pts))
    if s[0] < min_spread:
        raise ValueError(f"the {what} hardly move (spread {s[0]:.1f} {unit}): click the joint with the hand in different places")
    if s[1] < 0.03 * s[0]:
        raise ValueError(f"the {what} are (nearly) collinear: click the joint with the hand in different places, not along one line")


def _points(tracker: TrackerStream, obs: Observations, offset_ns: float, max_gap_ns: int, smooth_ns: int = 0) -> np.ndarray:
    """(N, 3) tracked joints at each observation's time + offset (NaN when unknown),
    locally smoothed over +-``smooth_ns`` (:meth:`TrackerStream.joints_at`)."""
    joints = tracker.joints_at(obs.t_host_ns + int(round(offset_ns)), max_gap_ns=max_gap_ns, smooth_ns=smooth_ns)  # (N, 21, 3)
    return joints[np.arange(len(obs)), obs.joint]


def _residuals(camera: Camera, rvec, tvec, obj: np.ndarray, img: np.ndarray) -> np.ndarray:
    proj, _ = cv2.projectPoints(obj, rvec, tvec, camera.K, camera.dist)
    return np.linalg.norm(proj.reshape(-1, 2) - img, axis=1)


@dataclass
class _Fit:
    cost: float
    rvec: np.ndarray
    tvec: np.ndarray
    residuals: np.ndarray  # (N,) NaN where no 3D point
    inliers: np.ndarray  # (N,) bool


def _fit_at(camera: Camera, obj_all: np.ndarray, img: np.ndarray, thr: float, init=None) -> _Fit | None:
    """Pose for fixed 3D points (NaN rows unusable): RANSAC-SQPnP (or refine ``init``),
    then LM on the inliers, twice. None if it cannot."""
    ok = np.all(np.isfinite(obj_all), axis=1)
    if ok.sum() < MIN_POINTS:
        return None
    obj = np.ascontiguousarray(obj_all[ok])
    im = np.ascontiguousarray(img[ok])
    try:
        return _fit_points(camera, obj, im, ok, len(img), thr, init)
    except cv2.error:  # degenerate points (SQPnP asserts on them): no pose here
        return None


def _fit_points(camera: Camera, obj: np.ndarray, im: np.ndarray, ok: np.ndarray, n: int, thr: float, init) -> _Fit | None:
    """:func:`_fit_at` on the usable points ``obj``, ``im`` (rows ``ok`` of ``n``)."""
    if init is None:
        found, rvec, tvec, inl = cv2.solvePnPRansac(
            obj, im, camera.K, camera.dist, reprojectionError=thr, iterationsCount=300, confidence=0.999, flags=cv2.SOLVEPNP_SQPNP
        )
        if not found or inl is None or len(inl) < MIN_POINTS:
            found, rvec, tvec = cv2.solvePnP(obj, im, camera.K, camera.dist, flags=cv2.SOLVEPNP_EPNP)
            if not found:
                return None
    else:
        rvec, tvec = (np.array(v, dtype=np.float64).reshape(3, 1) for v in init)
    for _ in range(2):
        r = _residuals(camera, rvec, tvec, obj, im)
        inl = r < thr
        if inl.sum() < MIN_POINTS:
            inl = r <= np.sort(r)[MIN_POINTS - 1]
        rvec, tvec = cv2.solvePnPRefineLM(obj[inl], im[inl], camera.K, camera.dist, rvec, tvec)
    r = _residuals(camera, rvec, tvec, obj, im)
    if not np.all(np.isfinite(r)):
        return None
    residuals = np.full(n, np.nan)
    residuals[ok] = r
    inliers = np.zeros(n, bool)
    inliers[ok] = r < thr
    # Truncated quadratic over ALL observations, so offsets that lose points are not favoured.
    cost = float(np.mean(np.minimum(np.nan_to_num(residuals, nan=thr) ** 2, thr**2)))
    return _Fit(cost, rvec.reshape(3), tvec.reshape(3), residuals, inliers)


def solve_extrinsics(
    camera: Camera,
    tracker: TrackerStream,
    obs: Observations,
    *,
    ransac_px: float = 8.0,
    offset_range_ms: float = 200.0,
    offset_step_ms: float = 5.0,
    fixed_offset_ns: int | None = None,
    max_gap_ms: float = 50.0,
    smooth_ms: float = 25.0,
    bootstrap: int = 100,
    seed: int = 0,
) -> ExtrinsicsResult:
    """Solve ``T_cam_leap`` and the clock offset from observations.

    Args:
        camera: intrinsics (the observations' pixels are distorted pixels of this camera).
        tracker: the session's tracker stream.
        obs: the correspondences.
        ransac_px: inlier threshold.
        smooth_ms: the tracked joint is a local linear fit over +- this (0: plain
            interpolation between the two bracketing frames); averages tracker noise.
        offset_range_ms: search ``d`` in [-range, +range]; ``fixed_offset_ns`` skips the search.
        bootstrap: resamples for the uncertainty (0: none).

    Raises:
        ValueError: too few usable observations, degenerate geometry, points outside the
            image, or no pose found.
    """
    if len(obs) == 0:
        raise ValueError("no observations (no clicks)")
    if not np.isfinite(obs.uv).all():
        k = int(np.flatnonzero(~np.isfinite(obs.uv).all(axis=1))[0])
        raise ValueError(f"click {k + 1} (frame {obs.frame_index[k]}) has no finite pixel: {obs.uv[k].tolist()}")
    if not camera.in_image(obs.uv).all():
        k = int(np.flatnonzero(~camera.in_image(obs.uv))[0])
        raise ValueError(
            f"click {k + 1} (frame {obs.frame_index[k]}) at ({obs.uv[k, 0]:.1f}, {obs.uv[k, 1]:.1f}) is outside the "
            f"{camera.width}x{camera.height} image: are the clicks and the intrinsics from the same camera and resolution?"
        )
    if len(obs) >= MIN_POINTS:  # (fewer: the solver says how many it needs)
        _check_spread(obs.uv, "clicked pixels", "px", 10.0)  # before any solve: SQPnP asserts on one pixel
    gap = int(max_gap_ms * 1e6)
    smooth = int(smooth_ms * 1e6)
    thr = float(ransac_px)

    def points(offset_ns, o=obs, smooth=smooth):
        return _points(tracker, o, offset_ns, gap, smooth)

    def fit(offset_ns, init=None, o=obs, smooth=smooth):
        return _fit_at(camera, points(offset_ns, o, smooth), o.uv, thr, init)

    # ---- the offset: a coarse grid (plain interpolation: it only has to find the
    # basin), then a bounded refinement with the smoothed joints
    if fixed_offset_ns is not None:
        grid = np.array([fixed_offset_ns / 1e6])
    else:
        grid = np.arange(-offset_range_ms, offset_range_ms + 1e-9, offset_step_ms)
    curve, best, best_d = [], None, None
    for d_ms in grid:
        f = fit(d_ms * 1e6, smooth=0 if len(grid) > 1 else smooth)
        curve.append((d_ms, np.nan if f is None else f.cost))
        if f is not None and (best is None or f.cost < best.cost):
            best, best_d = f, d_ms * 1e6
    if best is None:
        n_tracked = int(np.isfinite(points(0)[:, 0]).sum())
        raise ValueError(
            f"no pose found: {len(obs)} observations, {n_tracked} with a tracked joint within {max_gap_ms:g} ms "
            f"(at least {MIN_POINTS} are needed; is the hand tracked in the clicked frames?)"
        )
    if len(grid) > 1 and smooth:
        best = fit(best_d, (best.rvec, best.tvec)) or best  # the same point, smoothed
    check_geometry(points(best_d)[best.inliers], obs.uv[best.inliers], camera)
    if fixed_offset_ns is None:
        init = (best.rvec, best.tvec)

        def cost(d: float) -> float:
            f = fit(d, init)
            return np.inf if f is None else f.cost

        r = minimize_scalar(
            cost,
            bounds=(best_d - offset_step_ms * 1e6, best_d + offset_step_ms * 1e6),
            method="bounded",
            options={"xatol": 1e4},  # 10 µs
        )
        f = fit(r.x, init)
        if f is not None and f.cost <= best.cost:
            best, best_d = f, float(r.x)
    inl = best.inliers
    res = best.residuals
    result = ExtrinsicsResult(
        T_cam_leap=Transform.from_rvec(best.rvec, best.tvec, "cam", "leap"),
        clock_offset_ns=int(round(best_d)),
        residuals_px=res,
        inliers=inl,
        rms_px=float(np.sqrt(np.mean(res[inl] ** 2))),
        worst_px=float(res[inl].max()),
        offset_curve=np.array(curve, dtype=np.float64),
        ransac_px=thr,
    )
    if bootstrap:
        result.bootstrap = _bootstrap(camera, points, obs, result, thr, offset_step_ms, fixed_offset_ns is not None, bootstrap, seed)
    obj = points(best_d)[inl]
    result.pose_std = pose_std(camera, result.T_cam_leap, obj, max(result.rms_px, 1.0))
    result.weakness = judge(result, obs, obj)
    return result


def pose_std(camera: Camera, T: Transform, obj: np.ndarray, sigma_px: float) -> dict:
    """The linearised (Gauss-Newton) spread of a PnP pose: ``sigma^2 (J^T J)^-1`` with J
    the Jacobian of the reprojections with respect to a small rotation (in the camera
    frame, after ``R``) and to ``t``, by central differences through ``cv2.projectPoints``.

    Args:
        T: the pose (``T_cam_leap``). obj: (N, 3) the 3D points of the inliers, mm.
        sigma_px: the pixels' noise (the solution's RMS, at least 1 px).

    Returns:
        ``rotation_deg``: RMS rotation angle, ``translation_mm``: RMS translation length
        (as the bootstrap reports them); infinite when the points leave a direction free.
    """

    def project(p: np.ndarray) -> np.ndarray:
        R = cv2.Rodrigues(p[:3])[0] @ T.R
        return cv2.projectPoints(obj, cv2.Rodrigues(R)[0], T.t + p[3:], camera.K, camera.dist)[0].reshape(-1)

    steps = np.array([1e-6] * 3 + [1e-3] * 3)  # rad, mm
    J = np.empty((2 * len(obj), 6))
    for k in range(6):
        e = np.zeros(6)
        e[k] = steps[k]
        J[:, k] = (project(e) - project(-e)) / (2 * steps[k])
    JtJ = J.T @ J
    if not np.isfinite(JtJ).all() or np.linalg.cond(JtJ) > 1e15:
        return {"rotation_deg": float("inf"), "translation_mm": float("inf")}
    cov = sigma_px**2 * np.linalg.inv(JtJ)
    return {
        "rotation_deg": float(np.degrees(np.sqrt(max(np.trace(cov[:3, :3]), 0.0)))),
        "translation_mm": float(np.sqrt(max(np.trace(cov[3:, 3:]), 0.0))),
    }


def judge(result: ExtrinsicsResult, obs: Observations, obj: np.ndarray) -> str | None:
    """Why the inliers do not pin the pose down, in one sentence, or None if they do.

    Weak: fewer than :data:`MIN_FRAMES` distinct frames, or a rotation or translation
    spread (the larger of the linearised one and the bootstrap's) above
    :data:`MAX_ROTATION_STD_DEG` / :data:`MAX_TRANSLATION_STD_MM`.

    Args:
        obj: (M, 3) the tracked 3D points of the inliers, mm (leap frame).
    """
    inl = result.inliers
    frames = np.unique(obs.frame_index[inl])
    rot = max(result.pose_std.get("rotation_deg", 0.0), result.bootstrap.get("rotation_deg", 0.0))
    trans = max(result.pose_std.get("translation_mm", 0.0), result.bootstrap.get("translation_mm", 0.0))
    problems = []
    if len(frames) < MIN_FRAMES:
        problems.append(f"the inliers come from only {len(frames)} frame(s) (at least {MIN_FRAMES} are needed)")
    if rot > MAX_ROTATION_STD_DEG or trans > MAX_TRANSLATION_STD_MM:
        problems.append(f"rotation std {rot:.2f} deg, translation std {trans:.1f} mm (limits {MAX_ROTATION_STD_DEG:g} deg, {MAX_TRANSLATION_STD_MM:g} mm)")
    if not problems:
        return None
    s = np.linalg.svd(obj - obj.mean(axis=0), compute_uv=False) / np.sqrt(len(obj))
    z = result.T_cam_leap.apply(obj)[:, 2]
    t = obs.t_host_ns[inl]
    shape = " (nearly on a line)" if s[1] < 0.1 * s[0] else " (nearly in a plane)" if s[2] < 0.1 * s[0] else ""
    return (
        f"the observations do not pin the pose down: {'; '.join(problems)}; {int(inl.sum())} inliers in {len(frames)} frames over "
        f"{(t.max() - t.min()) / 1e9:.1f} s, tracked points spread {s[0]:.0f} x {s[1]:.0f} x {s[2]:.0f} mm{shape}, depth {z.min():.0f}-{z.max():.0f} mm"
    )


def _bootstrap(camera, points, obs, result, thr, step_ms, fixed, n, seed) -> dict:
    """Resample the inliers with replacement, re-solve from the solution (pose by LM,
    offset by bounded search nearby): std of rotation (deg), translation (mm), offset (ms)."""
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(result.inliers)
    init = (result.T_cam_leap.rvec, result.T_cam_leap.t)
    d0 = result.clock_offset_ns
    rots, trans, offs = [], [], []
    for _ in range(n):
        o = obs.subset(rng.choice(idx, len(idx)))

        def cost(d, o=o):
            f = _fit_at(camera, points(d, o), o.uv, thr, init)
            return np.inf if f is None else f.cost

        d = d0 if fixed else minimize_scalar(cost, bounds=(d0 - 2 * step_ms * 1e6, d0 + 2 * step_ms * 1e6), method="bounded", options={"xatol": 1e4}).x
        f = _fit_at(camera, points(d, o), o.uv, thr, init)
        if f is None:
            continue
        R = cv2.Rodrigues(f.rvec)[0]
        dR = R @ result.T_cam_leap.R.T
        rots.append(np.degrees(np.arccos(np.clip((np.trace(dR) - 1) / 2, -1, 1))))
        trans.append(f.tvec - result.T_cam_leap.t)
        offs.append((d - d0) / 1e6)
    if not rots:
        return {}
    return {
        "rotation_deg": float(np.sqrt(np.mean(np.square(rots)))),
        "translation_mm": float(np.sqrt(np.mean(np.sum(np.square(trans), axis=1)))),
        "offset_ms": float(np.std(offs)),
        "resamples": len(rots),
    }


def rotation_error_deg(A: Transform, B: Transform) -> float:
    """Angle of the rotation between two transforms, degrees."""
    dR = A.R @ B.R.T
    return float(np.degrees(np.arccos(np.clip((np.trace(dR) - 1) / 2, -1, 1))))


def read_solution(doc: dict, what: str) -> tuple[ExtrinsicsResult, Observations]:
    """A solution and its observations back from calibration.json (its ``quality`` and
    ``observations``, as :meth:`ExtrinsicsResult.record` wrote them): enough to print the
    report and redraw its pictures. ValueError (one line) if the file has no record."""
    rec, q = doc.get("observations"), doc.get("quality")
    if not isinstance(rec, dict) or not isinstance(q, dict):
        raise ValueError(f"{what}: holds no observations to redraw from (written by an older gthd: calibrate again)")
    try:
        obs = Observations(rec["t_host_ns"], rec["joint"], rec["uv"], rec["frame_index"])
        curve = np.array([[o, np.nan if c is None else c] for o, c in rec["offset_curve"]], dtype=np.float64).reshape(-1, 2)
        residuals = np.array([np.nan if r is None else r for r in q["residuals_px"]], dtype=np.float64)
        inliers = np.asarray(rec["inlier"], dtype=bool)
        if not (len(inliers) == len(residuals) == len(obs)):
            raise ValueError("observations, inliers and residuals of different lengths")
        result = ExtrinsicsResult(
            T_cam_leap=Transform.from_dict(doc["T_cam_leap"]),
            clock_offset_ns=int(doc["clock_offset_ns"]),
            residuals_px=residuals,
            inliers=inliers,
            rms_px=float(q["rms_px"]),
            worst_px=float(q["worst_px"]),
            offset_curve=curve,
            ransac_px=float(q["ransac_px"]),
            bootstrap=dict(q.get("bootstrap_std") or {}),
            pose_std=dict(q.get("pose_std_linearised") or {}),
            weakness=rec.get("weakness"),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{what}: its observations cannot be read ({type(e).__name__}: {e})") from None
    return result, obs
