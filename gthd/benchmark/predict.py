"""A trained benchmark run on new input: ``gthd predict IMAGE|FOLDER|VIDEO|camera:0 --run RUN/``.

:func:`load_run` reads ``RUN/run.json`` (:mod:`.runfile`, the format's one owner;
docs/predict.md), builds the skeleton UNet detector and one pose network with their
checkpoints and returns a :class:`~gthd.benchmark.pipeline.HandPosePipeline`. The
``predict_*`` functions run it over an image, a folder of images, a video file or a
camera, draw what it found (:func:`draw_prediction`) and write the drawn frames and one
JSON line per frame ({"source", "has_hand", "score", "box", "keypoints"}, frame pixels).
Reading and writing pictures and videos, and the window, are :mod:`gthd.media`'s.

Example::

    from gthd.benchmark.predict import load_run, predict_source
    pipe = load_run("benchmark/runs/demo-quick", method="ours")
    r = predict_source(pipe, "hand.jpg", out="hand-predict")  # hand-predict/hand.jpg + predictions.jsonl
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..draw import draw_box, draw_skeleton, label
from ..fileio import atomic_write_bytes
from ..media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, VideoIn, VideoOut, Window, list_images, parse_camera, read_image, require_display, source_kind
from .models import MODEL_INFO, create_model
from .pipeline import Detection, HandPosePipeline
from .runfile import RUN_FORMAT, RUN_VERSION, RunInfo, RunModel, find_pose, read_run
from .train import load_checkpoint

WINDOW = "gthd predict - q or Esc to stop"  # no regex characters: window tools search titles by regex

Progress = Callable[[int, "int | None"], None]
"""progress(done, total): frames done, and how many there are (None: unknown)."""


def load_model(entry: RunModel) -> torch.nn.Module:
    """Build ``entry``'s model and load its checkpoint's weights (on the CPU)."""
    ckpt = entry.checkpoint
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt}: the checkpoint of '{entry.method}' is missing (did its training finish? re-run `gthd benchmark`)")
    state = load_checkpoint(ckpt)  # weights only; a damaged or hostile file: FormatError, one line
    try:
        model = create_model(entry.builder, **entry.model_kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{entry.builder}({_kwargs(entry.model_kwargs)}): {_first_line(e)}") from None
    mismatch = _state_mismatch(model.state_dict(), state["model"])
    if mismatch:
        raise ValueError(f"{ckpt}: its weights do not fit {entry.builder}({_kwargs(entry.model_kwargs)}) as run.json describes it: {mismatch}")
    model.load_state_dict(state["model"])
    return model.eval()


def _state_mismatch(expected: dict, found: dict) -> str:
    """'' when two state dicts have the same names and shapes, else what differs, briefly."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [k for k in expected if k in found and tuple(found[k].shape) != tuple(expected[k].shape)]
    parts = [f"{len(v)} {what}" for v, what in ((missing, "missing"), (unexpected, "unexpected"), (shapes, "of another shape")) if v]
    if shapes:
        k = shapes[0]
        parts.append(f"e.g. {k} is {tuple(found[k].shape)} in the file, {tuple(expected[k].shape)} in the model")
    elif missing or unexpected:
        parts.append(f"e.g. {(missing or unexpected)[0]}")
    return ", ".join(parts)


def _kwargs(kwargs: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0].rstrip(":. ")


