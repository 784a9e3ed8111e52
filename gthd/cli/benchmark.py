"""``gthd benchmark`` and ``gthd predict``: train and score models, use a trained run."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ._common import progress_bar, user_errors


@click.command()
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

    from ..benchmark.run import Profile, run_benchmark

    tty = sys.stderr.isatty()
    bar, update = progress_bar("training")
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
        click.echo(board.json_text(), nl=False)
        return
    console = Console(width=None if sys.stdout.isatty() else 160)  # a log file: room for every column
    for table in board.rich_table():
        console.print(table)
    written = [p.name for p in sorted(Path(out).iterdir()) if p.is_file()]
    click.echo(f"wrote {out}: {', '.join(written)}")


# ----------------------------------------------------------------------------- predict
@click.command()
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

    SOURCE is an image (.jpg .jpeg .png .bmp .tif), a folder of images, a video file, or a
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
    from ..benchmark.predict import load_run, predict_source
    from ..benchmark.train import pick_device
    from ..media import source_kind

    with user_errors():
        kind = source_kind(source)
        if kind == "camera" and show:
            click.echo("note: a camera is always shown in a window; --show changes nothing", err=True)
        pipeline = load_run(run_dir, method=method, device=pick_device(device))
        bar, update = progress_bar("predicting")
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
