"""``gthd calibrate`` as library calls: the intrinsics from board views, and the
tracker-to-camera extrinsics with the clock offset from clicked (or detected) joints.

Each workflow computes and checks everything first and returns an object whose
``write(out)`` writes the files last, ``calibration.json`` the very last (its presence
says the calibration is done): a failure anywhere leaves no partial output. The CLI
parses, makes these calls and prints; the click window and progress bars are the
caller's, passed in.

Example::

    from gthd.calibration import run as calib

    setup = calib.prepare(Path("capture/alice-1"), intrinsics=Path("calibration/cam/intrinsics.yaml"))
    obs, source, warnings = calib.observations_from_clicks_file(setup, Path("clicks.jsonl"))
    result = calib.solve(setup, obs, source)
    result.write(Path("calibration/alice-1"))
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..boards import board_from_arg
from ..fileio import atomic_write_bytes, read_input
from ..geometry import Camera
from ..hand import JOINT_INDEX
from ..session import Session
from .extrinsics import Observations, solve_extrinsics
from .files import Calibration, check_clicks, read_clicks, read_intrinsics, write_calibration, write_intrinsics
from .intrinsics import BoardViews, IntrinsicsResult, views_from_folder, views_from_session, views_from_video
from .intrinsics import calibrate as calibrate_views
from .report import extrinsics_lines, intrinsics_png, intrinsics_png_bytes, intrinsics_truth_line, offset_png, overlay_png, truth_lines


def command_line() -> str:
    """The command line as typed, for reports and the files' provenance."""
    return "gthd " + " ".join(shlex.quote(a) for a in sys.argv[1:])


# -------------------------------------------------------------------------- intrinsics
def board_views(source: Path, board: str | None) -> BoardViews:
    """The board views of a session (its own boards; with ``board``, that one if it has
    it), a folder of images or a video (``board`` required: a kind or a board.json)."""
    if source.is_dir() and (source / "manifest.json").exists():
        found = views_from_session(source)
        if board is not None:
            spec = board_from_arg(board)
            found = {k: v for k, v in found.items() if v.spec == spec} or found
        # the board with the most detected corners (a checkerboard's are all found, and
        # more precisely: it wins a tie with ChArUco)
        return max(found.values(), key=lambda v: sum(len(x.detection.ids) for x in v))
    if board is None:
        raise ValueError("--board is needed for a folder or a video: a board.json (gthd board writes one), checkerboard or charuco")
    if source.is_dir():
        return views_from_folder(source, board_from_arg(board))
    if source.is_file():
        return views_from_video(source, board_from_arg(board))
    raise ValueError(f"{source}: no such folder, video or session")


@dataclass
class IntrinsicsRun:
    """Calibrated intrinsics, not yet written."""

    result: IntrinsicsResult
    views: BoardViews
    source: Path
    command: str
    truth_line: str | None = None  # against a simulated session's ground truth

    def lines(self) -> list[str]:
        return self.result.report_lines(self.command) + ([self.truth_line] if self.truth_line else [])

    def write(self, out: Path) -> list[Path]:
        """intrinsics.yaml/.json and intrinsics.png in ``out`` (each atomically)."""
        out.mkdir(parents=True, exist_ok=True)
        quality = {**self.result.quality(), "source": str(self.source), "command": self.command}
        paths = list(write_intrinsics(out / "intrinsics", self.result.camera, quality, self.result.detections()))
        intrinsics_png(self.result, out / "intrinsics.png")
        return [*paths, out / "intrinsics.png"]


def calibrate_intrinsics(source: Path, board: str | None = None, truth: dict | None = None, command: str | None = None) -> IntrinsicsRun:
    """Calibrate the intrinsics from ``source``'s board views (:func:`board_views`);
    ``truth``: a simulated session's ground truth to compare with. Nothing is written."""
    views = board_views(source, board)
    result = calibrate_views(views, views.spec)
    return IntrinsicsRun(result, views, source, command or command_line(), None if truth is None else intrinsics_truth_line(result.camera, truth))


def intrinsics_to_folder(source: Path, out: Path, board: str | None = None, force: bool = False, truth_of=None) -> IntrinsicsRun:
    """`gthd calibrate intrinsics`: calibrate from ``source`` (:func:`board_views`) and
    write intrinsics.yaml/.json and intrinsics.png to ``out``, last, once every input was
    read. ``truth_of(session)``: a simulated session's ground truth (or None), when
    ``source`` is a session.

    Raises:
        FileExistsError: ``out`` holds intrinsics (without ``force``).
    """
    check_out_folder(out, "intrinsics.yaml", force)
    truth = None
    if truth_of is not None and source.is_dir() and (source / "manifest.json").exists():
        truth = truth_of(Session.open(source))
    run = calibrate_intrinsics(source, board, truth)
    run.write(out)
    return run