def load_run(run_dir: str | os.PathLike, method: str = "ours", device: str | torch.device = "cpu") -> HandPosePipeline:
    """The detector + ``method``'s pose network of a benchmark run, ready for frames, its
    heatmaps decoded as the run scored them (run.json's ``decode`` and ``bone_prior``).

    Args:
        run_dir: a folder with ``run.json`` (``gthd benchmark`` writes it).
        method: the pose method's label ("ours") or builder name ("multiscale_skeleton").
        device: a torch device ("cpu", "cuda", ...).

    Returns:
        a :class:`HandPosePipeline`: call it on (H, W, 3) uint8 BGR frames.

    Raises:
        ValueError (FormatError, FileNotFoundError): one line saying what is wrong.
    """
    run = read_run(run_dir)
    pose = find_pose(run, method)
    if run.detector is None:
        raise ValueError(
            f"{run.path}: this run has no hand detector (its profile trained none), "
            'so it cannot find hands in frames; re-run `gthd benchmark` with a profile that has "detector": true'
        )
    if MODEL_INFO[pose.builder].task not in ("pose-heatmap", "pose-regression"):
        raise ValueError(f"{run.path}: '{pose.method}' ({pose.builder}) is not a pose model")
    if MODEL_INFO[run.detector.builder].task != "detector":
        raise ValueError(f"{run.path}: the detector '{run.detector.method}' ({run.detector.builder}) is not a skeleton detector")
    device = _check_device(device)
    extra = {} if run.box_margin is None else {"box_margin": run.box_margin}
    return HandPosePipeline(
        load_model(run.detector),
        load_model(pose),
        pose.builder,
        frame_size=run.frame_size,
        threshold_pixels=run.threshold_pixels,
        crop_margin=run.crop_margin,
        device=device,
        skeleton_pass=run.skeleton_pass,
        bone_prior=run.bone_prior,  # decoded as the run was scored: run.json's decode
        **extra,
    )


def _check_device(device: str | torch.device) -> torch.device:
    try:
        device = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device {str(device)!r}: {_first_line(e)}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r}: no CUDA device here (torch {torch.__version__}); use cpu or auto")
    return device


