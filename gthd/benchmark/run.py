"""``gthd benchmark``: train what is missing, score everything on the test split, write
the leaderboard.

Methods (the paper's Table II rows we can train here): "ours" (skeleton-aware
multi-scale heatmaps), "ours w/o skeleton", "single-scale heatmaps (UNet)", "direct
regression (Gomez et al.)" (ResNet-50); and the skeleton UNet as the hand detector.
Profiles: ``quick`` (narrow models, few samples and epochs: minutes on a laptop CPU) and
``paper`` (the paper's widths and schedule: Adam, lr 0.01 decayed by 10 % every 8
epochs, 30 epochs, batch 8), or a JSON file of the same fields
(``benchmark/profiles/*.json``).

Pose models are scored with the true skeleton channel (drawn from the labels); the
paper's pipeline (skeleton from the detector) is not wired in yet.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..dataset.schema import open_dataset
from ..fileio import atomic_write_bytes, dumps_json
from .evaluate import evaluate_detector, evaluate_pose
from .leaderboard import Leaderboard
from .models import create_model
from .train import TrainConfig, load_checkpoint, train

POSE_METHODS = {
    "ours": "multiscale_skeleton",
    "ours w/o skeleton": "multiscale_plain",
    "single-scale heatmaps (UNet)": "unet_heatmaps",
    "direct regression (Gomez et al.)": "resnet50_regression",
}
DETECTOR = ("skeleton UNet (ours)", "skeleton_unet")


@dataclass
class Profile:
    """How big and how long. ``widths`` per builder name (the models' width argument)."""

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

    @classmethod
    def load(cls, name_or_path: str) -> "Profile":
        if name_or_path in PROFILES:
            return PROFILES[name_or_path]
        path = Path(name_or_path)
        if not path.is_file():
            raise ValueError(f"unknown profile {name_or_path!r}: quick, paper, or a profile JSON file")
        d = json.loads(path.read_text())
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown profile fields {sorted(unknown)}")
        if "frame_size" in d:
            d["frame_size"] = tuple(d["frame_size"])
        return cls(**d)


PROFILES = {
    "quick": Profile(
        "quick", epochs=4, batch_size=16, lr=0.002, max_samples=600, num_workers=2,
        widths={"multiscale_skeleton": 24, "multiscale_plain": 24, "unet_heatmaps": 12, "resnet50_regression": 0.25, "skeleton_unet": 8},
        frame_size=(160, 128),
    ),
    "paper": Profile("paper", epochs=30, batch_size=8, lr=0.01, max_samples=None, num_workers=4),
}


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-").replace("--", "-")


def _train_or_load(builder: str, profile: Profile, dataset: str, out_dir: Path, seed: int, progress=None) -> tuple[torch.nn.Module, dict]:
    kwargs = {"width": profile.widths[builder]} if builder in profile.widths else {}
    config = TrainConfig(
        model=builder, model_kwargs=kwargs, data=str(dataset), epochs=profile.epochs, batch_size=profile.batch_size, lr=profile.lr,
        lr_step=profile.lr_step, lr_gamma=profile.lr_gamma, seed=seed, max_samples=profile.max_samples, num_workers=profile.num_workers,
        frame_size=tuple(profile.frame_size),
    )
    done = out_dir / "train.json"
    if done.exists() and (out_dir / "last.pt").exists():
        info = json.loads(done.read_text())
        if info.get("epochs") == profile.epochs and load_checkpoint(out_dir / "last.pt").get("config") == config.to_dict():
            state = load_checkpoint(out_dir / "last.pt")
            model = create_model(builder, **kwargs)
            model.load_state_dict(state["model"])
            return model, info
    result = train(config, out_dir, resume=(out_dir / "last.pt").exists(), progress=progress)
    state = load_checkpoint(out_dir / "last.pt")
    model = create_model(builder, **kwargs)
    model.load_state_dict(state["model"])
    return model, result.to_dict()


def run_benchmark(dataset: str | Path, profile: Profile, out: str | Path, seed: int = 0, progress=None, log=print) -> Leaderboard:
    """Train (or reuse) every method of ``profile`` and score it on the test split."""
    dataset, out = str(dataset), Path(out)
    with open_dataset(dataset) as f:
        split = f["meta/split"][...]
        has = f["labels/has_hand"][...]
        name = Path(dataset).stem
    if not ((split == 2) & has).any():
        raise ValueError(f"{dataset}: no test split with hands to score on (build it with splits)")
    out.mkdir(parents=True, exist_ok=True)
    board = Leaderboard(name, config={"profile": asdict(profile), "seed": seed, "dataset": dataset})
    torch.manual_seed(seed)
    for label in profile.methods:
        builder = POSE_METHODS[label]
        log(f"{label}: {builder}")
        model, info = _train_or_load(builder, profile, dataset, out / _slug(label), seed, progress)
        s = evaluate_pose(model, builder, dataset, "test")
        board.pose.append({
            "method": label, "paper_name": label, "mjpe_px": s["mjpe_px"], "epe_px": s["epe_px"], "pck_0.05": s["pck_0.05"], "pck_0.1": s["pck_0.1"],
            "pck_0.2": s["pck_0.2"], "auc": s["auc"], "train_s": info.get("train_time_s"), "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "infer_ms": s["infer_ms"],
        })
        board.curves[label] = s["curve"]
    if profile.detector and ((split == 1).any()):
        label, builder = DETECTOR
        log(f"{label}: {builder}")
        model, info = _train_or_load(builder, profile, dataset, out / _slug(label), seed, progress)
        row = evaluate_detector(model, dataset, size=tuple(profile.frame_size))
        board.detection.append({"method": label, **{k: row[k] for k in ("iou", "accuracy", "precision", "recall", "f1", "auc")}})
    board.write(out, paper="GTHD")
    atomic_write_bytes(out / "config.json", dumps_json({"format": "gthd-benchmark-config", "format_version": 1, **board.config}).encode())
    return board


__all__ = ["Profile", "PROFILES", "POSE_METHODS", "run_benchmark"]