def check_out_folder(out: Path, main_file: str, force: bool, hint: str = "") -> None:
    """Refuse to replace ``out/main_file`` without ``force``, or an ``out`` that is a file."""
    if (out / main_file).exists() and not force:
        raise FileExistsError(f"{out / main_file} exists (use --force to replace it{hint}, or -o another folder)")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a folder: -o takes a folder")


# -------------------------------------------------------------------------- extrinsics
@dataclass
class ExtrinsicsSetup:
    """A session opened for calibrating, with its camera: from an intrinsics file, or
    calibrated here from the session's board views (``intrinsics``: written with the rest)."""

    session: Session
    camera: Camera
    joint: str
    intrinsics: IntrinsicsRun | None = None


def prepare(session_path: Path, intrinsics: Path | None = None, joint: str = "INDEX_TIP", command: str | None = None) -> ExtrinsicsSetup:
    """Open the session and find its camera; every input checked, nothing written.

    Raises:
        ValueError: an unknown joint, a session where the tracker saw no hand, no
            intrinsics (neither a file nor board views), intrinsics of another resolution.
        FormatError: an unreadable session or intrinsics file.
    """
    if joint not in JOINT_INDEX:
        raise ValueError(f"unknown joint {joint!r}; one of {', '.join(JOINT_INDEX)}")
    session = Session.open(session_path)
    if not any(session.tracker.hands):
        raise ValueError(f"{session_path}: the tracker saw no hand in this session: nothing to calibrate against")
    if intrinsics is not None:
        camera, run = read_intrinsics(intrinsics), None
    elif not session.boards():
        raise ValueError(f"{session.path} has no board views: give --intrinsics FILE (made by gthd calibrate intrinsics)")
    else:
        run = calibrate_intrinsics(session.path, command=command)
        camera = run.result.camera
    w, h = session.camera_size
    if (camera.width, camera.height) != (w, h):
        raise ValueError(
            f"the intrinsics are for {camera.width}x{camera.height} images but {session_path} has {w}x{h}: calibrate at the resolution you capture"
        )
    return ExtrinsicsSetup(session, camera, joint, run)


def observations_from_clicks_file(setup: ExtrinsicsSetup, clicks_file: Path) -> tuple[Observations, str, list[str]]:
    """The clicks of a clicks file, checked against the session and the camera.
    Returns (observations, what they are, warnings such as a torn last line skipped)."""
    warnings: list[str] = []
    header, clicks = read_clicks(clicks_file, warnings)
    sid = setup.session.manifest["session_id"]
    if header.get("session_id") not in (None, sid):
        raise ValueError(f"{clicks_file} holds clicks of session {header['session_id']!r}, not {sid!r}")
    check_clicks(clicks, setup.session.frames.index, setup.session.frames.t_host_ns, setup.camera, str(clicks_file))
    return Observations.from_clicks(clicks), f"clicks file {clicks_file}", warnings


def observations_from_clicks(setup: ExtrinsicsSetup, clicks: list, where: Path) -> Observations:
    """Clicks made in the click window (saved to ``where``), checked like a file's."""
    check_clicks(clicks, setup.session.frames.index, setup.session.frames.t_host_ns, setup.camera, str(where))
    return Observations.from_clicks(clicks)


@dataclass
class ExtrinsicsRun:
    """A solved, checked calibration with its report and pictures, not yet written."""

    calibration: Calibration
    lines: list[str]
    pictures: dict[str, bytes]
    provenance: dict
    intrinsics: IntrinsicsRun | None = None
    warnings: list[str] = field(default_factory=list)

    def write(self, out: Path) -> list[Path]:
        """The intrinsics (when calibrated here), the pictures, report.txt, then
        calibration.json, last: it says the calibration is done."""
        out.mkdir(parents=True, exist_ok=True)
        paths = self.intrinsics.write(out) if self.intrinsics is not None else []
        for name, data in self.pictures.items():
            atomic_write_bytes(out / name, data)
            paths.append(out / name)
        atomic_write_bytes(out / "report.txt", ("\n".join(self.lines) + "\n").encode())
        write_calibration(out / "calibration.json", self.calibration, self.provenance)
        return [*paths, out / "report.txt", out / "calibration.json"]


