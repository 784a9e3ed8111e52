"""How accurate is the calibration, against the simulated rig's ground truth?

    .venv/bin/python perf/calibration.py [--seeds 5]

Per seed, a 20 s simulated session (medium difficulty) with 20 views of each board and
30 clicks of 2 px noise with 10 % outliers:

  intrinsics   from the checkerboard and from the ChArUco views: fx, fy error (%), cx, cy (px)
  clicks       extrinsics + clock offset from the clicks, with the intrinsics just
               calibrated (the real pipeline): rotation (deg), translation (mm), offset (ms)
  auto         the same from a simulated detector (3 px noise, 5 % swapped joints) on
               120 frames, all 21 joints

Goals (issue 4): fx, fy within 0.5 %, cx, cy within 2 px; rotation within 0.5 deg,
translation within 3 mm, offset within 3 ms; --auto at least as accurate.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gthd.calibration.click_window import choose_frames
from gthd.calibration.detectors import observations_from_detector
from gthd.calibration.extrinsics import Observations, rotation_error_deg, solve_extrinsics
from gthd.calibration.files import read_clicks
from gthd.calibration.intrinsics import calibrate, views_from_session
from gthd.geometry import Camera, Transform
from gthd.session import Session
from gthd.sim.detector import SimulatedDetector
from gthd.sim.rig import RigConfig
from gthd.sim.simulate import simulate
from gthd.sim.truth import session_truth


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    rows = []
    try:
        for seed in range(args.seeds):
            path = tmp / f"s{seed}"
            simulate(path, seed, RigConfig(duration_s=20.0), boards=20, clicks=30, click_noise_px=2.0, click_outliers=0.1)
            s = Session.open(path)
            gt = session_truth(s)
            cam_t, T_t, d_t = Camera.from_dict(gt["camera"]), Transform.from_dict(gt["T_cam_leap"]), gt["clock"]["offset_ns"]
            row = {"seed": seed}
            for name, views in views_from_session(path).items():
                t0 = time.perf_counter()
                cam = calibrate(views, views.spec).camera
                row[f"{name}_s"] = time.perf_counter() - t0
                row[name] = (
                    100 * (cam.K[0, 0] / cam_t.K[0, 0] - 1),
                    100 * (cam.K[1, 1] / cam_t.K[1, 1] - 1),
                    cam.K[0, 2] - cam_t.K[0, 2],
                    cam.K[1, 2] - cam_t.K[1, 2],
                )
                if name == "checkerboard":
                    cam_est = cam
            _, clicks = read_clicks(path / "clicks_simulated.jsonl")
            obs = Observations.from_clicks(clicks)

            def errs(r, T_t=T_t, d_t=d_t):
                return rotation_error_deg(r.T_cam_leap, T_t), float(np.linalg.norm(r.T_cam_leap.t - T_t.t)), (r.clock_offset_ns - d_t) / 1e6

            t0 = time.perf_counter()
            row["clicks"] = errs(solve_extrinsics(cam_est, s.tracker, obs, bootstrap=0))
            row["clicks_s"] = time.perf_counter() - t0
            row["clicks_true_K"] = errs(solve_extrinsics(cam_t, s.tracker, obs, bootstrap=0))
            frames = choose_frames(s, "INDEX_TIP", n=120)
            t0 = time.perf_counter()
            auto_obs = observations_from_detector(s, SimulatedDetector(path), frames)
            row["auto"] = errs(solve_extrinsics(cam_est, s.tracker, auto_obs, bootstrap=0))
            row["auto_s"] = time.perf_counter() - t0
            row["auto_n"] = len(auto_obs)
            rows.append(row)
            print(f"seed {seed} done", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("intrinsics (error = estimate - truth; 640x480; 20 views per board)")
    print(f"{'seed':>4} {'board':>12} {'fx %':>8} {'fy %':>8} {'cx px':>7} {'cy px':>7} {'time s':>7}")
    ok_intr = True
    for r in rows:
        for b in ("checkerboard", "charuco"):
            fx, fy, cx, cy = r[b]
            ok_intr &= abs(fx) < 0.5 and abs(fy) < 0.5 and abs(cx) < 2 and abs(cy) < 2
            print(f"{r['seed']:>4} {b:>12} {fx:+8.3f} {fy:+8.3f} {cx:+7.2f} {cy:+7.2f} {r[b + '_s']:7.2f}")
    print("\nextrinsics and clock offset (absolute errors; intrinsics from the checkerboard unless noted)")
    print(f"{'seed':>4} {'method':>24} {'rot deg':>8} {'trans mm':>9} {'offset ms':>10} {'time s':>7}")
    ok_clicks = ok_auto = True
    for r in rows:
        for key, label in (("clicks", "30 clicks"), ("clicks_true_K", "30 clicks, true K"), ("auto", f"auto ({r['auto_n']} joints)")):
            rot, tr, off = r[key]
            ok = rot < 0.5 and tr < 3 and abs(off) < 3
            if key == "clicks":
                ok_clicks &= ok
            if key == "auto":
                ok_auto &= ok and rot <= r["clicks"][0] + 0.05 and tr <= r["clicks"][1] + 0.5
            t = r.get(key + "_s")
            print(f"{r['seed']:>4} {label:>24} {rot:8.3f} {tr:9.2f} {off:+10.2f} {'' if t is None else f'{t:7.2f}'}")
    for key in ("clicks", "auto"):
        a = np.array([r[key] for r in rows])
        print(
            f"{key:>8}: mean |error| rotation {np.abs(a[:, 0]).mean():.3f} deg, translation {np.abs(a[:, 1]).mean():.2f} mm, offset {np.abs(a[:, 2]).mean():.2f} ms; worst {np.abs(a[:, 0]).max():.3f} deg, {np.abs(a[:, 1]).max():.2f} mm, {np.abs(a[:, 2]).max():.2f} ms"
        )
    print(
        f"\ngoals: intrinsics {'met' if ok_intr else 'NOT met'}; clicks {'met' if ok_clicks else 'NOT met'}; auto at least as accurate {'met' if ok_auto else 'NOT met'}"
    )
    return 0 if ok_intr and ok_clicks and ok_auto else 1


if __name__ == "__main__":
    sys.exit(main())
