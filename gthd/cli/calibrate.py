"""``gthd calibrate`` (extrinsics and the clock offset; ``intrinsics``, ``report``) and ``gthd board``."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from ._common import echo_lines, progress_bar, truth_of, user_errors


@click.group(invoke_without_command=True)
@click.option(
    "--click",
    "click_session",
    type=click.Path(path_type=Path),
    default=None,
    metavar="SESSION",
    help="Click a joint in the session's frames (an OpenCV window), then solve T_cam_leap and the clock offset.",
)
@click.option(
    "--clicks",
    "clicks_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --click: solve from this clicks file, no window (scripts, CI, re-runs).",
)
@click.option(
    "--auto",
    "auto_session",
    type=click.Path(path_type=Path),
    default=None,
    metavar="SESSION",
    help="Correspondences from a 2D hand keypoint detector on many frames, all 21 joints.",
)
@click.option(
    "--detector",
    type=click.Choice(["mediapipe", "simulated"]),
    default="mediapipe",
    show_default=True,
    help="With --auto: MediaPipe Hands (extra 'mediapipe'), or the simulator's truth with detector-like errors (simulated sessions).",
)
@click.option(
    "--intrinsics",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Camera intrinsics (OpenCV YAML or gthd JSON). Default: calibrated from the session's board views.",
)
@click.option("--joint", default="INDEX_TIP", show_default=True, help="The joint to click.")
@click.option(
    "--frames", "n_frames", type=click.IntRange(6, 1000), default=40, show_default=True, help="Frames offered for clicking (or run through the detector: x4)."
)
@click.option("--ransac-px", type=click.FloatRange(0.5, 100), default=8.0, show_default=True, help="RANSAC inlier threshold, pixels.")
@click.option("--offset-range-ms", type=click.FloatRange(0, 2000), default=200.0, show_default=True, help="Search the clock offset in +-this.")
@click.option("--offset-ms", type=float, default=None, help="Use this clock offset instead of searching for it.")
@click.option("--bootstrap", type=click.IntRange(0, 10000), default=100, show_default=True, help="Resamples for the uncertainty.")
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for calibration.json and the report. Default: calibration/<session name>/.",
)
@click.option("--force", is_flag=True, help="Replace an existing calibration.json in the output folder.")
@click.option(
    "--accept-weak",
    is_flag=True,
    help="Keep a solution the observations do not pin down (docs/calibration.md, weak clicks): written with a warning, recorded in calibration.json.",
)
@click.pass_context
def calibrate(
    ctx,
    click_session,
    clicks_file,
    auto_session,
    detector,
    intrinsics,
    joint,
    n_frames,
    ransac_px,
    offset_range_ms,
    offset_ms,
    bootstrap,
    out,
    force,
    accept_weak,
):
    """Calibrate the camera and the tracker together.

    `gthd calibrate --click SESSION` finds T_cam_leap (the tracker-to-camera transform)
    and the clock offset: you click one joint in frames where the tracker sees the hand,
    and a PnP solver (SQPnP + RANSAC + Levenberg-Marquardt) pairs the clicks with the
    tracked joints, searching the offset that fits best. Intrinsics come from
    --intrinsics or the session's board views. Writes calibration.json, a report and
    pictures (see docs/calibration.md), only once every input is checked and the
    solution is pinned down (else one error line, nothing written).

    \b
    Example:
        gthd calibrate intrinsics capture/boards/ --board checkerboard -o calibration/cam
        gthd calibrate --click capture/alice-1 --intrinsics calibration/cam/intrinsics.yaml
        gthd calibrate --click capture/sim-0 --clicks capture/sim-0/clicks_simulated.jsonl
    """
    if ctx.invoked_subcommand is not None:
        return
    if (click_session is None) == (auto_session is None):
        raise click.UsageError("give one of --click SESSION or --auto SESSION (or a subcommand: gthd calibrate intrinsics ...)")
    if clicks_file is not None and click_session is None:
        raise click.UsageError("--clicks goes with --click SESSION")
    from ..calibration.run import calibrate_extrinsics

    path = click_session or auto_session
    out = out or Path("calibration") / Path(path).resolve().name
    bar, update = progress_bar("detecting") if auto_session is not None else (contextlib.nullcontext(), None)
    with user_errors():
        with bar:
            run = calibrate_extrinsics(
                path,
                out,
                intrinsics=intrinsics,
                joint=joint,
                clicks_file=clicks_file,
                detector=None if auto_session is None else _detector(detector, auto_session),
                n_frames=n_frames,
                ransac_px=ransac_px,
                offset_range_ms=offset_range_ms,
                offset_ms=offset_ms,
                bootstrap=bootstrap,
                accept_weak=accept_weak,
                force=force,
                truth_of=truth_of,
                say=click.echo,
                warn=lambda note: click.echo(f"Warning: {note}", err=True),
                progress=update,
            )
    echo_lines(run.lines)
    click.echo(f"wrote {out / 'calibration.json'}, report.txt, overlay.png, offset.png")


def _detector(name: str, session_path: Path):
    """--auto's keypoint detector: MediaPipe Hands, or the simulator's truth with
    detector-like errors (the simulated rig plugs in here)."""
    if name == "simulated":
        from ..sim.detector import SimulatedDetector

        if not (Path(session_path) / "ground_truth.json").is_file():
            raise click.ClickException("--detector simulated needs a simulated session (with ground_truth.json)")
        return SimulatedDetector(session_path)
    from ..calibration.detectors import MediaPipeHands

    return MediaPipeHands()


@calibrate.command("report")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Folder for the redrawn pictures. Default: FILE's folder.")
def calibrate_report(file, out):
    """Print a calibration's report and redraw its pictures from the file alone.

    FILE is an intrinsics.json (`gthd calibrate intrinsics`: every view's corners and
    residuals are in it) or a calibration.json (`gthd calibrate --click`: every
    observation is in it; overlay.png also needs the session it names), or the folder
    holding one. Neither the images nor a new calibration are needed.

    \b
    Example:
        gthd calibrate report calibration/camera/intrinsics.json -o /tmp/report
        gthd calibrate report calibration/demo
    """
    from ..calibration.run import redraw_to

    with user_errors():
        lines, written = redraw_to(file, out, truth_of=truth_of)
    echo_lines(lines)
    click.echo(f"wrote {', '.join(map(str, written))}")


@calibrate.command("intrinsics")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--board",
    default=None,
    help="The board: a board.json (gthd board writes one), checkerboard or charuco (gthd's defaults). A session's own boards are used if not given.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("calibration/camera"),
    show_default=True,
    help="Folder for intrinsics.yaml, intrinsics.json and intrinsics.png.",
)
@click.option("--force", is_flag=True, help="Replace existing intrinsics in the folder.")
def calibrate_intrinsics(source, board, out, force):
    """Calibrate the camera's intrinsics from views of a printed board.

    SOURCE is a folder of images, a video, or a session (its boards/ views). Corners
    from cv2.findChessboardCornersSB + cornerSubPix (checkerboard) or the ChArUco
    detector; cv2.calibrateCameraExtended; outlier views dropped; split-half check.
    Writes an OpenCV FileStorage YAML (camera_matrix, distortion_coefficients,
    image_width, image_height), a JSON twin with the quality, and a report PNG.

    \b
    Example:
        gthd calibrate intrinsics capture/boards/ --board calibration/boards/checkerboard-10x7-25mm.json
        gthd calibrate intrinsics capture/sim-0 -o calibration/sim-0
    """
    from ..calibration.run import intrinsics_to_folder

    with user_errors():
        run = intrinsics_to_folder(source, out, board=board, force=force, truth_of=truth_of)
    echo_lines(run.lines())
    click.echo(f"wrote {out / 'intrinsics.yaml'}, intrinsics.json, intrinsics.png")


@click.command()
@click.argument("kind", type=click.Choice(["checkerboard", "charuco"]))
@click.option("--cols", type=int, default=None, help="Squares across. Default: 10 (checkerboard), 8 (charuco).")
@click.option("--rows", type=int, default=None, help="Squares down. Default: 7 (checkerboard), 6 (charuco).")
@click.option("--square-mm", type=float, default=None, help="Square side in mm. Default: 25 (checkerboard), 30 (charuco).")
@click.option("--marker-mm", type=float, default=22.0, show_default=True, help="ArUco marker side in mm (charuco).")
@click.option("--dictionary", default="DICT_5X5_100", show_default=True, help="ArUco dictionary (charuco).")
@click.option("--dpi", type=float, default=300.0, show_default=True, help="Print resolution.")
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("calibration/boards"),
    show_default=True,
    help="Folder for the PNG and its board.json twin.",
)
def board(kind, cols, rows, square_mm, marker_mm, dictionary, dpi, out_dir):
    """Make a printable calibration board: a PNG at true size and its description.

    The PNG records its resolution so it prints at the right size; print at 100 % and
    check the 100 mm scale bar with a ruler. The JSON twin is what `gthd calibrate`
    reads to know the board. The defaults are the boards the simulator renders.

    \b
    Example:
        gthd board checkerboard
        gthd board charuco --cols 8 --rows 6 --square-mm 30 --marker-mm 22 -o calibration/boards
    """
    from ..boards import board_spec, write_printable

    with user_errors():
        spec = board_spec(kind, cols, rows, square_mm, marker_mm, dictionary)
        png, js = write_printable(spec, out_dir, dpi)
    w, h = spec.size_mm
    click.echo(f"wrote {png} and {js.name}: {kind} {spec.cols}x{spec.rows} squares of {spec.square_mm:g} mm ({w:g} x {h:g} mm)")
