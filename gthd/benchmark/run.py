"""``gthd benchmark``: train what is missing, score everything on the test split, write
the leaderboard.

Methods (the paper's Table II rows we can train here): "ours" (skeleton-aware
multi-scale heatmaps), "ours w/o skeleton", "single-scale heatmaps (UNet)", "direct
regression (Gomez et al.)" (ResNet-50). Hand detection (Table I, section IV-B): the
skeleton UNet, at each skeleton thickness of the profile (the paper's Figure 6
ablation), and a direct box-regression CNN standing in for the paper's Faster R-CNN.

The paper's pipeline scores "ours" with the skeleton the detector predicts (for each
test crop); "ours, true skeleton" is the same network fed the skeleton drawn from the
labels; "ours, end to end" runs the whole pipeline on every test hand frame (the
detector's box makes the crop). Every pose table has a constant-pose row (the training
mean): the reference a method must beat to have learnt anything from the image. The
heatmap methods are decoded as the profile's ``decode`` says: the paper's argmax, or the
bone-tree decode with a bone prior fitted on the training split's labels (run.json keeps
it, so that ``gthd predict`` decodes alike; docs/benchmark.md, "Decoding").

Profiles: ``quick`` (narrow models and the CPU recipe: minutes on a laptop CPU) and
``paper`` (the paper's widths and schedule: Adam, lr 0.01 decayed by 10 % every 8
epochs, 30 epochs, batch 8), or a JSON file of the same fields (the shipped ones, usable by name:
``gthd/benchmark/profiles/*.json``; a run's ``config.json``). With several seeds every model is trained once per seed
and the leaderboard gives means and standard deviations.

A run folder holds one sub-folder per trained model (``last.pt``, ``train.json``), the
seeds beyond the first under ``seeds/<seed>/``, the leaderboard files, ``pck.png``,
``thresholds.png``, ``qualitative.png``, ``config.json`` and ``run.json`` (what ``gthd
predict`` loads: docs/predict.md).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import cv2
import torch

from ..dataset.codec import BonePrior
from ..dataset.schema import dataset_fingerprint, open_dataset
from ..fileio import FormatError, atomic_write_bytes, dumps_json
from .evaluate import detector_skeleton_crops, evaluate_constant, evaluate_detector, evaluate_end_to_end, evaluate_pose, fit_bone_prior, mean_pose
from .figures import qualitative_figure
from .leaderboard import CONSTANT, Leaderboard, aggregate_rows, line_plot, mean_curves
from .models import MODEL_INFO, count_parameters, create_model
from .pipeline import DECODES, SKELETON_PASSES, HandPosePipeline
from .runfile import check_run_folder, decode_fields, write_run
from .train import CHECKPOINT_FIELDS, TrainConfig, check_same_data, config_differences, load_checkpoint, save_skeleton_crops, train

POSE_METHODS = {
    "ours": "multiscale_skeleton",
    "ours w/o skeleton": "multiscale_plain",
    "single-scale heatmaps (UNet)": "unet_heatmaps",
    "direct regression (Gomez et al.)": "resnet50_regression",
}
DETECTOR = ("skeleton UNet (ours)", "skeleton_unet")
BOX_BASELINE = ("box-regression CNN (stand-in for Faster R-CNN)", "box_regressor")
TRUE_SKELETON = "ours, true skeleton"
END_TO_END = "ours, end to end (detector's box)"


OVERRIDABLE = frozenset({"lr", "epochs", "batch_size", "schedule", "warmup_steps", "lr_step", "lr_gamma", "sigma", "heatmap_sigmas", "augment_kwargs"})
"""The :class:`TrainConfig` fields a profile may set per model (``Profile.overrides``)."""


@dataclass
class Profile:
    """How big and how long.

    widths: the models' width argument per builder name. sigma: the heatmap targets'
    Gaussian sigma (input px). thicknesses: the skeleton line widths the detector is
    trained on (one row each; "thick", the paper's choice, feeds the pose pipeline).
    box_baseline: also train the box-regression baseline. detector: train detectors.
    detector_epochs: the epochs of the whole-frame models (detectors, box baseline), if
    not ``epochs``. overrides: per builder name, :class:`TrainConfig` fields that model
    trains with instead of the profile's (e.g. ``{"resnet50_regression": {"lr": 0.001}}``:
    each method at the learning rate it learns at). skeleton_pass: how the
    detector's skeleton for "ours" is made, in training, scoring and ``gthd predict``
    alike: "frame" (its mask of the whole frame, cropped like the image) or "crop" (the
    detector run again on the 128 x 128 crop: a sharper skeleton). pose_skeleton: what
    "ours" trains on: "detector", the skeletons the trained detector predicts for the
    training crops (the paper feeds "the predicted skeleton"), or "labels", skeletons
    drawn from the labels.
    seeds: how many seeds train every model (``--seeds`` overrides it); the leaderboard
    gives their mean and standard deviation. threads: torch threads (None: torch's
    default). schedule, warmup_steps, augment (the :class:`Augment` fields),
    heatmap_sigmas, deterministic, compile: as :class:`~gthd.benchmark.train.TrainConfig`'s
    ``schedule``, ``warmup_steps``, ``augment_kwargs``, ``heatmap_sigmas``,
    ``deterministic``, ``compile`` (CUDA only). decode: how the heatmap methods' keypoints
    are read from their maps, in scoring and ``gthd predict`` alike (:data:`DECODES`):
    "argmax", the paper's, or "bone-tree", the structured decode with a bone-length prior
    fitted on the training split's labels (fewer finger swaps: docs/benchmark.md,
    "Decoding"); not a training parameter, so a run folder is rescored with another decode
    without retraining. inherits: for a profile file, the
    profile its missing fields came from (``quick`` unless the file names ``paper``).
    """

    name: str
    epochs: int
    batch_size: int
    lr: float = 0.01
    lr_step: int = 8
    lr_gamma: float = 0.9
    max_samples: int | None = None
    frame_size: tuple[int, int] = (256, 192)
    num_workers: int = 2
    widths: dict = field(default_factory=dict)
    methods: list = field(default_factory=lambda: list(POSE_METHODS))
    detector: bool = True
    sigma: float = 2.0
    thicknesses: list = field(default_factory=lambda: ["thin", "medium", "thick"])
    box_baseline: bool = True
    detector_epochs: int | None = None
    pose_skeleton: str = "detector"
    overrides: dict = field(default_factory=dict)
    skeleton_pass: str = "frame"
    seeds: int = 1
    threads: int | None = None
    schedule: str = "step"
    warmup_steps: int = 0
    augment: dict = field(default_factory=dict)
    heatmap_sigmas: list | None = None
    deterministic: bool = True
    compile: bool = False
    decode: str = "argmax"
    inherits: str | None = field(default=None, compare=False)

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in POSE_METHODS]
        if unknown:
            raise ValueError(f"profile {self.name!r}: unknown methods {unknown}; known: {', '.join(POSE_METHODS)}")
        for builder, fields_ in self.overrides.items():
            if builder not in MODEL_INFO or not isinstance(fields_, dict):
                raise ValueError(
                    f"profile {self.name!r}: overrides: expected {{builder: {{field: value}}}} with builders among {', '.join(MODEL_INFO)}, got {builder!r}"
                )
            bad = set(fields_) - OVERRIDABLE
            if bad:
                raise ValueError(
                    f"profile {self.name!r}: overrides[{builder!r}]: {sorted(bad)} cannot be overridden; these can: {', '.join(sorted(OVERRIDABLE))}"
                )
        if self.skeleton_pass not in SKELETON_PASSES:
            raise ValueError(f"profile {self.name!r}: skeleton_pass must be one of {', '.join(SKELETON_PASSES)}, got {self.skeleton_pass!r}")
        if self.decode not in DECODES:
            raise ValueError(f"profile {self.name!r}: decode must be one of {', '.join(DECODES)}, got {self.decode!r}")
        if self.pose_skeleton not in ("detector", "labels"):
            raise ValueError(f"profile {self.name!r}: pose_skeleton must be detector or labels, got {self.pose_skeleton!r}")
        bad = [t for t in self.thicknesses if t not in ("thin", "medium", "thick")]
        if bad or not self.thicknesses:
            raise ValueError(f"profile {self.name!r}: thicknesses must be some of thin, medium, thick, got {self.thicknesses}")
        self.frame_size = (int(self.frame_size[0]), int(self.frame_size[1]))
        # the whole-frame models need sides of a multiple of their stride: refused here,
        # not after the first models have trained
        multiple = MODEL_INFO[BOX_BASELINE[1]].size_multiple if self.detector and self.box_baseline else MODEL_INFO[DETECTOR[1]].size_multiple
        if self.detector and any(v < multiple or v % multiple for v in self.frame_size):
            raise ValueError(
                f"profile {self.name!r}: frame_size must be multiples of {multiple} (the detector{' and box baseline' * self.box_baseline}), got {list(self.frame_size)}"
            )

    @classmethod
    def load(cls, name_or_path: str) -> Profile:
        """A built-in profile ("quick", "paper") or a profile JSON file.

        A file may give only some fields: the others come from the profile its
        ``inherits`` field names, ``quick`` when it names none, so a three-line file is a
        quick run with three changes (never, silently, the paper's full-size models).
        Its ``name`` defaults to the file's stem. The resolved profile is what a run
        records (config.json).

        Raises:
            ValueError: one line naming the file: not JSON, not an object, an unknown
                field (with the closest known name), or a field of the wrong type or range
                (the field, what it must be, and the value given).
        """
        if name_or_path in PROFILES:
            return PROFILES[name_or_path]
        path = Path(name_or_path)
        if not path.is_file():
            shipped = SHIPPED_PROFILES / (path.name if path.suffix == ".json" else f"{path.name}.json")
            if path.parent != Path(".") or not shipped.is_file():
                names = ", ".join(shipped_profile_names())
                raise ValueError(f"unknown profile {name_or_path!r}: {names}, or a profile JSON file")
            path = shipped
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
            raise ValueError(f"{path}: not a readable profile JSON file ({_first_line(e)})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{path}: a profile is a JSON object of fields, got {_json_kind(d)}")
        if d.get("format") == CONFIG_FORMAT:  # a run's config.json: the profile it ran, whole
            d = d.get("profile")
            if not isinstance(d, dict):
                raise ValueError(f"{path}: a run config without its profile")
            d = {"decode": "argmax", **d}  # a run of a gthd before the bone-tree decode: scored with the argmax
        known = [f.name for f in fields(cls)]
        for key, value in d.items():
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; the fields are {', '.join(known)}"
                raise ValueError(f"{path}: unknown profile field {key!r}{hint}")
            _check_field(path, key, value)
        base = d.get("inherits") or "quick"
        resolved = {**asdict(PROFILES[base]), "name": path.stem, **d, "inherits": base}
        try:
            return cls(**resolved)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {_first_line(e)}") from None

    @property
    def main_thickness(self) -> str:
        """The detector whose skeleton feeds the pose pipeline: thick if trained."""
        return "thick" if "thick" in self.thicknesses else self.thicknesses[-1]


def _is_int(v, lo: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _is_num(v, lo: float = 0.0) -> bool:
    """A number > ``lo`` (finite: JSON's NaN and Infinity are not)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and lo < v < float("inf")


def _width_ok(builder, width) -> bool:
    # ResNet-50's width is a factor of its channels; the others' a channel count
    return builder in MODEL_INFO and (_is_num(width) if builder == "resnet50_regression" else _is_int(width, 1))


def _augment_ok(v) -> bool:
    return isinstance(v, dict) and all(
        (isinstance(x, list) and len(x) == 2 and all(_is_num(y) for y in x)) if k == "scale" else _is_num(x, -1e-12) for k, x in v.items()
    )


_FIELD_RULES: dict[str, tuple[str, Callable[[object], bool]]] = {
    "name": ("a non-empty string", lambda v: isinstance(v, str) and v.strip() != ""),
    "inherits": ("quick or paper", lambda v: isinstance(v, str) and v in ("quick", "paper")),
    "epochs": ("an integer >= 1", lambda v: _is_int(v, 1)),
    "batch_size": ("an integer >= 1", lambda v: _is_int(v, 1)),
    "lr": ("a number > 0", _is_num),
    "lr_step": ("an integer >= 1", lambda v: _is_int(v, 1)),
    "lr_gamma": ("a number in (0, 1]", lambda v: _is_num(v) and v <= 1),
    "max_samples": ("an integer >= 1, or null for all", lambda v: v is None or _is_int(v, 1)),
    "frame_size": ("[width, height], two integers >= 16", lambda v: isinstance(v, list) and len(v) == 2 and all(_is_int(x, 16) for x in v)),
    "num_workers": ("an integer >= 0", lambda v: _is_int(v, 0)),
    "widths": (
        "an object {builder: width}, an integer >= 1 (a number > 0 for resnet50_regression)",
        lambda v: isinstance(v, dict) and all(_width_ok(k, x) for k, x in v.items()),
    ),
    "methods": ("a list of method names (empty: detectors only)", lambda v: isinstance(v, list) and all(isinstance(m, str) for m in v)),
    "detector": ("true or false", lambda v: isinstance(v, bool)),
    "sigma": ("a number > 0", _is_num),
    "thicknesses": ("a non-empty list of thin, medium, thick", lambda v: isinstance(v, list) and len(v) > 0 and all(isinstance(t, str) for t in v)),
    "box_baseline": ("true or false", lambda v: isinstance(v, bool)),
    "detector_epochs": ("an integer >= 1, or null for epochs", lambda v: v is None or _is_int(v, 1)),
    "pose_skeleton": ("detector or labels", lambda v: isinstance(v, str) and v in ("detector", "labels")),
    "overrides": ("an object {builder: {field: value}}", lambda v: isinstance(v, dict) and all(isinstance(x, dict) for x in v.values())),
    "skeleton_pass": (" or ".join(SKELETON_PASSES), lambda v: isinstance(v, str) and v in SKELETON_PASSES),
    "seeds": ("an integer >= 1", lambda v: _is_int(v, 1)),
    "threads": ("an integer >= 1, or null for torch's choice", lambda v: v is None or _is_int(v, 1)),
    "schedule": ("step or cosine", lambda v: isinstance(v, str) and v in ("step", "cosine")),
    "warmup_steps": ("an integer >= 0", lambda v: _is_int(v, 0)),
    "augment": ("an object of augmentation fields, numbers (scale: [low, high])", _augment_ok),
    "heatmap_sigmas": (
        "a list of numbers > 0 (one per output), or null",
        lambda v: v is None or (isinstance(v, list) and len(v) > 0 and all(_is_num(x) for x in v)),
    ),
    "deterministic": ("true or false", lambda v: isinstance(v, bool)),
    "compile": ("true or false", lambda v: isinstance(v, bool)),
    "decode": (" or ".join(DECODES), lambda v: isinstance(v, str) and v in DECODES),
}
"""What each profile field must be, checked on a profile file before anything runs."""

_OVERRIDE_RULES = {"augment_kwargs": "augment"}
"""TrainConfig fields an override sets, checked by the profile field of another name."""


def _check_field(path: Path, key: str, value, where: str = "") -> None:
    """ValueError naming the field, what it must be and the value, if ``value`` is not
    a valid ``key``; the fields of ``overrides`` are checked like the profile's own."""
    expected, ok = _FIELD_RULES[key]
    if not ok(value):
        raise ValueError(f"{path}: field {where}{key!r} must be {expected}, got {_json_show(value)}")
    if key == "overrides":
        for builder, fields_ in value.items():
            for name, v in fields_.items():
                rule = _OVERRIDE_RULES.get(name, name)
                if rule in _FIELD_RULES:  # unknown names: refused by Profile, listing the overridable ones
                    _check_field(path, rule, v, where=f"overrides[{builder!r}]: ")


def _json_show(value, limit: int = 60) -> str:
    """A value as its JSON spelling (cut to ``limit``), with its JSON kind."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{text} ({_json_kind(value)})"


def _json_kind(value) -> str:
    kinds = ((bool, "true/false"), (int, "an integer"), (float, "a number"), (str, "a string"), (list, "a list"), (dict, "an object"))
    return "null" if value is None else next((name for t, name in kinds if isinstance(value, t)), type(value).__name__)


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


QUICK_RECIPE = dict(
    batch_size=8,
    lr=0.01,
    schedule="cosine",
    warmup_steps=100,
    lr_step=1,
    lr_gamma=1.0,
    max_samples=None,
    num_workers=0,
    sigma=2.0,
    skeleton_pass="crop",
    heatmap_sigmas=[2.0, 2.0, 2.0, 2.0, 2.0],
    augment={"rotate_deg": 15.0, "scale": [0.9, 1.1], "translate": 0.05, "flip": 0.0},
    widths={"multiscale_skeleton": 16, "multiscale_plain": 16, "unet_heatmaps": 8, "resnet50_regression": 0.25, "skeleton_unet": 8, "box_regressor": 16},
    overrides={
        "skeleton_unet": {"lr": 0.003},
        "box_regressor": {"lr": 0.003},
        "resnet50_regression": {"lr": 0.001},
        "unet_heatmaps": {"lr": 0.003, "sigma": 4.0},
    },
)
"""The CPU recipe of the quick profiles, found by measurement (docs/benchmark.md, "A CPU
recipe that learns"): the paper's batch 8; Adam 0.01 with 100 warm-up steps, then a
cosine decay to 0 over the run (the paper's step decay, 10 % every 8 epochs, barely moves in a few epochs); milder
augmentation; targets of sigma 2 heatmap pixels at every scale; the detector's skeleton
made on the crop; data loaded in the training process (no workers to oversubscribe 2
cores). Each baseline at the learning rate it learns at (``overrides``): the detector and
box regressor 0.003 (at 0.01 the detector can collapse to an empty mask), ResNet-50
regression 0.001 (at 0.01 it only learns the mean pose), the single-scale UNet 0.003
with 4 px targets (at 2 px it stays at the all-zero output for 12 epochs)."""

CONFIG_FORMAT = "gthd-benchmark-config"  # a run's config.json: also accepted as a profile
SHIPPED_PROFILES = Path(__file__).parent / "profiles"  # quick.json, paper.json, long.json, ...: usable by name anywhere


def shipped_profile_names() -> list[str]:
    """The profiles usable by name: the built-in ones and the files shipped with gthd."""
    return list(dict.fromkeys([*PROFILES, *sorted(p.stem for p in SHIPPED_PROFILES.glob("*.json"))]))


PROFILES = {
    "quick": Profile(
        "quick", epochs=12, detector_epochs=4, frame_size=(256, 192), thicknesses=["thick"], box_baseline=False, decode="bone-tree", **QUICK_RECIPE
    ),
    "paper": Profile("paper", epochs=30, batch_size=8, lr=0.01, max_samples=None, num_workers=4, deterministic=False),
}


def _slug(label: str) -> str:
    s = "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")
    while "--" in s:
        s = s.replace("--", "-")
    return s


def train_config(builder: str, profile: Profile, dataset: str, seed: int, skeleton: str = "thick", skeleton_crops: str | None = None) -> TrainConfig:
    """The training run of one model under ``profile``."""
    kwargs = model_kwargs(profile, builder)
    frames = builder in (DETECTOR[1], BOX_BASELINE[1])
    epochs = profile.detector_epochs if frames and profile.detector_epochs else profile.epochs
    config = TrainConfig(
        model=builder,
        model_kwargs=kwargs,
        data=str(dataset),
        epochs=epochs,
        batch_size=profile.batch_size,
        lr=profile.lr,
        lr_step=profile.lr_step,
        lr_gamma=profile.lr_gamma,
        seed=seed,
        max_samples=profile.max_samples,
        num_workers=profile.num_workers,
        frame_size=tuple(profile.frame_size),
        sigma=profile.sigma,
        skeleton=skeleton,
        skeleton_crops=skeleton_crops,
        schedule=profile.schedule,
        warmup_steps=profile.warmup_steps,
        augment_kwargs=profile.augment,
        deterministic=profile.deterministic,
        compile=profile.compile,
        heatmap_sigmas=profile.heatmap_sigmas if MODEL_INFO[builder].task == "pose-heatmap" and len(MODEL_INFO[builder].strides) > 1 else None,
    )
    return replace(config, **profile.overrides.get(builder, {}))


def train_or_load(config: TrainConfig, out_dir: Path, progress=None, on_batch=None, fingerprint: str | None = None) -> tuple[torch.nn.Module, dict]:
    """The trained model of ``config`` in ``out_dir``: reused when its checkpoint has all
    the epochs of this very config, else trained (resuming an interrupted run).

    Args:
        fingerprint: ``config.data``'s :func:`dataset_fingerprint` (computed if None).

    Raises:
        ValueError: ``out_dir`` holds a model trained with another config or on other data.
        FormatError: its checkpoint or train.json is damaged (the message says to delete it).
    """
    ckpt_path, done = out_dir / "last.pt", out_dir / "train.json"
    saved = check_model_folder(config, out_dir, fingerprint)
    if saved is not None and saved.get("epoch") == config.epochs and done.exists():
        result = _train_result(done)
    else:
        result = train(config, out_dir, resume=saved is not None, progress=progress, on_batch=on_batch).to_dict()
        saved = load_checkpoint(ckpt_path)
    model = create_model(config.model, **config.model_kwargs)
    try:
        model.load_state_dict(saved["model"])
    except (RuntimeError, TypeError, AttributeError) as e:  # weights of another shape or kind
        line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise FormatError(f"{ckpt_path}: its weights do not fit {config.model} ({line}): delete it and re-run to train this model again") from None
    return model.eval(), result


def _train_result(path: Path) -> dict:
    """The ``result`` of a train.json; FormatError (one line) if it is damaged."""
    try:
        result = json.loads(path.read_text()).get("result")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as e:
        raise FormatError(f"{path}: not readable ({type(e).__name__}): delete it (and its last.pt) and re-run to train this model again") from None
    if not isinstance(result, dict):
        raise FormatError(f"{path}: no training result in it: delete it (and its last.pt) and re-run to train this model again")
    return result


def check_model_folder(config: TrainConfig, out_dir: Path, fingerprint: str | None = None) -> dict | None:
    """The checkpoint in ``out_dir`` (None if none), refused if it was trained with
    another config or on other data.

    The dataset is identified by content (``fingerprint``, computed from
    ``config.data`` if None), the run folder not at all: another spelling of the same
    dataset's path, a moved dataset or a moved run folder still resume.

    Raises:
        ValueError: another config, other data. FormatError: a damaged checkpoint.
    """
    ckpt_path = out_dir / "last.pt"
    if not ckpt_path.exists():
        return None
    saved = load_checkpoint(ckpt_path, require=CHECKPOINT_FIELDS)
    diff = config_differences(saved["config"], config.to_dict(), ignore=())
    if diff:
        raise ValueError(f"{out_dir} was trained with another config ({', '.join(diff)} differ): use another --out, or delete it")
    check_same_data(saved, config, fingerprint or dataset_fingerprint(config.data), out_dir)
    return saved


@dataclass
class SeedRun:
    """What one seed's run gives: leaderboard rows, PCK curves, the threshold sweeps of
    the detectors, the pose predictions (for the qualitative figure) and run.json's
    content (the models of this seed)."""

    seed: int
    pose: list = field(default_factory=list)
    detection: list = field(default_factory=list)
    curves: dict = field(default_factory=dict)
    sweeps: dict = field(default_factory=dict)
    predictions: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)


def seed_folder(out: Path, seed: int, first_seed: int) -> Path:
    """Where the models of ``seed`` live: the run folder itself for the first seed (the
    models ``gthd predict`` loads), ``seeds/<seed>/`` in it for the others."""
    return out if seed == first_seed else out / "seeds" / str(seed)


def run_benchmark(
    dataset: str | Path,
    profile: Profile,
    out: str | Path,
    seed: int = 0,
    seeds: int | None = None,
    progress: Callable[[dict], None] | None = None,
    log=print,
    on_batch: Callable[[str, int, int], None] | None = None,
) -> Leaderboard:
    """Train (or reuse) every model of ``profile`` for each seed and score it on the test
    split; the leaderboard holds the mean and standard deviation over the seeds.

    Args:
        seed: the first seed; seeds: how many (``seed``, ``seed + 1``, ...; default the
            profile's ``seeds``). Each seed trains every model anew (its init, shuffling
            and augmentation), so the spread says how much of a difference between two
            rows is noise.
        progress: per-epoch callback (see :func:`~gthd.benchmark.train.train`).
        log: one line per step. on_batch: ``(label, done, total)`` after each batch.
    """
    dataset, out = str(dataset), Path(out)
    seeds = int(seeds if seeds is not None else profile.seeds)
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    with open_dataset(dataset) as f:
        split = f["meta/split"][...]
        has = f["labels/has_hand"][...]
    if not ((split == 2) & has).any():
        raise ValueError(f"{dataset}: no test split with hands to score on (build it with splits)")
    fingerprint = dataset_fingerprint(dataset)
    check_run_folder(out, fingerprint)
    detectors = bool(profile.detector and (split == 1).any())
    for s in range(seed, seed + seeds):  # refuse before any work
        for config, folder in plan(profile, dataset, s, seed_folder(out, s, seed), with_detectors=detectors):
            check_model_folder(config, seed_folder(out, s, seed) / folder, fingerprint)
    # the bone-tree decode's prior: the training labels' bone lengths (crop px), one for every seed
    prior = fit_bone_prior(dataset, "train") if profile.decode == "bone-tree" else None
    out.mkdir(parents=True, exist_ok=True)
    set_threads(profile.threads)
    runs = []
    for s in range(seed, seed + seeds):
        if seeds > 1:
            log(f"seed {s} ({s - seed + 1} of {seeds})")
        runs.append(run_seed(dataset, profile, s, seed_folder(out, s, seed), detectors, progress, log, on_batch, fingerprint, prior))

    # -- the leaderboard over the seeds, and the files
    name = Path(dataset).stem
    board = Leaderboard(
        name,
        pose=aggregate_rows([r.pose for r in runs]),
        detection=aggregate_rows([r.detection for r in runs]),
        curves=mean_curves([r.curves for r in runs]),
        config={"profile": asdict(profile), "seed": seed, "seeds": seeds, "dataset": dataset, "threads": torch.get_num_threads()},
    )
    board.per_seed = [{"seed": r.seed, "pose": r.pose, "detection": r.detection} for r in runs]
    board.write(out, paper="GTHD")
    first = runs[0]
    if first.sweeps:
        line_plot(
            first.sweeps,
            out / "thresholds.png",
            title=f"Hand/NoHand F1 against the pixel threshold ({name}, test, seed {first.seed})",
            xlabel="threshold (foreground pixels)",
            x_format="{:.0f}",
        )
    shown = [m for m in ("direct regression (Gomez et al.)", "ours") if m in first.predictions] or list(first.predictions)[:2]
    if shown:
        img = qualitative_figure(dataset, {m: first.predictions[m] for m in shown})
        atomic_write_bytes(out / "qualitative.png", cv2.imencode(".png", img)[1].tobytes())
    atomic_write_bytes(out / "config.json", dumps_json({"format": CONFIG_FORMAT, "format_version": 1, **board.config}).encode())
    with open_dataset(dataset) as f:
        margins = {"crop_margin": float(f.attrs.get("crop_margin", 0.25)), "box_margin": float(f.attrs.get("box_margin", 0.05))}
    manifest = {
        "dataset": dataset,
        "dataset_fingerprint": fingerprint,
        "profile": profile.name,
        **margins,
        **decode_fields(profile.decode, prior),
        **first.manifest,
    }
    write_run(out, manifest)
    return board


def run_seed(
    dataset: str,
    profile: Profile,
    seed: int,
    out: Path,
    detectors: bool,
    progress=None,
    log=print,
    on_batch=None,
    fingerprint: str | None = None,
    bone_prior: BonePrior | None = None,
) -> SeedRun:
    """Train (or reuse) and score every model of ``profile`` with one ``seed``, its models
    in ``out``: the detectors (one per thickness) and the box baseline, the pose methods,
    the constant-pose reference, "ours" with the true skeleton, and the end-to-end
    pipeline (the main detector's box and skeleton, then "ours"). The heatmap methods are
    decoded with ``bone_prior`` (the profile's "bone-tree" decode) or their argmax (None)."""
    run = SeedRun(seed, manifest={"pose": [], "detector": None})
    batches = (lambda label: lambda done, total: on_batch(label, done, total)) if on_batch else (lambda label: None)
    with open_dataset(dataset) as f:
        crop_margin = float(f.attrs.get("crop_margin", 0.25))
        box_margin = float(f.attrs.get("box_margin", 0.05))

    def fit(label: str, config: TrainConfig, folder: str):
        log(f"{label}: {config.model}")
        return train_or_load(config, out / folder, progress, batches(label), fingerprint)

    # -- hand detection: the skeleton UNet at each thickness, the box baseline
    skeletons = main_detector = None
    if detectors:
        for thickness in profile.thicknesses:
            label = f"{DETECTOR[0]}, {thickness} skeleton"
            folder = f"skeleton-unet-{thickness}"
            model, info = fit(label, train_config(DETECTOR[1], profile, dataset, seed, thickness), folder)
            row = evaluate_detector(model, dataset, size=profile.frame_size)
            run.sweeps[f"{thickness} skeleton"] = row.pop("sweep")
            run.detection.append({"method": label, "train_s": info.get("train_time_s"), **row})
            if thickness == profile.main_thickness:
                log(f"{label}: its skeletons for the pose pipeline")
                main_detector = (model, row["threshold"])
                skeletons = detector_skeleton_crops(model, dataset, "test", size=profile.frame_size, on=profile.skeleton_pass)
                train_crops = out / skeleton_crops_file(profile)
                if profile.pose_skeleton == "detector" and not train_crops.exists():
                    save_skeleton_crops(train_crops, detector_skeleton_crops(model, dataset, "train", size=profile.frame_size, on=profile.skeleton_pass))
                run.manifest["detector"] = {
                    "method": DETECTOR[0],
                    "builder": DETECTOR[1],
                    "model_kwargs": model_kwargs(profile, DETECTOR[1]),
                    "checkpoint": f"{folder}/last.pt",
                    "frame_size": list(profile.frame_size),
                    "threshold_pixels": row["threshold"],
                    "thickness": thickness,
                    "skeleton_pass": profile.skeleton_pass,
                }
        if profile.box_baseline:
            label, builder = BOX_BASELINE
            model, info = fit(label, train_config(builder, profile, dataset, seed), _slug(label))
            row = evaluate_detector(model, dataset, size=profile.frame_size)
            row.pop("sweep")
            run.detection.append({"method": label, "train_s": info.get("train_time_s"), **row})

    # -- pose estimation (on the ground-truth crops: the paper's Table II protocol)
    def add(label: str, scores: dict, **common):
        run.pose.append({"method": label, **common, **_pose_row(scores)})
        run.curves[label] = scores["curve"]

    add(CONSTANT, evaluate_constant(mean_pose(dataset, "train"), dataset, "test"), paper_name=CONSTANT, train_s=0.0, params_m=0.0)
    for label in profile.methods:
        builder = POSE_METHODS[label]
        folder = _slug(label)
        model, info = fit(label, pose_config(label, profile, dataset, seed, out, detectors), folder)
        common = {"paper_name": label, "train_s": info.get("train_time_s"), "params_m": count_parameters(model) / 1e6}
        takes_skeleton = builder == "multiscale_skeleton"
        s = evaluate_pose(model, builder, dataset, "test", skeletons=skeletons if takes_skeleton else None, bone_prior=bone_prior)
        add(label, s, **common)
        run.predictions[label] = s
        if takes_skeleton and skeletons is not None:
            add(TRUE_SKELETON, evaluate_pose(model, builder, dataset, "test", bone_prior=bone_prior), **common)  # the true skeleton
            # -- the whole pipeline: the detector's box and skeleton, then the pose network
            detector, threshold = main_detector
            pipe = HandPosePipeline(
                detector, model, builder, profile.frame_size, threshold, crop_margin, box_margin, skeleton_pass=profile.skeleton_pass, bone_prior=bone_prior
            )
            e = evaluate_end_to_end(pipe, dataset, "test")
            add(END_TO_END, e, **common, found=e["found"], missed=e["missed"])
        run.manifest["pose"].append({"method": label, "builder": builder, "model_kwargs": model_kwargs(profile, builder), "checkpoint": f"{folder}/last.pt"})
    return run


def set_threads(threads: int | None) -> None:
    """Use ``threads`` torch threads (None: keep torch's choice). The benchmark loads its
    data in the training process (``num_workers`` 0 in the quick profile), so on a small
    machine torch may have every core: loader workers beside torch's threads would
    oversubscribe them (measured: 2 threads ran 10x slower than 1 beside 2 workers)."""
    if threads:
        torch.set_num_threads(int(threads))


def plan(profile: Profile, dataset: str, seed: int, out: Path, with_detectors: bool = True) -> list[tuple[TrainConfig, str]]:
    """Every model ``profile`` trains: (its config, its folder in the run)."""
    jobs = []
    if profile.detector and with_detectors:
        jobs += [(train_config(DETECTOR[1], profile, dataset, seed, t), f"skeleton-unet-{t}") for t in profile.thicknesses]
        if profile.box_baseline:
            jobs.append((train_config(BOX_BASELINE[1], profile, dataset, seed), _slug(BOX_BASELINE[0])))
    detectors = profile.detector and with_detectors
    jobs += [(pose_config(m, profile, dataset, seed, out, detectors), _slug(m)) for m in profile.methods]
    return jobs


def pose_config(label: str, profile: Profile, dataset: str, seed: int, out: Path, detectors: bool) -> TrainConfig:
    """The training run of a pose method: "ours" on the detector's skeletons of the
    training crops (``profile.pose_skeleton`` "detector", with a detector) or on drawn ones."""
    builder = POSE_METHODS[label]
    crops = None
    if builder == "multiscale_skeleton" and profile.pose_skeleton == "detector" and detectors:
        crops = str(out / skeleton_crops_file(profile))
    return train_config(builder, profile, dataset, seed, skeleton_crops=crops)


def skeleton_crops_file(profile: Profile) -> str:
    """Where, in a seed's folder, the main detector's skeletons of the training crops are
    kept (what "ours" trains on), one file per way of making them."""
    name = "skeletons-train.npz" if profile.skeleton_pass == "frame" else f"skeletons-train-{profile.skeleton_pass}.npz"
    return f"skeleton-unet-{profile.main_thickness}/{name}"


def model_kwargs(profile: Profile, builder: str) -> dict:
    """The builder's keyword arguments under ``profile`` (its width, if the profile sets one)."""
    return {"width": profile.widths[builder]} if builder in profile.widths else {}


def _pose_row(s: dict) -> dict:
    keys = ("mjpe_px", "median_px", "epe_px", "pck_0.05", "pck_0.1", "pck_0.2", "auc", "infer_ms")
    return {k: float(s[k]) for k in keys}


__all__ = ["Profile", "PROFILES", "POSE_METHODS", "run_benchmark", "plan", "train_config", "train_or_load", "check_run_folder", "dataset_fingerprint"]
