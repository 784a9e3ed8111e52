"""``RUN/run.json``, the door between ``gthd benchmark`` (which writes it) and ``gthd
predict`` (which reads it): what a run trained, with which builder, arguments and
checkpoint, how its pipeline cuts frames, and how its heatmaps were decoded when it was
scored (``decode``, with the fitted ``bone_prior``: docs/predict.md). Format
``gthd-benchmark-run``; this module is its one reader and writer.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..dataset.codec import BonePrior
from ..fileio import FormatError, contained_path, read_input, read_json, write_json
from ..hand import NUM_JOINTS
from .models import MODEL_INFO, MODELS
from .pipeline import DECODES, SKELETON_PASSES

RUN_FORMAT = "gthd-benchmark-run"
RUN_VERSION = 2
"""The newest ``run.json`` format_version this code reads (and the one it writes). Version 2
added ``decode`` and ``bone_prior``: a version 1 file decodes with "argmax", and a gthd that
reads only version 1 refuses a version 2 file instead of decoding it the wrong way."""


def write_run(out: Path, manifest: dict) -> None:
    """Write ``out/run.json`` (atomically)."""
    write_json(out / "run.json", manifest, fmt=RUN_FORMAT, version=RUN_VERSION)


def decode_fields(decode: str, bone_prior: BonePrior | None) -> dict:
    """run.json's ``decode`` (one of :data:`~gthd.benchmark.pipeline.DECODES`) and, for
    "bone-tree", its ``bone_prior``: ``{"bones": [[parent, child], ...], "mean": [...],
    "sd": [...]}``, crop px per bone (a mean of null: a bone never seen in the labels,
    not constrained)."""
    if decode not in DECODES:
        raise ValueError(f"decode must be one of {', '.join(DECODES)}, got {decode!r}")
    if decode == "argmax":
        return {"decode": decode}
    if bone_prior is None:
        raise ValueError("the bone-tree decode needs its bone prior")
    mean = [float(m) if math.isfinite(m) else None for m in bone_prior.mean]
    prior = {"bones": [list(b) for b in bone_prior.bones], "mean": mean, "sd": [float(v) for v in bone_prior.sd]}
    return {"decode": decode, "bone_prior": prior}


def check_run_folder(out: Path, fingerprint: str | None = None) -> None:
    """Refuse a run folder written by an incompatible gthd, or trained on other data
    (its run.json)."""
    path = out / "run.json"
    if path.exists():
        try:
            run = read_json(path, fmt=RUN_FORMAT, versions=tuple(range(1, RUN_VERSION + 1)))
        except FormatError as e:
            raise ValueError(f"{out} is a run folder this gthd cannot extend: {e}") from None
        if fingerprint is not None and run.get("dataset_fingerprint") not in (None, fingerprint):
            raise ValueError(f"{out} was trained on other data (the dataset changed since): use another --out, or delete it")


@dataclass(frozen=True)
class RunModel:
    """One model of a run: its method label, builder name (a key of ``MODELS``), the
    builder's keyword arguments and its checkpoint (absolute path)."""

    method: str
    builder: str
    model_kwargs: dict
    checkpoint: Path


@dataclass(frozen=True)
class RunInfo:
    """What ``RUN/run.json`` says. ``detector`` is None when the run trained none;
    ``frame_size`` is the detector's input (width, height) px; ``box_margin`` None when
    the file does not say (the pipeline's default); ``skeleton_pass`` how the pose
    network's skeleton channel is made ("frame" when the file does not say); ``decode``
    how the run's heatmaps were decoded when it was scored ("argmax" when the file does
    not say: a run of a gthd without the bone-tree decode), and ``bone_prior`` its prior
    (None unless "bone-tree")."""

    path: Path
    pose: tuple[RunModel, ...]
    detector: RunModel | None
    frame_size: tuple[int, int] | None
    threshold_pixels: float | None
    crop_margin: float
    box_margin: float | None
    gthd_version: str | None
    skeleton_pass: str = "frame"
    decode: str = "argmax"
    bone_prior: BonePrior | None = None


