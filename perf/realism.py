"""Does a detector trained on real photos believe the simulated hands? (issue 12)

Runs MediaPipe Hands (0.10.14, legacy ``solutions.hands``: static images, model
complexity 1, detection confidence 0.3) over simulated frames and, with the same settings,
over real photos with 21-keypoint annotations, and prints both side by side per
hand-size bucket. MediaPipe cannot live in gthd's environment (numpy < 2, opencv-contrib),
so it runs in its own, driven over a pipe (:mod:`gthd.mediapipe_runner`; making that
environment: docs/simulate.md, "Realism check").

    .venv/bin/python perf/realism.py [--sessions 8] [--seed 1] [--duration 15] [--every 3]
        [--difficulty medium] [--in-view] [--real DIR] [--misses DIR]

What is counted (goals of issue 12 in brackets):
  hands       frames whose true hand has >= 15 joints visible (in the image and not
              hidden behind another part of the hand: the truth's ``visible``; with
              --in-view, in the image) and a box (longest side of the visible joints'
              box) of 40-300 px, per size bucket <80, 80-160, >160 px
  found       a detected hand whose keypoint box overlaps the true box (IoU >= 0.3)
              [>= 85 % overall, >= 75 % per bucket]
  PCK@0.2     of found hands: share of visible joints within 0.2 x the box's longest
              side of the truth [>= 0.85]
  hand-free   frames without a hand on which anything is detected [0]
  extra       detections on hand frames that match no true hand (skin-coloured clutter,
              a second detection of the hand)
  person's    detections on the hand the person in the background sometimes raises: a
  hand        real hand, not the subject's, so neither a false detection nor a match
Simulated frames go through JPEG at the session's quality, as a session stores them.
The real photos (OneHand10K, CMU Panoptic, FreiHAND, RHD samples; ``--real``, by default
``../shared/data/realhands`` beside the repository) are a reference only: the rows are
skipped when the folder is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from gthd.mediapipe_runner import MediaPipeRunner
from gthd.sim.rig import RigConfig
from gthd.sim.simulate import SimRun

BUCKETS = (("<80", 0.0, 80.0), ("80-160", 80.0, 160.0), (">160", 160.0, np.inf))
MIN_JOINTS, SIZE_RANGE = 15, (40.0, 300.0)
REAL_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "realhands"


def _box(uv: np.ndarray) -> np.ndarray:
    return np.array([*uv.min(0), *uv.max(0)])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(true_uv: np.ndarray, visible: np.ndarray, hands: list[dict]) -> tuple[float | None, int, np.ndarray | None]:
    """Match detections to one true hand.

    Returns:
        PCK@0.2 of the best-overlapping detection (None if none overlaps with IoU >= 0.3),
        the number of other detections, and the detection's per-joint error as a share of
        the box's longest side (21,; NaN where the joint is not in view), or None.
    """
    tb = _box(true_uv[visible])
    size = max(tb[2] - tb[0], tb[3] - tb[1])
    best, best_iou = None, 0.3
    for h in hands:
        iou = _iou(tb, _box(np.asarray(h["keypoints"])))
        if iou >= best_iou:
            best, best_iou = h, iou
    if best is None:
        return None, len(hands), None
    err = np.linalg.norm(np.asarray(best["keypoints"]) - true_uv, axis=1) / size
    err[~visible] = np.nan
    return float(np.mean(err[visible] < 0.2)), len(hands) - 1, err


class Tally:
    """Found/PCK counts per size bucket."""

    def __init__(self):
        self.found = {b[0]: [] for b in BUCKETS}
        self.pck = {b[0]: [] for b in BUCKETS}
        self.extra = 0
        self.free_frames = 0
        self.free_detections = 0
        self.person_hand = 0  # detections on the background person's own hand
        self.joint_err: list[np.ndarray] = []

    def add(self, size: float, pck: float | None, err: np.ndarray | None = None) -> None:
        name = next(b[0] for b in BUCKETS if b[1] <= size < b[2])
        self.found[name].append(pck is not None)
        if pck is not None:
            self.pck[name].append(pck)
        if err is not None:
            self.joint_err.append(err)

    def joints(self) -> str:
        """Median error per joint of found hands (share of the box), worst first."""
        from gthd.hand import JOINT_NAMES

        med = np.nanmedian(np.array(self.joint_err), axis=0)
        order = np.argsort(-med)
        return ", ".join(f"{JOINT_NAMES[j]} {med[j]:.2f}" for j in order[:8])

    def row(self, name: str) -> str:
        cells = []
        for b in [x[0] for x in BUCKETS] + ["all"]:
            f = sum(self.found.values(), []) if b == "all" else self.found[b]
            p = sum(self.pck.values(), []) if b == "all" else self.pck[b]
            cells.append(f"{100 * np.mean(f):5.1f} % of {len(f):4d}" if f else "-")
            if b == "all":
                cells.append(f"{np.mean(p):.3f}" if p else "-")
        free = f"{self.free_detections} of {self.free_frames}" if self.free_frames else "-"
        return f"| {name} | " + " | ".join(cells) + f" | {free} | {self.extra} | {self.person_hand} |"


HEADER = "| frames | found <80 px | found 80-160 px | found >160 px | found, all | PCK@0.2 | hand-free frames with a detection | extra detections | on the person's hand |\n|---|---|---|---|---|---|---|---|---|"


def _on_any(hand: dict, boxes: list[np.ndarray]) -> bool:
    """The detection's centre lies in one of ``boxes`` (xyxy)."""
    c = np.asarray(hand["keypoints"]).mean(axis=0)
    return any(b[0] <= c[0] <= b[2] and b[1] <= c[1] <= b[3] for b in boxes)


