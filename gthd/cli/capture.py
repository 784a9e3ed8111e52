"""``gthd capture`` and ``gthd session``: record sessions, look at them."""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path

import click

from ..fileio import dumps_json
from ._common import Size, echo_lines, user_errors


@click.command()
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
@click.option("--size", "image_size", type=Size(), default="640x480", show_default=True, help="Requested camera image size.")
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

    from ..capture.engine import Capture, CaptureConfig, summary_lines
    from ..capture.sources import SourceError

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
        cam, trk = _capture_sources(camera_spec, tracker_spec, image_size, fps, fourcc, tracking_mode, seed, speed, difficulty, config, preview)
        view = None
        if preview:
            from ..calibration.files import read_calibration
            from ..capture.preview import Preview

            cal = read_calibration(calibration) if calibration is not None else None
            view = Preview(None if cal is None else (cal.camera, cal.T_cam_leap))
        elif calibration is not None:
            raise ValueError("--calibration is for the --preview window")
    finalize = None
    if sim:  # the rig's ground truth, boards and clicks belong to the session: written before its manifest
        from ..sim.sources import write_truth_for

        finalize = functools.partial(write_truth_for, cam)
    live, show = _live_line()
    try:
        with live:
            result = Capture(out, cam, trk, config).run(on_progress=show, preview=view, finalize=finalize)
    except (SourceError, OSError) as e:  # no device, wrong package, folder taken or unwritable
        raise click.ClickException(e.strerror if isinstance(e, OSError) and e.strerror else str(e)) from None
    echo_lines(summary_lines(result.summary))
    click.echo(f"wrote {out} ({result.status})")
    if result.status != "complete":
        raise click.ClickException(f"capture stopped early: {result.stop_reason}; everything captured until then is in {out}")


def _capture_sources(camera_spec, tracker_spec, size, fps, fourcc, tracking_mode, seed, speed, difficulty, config, preview):
    """Build the camera and tracker sources the options name."""
    if camera_spec == "sim":
        from ..sim.sources import sources_for_capture

        return sources_for_capture(seed, config.duration_s, config.max_frames, size, difficulty, speed)
    from ..capture.sources import open_sources

    return open_sources(camera_spec, tracker_spec, size=size, fps=fps, fourcc=fourcc, tracking_mode=tracking_mode)


def _live_line():
    """A live status line on stderr (when it is a terminal): returns (context, update)."""
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from ..capture.engine import progress_line

    console = Console(stderr=True)
    live = Live(Text(""), console=console, refresh_per_second=4, transient=True)
    if not console.is_terminal:
        return contextlib.nullcontext(), None

    def show(p) -> None:
        live.update(Text(progress_line(p)))

    return live, show


@click.group()
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
    from ..session import Session

    with user_errors():
        s = Session.open(path)
    if as_json:
        click.echo(dumps_json(s.summary()), nl=False)
        return
    echo_lines(s.summary_lines())


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
    from ..capture.check import check_session

    with user_errors():
        r = check_session(path, decode=decode, max_gap_ms=max_gap_ms)
    if as_json:  # the report on stdout; the exit status still says whether the session is usable
        click.echo(dumps_json(r.to_dict()), nl=False)
        if not r.ok:
            sys.exit(1)
        return
    echo_lines(r.facts)
    echo_lines(r.warnings, "warning: ")
    echo_lines(r.problems, "problem: ")
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
    from ..session import Session
    from ..sim.sheet import session_sheet as make_sheet

    if out.suffix.lower() != ".png":
        raise click.ClickException(f"{out}: the contact sheet is a PNG, name it *.png")
    with user_errors():
        s = Session.open(path)
        n = make_sheet(s, out, count=count, cols=cols, truth=truth)
    click.echo(f"wrote {out} ({n} frames)")