# ------------------------------------------------------------------------------- drawing
def draw_prediction(frame: np.ndarray, detection: Detection) -> np.ndarray:
    """A copy of ``frame`` ((H, W, 3) uint8 BGR) with the hand box, the 21-joint
    skeleton and a label ("hand 123 px" / "no hand (12 px)": the detector's count of
    foreground pixels) drawn on it."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame: expected (H, W, 3) BGR, got {frame.shape}")
    img = frame.copy()
    side = min(img.shape[:2])
    thickness = max(1, round(side / 240))
    if detection.has_hand:
        draw_box(img, detection.box, thickness=thickness)
        draw_skeleton(img, detection.keypoints, thickness=thickness, radius=thickness + 1)
        text = f"hand {detection.score} px"
    else:
        text = f"no hand ({detection.score} px)"
    scale = max(0.35, side / 960)
    label(img, text, org=(round(6 * scale / 0.5), round(18 * scale / 0.5)), scale=scale)
    return img


def prediction_record(source: str | int, detection: Detection) -> dict:
    """One JSON line: {"source", "has_hand", "score", "box": [x0, y0, x1, y1] or None,
    "keypoints": [[u, v] x 21] or None}, frame pixels (OpenCV convention), 0.01 px."""

    def px(v) -> float | None:
        return round(float(v), 2) if math.isfinite(v) else None

    return {
        "source": source,
        "has_hand": bool(detection.has_hand),
        "score": int(detection.score),
        "box": None if detection.box is None else [px(v) for v in detection.box],
        "keypoints": None if detection.keypoints is None else [[px(u), px(v)] for u, v in detection.keypoints],
    }


def write_jsonl(path: str | os.PathLike, records: list[dict]) -> None:
    """All ``records`` as JSON lines, written atomically (temporary file, fsync, rename);
    the folder is created."""
    text = "".join(json.dumps(r, separators=(",", ":"), allow_nan=False) + "\n" for r in records)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode())


# ------------------------------------------------------------------------- over sources
@dataclass
class PredictResult:
    """What a prediction run did. ``out``: the drawn images' folder or the drawn video
    (None: not written); ``jsonl``: the predictions file (None: not written);
    ``stopped``: the user quit the window before the end."""

    kind: str
    frames: int
    with_hand: int
    out: Path | None
    jsonl: Path | None
    seconds: float
    stopped: bool = False


def default_out(source: str) -> Path:
    """Where the drawn output goes by default: ``hand.jpg`` -> ``hand-predict/``,
    ``frames/`` -> ``frames-predict/``, ``clip.mp4`` -> ``clip-predict.mp4``."""
    path = Path(source)
    kind = source_kind(source)
    if kind == "camera":
        raise ValueError("a camera's video is only written with --out FILE.mp4")
    stem = path.name if kind == "folder" else path.stem
    return path.with_name(f"{stem}-predict" + (".mp4" if kind == "video" else ""))


def predict_frames(
    pipeline: HandPosePipeline,
    frames: Iterable[tuple[str | int, np.ndarray]],
    emit: Callable[[str | int, np.ndarray], None] | None = None,
    window: Window | None = None,
    wait_ms: int = 1,
    max_frames: int | None = None,
    total: int | None = None,
    progress: Progress | None = None,
) -> tuple[list[dict], bool]:
    """Run ``pipeline`` on each (source, frame) and draw the result.

    Args:
        frames: (name or index, (H, W, 3) uint8 BGR) pairs.
        emit: called with each drawn frame (writes it). window: shows each drawn frame
            for ``wait_ms`` ms (0: until a key); q/Esc stops.
        max_frames: stop after this many. total: the number of frames, for ``progress``.

    Returns:
        (one :func:`prediction_record` per frame, whether the user stopped early: q,
        Esc, the window closed or Ctrl-C).
    """
    records: list[dict] = []
    if max_frames is not None and total is not None:
        total = min(total, max_frames)
    try:
        for source, frame in frames:
            if max_frames is not None and len(records) >= max_frames:
                break
            detection = pipeline(frame)
            drawn = draw_prediction(frame, detection)
            if emit is not None:
                emit(source, drawn)
            records.append(prediction_record(source, detection))
            if progress is not None:
                progress(len(records), total)
            if window is not None and not window.show(drawn, wait_ms):
                return records, True
    except KeyboardInterrupt:  # Ctrl-C: stop like q, keeping what was done
        return records, True
    return records, False


def predict_images(
    pipeline: HandPosePipeline,
    images: list[Path],
    out_dir: Path,
    jsonl: Path | None,
    show: bool = False,
    max_frames: int | None = None,
    progress: Progress | None = None,
    kind: str = "folder",
) -> PredictResult:
    """Predict on image files; write the drawn images into ``out_dir`` under the same
    names and the predictions to ``jsonl`` (default ``out_dir/predictions.jsonl``)."""
    out_dir = Path(out_dir)
    if out_dir.is_file() or out_dir.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
        raise ValueError(f"{out_dir}: drawn images go into a folder (same names as the inputs), not a file: choose a folder --out")
    if any(out_dir.resolve() == p.parent.resolve() for p in images):
        raise ValueError(f"{out_dir}: is where the input images are; the drawn images would replace them: choose another --out")
    if show:
        require_display("--show")
    out_dir.mkdir(parents=True, exist_ok=True)
    jsonl = Path(jsonl) if jsonl is not None else out_dir / "predictions.jsonl"

    def write(name: str, drawn: np.ndarray) -> None:
        ok, data = cv2.imencode(Path(name).suffix, drawn)
        if not ok:
            raise ValueError(f"{name}: OpenCV cannot encode a {Path(name).suffix} image")
        atomic_write_bytes(out_dir / name, data.tobytes())

    t0 = time.perf_counter()
    window = Window(WINDOW) if show else None
    try:
        frames = ((p.name, read_image(p)) for p in images)
        records, stopped = predict_frames(pipeline, frames, write, window, 0, max_frames, len(images), progress)
    finally:
        if window is not None:
            window.close()
    write_jsonl(jsonl, records)
    return _result(kind, records, out_dir, jsonl, t0, stopped)


def _result(kind: str, records: list[dict], out: Path | None, jsonl: Path | None, t0: float, stopped: bool) -> PredictResult:
    hands = sum(r["has_hand"] for r in records)
    return PredictResult(kind, len(records), hands, out, jsonl, time.perf_counter() - t0, stopped)


def _check_video_out(out: Path, source: Path | None) -> None:
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"{out}: a drawn video is written to a video file such as {out.name or 'out'}.mp4")
    if source is not None and out.resolve() == source.resolve():
        raise ValueError(f"{out}: is the input video; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)


def predict_video(
    pipeline: HandPosePipeline,
    path: Path,
    out: Path | None,
    jsonl: Path | None,
    show: bool = False,
    max_frames: int | None = None,
    progress: Progress | None = None,
) -> PredictResult:
    """Predict on every frame of a video file; write the drawn video to ``out`` (mp4v,
    the input's fps and size) and the predictions (source: frame index) to ``jsonl``
    (default ``out`` with the suffix .jsonl)."""
    path = Path(path)
    if out is not None:
        _check_video_out(Path(out), path)
    if show:
        require_display("--show")
    with VideoIn(path) as video:
        return _run_stream("video", pipeline, video, out, jsonl, show, max_frames, progress)


def predict_camera(
    pipeline: HandPosePipeline,
    index: int,
    out: Path | None = None,
    jsonl: Path | None = None,
    max_frames: int | None = None,
) -> PredictResult:
    """Predict live on camera ``index`` in a window until q/Esc (or ``max_frames``);
    optionally write the drawn video to ``out`` and the predictions to ``jsonl``
    (default ``out`` with the suffix .jsonl; none without ``out``)."""
    require_display(f"camera:{index}")
    if out is not None:
        _check_video_out(Path(out), None)
    with VideoIn(index) as video:
        return _run_stream("camera", pipeline, video, out, jsonl, True, max_frames, None)


def _run_stream(
    kind: str, pipeline: HandPosePipeline, video: VideoIn, out, jsonl, show: bool, max_frames: int | None, progress: Progress | None
) -> PredictResult:
    """The video/camera loop: the writer (at the video's fps, else 30), the window, the
    predictions file."""
    if jsonl is None and out is not None:
        jsonl = Path(out).with_suffix(".jsonl")
    writer = VideoOut(out, video.fps or 30.0) if out is not None else None
    emit = None if writer is None else lambda _source, drawn: writer.write(drawn)
    window = Window(WINDOW) if show else None
    t0 = time.perf_counter()
    try:
        records, stopped = predict_frames(pipeline, video.frames(), emit, window, 1, max_frames, video.count, progress)
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    finally:
        if window is not None:
            window.close()
    if writer is not None:
        writer.finish()
    if jsonl is not None:
        write_jsonl(jsonl, records)
    return _result(kind, records, Path(out) if out is not None else None, jsonl, t0, stopped)


def predict_source(
    pipeline: HandPosePipeline,
    source: str,
    out: str | os.PathLike | None = None,
    jsonl: str | os.PathLike | None = None,
    show: bool = False,
    max_frames: int | None = None,
    progress: Progress | None = None,
) -> PredictResult:
    """Predict on an image, a folder of images, a video file or a camera (``camera:0``
    or ``0``); see :func:`predict_images`, :func:`predict_video`, :func:`predict_camera`.
    ``out`` defaults to :func:`default_out` (a camera writes nothing without it)."""
    kind = source_kind(source)
    jsonl = Path(jsonl) if jsonl is not None else None
    if kind == "camera":
        return predict_camera(pipeline, parse_camera(source), Path(out) if out is not None else None, jsonl, max_frames)
    out = Path(out) if out is not None else default_out(source)
    if kind == "video":
        return predict_video(pipeline, Path(source), out, jsonl, show, max_frames, progress)
    images = list_images(Path(source)) if kind == "folder" else [Path(source)]
    return predict_images(pipeline, images, out, jsonl, show, max_frames, progress, kind)


__all__ = [
    "RUN_FORMAT",
    "RUN_VERSION",
    "PredictResult",
    "RunInfo",
    "RunModel",
    "draw_prediction",
    "find_pose",
    "load_model",
    "load_run",
    "predict_camera",
    "predict_frames",
    "predict_images",
    "predict_source",
    "predict_video",
    "prediction_record",
    "read_run",
    "write_jsonl",
]
