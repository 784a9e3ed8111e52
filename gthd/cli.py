"""The ``gthd`` command line: a thin layer that parses options and calls the library.

User errors become one clear line (:class:`click.ClickException`), never a traceback.
Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path

import click

# OpenCV's own log lines ("[ WARN:0@1.2] global cap_v4l.cpp ...") say again, in its words,
# what our one-line errors say; set before any cv2 import. A user's setting wins.
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's AV_LOG_QUIET

from . import __version__
from .fileio import FormatError, dumps_json


@contextlib.contextmanager
def user_errors():
    """Turn the library's errors about bad input into one-line CLI errors."""
    try:
        yield
    except (ValueError, FileExistsError, FileNotFoundError, FormatError, NotADirectoryError) as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:  # the machine said no (a full disk, a permission): its words, one line
        where = f"{e.filename}: " if e.filename else ""
        raise click.ClickException(f"{where}{e.strerror or e}") from None


def _progress(label: str):
    """A rich progress bar on stderr; returns (context manager, callback(done, total))."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    task = progress.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return progress, update


class _Range(click.ParamType):
    """MIN:MAX as two floats."""

    name = "MIN:MAX"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            lo, hi = (float(v) for v in str(value).split(":"))
        except ValueError:
            self.fail(f"expected MIN:MAX such as 40:300, got {value!r}", param, ctx)
        return (lo, hi)


class _Size(click.ParamType):
    """WxH as two ints."""

    name = "WxH"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            w, h = (int(v) for v in str(value).lower().split("x"))
        except ValueError:
            self.fail(f"expected WIDTHxHEIGHT such as 640x480, got {value!r}", param, ctx)
        return (w, h)


def run() -> None:
    """The ``gthd`` program: :func:`main` with the exit statuses of a Unix tool: 0 done,
    1 an error (one ``Error:`` line), 2 a usage error, 130 stopped by Ctrl-C (128 +
    SIGINT; click alone says 1)."""
    try:
        status = main.main(standalone_mode=False)
    except click.ClickException as e:
        e.show()
        status = e.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("Aborted (Ctrl-C).", err=True)
        status = 130
    status = status if isinstance(status, int) else 0
    schema = sys.modules.get("gthd.dataset.schema")
    if schema is not None and schema.UNCLOSABLE:  # HDF5's own shutdown would crash on the failed file
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gthd")
def main():
    """gthd: build and benchmark 2D hand pose datasets.

    Record RGB frames and Ultraleap hand tracking, calibrate the two together, build an
    HDF5 dataset of 2D keypoints, skeleton masks and hand boxes, and benchmark the
    skeleton-aware multi-scale heatmap models on it. Every stage also runs on a
    simulated rig with ground truth (``gthd simulate``).

    \b
    Example:
        gthd simulate capture/sim-0 --seed 0 --duration 10
        gthd session sheet capture/sim-0 -o sheet.png
    """


# ---------------------------------------------------------------------------- simulate
@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True, help="The only source of randomness: same seed, same bytes.")
@click.option("--duration", type=float, default=10.0, show_default=True, help="Session length in seconds.")
@click.option("--fps", type=float, default=30.0, show_default=True, help="Camera frame rate.")
@click.option("--tracker-hz", type=float, default=110.0, show_default=True, help="Tracker frame rate.")
@click.option("--size", "image_size", type=_Size(), default="640x480", show_default=True, help="Camera image size.")
@click.option("--hand-size", type=_Range(), default="40:300", show_default=True, help="Range of hand sizes in the image (box side, px).")
@click.option(
    "--difficulty",
    type=click.Choice(["easy", "medium", "hard"]),
    default="medium",
    show_default=True,
    help="Clutter, distractors, blur, noise, light changes and tracking losses.",
)
@click.option("--offset-ms", type=float, default=None, help="True clock offset d in ms (negative: camera latency). Default: random in [-80, -20].")
@click.option("--jpeg-quality", type=int, default=None, help="JPEG quality of the frames. Default: random in [80, 95].")
@click.option("--subject-scale", type=float, default=None, help="Hand size of the subject relative to an adult (0.5-1.5). Default: random in [0.8, 1.2].")
@click.option("--boards", type=int, default=20, show_default=True, help="Views per calibration board (checkerboard and ChArUco); 0 for none.")
@click.option("--clicks", type=int, default=40, show_default=True, help="Simulated clicks for extrinsic calibration; 0 for none.")
@click.option("--click-joint", default="INDEX_TIP", show_default=True, help="The joint the simulated user clicks.")
@click.option(
    "--glitches",
    default=None,
    metavar="KINDS",
    help="Tracker failures to inject, with their truth: a comma list of flip, frozen, jump, finger, offset_jump, or all (docs/qa.md).",
)
@click.option("--force", is_flag=True, help="Replace OUT if it exists and is not empty.")
def simulate(
    out,
    seed,
    duration,
    fps,
    tracker_hz,
    image_size,
    hand_size,
    difficulty,
    offset_ms,
    jpeg_quality,
    subject_scale,
    boards,
    clicks,
    click_joint,
    glitches,
    force,
):
    """Simulate a capture session with ground truth into the folder OUT.

    Writes the raw session format that `gthd capture` writes (docs/session-format.md):
    frames, frame index, tracker stream, clock brackets, manifest; plus
    ground_truth.json (intrinsics, distortion, T_cam_leap, clock offset and drift,
    true 2D keypoints and boxes per frame), calibration board views and simulated clicks.

    \b
    Example:
        gthd simulate capture/sim-0 --seed 0 --duration 10
        gthd simulate capture/hard --seed 3 --difficulty hard --hand-size 40:150 --force
    """
    from .sim.glitches import parse_glitches
    from .sim.rig import RigConfig
    from .sim.simulate import simulate as run

    with user_errors():
        kinds = parse_glitches(glitches)
        config = RigConfig(
            duration_s=duration,
            fps=fps,
            tracker_hz=tracker_hz,
            width=image_size[0],
            height=image_size[1],
            hand_size_px=hand_size,
            difficulty=difficulty,
            clock_offset_ms=offset_ms,
            jpeg_quality=jpeg_quality,
            subject_scale=subject_scale,
        )
        bar, update = _progress("simulating")
        with bar:
            r = run(out, seed, config, boards=boards, clicks=clicks, click_joint=click_joint, force=force, progress=update, glitches=kinds)
    click.echo(
        f"wrote {r.path}: {r.frames} frames ({r.hand_frames} with a hand), {r.tracker_frames} tracker frames "
        f"({r.tracker_hand_frames} with a hand), {r.board_views} board views, {r.clicks} clicks"
    )
    click.echo(
        f"hand size (px, 5/50/95 %): {r.hand_size_px[0]:.0f} / {r.hand_size_px[1]:.0f} / {r.hand_size_px[2]:.0f}; "
        f"true clock offset d = {r.clock_offset_ms:.2f} ms"
    )


# ----------------------------------------------------------------------------- capture
@main.command()
@click.argument("out", type=click.Path(path_type=Path), required=False)
@click.option(
    "--camera",
    "camera_spec",
    default="0",
    show_default=True,
    help="Camera: a device index (0, or camera:0 as gthd predict spells it), a video file, a stream URL, or 'sim' (the simulated rig).",
)
@click.option(
    "--tracker", "tracker_spec", default="ultraleap", show_default=True, help="Tracker: 'ultraleap', a recording FILE.lmt to replay, 'sim', or 'none'."
)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (camera time). Default: until Ctrl-C (10 s with --camera sim).")
@click.option("--frames", "max_frames", type=int, default=None, help="Stop after this many camera frames.")
@click.option("--size", "image_size", type=_Size(), default="640x480", show_default=True, help="Requested camera image size.")
@click.option("--fps", type=float, default=30.0, show_default=True, help="Requested camera frame rate.")
@click.option("--fourcc", default="MJPG", show_default=True, help="Requested camera pixel format (webcams: MJPG).")
@click.option("--format", "image_format", type=click.Choice(["jpg", "png"]), default="jpg", show_default=True, help="How frames are stored.")
@click.option("--jpeg-quality", type=click.IntRange(1, 100), default=90, show_default=True, help="JPEG quality of stored frames.")
@click.option("--tracking-mode", type=click.Choice(["desktop", "hmd", "screentop"]), default="desktop", show_default=True, help="Ultraleap tracking mode.")
@click.option("--preview", is_flag=True, help="Show a live window with the tracked skeleton; q stops.")
@click.option(
    "--calibration",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A calibration.json (or a simulated ground_truth.json): the preview projects the skeleton into the image.",
)
@click.option("--subject", default=None, help="Subject id recorded in the manifest.")
@click.option(
    "--queue", "camera_queue", type=click.IntRange(1, 10000), default=64, show_default=True, help="Camera frames buffered between acquisition and disk."
)
@click.option("--seed", type=int, default=0, show_default=True, help="With --camera/--tracker sim: the simulation's seed.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="With sim sources: times real time (0: as fast as possible).")
@click.option(
    "--difficulty", type=click.Choice(["easy", "medium", "hard"]), default="medium", show_default=True, help="With sim sources: the rig's difficulty."
)
def capture(
    out,
    camera_spec,
    tracker_spec,
    duration,
    max_frames,
    image_size,
    fps,
    fourcc,
    image_format,
    jpeg_quality,
    tracking_mode,
    preview,
    calibration,
    subject,
    camera_queue,
    seed,
    speed,
    difficulty,
):
    """Record time-stamped camera frames and Ultraleap hand tracking into a session.

    OUT is a new folder (default: capture/YYYYmmdd-HHMMSS). Stop with --duration,
    --frames, Ctrl-C, or q in the --preview window; nothing captured is lost, even when
    the process is killed (see docs/capture.md). With --camera sim and --tracker sim the
    simulated rig is captured through the same engine, and its ground truth is written.

    \b
    Example:
        gthd capture capture/alice-1 --camera 0 --tracker ultraleap --subject alice
        gthd capture capture/demo --camera sim --tracker sim --duration 8 --speed 0
    """
    import datetime

    from .capture.engine import Capture, CaptureConfig, summary_lines
    from .capture.sources import SourceError

    now = datetime.datetime.now(datetime.timezone.utc)
    out = out or Path("capture") / now.astimezone().strftime("%Y%m%d-%H%M%S")
    sim = camera_spec == "sim" or tracker_spec == "sim"
    with user_errors():
        if sim and (camera_spec, tracker_spec) != ("sim", "sim"):
            raise ValueError("the simulated rig gives both streams: use --camera sim --tracker sim together")
        config = CaptureConfig(
            duration_s=duration if duration is not None or not sim else 10.0,
            max_frames=max_frames,
            image_format=image_format,
            jpeg_quality=jpeg_quality,
            camera_queue=camera_queue,
            created_utc=now.isoformat(timespec="seconds"),
            subject=subject,
            session_source="simulated" if sim else "capture",
        )
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise FileExistsError(f"{out} exists and is not empty: capture never overwrites, choose a new folder")
        cam, trk = _capture_sources(camera_spec, tracker_spec, image_size, fps, fourcc, tracking_mode, seed, speed, difficulty, config, preview)
        view = None
        if preview:
            from .calibration.files import read_calibration
            from .capture.preview import Preview

            cal = read_calibration(calibration) if calibration is not None else None
            view = Preview(None if cal is None else (cal.camera, cal.T_cam_leap))
        elif calibration is not None:
            raise ValueError("--calibration is for the --preview window")
    finalize = None
    if sim:  # the rig's ground truth, boards and clicks belong to the session: written before its manifest
        from .sim.sources import write_truth_for

        finalize = functools.partial(write_truth_for, cam)
    live, show = _live_progress()
    try:
        with live:
            result = Capture(out, cam, trk, config).run(on_progress=show, preview=view, finalize=finalize)
    except (SourceError, OSError) as e:  # no device, wrong package, folder taken or unwritable
        raise click.ClickException(e.strerror if isinstance(e, OSError) and e.strerror else str(e)) from None
    for line in summary_lines(result.summary):
        click.echo(line)
    click.echo(f"wrote {out} ({result.status})")
    if result.status != "complete":
        raise click.ClickException(f"capture stopped early: {result.stop_reason}; everything captured until then is in {out}")


def _capture_sources(camera_spec, tracker_spec, size, fps, fourcc, tracking_mode, seed, speed, difficulty, config, preview):
    """Build the camera and tracker sources the options name."""
    if camera_spec == "sim":
        from .sim.sources import sources_for_capture

        return sources_for_capture(seed, config.duration_s, config.max_frames, size, difficulty, speed)
    from .capture.sources import open_sources

    return open_sources(camera_spec, tracker_spec, size=size, fps=fps, fourcc=fourcc, tracking_mode=tracking_mode)


def _live_progress():
    """A live status line on stderr (when it is a terminal): returns (context, update)."""
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console(stderr=True)
    live = Live(Text(""), console=console, refresh_per_second=4, transient=True)
    if not console.is_terminal:
        return contextlib.nullcontext(), None

    def show(p) -> None:
        c, t = p.camera, p.tracker
        fps = c.rate() or 0.0
        hz = t.rate() or 0.0
        lost = "  TRACKER LOST" if p.tracker_lost else ""
        live.update(
            Text(
                f"{p.wall_s:6.1f} s  camera {c.written} frames {fps:5.1f} fps (drops {c.dropped}, queue {p.camera_queue}, max {c.high_water})  "
                f"tracker {t.written} frames {hz:5.1f} Hz (drops {t.dropped}, queue {p.tracker_queue})  {p.bytes_written / 1e6:.1f} MB{lost}"
            )
        )

    return live, show


# --------------------------------------------------------------------------- calibrate
@main.group(invoke_without_command=True)
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
    from .calibration import run as calib

    path = click_session or auto_session
    with user_errors():
        out = out or Path("calibration") / Path(path).resolve().name
        resumable = (out / "clicks.jsonl").exists() and clicks_file is None and click_session
        calib.check_out_folder(out, "calibration.json", force, "; clicking resumes from its clicks.jsonl" if resumable else "")
        setup = calib.prepare(path, intrinsics, joint)
        if setup.intrinsics is not None:
            for line in setup.intrinsics.lines():
                click.echo(line)
        if auto_session is not None:
            obs, source = _detect(setup, detector, n_frames)
        elif clicks_file is not None:
            obs, source, warnings = calib.observations_from_clicks_file(setup, clicks_file)
            for note in warnings:
                click.echo(f"Warning: {note}", err=True)
        else:
            out.mkdir(parents=True, exist_ok=True)  # the clicks log is kept as clicks happen (resumable)
            clicks = calib.click_in_window(setup, n_frames, out / "clicks.jsonl", ransac_px, offset_range_ms)
            obs, source = calib.observations_from_clicks(setup, clicks, out / "clicks.jsonl"), f"clicks in a window, saved to {out / 'clicks.jsonl'}"
        result = calib.solve(
            setup,
            obs,
            source,
            ransac_px=ransac_px,
            offset_range_ms=offset_range_ms,
            offset_ms=offset_ms,
            bootstrap=bootstrap,
            accept_weak=accept_weak,
            detected=auto_session is not None,
            truth=_truth(setup.session),
        )
        for note in result.warnings:
            click.echo(f"Warning: {note}", err=True)
        result.write(out)
    for line in result.lines:
        click.echo(line)
    click.echo(f"wrote {out / 'calibration.json'}, report.txt, overlay.png, offset.png")


def _truth(session) -> dict | None:
    """A simulated session's ground truth, for the reports' errors against it."""
    if not session.has_ground_truth:
        return None
    from .sim.truth import session_truth

    return session_truth(session)


def _detect(setup, detector: str, n_frames: int):
    """--auto: a keypoint detector over 4 x n_frames frames, with a progress bar."""
    from .calibration.click_window import choose_frames
    from .calibration.detectors import MediaPipeHands, observations_from_detector

    if detector == "simulated":
        from .sim.detector import SimulatedDetector

        if not setup.session.has_ground_truth:
            raise ValueError("--detector simulated needs a simulated session (with ground_truth.json)")
        det = SimulatedDetector(setup.session.path)
    else:
        det = MediaPipeHands()
    frames = choose_frames(setup.session, setup.joint, n=4 * n_frames)
    bar, update = _progress("detecting")
    with bar:
        obs = observations_from_detector(setup.session, det, frames, progress=update)
    return obs, f"--auto ({det.name} on {len(frames)} frames)"


def _command() -> str:
    """The exact command line, for reports."""
    from .calibration.run import command_line

    return command_line()


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
    from .calibration.run import redraw
    from .fileio import atomic_write_bytes

    with user_errors():
        if file.is_dir():
            file = next((file / n for n in ("calibration.json", "intrinsics.json") if (file / n).is_file()), file / "calibration.json")
        lines, pictures = redraw(file, truth_of=_truth)
        out = out or file.parent
        out.mkdir(parents=True, exist_ok=True)
        for name, data in pictures.items():
            atomic_write_bytes(out / name, data)
    for line in lines:
        click.echo(line)
    click.echo(f"wrote {', '.join(str(out / n) for n in pictures)}")


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
    from .calibration import run as calib

    with user_errors():
        calib.check_out_folder(out, "intrinsics.yaml", force)
        truth = None
        if source.is_dir() and (source / "manifest.json").exists():
            from .session import Session

            truth = _truth(Session.open(source))
        result = calib.calibrate_intrinsics(source, board, truth)
        result.write(out)  # last: every input was read
    for line in result.lines():
        click.echo(line)
    click.echo(f"wrote {out / 'intrinsics.yaml'}, intrinsics.json, intrinsics.png")


# ----------------------------------------------------------------------- build-dataset
@main.command("build-dataset")
@click.argument("sessions", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--calibration",
    "calibrations",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="calibration.json: one for all sessions, or one per session in order (repeat the option).",
)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The HDF5 file to write.")
@click.option(
    "--split-by",
    type=click.Choice(["random", "subject", "session"]),
    default="random",
    show_default=True,
    help="Random 75/10/15 (the paper), or whole subjects/sessions per split.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split and of the NoHand cap.")
@click.option(
    "--thickness",
    type=click.Choice(["thin", "medium", "thick"]),
    default="thick",
    show_default=True,
    help="Skeleton line width (the paper found thick most robust).",
)
@click.option("--box-margin", type=click.FloatRange(0, 1), default=0.05, show_default=True, help="Hand box margin, times its larger side.")
@click.option("--crop-margin", type=click.FloatRange(0, 2), default=0.25, show_default=True, help="Square crop margin around the box.")
@click.option("--nohand-share", type=click.FloatRange(0, 0.95), default=0.2, show_default=True, help="Most NoHand samples as a share of all.")
@click.option(
    "--nohand-guard-ms",
    type=click.FloatRange(0, 10000),
    default=500.0,
    show_default=True,
    help="A frame is NoHand only if the tracker saw no hand within +-this.",
)
@click.option("--max-gap-ms", type=click.FloatRange(1, 1000), default=50.0, show_default=True, help="Widest tracker gap to interpolate across.")
@click.option(
    "--smooth-ms",
    type=click.FloatRange(0, 200),
    default=0.0,
    show_default=True,
    help="Fit the tracked joints linearly over +-this (averages tracker noise; 0: plain interpolation).",
)
@click.option(
    "--hand",
    "hand_side",
    type=click.Choice(["any", "left", "right"]),
    default="any",
    show_default=True,
    help="Label only this hand; any: either (one hand per frame, followed by its id: docs/dataset.md).",
)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="Worker processes that decode and draw (1: in this process).")
@click.option(
    "--qa",
    "qa_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A session's gthd qa report (qa.json; repeat per session): its flagged frames are recorded in the file (docs/qa.md).",
)
@click.option("--drop-flagged", is_flag=True, help="Leave out the frames the --qa reports flag.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def build_dataset_cmd(
    sessions,
    calibrations,
    out,
    split_by,
    seed,
    thickness,
    box_margin,
    crop_margin,
    nohand_share,
    nohand_guard_ms,
    max_gap_ms,
    smooth_ms,
    hand_side,
    workers,
    qa_files,
    drop_flagged,
    force,
):
    """Build an HDF5 dataset from sessions and their calibration.

    Projects the tracked 3D joints (at each frame's time plus the calibrated clock
    offset) into 2D keypoints, draws the skeleton masks, computes the hand boxes and
    caches 128x128 hand crops; frames where the tracker saw no hand become NoHand
    samples. Schema: docs/dataset-format.md.

    \b
    Example:
        gthd build-dataset capture/alice-1 capture/bob-1 --calibration calibration/rig/calibration.json -o gthd.h5
        gthd build-dataset capture/demo --calibration calibration/demo/calibration.json -o demo.h5 --split-by session
    """
    from .dataset.build import build_dataset

    with user_errors():
        flagged = None
        if qa_files:
            from .qa.report import flagged_frames

            flagged = flagged_frames(list(qa_files))
        bar, update = _progress("building")
        with bar:
            report = build_dataset(
                list(sessions),
                list(calibrations),
                out,
                split_by=split_by,
                seed=seed,
                thickness=thickness,
                box_margin=box_margin,
                crop_margin=crop_margin,
                nohand_share=nohand_share,
                nohand_guard_ms=nohand_guard_ms,
                max_gap_ms=max_gap_ms,
                smooth_ms=smooth_ms,
                workers=workers,
                hand_type=None if hand_side == "any" else hand_side,
                force=force,
                attrs={"command": _command()},
                progress=update,
                qa=flagged,
                drop_flagged=drop_flagged,
            )
    for line in report.lines():
        click.echo(line)
    click.echo(f"wrote {out}")


# ---------------------------------------------------------------------------------- qa
@main.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--calibration",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The session's calibration.json (required for a session; not for a dataset file).",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Report folder. Default: SESSION/qa, or DATASET-qa beside a dataset file.",
)
@click.option(
    "--run",
    "run_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A gthd benchmark run: its detector and pose network score the labels against the images.",
)
@click.option(
    "--hand",
    "hand_side",
    type=click.Choice(["any", "left", "right"]),
    default="any",
    show_default=True,
    help="The hand the labels are made of, as for build-dataset.",
)
@click.option("--no-time", is_flag=True, help="Skip the time check (it reads every labelled frame).")
@click.option("--sheet", type=click.IntRange(0, 32), default=8, show_default=True, help="Flagged frames on the report's contact sheet.")
def qa(source, calibration, out, run_dir, hand_side, no_time, sheet):
    """Find the frames whose labels are wrong, before anyone trains on them.

    For a session (with its calibration): the tracker's self-consistency (flips,
    jumps, frozen hands, snapped fingers, bone lengths, speeds, hand type, the tracker's
    volume), the clock offset re-estimated along the session from the images (a jump
    of it found and located, a drift shown), and with --run the labels against a trained detector
    and pose network. For a dataset file: the tracker checks on its 3D joints.
    Writes qa.csv (per frame), qa.json (for scripts and build-dataset --qa), qa.txt
    and qa.png (timeline and contact sheet). docs/qa.md.

    \b
    Example:
        gthd qa capture/demo --calibration calibration/demo/calibration.json -o capture/demo/qa
        gthd build-dataset capture/demo --calibration calibration/demo/calibration.json -o demo.h5 --qa capture/demo/qa/qa.json --drop-flagged
        gthd qa demo.h5
    """
    from .qa.report import write_report
    from .qa.runner import QAOptions, qa_dataset, qa_session

    with user_errors():
        if not source.exists():
            raise FileNotFoundError(f"{source}: no such session folder or dataset file")
        if source.is_file():
            if calibration is not None or run_dir is not None:
                raise ValueError("a dataset file is checked from the file alone: --calibration and --run are for sessions")
            result = qa_dataset(source)
            out = out or source.with_name(source.stem + "-qa")
        else:
            if calibration is None:
                raise ValueError(f"{source}: a session needs its --calibration (calibration.json from gthd calibrate)")
            bar, update = _progress("checking")
            with bar:
                options = QAOptions(hand_type=None if hand_side == "any" else hand_side, time_check=not no_time)
                result = qa_session(source, calibration, run=run_dir, options=options, progress=lambda stage, done, total: update(done, total))
            out = out or source / "qa"
        files = write_report(result, out, sheet=sheet, extra={"calibration": None if calibration is None else str(calibration), "command": _command()})
    from .qa.report import text_lines

    for line in text_lines(result):
        click.echo(line)
    click.echo(f"wrote {out}/: " + ", ".join(p.name for p in files.values()))


@main.command()
@click.argument("dataset", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write a contact sheet PNG here.")
@click.option("-n", "--count", type=click.IntRange(1, 100), default=16, show_default=True, help="Samples on the sheet.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (for scripts).")
def inspect(dataset, sheet, count, as_json):
    """Show what a dataset holds: counts, splits, hand sizes, joints out of view.

    With --sheet, a contact sheet PNG of random samples with their keypoints,
    skeleton mask and hand box drawn.

    \b
    Example:
        gthd inspect gthd.h5 --sheet gthd-sheet.png
    """
    from .dataset.inspect import contact_sheet_png, summary, summary_lines

    with user_errors():
        lines = summary_lines(dataset) if not as_json else []
        d = summary(dataset) if as_json else None
        if sheet is not None:
            n = contact_sheet_png(dataset, sheet, count=count)
            lines.append(f"wrote {sheet} ({n} samples)")
    if as_json:
        click.echo(dumps_json(d), nl=False)
        return
    for line in lines:
        click.echo(line)


# --------------------------------------------------------------------------- benchmark
@main.command()
@click.argument("dataset", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--profile",
    default="quick",
    show_default=True,
    help='A shipped profile by name (quick, paper, long, ours-long, thickness), a profile JSON file, or a run\'s config.json; fields a file leaves out come from quick (or the profile its "inherits" names).',
)
@click.option(
    "-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="The run folder. Default: benchmark/runs/<dataset>-<profile>/."
)
@click.option("--seed", type=int, default=0, show_default=True, help="The first seed (the same seed, data, machine and threads give the same numbers).")
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=None,
    help="Train every model with this many seeds (seed, seed+1, ...) and report mean ± std. Default: the profile's (1 for quick and paper).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the leaderboard as JSON (leaderboard.json) instead of tables.")
def benchmark(dataset, profile, out, seed, seeds, as_json):
    """Train and score the paper's models and baselines on a dataset; print the leaderboard.

    Trains what the run folder does not have yet (checkpoints are kept: a re-run
    reuses or resumes them; with --seeds N, the seeds beyond the first train in
    RUN/seeds/<seed>/), scores every method on the test split and writes
    leaderboard.md, .csv, .json, pck.png (PCK curves), thresholds.png (Hand/NoHand F1
    against the detector's threshold, per skeleton thickness), qualitative.png (direct
    regression | ours | ground truth), config.json and run.json (for `gthd predict`).

    Pose methods: the skeleton-aware multi-scale network ("ours", fed the detector's
    skeleton as in the paper's pipeline, and again with the true skeleton), without
    the skeleton, single-scale UNet heatmaps, ResNet-50 direct regression, beside a
    constant pose (the training mean: a method that does not beat it has learnt
    nothing), all on the ground-truth crops (the paper's Table II protocol); and the
    whole pipeline end to end (the detector's box and skeleton, then ours). Detection:
    the skeleton UNet at each skeleton thickness of the profile and a box-regression
    CNN standing in for the paper's Faster R-CNN.

    \b
    Example:
        gthd benchmark benchmark/datasets/demo.h5 --profile quick
        gthd benchmark gthd.h5 --profile paper --out benchmark/runs/gthd-paper
        gthd benchmark benchmark/datasets/demo.h5 --profile quick --seeds 3
    """
    from rich.console import Console

    from .benchmark.leaderboard import _jsonable
    from .benchmark.run import Profile, run_benchmark

    tty = sys.stderr.isatty()
    bar, update = _progress("training")
    current = {"label": None}

    def on_batch(label, done, total):
        if label != current["label"]:
            current["label"] = label
            bar.update(bar.task_ids[0], description=f"training {label[:40]}")
        update(done, total)

    def on_epoch(p):
        if not tty:  # a log, not a terminal: one line per epoch instead of the bar
            click.echo(f"  epoch {p['epoch']}/{p['epochs']} loss {p['loss']:.5g} ({p['samples_per_s']:.0f} samples/s)", err=True)

    with user_errors(), bar:
        prof = Profile.load(profile)
        out = out or Path("benchmark") / "runs" / f"{dataset.stem}-{prof.name}"
        board = run_benchmark(
            dataset,
            prof,
            out,
            seed=seed,
            seeds=seeds,
            progress=on_epoch,
            on_batch=on_batch,
            log=lambda m: bar.console.print(f"[bold]{m}[/bold]") if tty else click.echo(m, err=True),
        )
    if as_json:  # leaderboard.json on stdout, nothing else
        click.echo(dumps_json(_jsonable(board.to_dict())), nl=False)
        return
    console = Console(width=None if sys.stdout.isatty() else 160)  # a log file: room for every column
    for table in board.rich_table():
        console.print(table)
    written = [p.name for p in sorted(Path(out).iterdir()) if p.is_file()]
    click.echo(f"wrote {out}: {', '.join(written)}")


# ----------------------------------------------------------------------------- predict
@main.command()
@click.argument("source")
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A benchmark run folder (with run.json), as `gthd benchmark` writes it.",
)
@click.option("--method", default="ours", show_default=True, help='The run\'s pose method: its label ("ours w/o skeleton") or builder name (multiscale_plain).')
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Images: a folder for the drawn images (same names). Videos and cameras: an .mp4 file. "
    "Default: SOURCE-predict/ or SOURCE-predict.mp4 next to SOURCE (a camera writes nothing without it).",
)
@click.option(
    "--jsonl",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The predictions file. Default: OUT/predictions.jsonl for images, OUT with .jsonl for videos.",
)
@click.option("--show", is_flag=True, help="Also show each drawn image or video frame in a window (images: any key for the next; q/Esc stops).")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after this many frames or images.")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where the networks run: auto picks cuda, then mps, then cpu.",
)
def predict(source, run_dir, method, out, jsonl, show, max_frames, device):
    """Find the hand and its 21 keypoints in new images, videos or a camera with a trained run.

    SOURCE is an image (.jpg .jpeg .png .bmp), a folder of images, a video file, or a
    camera: camera:0 (or just 0), shown live in a window until q or Esc. The run's
    skeleton UNet finds the hand (Hand/NoHand by its threshold, the box), the pose
    network --method places the 21 keypoints. Writes the frames with the box, skeleton
    and detector score drawn, and one JSON line per frame: {"source", "has_hand",
    "score", "box", "keypoints"} in frame pixels (docs/predict.md).

    \b
    Example:
        gthd predict hand.jpg --run benchmark/runs/demo-quick
        gthd predict frames/ --run benchmark/runs/demo-quick -o frames-predict/
        gthd predict clip.mp4 --run benchmark/runs/demo-quick --method "ours w/o skeleton" --show
        gthd predict camera:0 --run benchmark/runs/demo-quick -o webcam.mp4 --max-frames 600
    """
    from .benchmark.predict import load_run, predict_source, source_kind
    from .benchmark.train import pick_device

    with user_errors():
        kind = source_kind(source)
        if kind == "camera" and show:
            click.echo("note: a camera is always shown in a window; --show changes nothing", err=True)
        pipeline = load_run(run_dir, method=method, device=pick_device(device))
        bar, update = _progress("predicting")
        with bar:
            r = predict_source(pipeline, source, out=out, jsonl=jsonl, show=show, max_frames=max_frames, progress=update)
    what = ("drawn image" if kind in ("image", "folder") else "drawn frame") + ("" if r.frames == 1 else "s")
    timing = f"on {pipeline.device}, {r.seconds:.1f} s"
    if r.out is None:
        click.echo(f"{r.frames} frame{'' if r.frames == 1 else 's'} ({r.with_hand} with a hand, {timing}); nothing written (--out FILE.mp4 writes them)")
    else:
        click.echo(f"wrote {r.out}: {r.frames} {what} ({r.with_hand} with a hand, {timing}); predictions in {r.jsonl}")
    if r.stopped:
        click.echo(f"stopped after {r.frames} frame{'' if r.frames == 1 else 's'} (q, Esc, the window closed, or Ctrl-C)", err=True)


# --------------------------------------------------------------------- import / export
@main.group("export")
def export_group():
    """Export a gthd dataset to other toolboxes' formats.

    \b
    Example:
        gthd export coco gthd.h5 exported/
    """


@export_group.command("coco")
@click.argument("dataset", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--split", "splits", multiple=True, type=click.Choice(["train", "val", "test"]), help="Splits to export (repeat; default all).")
@click.option("--force", is_flag=True, help="Write into a non-empty OUT.")
def export_coco_cmd(dataset, out, splits, force):
    """COCO keypoint JSON + images, in the layout of mmpose's hand datasets.

    Writes OUT/images/ (the frames as stored) and OUT/annotations/<split>.json (bbox
    xywh, keypoints [x, y, v] x 21 in gthd's order, which is mmpose's hand order).

    \b
    Example:
        gthd export coco gthd.h5 exported/ --split train --split val
    """
    from .dataset.coco import export_coco

    with user_errors():
        bar, update = _progress("exporting")
        with bar:
            r = export_coco(dataset, out, tuple(splits) or ("train", "val", "test"), force=force, progress=update)
    click.echo(f"wrote {out}: {r['images']} images, {r['annotations']} hand annotations ({r['nohand']} images without a hand)")


@main.group("import")
def import_group():
    """Import public hand datasets into gthd's dataset format.

    \b
    Example:
        gthd import coco onehand10k/annotations/onehand10k_test.json onehand10k/ -o onehand10k.h5
        gthd import lsmv LSMV/ -o lsmv.h5
    """


@import_group.command("coco")
@click.argument("annotations", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("images", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The HDF5 file to write.")
@click.option("--split", type=click.Choice(["train", "val", "test", "random"]), default=None, help="Split of every sample, or random 75/10/15. Default: train.")
@click.option("--joint-order", type=click.Choice(["auto", "coco", "rhd"]), default="auto", show_default=True, help="The file's joint order (RHD has its own).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def import_coco_cmd(annotations, images, out, split, joint_order, seed, force):
    """A COCO-style hand keypoint set (OneHand10K, FreiHAND, CMU Panoptic, RHD as mmpose ships them).

    \b
    Example:
        gthd import coco annotations/freihand_train.json images/ -o freihand.h5 --split random
    """
    from .dataset.coco import import_coco

    with user_errors():
        bar, update = _progress("importing")
        with bar:
            r = import_coco(annotations, images, out, split=split, seed=seed, joint_order=joint_order, force=force, progress=update)
    for w in r.get("warnings", []):
        click.echo(f"warning: {w}")
    click.echo(f"wrote {out}: {r['samples']} samples ({r['hand']} hands, {r['nohand']} without) from {r['images']} images, joint order {r['joint_order']}")


@import_group.command("lsmv")
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The HDF5 file to write.")
@click.option("--camera", "cameras", multiple=True, type=click.IntRange(1, 4), help="Webcams to import (repeat; default all 4).")
@click.option(
    "--split-by", type=click.Choice(["random", "sequence"]), default="random", show_default=True, help="Random 75/10/15, or whole sequences per split."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--limit", type=click.IntRange(1, None), default=None, help="Import only the first N images (a quick look).")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def import_lsmv_cmd(root, out, cameras, split_by, seed, limit, force):
    """The LSMV multiview hand dataset (Gomez-Donoso et al.), release 1 or 2 layout.

    Its 20 finger joints go into gthd's order (no wrist: marked not visible), its palm
    point into /labels/palm; release 2's calibration pickles are read with an unpickler
    that admits numpy arrays only.

    \b
    Example:
        gthd import lsmv LSMV/ -o benchmark/datasets/lsmv.h5 --split-by sequence
    """
    from .dataset.lsmv import import_lsmv, report_lines

    with user_errors():
        bar, update = _progress("importing")
        with bar:
            r = import_lsmv(root, out, cameras=tuple(cameras) or (1, 2, 3, 4), split_by=split_by, seed=seed, force=force, limit=limit, progress=update)
    for line in report_lines(r):
        click.echo(line)
    click.echo(f"wrote {out}")


# ------------------------------------------------------------------------------- board
@main.command()
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
    from .boards import DEFAULT_BOARDS, BoardSpec, board_name, printable_png, write_board_file
    from .fileio import atomic_write_bytes

    default = DEFAULT_BOARDS[kind]
    cols, rows, square_mm = cols or default.cols, rows or default.rows, square_mm or default.square_mm
    with user_errors():
        spec = BoardSpec(kind, cols, rows, square_mm, *((marker_mm, dictionary) if kind == "charuco" else (None, None)))
        png = printable_png(spec, dpi)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = out_dir / board_name(spec)
        atomic_write_bytes(stem.with_suffix(".png"), png)
        write_board_file(stem.with_suffix(".json"), spec)
    w, h = spec.size_mm
    click.echo(f"wrote {stem}.png and {stem.name}.json: {kind} {cols}x{rows} squares of {square_mm:g} mm ({w:g} x {h:g} mm)")


# ----------------------------------------------------------------------------- session
@main.group()
def session():
    """Look at a raw session folder (captured or simulated).

    \b
    Example:
        gthd session info capture/sim-0
        gthd session sheet capture/sim-0 -o sheet.png
    """


@session.command("info")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON (for scripts).")
def session_info(path, as_json):
    """Print what a session holds: status, streams, rates and time span.

    \b
    Example:
        gthd session info capture/sim-0
    """
    from .session import Session

    with user_errors():
        s = Session.open(path)
    if as_json:
        click.echo(dumps_json(s.summary()), nl=False)
        return
    for line in s.summary_lines():
        click.echo(line)


@session.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--decode", is_flag=True, help="Decode every frame (slow), not only the first and last.")
@click.option("--max-gap-ms", type=float, default=50.0, show_default=True, help="Widest tracker gap to interpolate across.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (exit status 1 if unusable).")
def session_check(path, decode, max_gap_ms, as_json):
    """Validate a session and report what is usable.

    Reads what a killed capture left too: everything flushed before the kill is used,
    a torn last line is skipped. Exits non-zero if the session has problems that make
    it unusable.

    \b
    Example:
        gthd session check capture/alice-1
        gthd session check capture/alice-1 --decode
    """
    from .capture.check import check_session

    with user_errors():
        r = check_session(path, decode=decode, max_gap_ms=max_gap_ms)
    if as_json:  # the report on stdout; the exit status still says whether the session is usable
        click.echo(dumps_json(r.to_dict()), nl=False)
        if not r.ok:
            sys.exit(1)
        return
    for line in r.facts:
        click.echo(line)
    for line in r.warnings:
        click.echo(f"warning: {line}")
    for line in r.problems:
        click.echo(f"problem: {line}")
    if not r.ok:
        raise click.ClickException(f"{path}: {len(r.problems)} problem{'s' * (len(r.problems) > 1)}: not usable as it is")
    click.echo(f"ok: {r.usable_frames} usable frames")


@session.command("sheet")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="The PNG to write.")
@click.option("-n", "--count", type=click.IntRange(1, 100), default=12, show_default=True, help="How many frames, spread over the session.")
@click.option("--cols", type=click.IntRange(1, 10), default=4, show_default=True, help="Tiles per row.")
@click.option("--truth/--no-truth", default=True, show_default=True, help="Draw the true keypoints and boxes (simulated sessions).")
def session_sheet(path, out, count, cols, truth):
    """Write a contact sheet PNG of frames spread over a session.

    On a simulated session the true keypoints, skeleton and hand box are drawn on each
    frame.

    \b
    Example:
        gthd session sheet capture/sim-0 -o capture/sim-0/sheet.png -n 16
    """
    from .session import Session
    from .sim.sheet import session_sheet as make_sheet

    if out.suffix.lower() != ".png":
        raise click.ClickException(f"{out}: the contact sheet is a PNG, name it *.png")
    with user_errors():
        s = Session.open(path)
        n = make_sheet(s, out, count=count, cols=cols, truth=truth)
    click.echo(f"wrote {out} ({n} frames)")


if __name__ == "__main__":
    main()
