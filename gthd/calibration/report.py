"""What ``gthd calibrate`` tells the user, in one place: mrcal-style text (RMS and worst
residual, outliers by frame, the offset and the bootstrap spreads, the exact command
line) and pictures: the projected skeleton over sample frames, the offset search's cost
curve, and the intrinsics' coverage, residuals and residual histogram. Each is drawn from
what the calibration files keep, so ``gthd calibrate report`` redraws them."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from ..draw import contact_sheet, draw_skeleton, label
from ..fileio import atomic_write_bytes
from ..hand import JOINT_NAMES
from ..session import Session
from .extrinsics import ExtrinsicsResult, Observations, rotation_error_deg
from .files import Calibration
from .intrinsics import STD_NAMES, IntrinsicsResult
from .views import describe_board


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


# -------------------------------------------------------------------- intrinsics report
def intrinsics_lines(result: IntrinsicsResult, command_line: str) -> list[str]:
    """An intrinsics calibration's mrcal-like report: what was used, residuals, outliers, worst views,
    uncertainties, split-half stability, coverage, and ``command_line`` verbatim."""
    K, d = result.camera.K, result.camera.dist
    s = result.std
    w, h = result.camera.width, result.camera.height
    lines = [f"board: {describe_board(result.spec)}"]
    if result.source is not None:
        found = f"; board found in {result.n_images - len(result.missed)} of {result.n_images} images" if result.n_images else ""
        if result.missed:
            more = f" and {len(result.missed) - 5} more" if len(result.missed) > 5 else ""
            found += f" (not in {', '.join(result.missed[:5])}{more})"
        lines.append(f"source: {result.source}{found}")
    lines.append(f"image: {w}x{h} px; {result.n_views} of {result.n_views_given} views used, {result.n_corners} corners")
    lines.append(
        f"RMS reprojection error {result.rms:.3f} px; worst residual {result.worst_residual_px:.3f} px "
        f"({result.worst_residual_at[0]}, corner {result.worst_residual_at[1]})"
    )
    if result.dropped:
        dropped = ", ".join(f"{n} ({result.dropped_rms[n]:.2f} px)" for n in result.dropped)
        lines.append(
            f"outliers: {len(result.dropped)} view(s) dropped, per-view RMS above "
            f"{result.outlier_factor:g} x median = {result.outlier_threshold_px:.3f} px: {dropped}"
        )
    else:
        lines.append(f"outliers: none (no view above {result.outlier_factor:g} x median = {result.outlier_threshold_px:.3f} px)")
    lines.append("worst views (per-view RMS): " + ", ".join(f"{n} {v:.3f} px" for n, v in result.worst_views))
    lines.append(
        f"fx = {K[0, 0]:.3f} +- {s['fx']:.3f}, fy = {K[1, 1]:.3f} +- {s['fy']:.3f}, cx = {K[0, 2]:.3f} +- {s['cx']:.3f}, cy = {K[1, 2]:.3f} +- {s['cy']:.3f} px"
    )
    lines.append("distortion: " + ", ".join(f"{n} = {v:+.5f} +- {s[n]:.5f}" for n, v in zip(STD_NAMES[4:], (d[0], d[1], d[2], d[3], d[4]))))
    sh = result.split_half
    if "skipped" in sh:
        lines.append(f"split-half stability: not checked ({sh['skipped']})")
    else:
        lines.append(
            f"split-half stability: the models from the {sh['n_views'][0]} even and {sh['n_views'][1]} odd views "
            f"differ by {sh['rms_px']:.3f} px RMS, {sh['max_px']:.3f} px max at the {sh['n_points']} corners; "
            f"{sh['whole_image_rms_px']:.3f} px RMS, {sh['whole_image_max_px']:.3f} px max over the whole image"
        )
    rows, cols = result.coverage.counts.shape
    lines.append(
        f"coverage: {int((result.coverage.counts > 0).sum())} of {rows * cols} cells of a {cols}x{rows} grid "
        f"hold corners ({100 * result.coverage.fraction:.0f} %)"
    )
    lines.append(f"command: {command_line}")
    return lines


# ----------------------------------------------------------------------- intrinsics picture
_PANEL_W = 560
_TITLE_H = 28


def _panel(size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """A dark (h, _PANEL_W, 3) panel for an image of ``size`` and its pixel scale."""
    s = _PANEL_W / size[0]
    h = int(round(size[1] * s))
    return np.full((h, _PANEL_W, 3), 32, np.uint8), s


def _titled(panel: np.ndarray, title: str) -> np.ndarray:
    bar = np.full((_TITLE_H, panel.shape[1], 3), 16, np.uint8)
    cv2.putText(bar, title, (8, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
    return np.concatenate([bar, panel], axis=0)


def _px(p, s: float) -> tuple[int, int]:
    # Pixel centres: image pixel u maps to panel (u + 0.5) * s - 0.5; 4 fractional bits.
    return int(round(((p[0] + 0.5) * s - 0.5) * 16)), int(round(((p[1] + 0.5) * s - 0.5) * 16))


def intrinsics_png(result: IntrinsicsResult, path: str | Path) -> Path:
    """Write :func:`intrinsics_png_bytes` to ``path`` (atomically)."""
    path = Path(path)
    atomic_write_bytes(path, intrinsics_png_bytes(result))
    return path


def intrinsics_png_bytes(result: IntrinsicsResult) -> bytes:
    """A picture of the calibration, as PNG bytes; the same from a live result and from
    one read back from its file (:func:`read_report`).

    Left: coverage, the corners of every view given as dots over the image area (those of
    dropped views in red) on the grid cells shaded by corner count. Middle: each corner's
    residual as a vector x50 at its place, coloured by length. Right: histogram of the
    residual lengths with the RMS marked.
    """
    size = (result.camera.width, result.camera.height)
    dropped = set(result.dropped)

    # --- coverage
    cov, s = _panel(size)
    counts = result.coverage.counts
    rows, cols = counts.shape
    top = max(int(counts.max()), 1)
    for r in range(rows):
        for c in range(cols):
            x0, x1 = int(round(c * _PANEL_W / cols)), int(round((c + 1) * _PANEL_W / cols))
            y0, y1 = int(round(r * cov.shape[0] / rows)), int(round((r + 1) * cov.shape[0] / rows))
            n = counts[r, c]
            if n == 0:
                color = (40, 40, 90)  # empty cell: dull red
            else:
                g = int(60 + 140 * math.log1p(n) / math.log1p(top))
                color = (g // 2, g, g // 3)
            cv2.rectangle(cov, (x0, y0), (x1 - 1, y1 - 1), color, -1)
            cv2.rectangle(cov, (x0, y0), (x1 - 1, y1 - 1), (70, 70, 70), 1)
    for name, corners in (result.view_corners or result.image_points).items():
        color = (60, 60, 255) if name in dropped else (255, 255, 255)
        for p in corners:
            cv2.circle(cov, _px(p, s), 2 << 4, color, -1, cv2.LINE_AA, 4)
    cov = _titled(
        cov,
        f"coverage {100 * result.coverage.fraction:.0f} % of {cols}x{rows} cells, "
        f"{result.n_views} views, {result.n_corners} corners" + (f", {len(dropped)} dropped" if dropped else ""),
    )

    # --- residual vectors
    res, _ = _panel(size)
    cv2.rectangle(res, (0, 0), (res.shape[1] - 1, res.shape[0] - 1), (90, 90, 90), 1)
    scale = 50.0
    rms = max(result.rms, 1e-9)
    for name, pts in result.image_points.items():
        for p, e in zip(pts, result.residuals[name]):
            L = float(np.hypot(*e))
            color = (80, 220, 80) if L < 2 * rms else (0, 220, 255) if L < 4 * rms else (60, 60, 255)
            cv2.line(res, _px(p, s), _px(p + scale * e, s), color, 1, cv2.LINE_AA, 4)
            cv2.circle(res, _px(p, s), 1 << 4, (200, 200, 200), -1, cv2.LINE_AA, 4)
    res = _titled(res, f"residuals x{scale:g}: RMS {result.rms:.3f} px, worst {result.worst_residual_px:.3f} px")

    # --- histogram
    hist = np.full_like(res[_TITLE_H:], 32)
    h, w = hist.shape[:2]
    lengths = np.concatenate([np.linalg.norm(r, axis=1) for r in result.residuals.values()])
    hi = max(float(lengths.max()), 1e-6) * 1.05
    bins = 40
    n, _ = np.histogram(lengths, bins=bins, range=(0.0, hi))
    x0, x1, y0, y1 = 40, w - 16, 16, h - 36
    peak = max(int(n.max()), 1)
    for k in range(bins):
        a = x0 + (x1 - x0) * k / bins
        b = x0 + (x1 - x0) * (k + 1) / bins
        top_y = y1 - (y1 - y0) * n[k] / peak
        cv2.rectangle(hist, (int(a) + 1, int(top_y)), (int(b) - 1, y1), (200, 170, 90), -1)
    cv2.line(hist, (x0, y1), (x1, y1), (200, 200, 200), 1)
    cv2.line(hist, (x0, y0), (x0, y1), (200, 200, 200), 1)
    for t in np.linspace(0.0, hi, 5):
        xt = int(x0 + (x1 - x0) * t / hi)
        cv2.line(hist, (xt, y1), (xt, y1 + 4), (200, 200, 200), 1)
        cv2.putText(hist, f"{t:.2f}", (xt - 14, y1 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (220, 220, 220), 1, cv2.LINE_AA)
    cv2.putText(hist, f"{peak}", (4, y0 + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (220, 220, 220), 1, cv2.LINE_AA)
    xr = int(x0 + (x1 - x0) * result.rms / hi)
    cv2.line(hist, (xr, y0), (xr, y1), (0, 220, 255), 1, cv2.LINE_AA)
    cv2.putText(hist, "RMS", (xr + 4, y0 + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 220, 255), 1, cv2.LINE_AA)
    cv2.putText(hist, "residual length, px", (x1 - 150, y1 + 32), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (220, 220, 220), 1, cv2.LINE_AA)
    hist = _titled(hist, f"residual lengths ({len(lengths)} corners), RMS {result.rms:.3f} px")

    gap = np.full((cov.shape[0], 6, 3), 0, np.uint8)
    picture = np.concatenate([cov, gap, res, gap, hist], axis=1)
    ok, enc = cv2.imencode(".png", picture)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return enc.tobytes()