def solve(
    setup: ExtrinsicsSetup,
    obs: Observations,
    source: str,
    *,
    ransac_px: float = 8.0,
    offset_range_ms: float = 200.0,
    offset_ms: float | None = None,
    bootstrap: int = 100,
    accept_weak: bool = False,
    detected: bool = False,
    truth: dict | None = None,
    command: str | None = None,
) -> ExtrinsicsRun:
    """Solve T_cam_leap and the clock offset from ``obs`` and make the report.

    Args:
        source: what the observations are (for the file's provenance).
        offset_ms: use this clock offset instead of searching for it.
        accept_weak: keep a solution the observations do not pin down (a warning,
            recorded in the file) instead of refusing it.
        detected: the observations come from a detector (the advice differs).
        truth: a simulated session's ground truth: the report adds the errors against it.

    Raises:
        ValueError: the solver found no fit, or the fit is weak (unless ``accept_weak``).
    """
    session, camera = setup.session, setup.camera
    command = command or command_line()
    result = solve_extrinsics(
        camera,
        session.tracker,
        obs,
        ransac_px=ransac_px,
        offset_range_ms=offset_range_ms,
        fixed_offset_ns=None if offset_ms is None else int(offset_ms * 1e6),
        bootstrap=bootstrap,
    )
    quality = result.quality(obs)
    warnings = []
    if result.weakness:
        if not accept_weak:
            todo = "record the hand spread over the view and in depth" if detected else "click frames where the hand is spread over the view and in depth"
            raise ValueError(f"{result.weakness}: {todo} (or pass --accept-weak to keep this calibration anyway)")
        warnings.append(f"{result.weakness} (kept: --accept-weak)")
        quality["warnings"] = [result.weakness]
    cal = Calibration(camera, result.T_cam_leap, result.clock_offset_ns, quality)
    pictures = {"overlay.png": overlay_png(session, cal, obs, result), "offset.png": offset_png(result)}
    lines = extrinsics_lines(result, obs, command) + (truth_lines(cal, truth) if truth is not None else [])
    provenance = {"session": str(session.path), "correspondences": source, "command": command, "observations": result.record(obs)}
    return ExtrinsicsRun(cal, lines, pictures, provenance, setup.intrinsics, warnings)


def click_in_window(setup: ExtrinsicsSetup, n_frames: int, clicks_path: Path, ransac_px: float = 8.0, offset_range_ms: float = 200.0) -> list:
    """Open the click window on ``n_frames`` frames where the tracker sees the hand; the
    clicks go to ``clicks_path`` as they happen (a later run resumes them). Once 6 clicks
    exist the window shows where the current estimate projects the joint, so a wrong
    click stands out. Returns the clicks when the window is closed."""
    from .click_window import ClickWindow, choose_frames

    session, camera, j = setup.session, setup.camera, JOINT_INDEX[setup.joint]

    def estimate(clicks):
        obs = Observations.from_clicks(clicks)
        r = solve_extrinsics(camera, session.tracker, obs, ransac_px=ransac_px, offset_range_ms=offset_range_ms, offset_step_ms=10.0, bootstrap=0)

        def project(i):
            t = session.frames.t_host_ns[i] + r.clock_offset_ns
            uv, visible = camera.see(r.T_cam_leap.apply(session.tracker.joints_at(t)[j]))
            return uv if visible else None

        return project

    frames = choose_frames(session, setup.joint, n=n_frames)
    return ClickWindow(session, setup.joint, frames, clicks_path, estimate=estimate).run()


def redraw_to(path: Path, out: Path | None = None, truth_of=None) -> tuple[list[str], list[Path]]:
    """`gthd calibrate report`: :func:`redraw` the calibration file ``path`` (or the
    calibration.json / intrinsics.json in the folder ``path``) and write its pictures to
    ``out`` (default: the file's folder). Returns (the report's lines, the pictures written)."""
    path = Path(path)
    if path.is_dir():
        path = next((path / n for n in ("calibration.json", "intrinsics.json") if (path / n).is_file()), path / "calibration.json")
    lines, pictures = redraw(path, truth_of=truth_of)
    out = Path(out) if out is not None else path.parent
    out.mkdir(parents=True, exist_ok=True)
    for name, data in pictures.items():
        atomic_write_bytes(out / name, data)
    return lines, [out / name for name in pictures]


