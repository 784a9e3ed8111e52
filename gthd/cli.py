"""The ``gthd`` command line: a thin layer that parses options and calls the library.

User errors become one clear line (:class:`click.ClickException`), never a traceback.
Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from . import __version__
from .fileio import FormatError


@contextlib.contextmanager
def user_errors():
    """Turn the library's errors about bad input into one-line CLI errors."""
    try:
        yield
    except (ValueError, FileExistsError, FileNotFoundError, FormatError, NotADirectoryError) as e:
        raise click.ClickException(str(e)) from None


def _progress(label: str):
    """A rich progress bar on stderr; returns (context manager, callback(done, total))."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty(),
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
@click.option("--difficulty", type=click.Choice(["easy", "medium", "hard"]), default="medium", show_default=True,
              help="Clutter, distractors, blur, noise, light changes and tracking losses.")
@click.option("--offset-ms", type=float, default=None, help="True clock offset d in ms (negative: camera latency). Default: random in [-80, -20].")
@click.option("--jpeg-quality", type=int, default=None, help="JPEG quality of the frames. Default: random in [80, 95].")
@click.option("--subject-scale", type=float, default=None, help="Hand size of the subject relative to an adult (0.5-1.5). Default: random in [0.8, 1.2].")
@click.option("--boards", type=int, default=12, show_default=True, help="Views per calibration board (checkerboard and ChArUco); 0 for none.")
@click.option("--clicks", type=int, default=40, show_default=True, help="Simulated clicks for extrinsic calibration; 0 for none.")
@click.option("--click-joint", default="INDEX_TIP", show_default=True, help="The joint the simulated user clicks.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists and is not empty.")
def simulate(out, seed, duration, fps, tracker_hz, image_size, hand_size, difficulty, offset_ms, jpeg_quality, subject_scale, boards, clicks, click_joint, force):
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
    from .sim.rig import RigConfig
    from .sim.simulate import simulate as run

    with user_errors():
        config = RigConfig(
            duration_s=duration, fps=fps, tracker_hz=tracker_hz, width=image_size[0], height=image_size[1],
            hand_size_px=hand_size, difficulty=difficulty, clock_offset_ms=offset_ms,
            jpeg_quality=jpeg_quality, subject_scale=subject_scale,
        )
        bar, update = _progress("simulating")
        with bar:
            r = run(out, seed, config, boards=boards, clicks=clicks, click_joint=click_joint, force=force, progress=update)
    click.echo(f"wrote {r.path}: {r.frames} frames ({r.hand_frames} with a hand), {r.tracker_frames} tracker frames "
               f"({r.tracker_hand_frames} with a hand), {r.board_views} board views, {r.clicks} clicks")
    click.echo(f"hand size (px, 5/50/95 %): {r.hand_size_px[0]:.0f} / {r.hand_size_px[1]:.0f} / {r.hand_size_px[2]:.0f}; "
               f"true clock offset d = {r.clock_offset_ms:.2f} ms")


# ------------------------------------------------------------------------------- board
@main.command()
@click.argument("kind", type=click.Choice(["checkerboard", "charuco"]))
@click.option("--cols", type=int, default=None, help="Squares across. Default: 10 (checkerboard), 8 (charuco).")
@click.option("--rows", type=int, default=None, help="Squares down. Default: 7 (checkerboard), 6 (charuco).")
@click.option("--square-mm", type=float, default=None, help="Square side in mm. Default: 25 (checkerboard), 30 (charuco).")
@click.option("--marker-mm", type=float, default=22.0, show_default=True, help="ArUco marker side in mm (charuco).")
@click.option("--dictionary", default="DICT_5X5_100", show_default=True, help="ArUco dictionary (charuco).")
@click.option("--dpi", type=float, default=300.0, show_default=True, help="Print resolution.")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("calibration/boards"), show_default=True, help="Folder for the PNG and its board.json twin.")
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
    from .boards import BoardSpec, board_name, printable_png
    from .fileio import atomic_write_bytes, dumps_json

    default = {"checkerboard": (10, 7, 25.0), "charuco": (8, 6, 30.0)}[kind]
    cols, rows, square_mm = cols or default[0], rows or default[1], square_mm or default[2]
    with user_errors():
        spec = BoardSpec(kind, cols, rows, square_mm, *((marker_mm, dictionary) if kind == "charuco" else (None, None)))
        png = printable_png(spec, dpi)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = out_dir / board_name(spec)
        atomic_write_bytes(stem.with_suffix(".png"), png)
        atomic_write_bytes(stem.with_suffix(".json"), dumps_json({"format": "gthd-board", "format_version": 1, **spec.to_dict()}).encode())
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
def session_info(path):
    """Print what a session holds: status, streams, rates and time span.

    \b
    Example:
        gthd session info capture/sim-0
    """
    from .session import Session

    with user_errors():
        s = Session.open(path)
    for line in _describe(s):
        click.echo(line)


def _describe(s) -> list[str]:
    import numpy as np

    m = s.manifest
    lines = [f"session {m['session_id']} ({m['source']}), status {m['status']}"]
    w, h = s.camera_size
    if len(s.frames) >= 2:
        span = (s.frames.t_host_ns[-1] - s.frames.t_host_ns[0]) / 1e9
        gaps = int(np.sum(np.diff(s.frames.seq) > 1)) if (s.frames.seq >= 0).all() else 0
        lines.append(f"camera: {len(s.frames)} frames {w}x{h} over {span:.2f} s ({(len(s.frames) - 1) / span:.2f} fps), {gaps} sequence gaps")
    else:
        lines.append(f"camera: {len(s.frames)} frames {w}x{h}")
    n_hand = sum(bool(hs) for hs in s.tracker.hands)
    if len(s.tracker) >= 2:
        span = (s.tracker.t_host_ns[-1] - s.tracker.t_host_ns[0]) / 1e9
        lines.append(f"tracker: {len(s.tracker)} frames ({n_hand} with a hand) over {span:.2f} s ({(len(s.tracker) - 1) / span:.1f} Hz)")
    else:
        lines.append(f"tracker: {len(s.tracker)} frames ({n_hand} with a hand)")
    lines.append(f"clock brackets: {len(s.clock)}")
    boards = s.boards()
    if boards:
        lines.append("boards: " + ", ".join(f"{k} ({len(v)} views)" for k, v in boards.items()))
    torn = {k: v for k, v in s.torn.items() if v}
    if torn:
        lines.append("torn log lines skipped: " + ", ".join(f"{k} {v}" for k, v in torn.items()))
    if s.has_ground_truth:
        lines.append("ground truth: yes (simulated)")
    return lines


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
