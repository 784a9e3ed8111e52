"""The simulated rig as capture sources: a camera and a tracker for the capture engine,
from :class:`gthd.sim.simulate.SimRun`. The simulator plugs into capture from outside,
through capture's source interfaces (:mod:`gthd.capture.sources`); capture knows
nothing of it.

They deliver what the simulated rig produces, stamped on the simulator's host clock, and
paced against the wall clock at ``speed`` x real time (``speed=0``: as fast as they can).
A session captured from them carries the simulator's timeline, so its ground truth
(:func:`write_truth`) applies to it exactly as to one written by ``gthd simulate``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from ..capture.sources import CameraFrame, ClockBracket, Emit, SourceError, TrackerFrame
from ..session import Session
from .rig import RigConfig
from .simulate import SimRun, write_boards, write_clicks
from .truth import write_truth


class Pacer:
    """Maps the simulator's host clock onto the wall clock, shared by both sources so
    they stay in step: ``speed`` x real time. Unpaced (``speed=0``) the camera, the slow
    source, leads as fast as it can and the tracker follows it, never running ahead of
    the camera's simulated time: the streams interleave as a live rig's do, and the
    tracker queue holds moments, not the whole session."""

    def __init__(self, t0_ns: int, speed: float):
        if speed < 0:
            raise ValueError(f"speed must be >= 0 (0: unpaced), got {speed}")
        self.t0_ns = t0_ns
        self.speed = speed
        self._wall0: int | None = None
        self._cond = threading.Condition()
        self._lead_ns = t0_ns
        self._lead_done = False

    def advance(self, t_ns: int) -> None:
        """The camera has delivered up to simulated time ``t_ns``."""
        with self._cond:
            self._lead_ns = max(self._lead_ns, t_ns)
            self._cond.notify_all()

    def finish(self) -> None:
        """The camera has delivered everything: followers need not wait any more."""
        with self._cond:
            self._lead_done = True
            self._cond.notify_all()

    def wait_until(self, t_ns: int, stop: threading.Event | None = None, follower: bool = False) -> None:
        """Sleep until simulated time ``t_ns`` is due. Unpaced, the leader never waits
        and a follower waits for the leader to reach ``t_ns``."""
        if self.speed == 0:
            if follower:
                with self._cond:
                    while not (self._lead_done or self._lead_ns >= t_ns or (stop is not None and stop.is_set())):
                        self._cond.wait(0.1)
            return
        with self._cond:
            if self._wall0 is None:
                self._wall0 = time.monotonic_ns()
        due = self._wall0 + (t_ns - self.t0_ns) / self.speed
        while True:
            left = (due - time.monotonic_ns()) / 1e9
            if left <= 0:
                return
            if stop is not None:
                if stop.wait(min(left, 0.1)):
                    return
            else:
                time.sleep(min(left, 0.1))


class SimCamera:
    """The simulated rig's camera as a :class:`CameraSource`."""

    def __init__(self, run: SimRun, pacer: Pacer):
        self.run = run
        self.pacer = pacer
        self._frames = None
        self.truth_by_seq: dict[int, dict] = {}

    def open(self) -> dict:
        self._frames = self.run.camera_frames()
        return self.run.camera_info()

    def read(self) -> CameraFrame | None:
        if self._frames is None:
            raise SourceError("the simulated camera is not open")
        item = next(self._frames, None)
        if item is None:
            self.pacer.finish()
            return None
        i, seq, img, hand = item
        t_host = int(self.run.cam_tl.t_host_ns[i])
        self.pacer.wait_until(t_host)
        self.pacer.advance(t_host)
        self.truth_by_seq[seq] = {"seq": seq, "t_exposure_ns": int(self.run.cam_tl.t_exposure_ns[i]), "hand": hand}
        return CameraFrame(img, t_host, seq=seq)

    def reconnect(self) -> None:
        raise SourceError("the simulated camera cannot reconnect")

    def close(self) -> None:
        self._frames = None
        self.pacer.finish()


