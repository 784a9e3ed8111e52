"""``gthd simulate``: a simulated capture session with ground truth."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import Range, Size, progress_bar, user_errors


@click.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True, help="The only source of randomness: same seed, same bytes.")
@click.option("--duration", type=float, default=10.0, show_default=True, help="Session length in seconds.")
@click.option("--fps", type=float, default=30.0, show_default=True, help="Camera frame rate.")
@click.option("--tracker-hz", type=float, default=110.0, show_default=True, help="Tracker frame rate.")
@click.option("--size", "image_size", type=Size(), default="640x480", show_default=True, help="Camera image size.")
@click.option("--hand-size", type=Range(), default="40:300", show_default=True, help="Range of hand sizes in the image (box side, px).")
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
    from ..sim.glitches import parse_glitches
    from ..sim.rig import RigConfig
    from ..sim.simulate import simulate as run

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
        bar, update = progress_bar("simulating")
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
