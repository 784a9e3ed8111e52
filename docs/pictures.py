"""Regenerate the pictures in docs/images/ with gthd itself.

    .venv/bin/python docs/pictures.py

Every picture in the docs is made here by the tools (the simulator, its renderer, the
session contact sheet), so it shows what a user gets.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from gthd.boards import BoardSpec
from gthd.draw import contact_sheet, draw_skeleton, label
from gthd.geometry import Camera, Transform
from gthd.hand import JOINT_NAMES
from gthd.session import Session
from gthd.sim.kinematics import POSES, HandShape, forward_kinematics
from gthd.sim.render import HandLook, Scene, render_frame
from gthd.sim.rig import RigConfig
from gthd.sim.simulate import simulate
from gthd.sim.truth import session_truth

IMAGES = Path(__file__).resolve().parent / "images"


def _png(path: Path, img: np.ndarray) -> None:
    cv2.imwrite(str(path), img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def demo_sheet(tmp: Path) -> None:
    """The picture `make demo` writes: a simulated session with the true keypoints."""
    subprocess.run([sys.executable, "-m", "gthd", "simulate", str(tmp / "demo"), "--seed", "0", "--duration", "8"], check=True)
    subprocess.run([sys.executable, "-m", "gthd", "session", "sheet", str(tmp / "demo"), "-o", str(IMAGES / "demo_sheet.png"), "-n", "12"], check=True)


def hand_model() -> None:
    """The 21 joints, numbered, on a rendered hand (palm toward the camera)."""
    cam = Camera([[900.0, 0, 299.5], [0, 900, 339.5], [0, 0, 1]], np.zeros(5), 600, 680)
    shape = HandShape.adult()
    angles = POSES["spread"].copy()
    local = forward_kinematics(shape, angles)  # hand frame: +y fingers, +z palm, +x thumb
    # Put the hand 450 mm in front of the camera, palm toward it, fingers up.
    R = np.diag([1.0, -1.0, -1.0])  # hand x (thumb) -> image right, y -> up, palm -> camera
    T = Transform(R, [0, 85, 450], "cam", "hand")
    jc = T.apply(local)
    bg = np.full((680, 600, 3), 235, np.uint8)
    light = {"gain": 1.0, "gamma": 1.0, "drift_amp": 0.0, "drift_freq": 0.0, "flicker": 0.0}
    scene = Scene(bg, [], 0.0, light, np.random.default_rng(0))
    img = render_frame(scene, 0.0, np.random.default_rng(0), cam, jc, shape, HandLook((150, 185, 230), np.array([0.5, -0.8])))
    uv = cam.project(jc)
    draw_skeleton(img, uv, thickness=2, radius=5)
    for j, (u, v) in enumerate(uv):
        dx = -16 if u < uv[0, 0] else 10
        label(img, str(j), org=(int(u + dx - (8 if j >= 10 else 0)), int(v - 8)), scale=0.5)
    y = 20
    for j, name in enumerate(JOINT_NAMES):
        if j in (0, 1, 5, 9, 13, 17):
            y += 4
        cv2.putText(img, f"{j:2d} {name}", (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (40, 40, 40), 1, cv2.LINE_AA)
        y += 16
    _png(IMAGES / "hand_model.png", img)


def difficulty() -> None:
    """One frame of each difficulty, same seed."""
    tiles = []
    with tempfile.TemporaryDirectory() as d:
        for level in ("easy", "medium", "hard"):
            simulate(Path(d) / level, 4, RigConfig(duration_s=2.0, difficulty=level), boards=0, clicks=0)
            s = Session.open(Path(d) / level)
            gt = session_truth(s)["frames"]
            i = next(i for i in range(20, len(gt)) if gt[i]["hand"] is not None)
            img = s.image(i)
            label(img, level, org=(10, 34), scale=1.1)
            tiles.append(img)
    _png(IMAGES / "difficulty.png", contact_sheet(tiles, cols=3, tile_width=360))


def renderer() -> None:
    """The renderer's contact sheet (docs/simulate.md, "The renderer"): seed 2, 15 s, no
    truth drawn. (sim_before.png and sim_closeups.png are records of the change of issue
    12, made from the renderer before it, and are not regenerated.)"""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(
            [sys.executable, "-m", "gthd", "simulate", str(Path(d) / "s"), "--seed", "2", "--duration", "15", "--boards", "0", "--clicks", "0"], check=True
        )
        subprocess.run(
            [sys.executable, "-m", "gthd", "session", "sheet", str(Path(d) / "s"), "-o", str(Path(d) / "sheet.png"), "-n", "8", "--no-truth"], check=True
        )
        img = cv2.imread(str(Path(d) / "sheet.png"))
    _png(IMAGES / "sim_after.png", cv2.resize(img, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA))


def boards(tmp: Path) -> None:
    """Simulated board views with the true corners drawn."""
    s = Session.open(tmp / "demo")
    gt = session_truth(s)
    cam = Camera.from_dict(gt["camera"])
    tiles = []
    for name in ("checkerboard", "charuco"):
        b = gt["boards"][name]
        spec = BoardSpec.from_dict(b["spec"])
        for view in b["views"][:2]:
            img = cv2.imread(str(tmp / "demo" / view["file"]))
            uv = cam.project(Transform.from_dict(view["T_cam_board"]).apply(spec.object_points()))
            for u, v in uv:
                cv2.circle(img, (int(round(u * 16)), int(round(v * 16))), 3 * 16, (0, 0, 255), 1, cv2.LINE_AA, 4)
            label(img, name, org=(10, 34), scale=1.1)
            tiles.append(img)
    _png(IMAGES / "boards.png", contact_sheet(tiles, cols=4, tile_width=300))


def calibration(tmp: Path) -> None:
    """The pictures `gthd calibrate` writes, on the demo session: the intrinsics report,
    the projected skeleton over sample frames, the offset search."""
    out = tmp / "cal"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "gthd",
            "calibrate",
            "--click",
            str(tmp / "demo"),
            "--clicks",
            str(tmp / "demo" / "clicks_simulated.jsonl"),
            "-o",
            str(out),
            "--bootstrap",
            "20",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    for src, dst in (("intrinsics.png", "intrinsics_report.png"), ("overlay.png", "calibration_overlay.png"), ("offset.png", "calibration_offset.png")):
        shutil.copyfile(out / src, IMAGES / dst)
        print(f"wrote {IMAGES / dst} ({(IMAGES / dst).stat().st_size // 1024} KiB)")


def dataset(tmp: Path) -> None:
    """`gthd build-dataset` on the demo session with its calibration, then `gthd inspect --sheet`."""
    subprocess.run(
        [sys.executable, "-m", "gthd", "build-dataset", str(tmp / "demo"), "--calibration", str(tmp / "cal" / "calibration.json"), "-o", str(tmp / "demo.h5")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [sys.executable, "-m", "gthd", "inspect", str(tmp / "demo.h5"), "--sheet", str(IMAGES / "dataset_sheet.png"), "-n", "12"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"wrote {IMAGES / 'dataset_sheet.png'}")


def benchmark() -> None:
    """The benchmark's pictures come from the `make demo` run (a 10-15 minute training):
    copied from benchmark/runs/demo-quick/ when it is there, and its leaderboard to
    benchmark/leaderboard-demo.md."""
    run = IMAGES.parents[1] / "benchmark" / "runs" / "demo-quick"
    if not (run / "leaderboard.md").exists():
        print(f"skipped the benchmark pictures: no {run} (run `make demo` first)")
        return
    for name in ("pck", "qualitative", "thresholds"):
        shutil.copyfile(run / f"{name}.png", IMAGES / f"benchmark_{name}.png")
    shutil.copyfile(run / "leaderboard.md", IMAGES.parents[1] / "benchmark" / "leaderboard-demo.md")
    # gthd predict's drawing with that run, on frames of the demo capture
    from gthd.benchmark.predict import draw_prediction, load_run

    pipe = load_run(run)
    session = Session.open(IMAGES.parents[1] / "capture" / "demo")
    tiles = [draw_prediction(f, pipe(f)) for f in (session.image(i) for i in (100, 400, 900, 1500))]
    cv2.imwrite(str(IMAGES / "predict_demo.png"), contact_sheet(tiles, cols=4, tile_width=320))
    print(f"wrote {IMAGES}/benchmark_*.png and benchmark/leaderboard-demo.md from {run}")


def main() -> None:
    IMAGES.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    try:
        demo_sheet(tmp)
        boards(tmp)
        calibration(tmp)
        dataset(tmp)
        hand_model()
        difficulty()
        renderer()
        benchmark()
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