def read_run(run_dir: str | os.PathLike) -> RunInfo:
    """Read and check ``run_dir/run.json``; ValueError (one line) on anything wrong."""
    run_dir = Path(run_dir)
    path = run_dir / "run.json"
    if not path.is_file():
        raise FormatError(f"{run_dir}: not a benchmark run folder (no run.json); run `gthd benchmark` first")
    try:
        d = json.loads(read_input(path, "run file"))  # a regular file: not a FIFO that would block
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise FormatError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(d, dict) or d.get("format") != RUN_FORMAT:
        found = d.get("format") if isinstance(d, dict) else type(d).__name__
        raise FormatError(f"{path}: expected a '{RUN_FORMAT}' file, found format {found!r}")
    version = d.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FormatError(f"{path}: format_version {version!r} is not a version of {RUN_FORMAT}")
    if version > RUN_VERSION:
        raise FormatError(
            f"{path}: written by a newer gthd ({d.get('gthd_version', '?')}, {RUN_FORMAT} version {version}); "
            f"this gthd ({__version__}) reads version {RUN_VERSION}: upgrade gthd"
        )
    pose = _field(d, "pose", list, path)
    detector = d.get("detector")
    det = None if detector is None else _run_model(detector, run_dir, path, "detector")
    frame_size = threshold = None
    skeleton_pass = "frame"
    if det is not None:
        frame_size = _frame_size(_field(detector, "frame_size", list, path, "detector"), det.builder, path)
        threshold = float(_field(detector, "threshold_pixels", (int, float), path, "detector"))
        skeleton_pass = _field(detector, "skeleton_pass", str, path, "detector") if "skeleton_pass" in detector else "frame"
        if skeleton_pass not in SKELETON_PASSES:
            raise FormatError(f"{path}: detector.skeleton_pass must be one of {', '.join(SKELETON_PASSES)}, got {skeleton_pass!r}")
    decode = _field(d, "decode", str, path) if "decode" in d else "argmax"
    if decode not in DECODES:
        raise FormatError(f"{path}: 'decode' must be one of {', '.join(DECODES)}, got {decode!r}")
    return RunInfo(
        path=run_dir,
        pose=tuple(_run_model(p, run_dir, path, f"pose[{i}]") for i, p in enumerate(pose)),
        detector=det,
        frame_size=frame_size,
        threshold_pixels=threshold,
        crop_margin=float(_field(d, "crop_margin", (int, float), path)),
        box_margin=float(_field(d, "box_margin", (int, float), path)) if "box_margin" in d else None,
        gthd_version=d.get("gthd_version"),
        skeleton_pass=skeleton_pass,
        decode=decode,
        bone_prior=_bone_prior(_field(d, "bone_prior", dict, path), path) if decode == "bone-tree" else None,
    )


def _field(d, key: str, types, path: Path, where: str = ""):
    """``d[key]`` checked against ``types``; FormatError naming the file and the field."""
    name = f"{where}.{key}" if where else key
    if not isinstance(d, dict) or key not in d:
        raise FormatError(f"{path}: missing '{name}'")
    value = d[key]
    if not isinstance(value, types) or isinstance(value, bool):
        raise FormatError(f"{path}: '{name}' is {value!r}, not a {_type_names(types)}")
    return value


def _bone_prior(d: dict, path: Path) -> BonePrior:
    """run.json's ``bone_prior`` (see :func:`decode_fields`); FormatError naming the file."""
    bones, mean, sd = (_field(d, key, list, path, "bone_prior") for key in ("bones", "mean", "sd"))
    if not all(isinstance(b, list) and len(b) == 2 and all(_is_int(j) and 0 <= j < NUM_JOINTS for j in b) for b in bones):
        raise FormatError(f"{path}: 'bone_prior.bones' must be [parent, child] pairs of joint indices 0-{NUM_JOINTS - 1}")
    if not all(m is None or _is_number(m) for m in mean) or not all(_is_number(v) for v in sd):
        raise FormatError(f"{path}: 'bone_prior.mean' and 'bone_prior.sd' must be numbers, px (a mean may be null: a bone never seen)")
    try:
        return BonePrior([math.nan if m is None else m for m in mean], sd, [tuple(b) for b in bones])
    except ValueError as e:
        raise FormatError(f"{path}: 'bone_prior': {e}") from None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _type_names(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join({"int": "number", "float": "number", "str": "string", "dict": "object", "list": "list"}[t.__name__] for t in types)


def _run_model(d, run_dir: Path, path: Path, where: str) -> RunModel:
    method = _field(d, "method", str, path, where)
    builder = _field(d, "builder", str, path, where)
    if builder not in MODELS:
        raise FormatError(
            f"{path}: {where} '{method}' uses the model {builder!r}, which this gthd ({__version__}) does not know (it knows {', '.join(MODELS)}): upgrade gthd"
        )
    kwargs = d.get("model_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise FormatError(f"{path}: '{where}.model_kwargs' is {kwargs!r}, not an object")
    # a path read from a file: it must stay in the run folder (no "../", no absolute path)
    checkpoint = contained_path(run_dir, _field(d, "checkpoint", str, path, where), f"{path}: '{where}.checkpoint'")
    return RunModel(method, builder, kwargs, checkpoint)


def _frame_size(value: list, builder: str, path: Path) -> tuple[int, int]:
    multiple = MODEL_INFO[builder].size_multiple or 1
    if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 and v % multiple == 0 for v in value):
        raise FormatError(f"{path}: 'detector.frame_size' is {value!r}, expected [width, height], multiples of {multiple}")
    return (value[0], value[1])


def find_pose(run: RunInfo, method: str) -> RunModel:
    """The run's pose model named ``method``: its label ("ours", any case) or its builder
    name ("multiscale_skeleton"). ValueError listing the run's methods otherwise."""
    matches = [m for m in run.pose if method in (m.method, m.builder)]
    matches = matches or [m for m in run.pose if m.method.lower() == method.lower()]
    if matches:
        return matches[0]
    known = "; ".join(f"'{m.method}' ({m.builder})" for m in run.pose) or "none"
    raise ValueError(f"{run.path}: no pose method {method!r} in this run; it has {known}")