def _lines(img: np.ndarray, uv: np.ndarray, color) -> None:
    from gthd.hand import EDGES

    for a, b in EDGES:
        cv2.line(img, tuple(int(v) for v in uv[a]), tuple(int(v) for v in uv[b]), color, 1, cv2.LINE_AA)


def run_sim(runner: MediaPipeRunner, seeds: list[int], config: RigConfig, every: int, misses: Path | None, in_view: bool = False) -> Tally:
    """Detect over every ``every``-th frame of one session per seed. A joint counts as
    visible where the renderer's part buffer shows it (``visible`` in the truth), or with
    ``in_view`` wherever it is in the image (self-occluded joints too)."""
    tally = Tally()
    for seed in seeds:
        run = SimRun(seed, config)
        params = [cv2.IMWRITE_JPEG_QUALITY, run.rig.jpeg_quality]
        for i, seq, img, hand in run.camera_frames():
            if i % every:
                continue
            data = cv2.imencode(".jpg", img, params)[1].tobytes()
            t_s = (run.cam_tl.t_exposure_ns[i] - run.rig.host_start_ns) / 1e9
            others = [b for b in (p.hand_box_at(t_s) for p in run.scene.people if hasattr(p, "hand_box_at")) if b is not None]
            if hand is None:
                hands = runner.detect_encoded(data)
                theirs = [h for h in hands if _on_any(h, others)]  # the person's own hand
                tally.person_hand += len(theirs)
                hands = [h for h in hands if not _on_any(h, others)]
                tally.free_frames += 1
                tally.free_detections += bool(hands)
                if hands and misses is not None:
                    cv2.imwrite(str(misses / f"free_s{seed}_{i:04d}.jpg"), img)
                continue
            uv = np.asarray(hand["keypoints"])
            vis = np.asarray(hand["in_image" if in_view else "visible"], bool)
            if vis.sum() < MIN_JOINTS:
                continue
            b = _box(uv[vis])
            size = max(b[2] - b[0], b[3] - b[1])
            if not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]:
                continue
            hands = runner.detect_encoded(data)
            pck, extra, err = match(uv, vis, hands)
            n_theirs = sum(_on_any(h, others) for h in hands)
            tally.person_hand += n_theirs
            extra -= min(extra, n_theirs)
            tally.add(size, pck, err)
            tally.extra += extra
            if misses is not None and (pck is None or pck < 0.6):
                if pck is not None:  # a poor fit: the truth in green, the detection in red
                    img = img.copy()
                    best = max(hands, key=lambda h: _iou(b, _box(np.asarray(h["keypoints"]))))
                    _lines(img, uv, (0, 255, 0))
                    _lines(img, np.asarray(best["keypoints"]), (0, 0, 255))
                kind = "miss" if pck is None else f"poor{pck:.2f}"
                cv2.imwrite(str(misses / f"{kind}_s{seed}_{i:04d}_{size:.0f}px.jpg"), img)
    return tally


def _real_annotations(folder: Path):
    """(image path, keypoints (21, 2), visible (21,)) of the COCO-style samples."""
    for name in ("onehand10k", "panoptic", "freihand", "rhd"):
        files = list((folder / name).glob("test_*.json"))
        if not files:
            continue
        doc = json.loads(files[0].read_text())
        images = {im["id"]: im["file_name"] for im in doc["images"]}
        for a in doc["annotations"]:
            k = np.asarray(a["keypoints"], dtype=np.float64).reshape(21, 3)
            if name == "rhd":  # RHD's own order: each finger from its tip to its base
                k = k[[0] + [1 + 4 * f + 3 - j for f in range(5) for j in range(4)]]
            yield folder / name / images[a["image_id"]], k[:, :2], k[:, 2] > 0


def run_real(runner: MediaPipeRunner, folder: Path) -> Tally:
    tally = Tally()
    for path, uv, vis in _real_annotations(folder):
        b = _box(uv[vis])
        pck, extra, err = match(uv, vis, runner.detect_path(path))
        tally.add(max(b[2] - b[0], b[3] - b[1]), pck, err)
        tally.extra += extra
    return tally


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1, help="first seed (one session per seed)")
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--every", type=int, default=3, help="detect on every N-th frame")
    ap.add_argument("--difficulty", default="medium", choices=["easy", "medium", "hard"])
    ap.add_argument("--real", type=Path, default=REAL_DEFAULT)
    ap.add_argument("--python", help="the MediaPipe environment's interpreter")
    ap.add_argument("--misses", type=Path, help="write missed, poorly fitted and falsely detected frames here")
    ap.add_argument("--in-view", action="store_true", help="count joints in the image as visible, occluded or not (as issue 12's first measurement did)")
    args = ap.parse_args()
    if args.misses:
        args.misses.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with MediaPipeRunner(args.python) as runner:
        print(f"MediaPipe {runner.version}, legacy solutions.hands: static images, model complexity 1, min detection confidence 0.3")
        print(HEADER)
        if args.real.is_dir():
            print(run_real(runner, args.real).row(f"real photos ({args.real.name})"))
        config = RigConfig(duration_s=args.duration, difficulty=args.difficulty)
        seeds = list(range(args.seed, args.seed + args.sessions))
        sim = run_sim(runner, seeds, config, args.every, args.misses, args.in_view)
        joints = "in view" if args.in_view else "visible"
        print(sim.row(f"simulated, {args.difficulty}, seeds {seeds[0]}-{seeds[-1]}, {args.duration:g} s, joints {joints}"))
        if sim.joint_err:
            print(f"worst joints (median error / box side) of found simulated hands: {sim.joints()}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
