"""``gthd simulate``: a whole simulated session, written exactly as capture writes one,
plus its ground truth, calibration board views and simulated clicks.

Randomness: one seed; every part draws from its own child stream, and each camera frame
from a stream keyed by its sequence number, so the same seed gives the same bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..fileio import atomic_write_bytes
from ..geometry import box_from_points
from ..hand import EDGES, JOINT_INDEX, JOINT_NAMES
from ..session import SessionWriter
from .motion import generate_motion, in_leap_volume
from .render import HandLook, Scene, render_frame_truth
from .rig import Rig, RigConfig, camera_timeline, sample_rig, tracker_timeline
from .truth import write_truth

# Child streams of the session seed, one per part (never reorder: it changes the bytes).
_STREAMS = ("rig", "motion", "camera", "tracker", "scene", "noise", "clicks", "boards")


def _rngs(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(_STREAMS, children)}


def _frame_rng(seed: int, seq: int) -> np.random.Generator:
    return np.random.default_rng([seed, 0x5EED, int(seq)])


@dataclass
class SimResult:
    """What a simulation wrote, for the CLI's summary."""

    path: Path
    frames: int
    hand_frames: int
    tracker_frames: int
    tracker_hand_frames: int
    board_views: int
    clicks: int
    clock_offset_ms: float
    hand_size_px: tuple[float, float, float]  # 5th, 50th, 95th percentile