class SimTracker:
    """The simulated rig's tracker as a :class:`TrackerSource`: tracking frames and clock
    brackets in the order capture would receive them (by arrival time)."""

    finite = True

    def __init__(self, run: SimRun, pacer: Pacer):
        self.run = run
        self.pacer = pacer
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._done = threading.Event()

    def open(self) -> dict:
        return self.run.tracker_info()

    def _items(self) -> list[tuple[int, object]]:
        """(arrival time ns, item), sorted by arrival."""
        items: list[tuple[int, object]] = [(int(h1), ClockBracket(int(h0), int(d), int(h1))) for h0, d, h1 in self.run.trk_tl.clock_samples]
        for r in self.run.tracker_frames():
            items.append((r["t_arrival_ns"], TrackerFrame(r["frame_id"], r["t_device_us"], r["t_arrival_ns"], r["framerate"], r["hands"])))
        items.sort(key=lambda it: it[0])
        return items

    def start(self, emit: Emit) -> None:
        items = self._items()

        def run():
            try:
                for t_arrival, item in items:
                    self.pacer.wait_until(t_arrival, self._stop, follower=True)
                    if self._stop.is_set():
                        return
                    emit(item)
            finally:
                self._done.set()

        self._thread = threading.Thread(target=run, name="gthd-sim-tracker", daemon=True)
        self._thread.start()

    def finished(self) -> bool:
        return self._done.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def simulated_sources(seed: int, config: RigConfig = RigConfig(), speed: float = 1.0) -> tuple[SimCamera, SimTracker, SimRun]:
    """A simulated camera and tracker sharing one rig and one pacer."""
    run = SimRun(seed, config)
    pacer = Pacer(run.rig.host_start_ns, speed)
    return SimCamera(run, pacer), SimTracker(run, pacer), run


def sources_for_capture(
    seed: int, duration_s: float | None, max_frames: int | None, size: tuple[int, int], difficulty: str = "medium", speed: float = 1.0
) -> tuple[SimCamera, SimTracker]:
    """The rig's sources for ``gthd capture --camera sim --tracker sim``: a simulation a
    second longer than the capture's limits (``duration_s`` of camera time, or
    ``max_frames`` at 30 fps; 10 s with neither), so the capture, not the rig, ends it."""
    duration = duration_s + 1.0 if duration_s is not None else 10.0
    if max_frames is not None:
        duration = max(duration, max_frames / 30.0 + 1.0)
    cam, trk, _ = simulated_sources(seed, RigConfig(duration_s=duration, width=size[0], height=size[1], difficulty=difficulty), speed=speed)
    return cam, trk


def write_truth_for(camera: SimCamera, session_path: str | Path, boards: int = 20, clicks: int = 40) -> None:
    """Write what ``gthd simulate`` adds to a session into one captured from ``camera``:
    ``ground_truth.json`` (the truth of every frame the session indexes, aligned with its
    frame index by sequence number), calibration board views and simulated clicks."""
    session_path = Path(session_path)
    session = Session.open(session_path)
    run = camera.run
    frames = []
    for i, seq in enumerate(session.frames.seq.tolist()):
        t = camera.truth_by_seq.get(int(seq))
        frames.append({"index": i, "seq": int(seq), "t_exposure_ns": None if t is None else t["t_exposure_ns"], "hand": None if t is None else t["hand"]})
    sizes = [max(f["hand"]["box"][2] - f["hand"]["box"][0], f["hand"]["box"][3] - f["hand"]["box"][1]) for f in frames if f["hand"] is not None]
    summary = {"frames": len(frames), "hand_frames": len(sizes), "hand_size_px": np.percentile(sizes, [5, 50, 95]).tolist() if sizes else None}
    clicks_truth = write_clicks(
        session_path, session.manifest["session_id"], run, frames, session.frames.t_host_ns, clicks, "INDEX_TIP", 1.5, 0.08, run.rng("clicks")
    )
    boards_truth = write_boards(session_path, run.rig, run.scene, boards, run.rng("boards")) if boards else {}
    write_truth(session_path / "ground_truth.json", run.truth(frames, clicks_truth, boards_truth, summary))