def redraw(path: Path, truth_of=None) -> tuple[list[str], dict[str, bytes]]:
    """The report of a calibration file, from the file alone: ``intrinsics.json`` gives
    its lines and ``intrinsics.png``; ``calibration.json`` gives its lines and
    ``offset.png``, and ``overlay.png`` when the session it names is still there.
    ``truth_of(session)``: a simulated session's ground truth, for the errors against it.

    Returns:
        (the report's lines, {picture name: PNG bytes}).
    """
    import json

    from .extrinsics import read_solution
    from .files import CALIBRATION_FORMAT, read_calibration
    from .intrinsics import read_report

    path = Path(path)
    head = json.loads(read_input(path, "calibration file")) if path.suffix == ".json" else {}
    if not isinstance(head, dict) or head.get("format") != CALIBRATION_FORMAT:
        result = read_report(path)  # intrinsics.json (or one line saying what it is not)
        return result.report_lines(result.command or "(not recorded)"), {"intrinsics.png": intrinsics_png_bytes(result)}
    cal = read_calibration(path)
    result, obs = read_solution(head, str(path))
    lines = extrinsics_lines(result, obs, head.get("command") or "(not recorded)")
    pictures = {"offset.png": offset_png(result)}
    session_path = Path(head.get("session") or "")
    if (session_path / "manifest.json").is_file():
        session = Session.open(session_path)
        pictures["overlay.png"] = overlay_png(session, cal, obs, result)
        truth = truth_of(session) if truth_of is not None else None
        lines += truth_lines(cal, truth) if truth is not None else []
    else:
        lines.append(f"(the session {session_path} is not there: overlay.png not redrawn)")
    return lines, pictures


def calibrate_extrinsics(
    session_path: Path,
    out: Path,
    *,
    intrinsics: Path | None = None,
    joint: str = "INDEX_TIP",
    clicks_file: Path | None = None,
    detector=None,
    n_frames: int = 40,
    ransac_px: float = 8.0,
    offset_range_ms: float = 200.0,
    offset_ms: float | None = None,
    bootstrap: int = 100,
    accept_weak: bool = False,
    force: bool = False,
    truth_of=None,
    say=None,
    warn=None,
    progress=None,
) -> ExtrinsicsRun:
    """`gthd calibrate`: T_cam_leap and the clock offset of a session, solved, checked and
    written to ``out`` (calibration.json last; nothing written if anything fails).

    The correspondences come from, in this order: ``detector`` (a
    :class:`~gthd.calibration.detectors.KeypointDetector` run on 4 x ``n_frames`` frames,
    all 21 joints), ``clicks_file`` (a clicks log, no window), else the click window on
    ``n_frames`` frames, logging to ``out/clicks.jsonl`` as clicks happen (a later run
    resumes them).

    Args:
        truth_of: ``truth_of(session)`` -> a simulated session's ground truth or None;
            the report adds the errors against it.
        say, warn: called with each report line before solving (the intrinsics
            calibrated here) and each warning.
        progress: ``progress(done, total)`` while the detector runs.

    Raises:
        FileExistsError: ``out`` holds a calibration (without ``force``).
        ValueError, FormatError: an input that is wrong (see :func:`prepare`,
            :func:`solve`): one line each.
    """
    say, warn = say or (lambda line: None), warn or (lambda line: None)
    resumable = detector is None and clicks_file is None and (out / "clicks.jsonl").exists()
    check_out_folder(out, "calibration.json", force, "; clicking resumes from its clicks.jsonl" if resumable else "")
    setup = prepare(session_path, intrinsics, joint)
    for line in setup.intrinsics.lines() if setup.intrinsics is not None else []:
        say(line)
    if detector is not None:
        from .click_window import choose_frames
        from .detectors import observations_from_detector

        frames = choose_frames(setup.session, setup.joint, n=4 * n_frames)
        obs = observations_from_detector(setup.session, detector, frames, progress=progress)
        source = f"--auto ({detector.name} on {len(frames)} frames)"
    elif clicks_file is not None:
        obs, source, notes = observations_from_clicks_file(setup, clicks_file)
        for note in notes:
            warn(note)
    else:
        out.mkdir(parents=True, exist_ok=True)  # the clicks log is kept as clicks happen (resumable)
        clicks = click_in_window(setup, n_frames, out / "clicks.jsonl", ransac_px, offset_range_ms)
        obs, source = observations_from_clicks(setup, clicks, out / "clicks.jsonl"), f"clicks in a window, saved to {out / 'clicks.jsonl'}"
    truth = truth_of(setup.session) if truth_of is not None else None
    run = solve(
        setup,
        obs,
        source,
        ransac_px=ransac_px,
        offset_range_ms=offset_range_ms,
        offset_ms=offset_ms,
        bootstrap=bootstrap,
        accept_weak=accept_weak,
        detected=detector is not None,
        truth=truth,
    )
    for note in run.warnings:
        warn(note)
    run.write(out)
    return run