def simulate(
    out: str | Path,
    seed: int,
    config: RigConfig = RigConfig(),
    *,
    boards: int = 20,
    clicks: int = 40,
    click_joint: str = "INDEX_TIP",
    click_noise_px: float = 1.5,
    click_outliers: float = 0.08,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    glitches: tuple[str, ...] = (),
) -> SimResult:
    """Simulate one session into ``out`` (built in a temporary folder beside it and
    renamed into place at the end).

    Args:
        out: the session folder to create; refused if it exists and is not empty,
            unless ``force`` (then it is replaced, but only once the new one is complete).
        seed: the only source of randomness.
        boards: views per calibration board (checkerboard and ChArUco); 0 for none.
        clicks: simulated clicks on ``click_joint``; 0 for none.
        progress: called with (done, total) camera frames.
        glitches: tracker failure modes to inject, with their truth (``gthd.sim.glitches``);
            none by default (and then the bytes are those of a session without the option).
    """
    out = Path(out)
    if click_joint not in JOINT_INDEX:
        raise ValueError(f"unknown joint {click_joint!r}; one of {', '.join(JOINT_NAMES)}")
    if not 0 <= click_outliers < 0.5:
        raise ValueError(f"click outlier share must be in [0, 0.5), got {click_outliers}")
    if boards < 0 or clicks < 0:
        raise ValueError("boards and clicks must be >= 0")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} exists and is not empty (use --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        result = _simulate_into(tmp / "s", seed, config, boards, clicks, click_joint, click_noise_px, click_outliers, progress, glitches)
        if out.exists():
            shutil.rmtree(out)
        (tmp / "s").rename(out)
        result.path = out
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class SimRun:
    """One simulated session with all its randomness drawn from ``seed``: the rig, the
    hand's motion, both streams' timing, the room. Both ``gthd simulate`` and the capture
    engine's simulated sources (:mod:`gthd.sim.sources`) take what they write from here.

    Attributes:
        rig, motion, cam_tl (camera timeline), trk_tl (tracker timeline), scene, look.
    """

    def __init__(self, seed: int, config: RigConfig = RigConfig()):
        self.seed = seed
        self.config = config
        self._rngs = rngs = _rngs(seed)
        self.rig = rig = sample_rig(rngs["rig"], config)
        self.motion = generate_motion(rngs["motion"], rig.shape, rig.camera, rig.T_cam_leap, config.duration_s, config.hand_size_px)
        self.cam_tl = camera_timeline(rig, rngs["camera"])
        self.trk_tl = tracker_timeline(rig, rngs["tracker"])
        self.scene, self.look = make_scene(rngs["scene"], rig)
        self._tracker_seen = None

    def rng(self, stream: str) -> np.random.Generator:
        """The session's own random stream ``stream`` ("clicks", "boards", ...): each part
        of a simulation draws from its own, so adding one never changes the others."""
        return self._rngs[stream]

    # -- descriptions for the manifest
    def camera_info(self) -> dict:
        cam, cfg = self.rig.camera, self.config
        return {
            "source": f"gthd.sim (seed {self.seed})",
            "width": cam.width,
            "height": cam.height,
            "fps_requested": cfg.fps,
            "fps_actual": cfg.fps,
            "fourcc": "MJPG",
            "jpeg_quality": self.rig.jpeg_quality,
        }

    def tracker_info(self) -> dict:
        return {"kind": "simulated", "serial": f"SIM{self.seed:08d}", "tracking_mode": "Desktop", "clock": "leapc_us"}

    # -- the streams
    def camera_frames(self):
        """Rendered camera frames in order: see :func:`camera_frames`."""
        return camera_frames(self.rig, self.motion, self.cam_tl, self.scene, self.look, self.seed)

    def tracker_frames(self) -> list[dict]:
        """Every tracking frame as :meth:`SessionWriter.add_tracker_frame` takes it
        (``t_host_ns`` mapped from the clock brackets, causally, as capture does)."""
        rig, motion, tl = self.rig, self.motion, self.trk_tl
        t = (tl.t_true_ns - rig.host_start_ns) / 1e9
        j_true, seg = motion.joints(t)
        palm = j_true[:, [0, 5, 9, 13, 17]].mean(axis=1)
        seen = (seg >= 0) & in_leap_volume(palm) & ~tl.lost
        noise = np.random.default_rng([self.seed, 0x7EAC]).normal(0, rig.tracker_noise_mm, j_true.shape)
        # A new hand id whenever tracking is (re)acquired, as LeapC does.
        hand_id = np.cumsum(seen & ~np.r_[False, seen[:-1]]) + 100 * (self.seed % 7 + 1)
        edge = np.maximum(np.abs(np.arctan2(palm[:, 0], palm[:, 1])) / np.deg2rad(70), np.abs(np.arctan2(palm[:, 2], palm[:, 1])) / np.deg2rad(60))
        confidence = np.clip(1.05 - 0.5 * edge**4, 0.1, 1.0)
        self._tracker_seen = seen
        out = []
        for i in range(len(tl.frame_id)):
            hands = []
            if seen[i]:
                joints = j_true[i] + noise[i]
                hands.append(
                    {
                        "id": int(hand_id[i]),
                        "type": motion.segments[seg[i]].handedness,
                        "confidence": float(confidence[i]),
                        "joints": joints,
                        "palm": joints[[0, 5, 9, 13, 17]].mean(axis=0),
                    }
                )
            out.append(
                {
                    "frame_id": int(tl.frame_id[i]),
                    "t_device_us": int(tl.t_device_us[i]),
                    "t_host_ns": int(tl.t_host_ns[i]),
                    "t_arrival_ns": int(tl.t_arrival_ns[i]),
                    "framerate": float(tl.framerate[i]),
                    "hands": hands,
                }
            )
        return out

    # -- the truth
    def truth(self, frames: list[dict], clicks: dict | None = None, boards: dict | None = None, summary: dict | None = None) -> dict:
        """The ground-truth document (docs/simulate.md) for the given per-frame truth
        (aligned with the session's frame index)."""
        rig, config = self.rig, self.config
        s0 = rig.host_start_ns
        seen = self._tracker_seen if self._tracker_seen is not None else np.zeros(0, bool)
        return {
            "seed": self.seed,
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
            "camera": rig.camera.to_dict(),
            "T_cam_leap": rig.T_cam_leap.to_dict(),
            "clock": {
                "offset_ns": rig.clock_offset_ns,
                "meaning": "the tracker state matching a camera frame stamped t_cam is at host time t_cam + offset_ns",
                "camera_latency_ns": rig.latency_ns,
                "camera_jitter_mean_ns": rig.jitter_ns,
                "leap_offset_us": rig.leap_offset_us,
                "leap_drift_ppm": rig.leap_drift_ppm,
                "host_start_ns": s0,
            },
            "subject": {"id": rig.subject_id, "scale": rig.subject_scale, "skin_bgr": list(rig.skin_bgr), "hand": rig.shape.to_dict()},
            "tracker": {"noise_mm": rig.tracker_noise_mm, "lost_frames": int(self.trk_tl.lost.sum()), "frames_with_hand": int(seen.sum())},
            "segments": [{"start_ns": s0 + int(s.start_s * 1e9), "end_ns": s0 + int(s.end_s * 1e9), "handedness": s.handedness} for s in self.motion.segments],
            "summary": summary or {},
            "clicks": clicks or {},
            "boards": boards or {},
            "frames": frames,
        }


def _simulate_into(path, seed, config, n_boards, n_clicks, click_joint, click_noise_px, click_outliers, progress, glitches=()) -> SimResult:
    run = SimRun(seed, config)
    writer = SessionWriter(
        path,
        source="simulated",
        camera=run.camera_info(),
        tracker=run.tracker_info(),
        session_id=f"sim-{seed}",
        created_utc=None,
        subject=run.rig.subject_id,
        image_format="jpg",
        flush_every_s=3600,
    )
    for h0, d, h1 in run.trk_tl.clock_samples:
        writer.add_clock_sample(h0, d, h1)
    tracker = run.tracker_frames()
    glitch_truth = None
    if glitches:  # changes the tracker records and (offset_jump) the camera's stamps
        from .glitches import inject

        glitch_truth = inject(run, tracker, tuple(glitches))
    for rec in tracker:
        writer.add_tracker_frame(**rec)

    params = [cv2.IMWRITE_JPEG_QUALITY, run.rig.jpeg_quality]
    truth_frames, sizes = [], []
    n = len(run.cam_tl.seq)
    for i, seq, img, hand in run.camera_frames():
        ok, enc = cv2.imencode(".jpg", img, params)
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        writer.add_frame(enc.tobytes(), int(run.cam_tl.t_host_ns[i]), seq=seq)
        if hand is not None:
            box = hand["box"]
            sizes.append(max(box[2] - box[0], box[3] - box[1]))
        truth_frames.append({"index": i, "seq": seq, "t_exposure_ns": int(run.cam_tl.t_exposure_ns[i]), "hand": hand})
        if progress is not None:
            progress(i + 1, n)

    clicks_truth = write_clicks(
        path, writer.session_id, run, truth_frames, run.cam_tl.t_host_ns, n_clicks, click_joint, click_noise_px, click_outliers, run.rng("clicks")
    )
    boards_truth = write_boards(path, run.rig, run.scene, n_boards, run.rng("boards")) if n_boards else {}
    sizes_arr = np.array(sizes) if sizes else np.zeros(1)
    result = SimResult(
        path=path,
        frames=n,
        hand_frames=int(sum(f["hand"] is not None for f in truth_frames)),
        tracker_frames=len(tracker),
        tracker_hand_frames=int(sum(bool(r["hands"]) for r in tracker)),
        board_views=sum(len(b["views"]) for b in boards_truth.values()),
        clicks=len(clicks_truth.get("clicks", [])),
        clock_offset_ms=run.rig.clock_offset_ns / 1e6,
        hand_size_px=tuple(float(v) for v in np.percentile(sizes_arr, [5, 50, 95])),
    )
    summary = {k: v for k, v in asdict(result).items() if k != "path"}
    truth = run.truth(truth_frames, clicks_truth, boards_truth, summary)
    if glitch_truth is not None:
        truth["glitches"] = glitch_truth
    write_truth(path / "ground_truth.json", truth)
    writer.finish("complete")  # last: the manifest says complete only once everything is on disk
    return result


def make_scene(rng: np.random.Generator, rig: Rig) -> tuple[Scene, HandLook]:
    """The session's room and the subject's look (skin, light direction, sleeve, texture)."""
    scene = Scene.generate(rng, rig.camera.width, rig.camera.height, rig.config.level, rig.skin_bgr)
    return scene, HandLook.sample(rng, rig.skin_bgr)


def camera_frames(rig: Rig, motion, cam_tl, scene: Scene, look: HandLook, seed: int):
    """Render the camera frames in order.

    Yields:
        (index, seq, image (H, W, 3) uint8 BGR, hand truth dict or None), where the truth
        holds the true keypoints (21, 2) px, in_image (21,), visible (21,: in the image
        and not hidden behind another part of the hand, from the renderer's part buffer),
        box xyxy, joints_leap (21, 3) mm and handedness, at the frame's exposure time.
    """
    cam = rig.camera
    s0 = rig.host_start_ns
    exposure_s = (0.008, 0.015, 0.025)[rig.config.level]
    t_exp = (cam_tl.t_exposure_ns - s0) / 1e9
    j_exp, seg_exp = motion.joints(t_exp)
    j_end, _ = motion.joints(t_exp + exposure_s)
    jc = rig.T_cam_leap.apply(j_exp)  # (N, 21, 3)
    uv = cam.project(jc)
    uv_end = cam.project(rig.T_cam_leap.apply(j_end))
    in_image = cam.in_image(uv, jc[..., 2])
    for i in range(len(cam_tl.seq)):
        seq = int(cam_tl.seq[i])
        has_hand = bool(seg_exp[i] >= 0 and in_image[i].any())
        blur = np.median(uv_end[i] - uv[i], axis=0) if has_hand else None
        side = motion.segments[seg_exp[i]].handedness if has_hand else "right"
        img, visible = render_frame_truth(scene, float(t_exp[i]), _frame_rng(seed, seq), cam, jc[i] if has_hand else None, rig.shape, look, blur, side)
        hand = None
        if has_hand:
            hand = {
                "handedness": side,
                "keypoints": np.round(uv[i], 3).tolist(),
                "in_image": in_image[i].tolist(),
                "visible": (visible if visible is not None else np.zeros(len(uv[i]), bool)).tolist(),
                "box": np.round(box_from_points(uv[i], in_image[i], cam.width, cam.height), 3).tolist(),
                "joints_leap": np.round(j_exp[i], 3).tolist(),
            }
        yield i, seq, img, hand


def tracked_frames(run: "SimRun", truth_frames: list[dict]) -> np.ndarray:
    """(N,) bool: the tracker reports the hand on both sides of each frame's exposure
    (what the click window and a detector need: a tracked joint to pair with)."""
    if run._tracker_seen is None:
        run.tracker_frames()
    t_trk, seen = run.trk_tl.t_true_ns, run._tracker_seen
    t = np.array([f["t_exposure_ns"] if f["t_exposure_ns"] is not None else -1 for f in truth_frames], dtype=np.int64)
    k = np.clip(np.searchsorted(t_trk, t), 1, len(t_trk) - 1)
    return seen[k - 1] & seen[k] & (t >= 0)


def _spread(x: np.ndarray, n: int, cam) -> np.ndarray:
    """Farthest-point picks of ``n`` rows of (time s, u px, v px), time and image spread
    weighted alike (a session's length against the image's size): as the click window
    chooses frames."""
    span = max(np.ptp(x[:, 0]), 1e-9)
    z = np.column_stack([x[:, 0] / span, x[:, 1] / cam.width, x[:, 2] / cam.height])
    picks = [0]
    d = np.linalg.norm(z - z[0], axis=1)
    while len(picks) < n:
        k = int(np.argmax(d))
        picks.append(k)
        d = np.minimum(d, np.linalg.norm(z - z[k], axis=1))
    return np.array(picks)


def write_clicks(path, session_id, run: "SimRun", truth_frames, t_host_ns, n_clicks, joint, noise_px, outlier_share, rng) -> dict:
    """Clicks on ``joint`` in frames spread over time where the tracker sees the hand (the
    frames the click window offers), with pixel noise and a share of outliers (a
    neighbouring joint clicked, or a slip of the hand), kept inside the image as a window
    keeps them, written with the calibration stage's clicks writer."""
    from ..calibration.files import Click, ClicksWriter

    if n_clicks == 0:
        return {}
    j = JOINT_INDEX[joint]
    tracked = tracked_frames(run, truth_frames)
    cand = [f["index"] for f in truth_frames if f["hand"] is not None and f["hand"]["in_image"][j] and tracked[f["index"]]]
    if not cand:
        return {"file": None, "joint": joint, "clicks": []}
    cam = run.rig.camera
    picks = _spread(np.array([[truth_frames[i]["t_exposure_ns"] / 1e9, *truth_frames[i]["hand"]["keypoints"][j]] for i in cand]), min(n_clicks, len(cand)), cam)
    picks = np.sort(np.asarray(cand)[picks])
    file = path / "clicks_simulated.jsonl"
    partial = path / f".{file.name}.partial"  # renamed when whole: an interrupted run leaves no clicks file
    partial.unlink(missing_ok=True)
    clicks = []
    writer = ClicksWriter(partial, session_id, joint)
    try:
        for i in picks:
            true_uv = np.asarray(truth_frames[i]["hand"]["keypoints"][j])
            outlier = bool(rng.random() < outlier_share)
            if outlier:
                if rng.random() < 0.5:  # a joint next to it on the skeleton
                    neighbours = sorted({a for a, b in EDGES if b == j} | {b for a, b in EDGES if a == j})
                    other = neighbours[rng.integers(len(neighbours))]
                    uv = np.asarray(truth_frames[i]["hand"]["keypoints"][other]) + rng.normal(0, noise_px, 2)
                else:  # a slip
                    a = rng.uniform(0, 2 * np.pi)
                    uv = true_uv + rng.uniform(15, 60) * np.array([np.cos(a), np.sin(a)])
            else:
                uv = true_uv + rng.normal(0, noise_px, 2)
            uv = np.clip(uv, 0, [cam.width - 1, cam.height - 1])
            writer.add(Click(int(i), int(t_host_ns[i]), joint, float(uv[0]), float(uv[1])))
            clicks.append({"frame_index": int(i), "outlier": outlier, "true_uv": np.round(true_uv, 3).tolist()})
    finally:
        writer.close()
    os.replace(partial, file)
    return {"file": file.name, "joint": joint, "noise_px": noise_px, "outlier_share": outlier_share, "clicks": clicks}


def write_boards(path, rig: Rig, scene: Scene, n_views: int, rng) -> dict:
    """Checkerboard and ChArUco views through the rig's camera at known poses."""
    from ..boards import DEFAULT_BOARDS, write_board_file
    from .boards import render_board_view, sample_board_poses

    specs = DEFAULT_BOARDS
    out = {}
    for name, spec in specs.items():
        # Rendered into a hidden folder and renamed when whole: an interrupted run leaves
        # no board folder rather than a few views a calibration would quietly use.
        folder = path / "boards" / f".{name}.partial"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        write_board_file(folder / "board.json", spec)
        views = []
        for k, T in enumerate(sample_board_poses(spec, rig.camera, n_views, rng)):
            img, _, _ = render_board_view(spec, rig.camera, T, rng=rng, background=scene.background)
            ok, enc = cv2.imencode(".png", img)
            atomic_write_bytes(folder / f"{k:06d}.png", enc.tobytes())
            views.append({"file": f"boards/{name}/{k:06d}.png", "T_cam_board": T.to_dict()})
        os.replace(folder, path / "boards" / name)
        out[name] = {"spec": spec.to_dict(), "views": views}
    return out
