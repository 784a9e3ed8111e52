"""``gthd qa``: find the frames whose labels are wrong."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import command_line, echo_lines, hand_option, hand_type, progress_bar, user_errors


@click.command()
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
@hand_option("The hand the labels are made of, as for build-dataset.")
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
    from ..qa.report import run_qa, text_lines
    from ..qa.runner import QAOptions

    options = QAOptions(hand_type=hand_type(hand_side), time_check=not no_time)
    with user_errors():
        bar, update = progress_bar("checking")
        with bar:
            result, out, files = run_qa(source, calibration, out, run=run_dir, options=options, sheet=sheet, command=command_line(), progress=update)
    echo_lines(text_lines(result))
    click.echo(f"wrote {out}/: " + ", ".join(p.name for p in files.values()))
