"""``gthd build-dataset``, ``gthd inspect``, ``gthd import`` and ``gthd export``: the dataset file."""

from __future__ import annotations

from pathlib import Path

import click

from ..fileio import dumps_json
from ._common import command_line, echo_lines, hand_option, hand_type, progress_bar, user_errors


@click.command("build-dataset")
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
@hand_option("Label only this hand; any: either (one hand per frame, followed by its id: docs/dataset.md).")
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
    from ..dataset.build import build_dataset

    with user_errors():
        flagged = None
        if qa_files:
            from ..qa.report import flagged_frames

            flagged = flagged_frames(list(qa_files))
        bar, update = progress_bar("building")
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
                hand_type=hand_type(hand_side),
                force=force,
                attrs={"command": command_line()},
                progress=update,
                qa=flagged,
                drop_flagged=drop_flagged,
            )
    echo_lines(report.lines())
    click.echo(f"wrote {out}")


@click.command()
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
    from ..dataset.inspect import contact_sheet_png, summary, summary_lines

    with user_errors():
        facts = summary(dataset) if as_json else summary_lines(dataset)
        n = contact_sheet_png(dataset, sheet, count=count) if sheet is not None else None
    if as_json:
        click.echo(dumps_json(facts), nl=False)
        return
    echo_lines(facts)
    if sheet is not None:
        click.echo(f"wrote {sheet} ({n} samples)")


@click.group("export")
def export_group():
    """Export a gthd dataset to other toolboxes' formats.

    \b
    Example:
        gthd export coco gthd.h5 -o exported/
    """


@export_group.command("coco")
@click.argument("dataset", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out_arg", metavar="[OUT]", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="The folder to write (or give it as OUT).")
@click.option("--split", "splits", multiple=True, type=click.Choice(["train", "val", "test"]), help="Splits to export (repeat; default all).")
@click.option("--force", is_flag=True, help="Write into a non-empty OUT.")
def export_coco_cmd(dataset, out_arg, out, splits, force):
    """COCO keypoint JSON + images, in the layout of mmpose's hand datasets.

    Writes OUT/images/ (the frames as stored) and OUT/annotations/<split>.json (bbox
    xywh, keypoints [x, y, v] x 21 in gthd's order, which is mmpose's hand order).

    \b
    Example:
        gthd export coco gthd.h5 -o exported/ --split train --split val
    """
    from ..dataset.coco import export_coco

    if (out is None) == (out_arg is None):
        raise click.UsageError("give the folder to write once: -o OUT (or OUT)")
    out = out or out_arg
    with user_errors():
        bar, update = progress_bar("exporting")
        with bar:
            r = export_coco(dataset, out, tuple(splits) or ("train", "val", "test"), force=force, progress=update)
    click.echo(f"wrote {out}: {r['images']} images, {r['annotations']} hand annotations ({r['nohand']} images without a hand)")


@click.group("import")
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
    from ..dataset.coco import import_coco

    with user_errors():
        bar, update = progress_bar("importing")
        with bar:
            r = import_coco(
                annotations, images, out, split=split, seed=seed, joint_order=joint_order, force=force, progress=update, attrs={"command": command_line()}
            )
    echo_lines(r.lines())
    click.echo(f"wrote {out}")


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
    from ..dataset.lsmv import import_lsmv

    with user_errors():
        bar, update = progress_bar("importing")
        with bar:
            r = import_lsmv(
                root,
                out,
                cameras=tuple(cameras) or (1, 2, 3, 4),
                split_by=split_by,
                seed=seed,
                force=force,
                limit=limit,
                progress=update,
                attrs={"command": command_line()},
            )
    echo_lines(r.lines())
    click.echo(f"wrote {out}")
