"""What ``gthd calibrate`` tells the user: mrcal-style text (RMS and worst residual,
outliers by frame, the offset and the bootstrap spreads, the exact command line) and
pictures: the projected skeleton over sample frames, and the offset search's cost curve."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..draw import contact_sheet, draw_skeleton, label
from ..fileio import atomic_write_bytes
from ..hand import JOINT_NAMES
from ..session import Session
from .extrinsics import ExtrinsicsResult, Observations, rotation_error_deg
from .files import Calibration


def extrinsics_lines(result: ExtrinsicsResult, obs: Observations, command: str) -> list[str]:
    """The extrinsic calibration's report, one line each."""
    T = result.T_cam_leap
    inl = result.inliers
    bad = obs.frame_index[~inl]
    order = np.argsort(-np.nan_to_num(result.residuals_px, nan=np.inf))
    worst = ", ".join(
        f"frame {obs.frame_index[k]} {JOINT_NAMES[obs.joint[k]]} {result.residuals_px[k]:.1f} px" for k in order[:5] if np.isfinite(result.residuals_px[k])
    )
    b = result.bootstrap
    lines = [
        f"extrinsics from {len(obs)} observations: {int(inl.sum())} inliers, {int((~inl).sum())} outliers (RANSAC {result.ransac_px:g} px)",
        f"reprojection: RMS {result.rms_px:.2f} px, worst inlier {result.worst_px:.2f} px",
        f"worst observations: {worst}" if worst else "worst observations: none",
        f"outliers in frames: {', '.join(map(str, sorted(set(bad.tolist())))) or 'none'}",
        f"T_cam_leap (FROM leap TO cam, mm): t = [{T.t[0]:.1f}, {T.t[1]:.1f}, {T.t[2]:.1f}], rvec = [{T.rvec[0]:.4f}, {T.rvec[1]:.4f}, {T.rvec[2]:.4f}]",
        f"clock offset d = {result.clock_offset_ns / 1e6:.2f} ms (tracker state at t_cam + d)",
    ]
    if b:
        lines.append(
            f"bootstrap ({b['resamples']} resamples), std: rotation {b['rotation_deg']:.3f} deg, translation {b['translation_mm']:.2f} mm, offset {b['offset_ms']:.2f} ms"
        )
    p = result.pose_std
    if p:
        lines.append(f"linearised std: rotation {p['rotation_deg']:.3f} deg, translation {p['translation_mm']:.2f} mm")
    if result.weakness:
        lines.append(f"WEAK (kept with --accept-weak): {result.weakness}")
    lines.append(f"command: {command}")
    return lines


def intrinsics_truth_line(camera, truth: dict) -> str:
    """The intrinsics' errors against a simulated session's ground truth."""
    from ..geometry import Camera

    K, Kt = camera.K, Camera.from_dict(truth["camera"]).K
    return (
        f"  intrinsics: fx {100 * (K[0, 0] / Kt[0, 0] - 1):+.3f} %, fy {100 * (K[1, 1] / Kt[1, 1] - 1):+.3f} %, "
        f"cx {K[0, 2] - Kt[0, 2]:+.2f} px, cy {K[1, 2] - Kt[1, 2]:+.2f} px (against the simulator's ground truth)"
    )


def truth_lines(cal: Calibration, truth: dict) -> list[str]:
    """Errors against a simulated session's ground truth."""
    from ..geometry import Transform

    T_t = Transform.from_dict(truth["T_cam_leap"])
    return [
        "against the simulator's ground truth:",
        intrinsics_truth_line(cal.camera, truth),
        f"  rotation {rotation_error_deg(cal.T_cam_leap, T_t):.3f} deg, translation {np.linalg.norm(cal.T_cam_leap.t - T_t.t):.2f} mm, "
        f"clock offset {(cal.clock_offset_ns - truth['clock']['offset_ns']) / 1e6:+.2f} ms",
    ]


def overlay_sheet(session: Session, cal: Calibration, obs: Observations, result: ExtrinsicsResult, path: str | Path, count: int = 8) -> None:
    """Write :func:`overlay_png` to ``path`` (atomically)."""
    atomic_write_bytes(path, overlay_png(session, cal, obs, result, count))


def overlay_png(session: Session, cal: Calibration, obs: Observations, result: ExtrinsicsResult, count: int = 8) -> bytes:
    """Sample frames with the tracked skeleton projected through the calibration (at the
    frame's time + d), each observation marked: green inlier, red outlier, with a line
    to where the solution projects its joint. Returns the PNG's bytes."""
    frames = np.unique(obs.frame_index)
    pick = frames[np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)]
    tiles = []
    for i in pick:
        img = session.image(int(i))
        uv, visible = cal.project(session.tracker, session.frames.t_host_ns[i], smooth_ns=25_000_000)
        if visible.any() and np.isfinite(uv).all():  # tracked at that time, the hand in view
            draw_skeleton(img, uv, visible)
            for k in np.flatnonzero(obs.frame_index == i):
                ok = bool(result.inliers[k])
                c = (60, 220, 60) if ok else (40, 40, 255)
                p = tuple(int(round(v)) for v in obs.uv[k])
                q = tuple(int(round(v)) for v in uv[obs.joint[k]])
                cv2.line(img, p, q, c, 1, cv2.LINE_AA)
                cv2.drawMarker(img, p, c, cv2.MARKER_CROSS, 14, 2, cv2.LINE_AA)
        label(img, f"frame {int(i)}", org=(8, 28), scale=0.8)
        tiles.append(img)
    ok, enc = cv2.imencode(".png", contact_sheet(tiles, cols=4, tile_width=320))
    return enc.tobytes()


def offset_plot(result: ExtrinsicsResult, path: str | Path, size=(640, 300)) -> None:
    """Write :func:`offset_png` to ``path`` (atomically)."""
    atomic_write_bytes(path, offset_png(result, size))


def offset_png(result: ExtrinsicsResult, size=(640, 300)) -> bytes:
    """The robust reprojection cost against the clock offset, the chosen offset marked;
    the PNG's bytes."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    curve = result.offset_curve
    ok = np.isfinite(curve[:, 1])
    m = 40
    if ok.sum() >= 2:
        x, y = curve[ok, 0], curve[ok, 1]
        x0, x1, y0, y1 = x.min(), x.max(), 0.0, max(y.max(), 1e-9)
        px = lambda v: m + (v - x0) / max(x1 - x0, 1e-9) * (w - 2 * m)  # noqa: E731
        py = lambda v: h - m - (v - y0) / (y1 - y0) * (h - 2 * m)  # noqa: E731
        cv2.line(img, (m, h - m), (w - m, h - m), (0, 0, 0), 1)
        cv2.line(img, (m, m), (m, h - m), (0, 0, 0), 1)
        pts = np.stack([px(x), py(y)], axis=1).round().astype(np.int32)
        cv2.polylines(img, [pts], False, (200, 90, 30), 2, cv2.LINE_AA)
        d = result.clock_offset_ns / 1e6
        cv2.line(img, (int(px(d)), m), (int(px(d)), h - m), (40, 40, 220), 1, cv2.LINE_AA)
        for v in (x0, 0.0, x1):
            cv2.putText(img, f"{v:+.0f} ms", (int(px(v)) - 25, h - m + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, f"robust reprojection cost vs clock offset; chosen d = {d:.1f} ms", (m, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    ok, enc = cv2.imencode(".png", img)
    return enc.tobytes()
