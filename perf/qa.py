"""Does ``gthd qa`` find the wrong labels, and only them?

    .venv/bin/python perf/qa.py [--seeds 1 2 3 4] [--seconds 60] [--keep DIR]

Simulates sessions with every failure mode injected (``--glitches all``: flips, frozen
spans, jumps, wrong finger poses and a 15 ms offset jump, docs/qa.md) and one session
without any, runs the QA checks on each with the session's true calibration (the clock
offset as it was before the jump), and measures against the injected ground truth:

- per failure mode, the recall: the share of its frames with a wrong label (a joint off
  by >= 15 mm because of it; for the offset jump, every frame after it) that are flagged;
- the false-flag rate: the share of clean labelled frames (touched by no glitch) flagged;
- the offset jump's location error (s): the change found against the true one;
- on the session without glitches, the share of labelled frames flagged;
- the time ``gthd qa`` takes per session (2 cores, no trained run).

Goals (issue 14): recall >= 90 % per mode, <= 3 % of clean frames flagged, the offset jump
located within 1 s, and <= 3 % flagged on a session without glitches.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from gthd.calibration.files import Calibration
from gthd.geometry import Camera, Transform
from gthd.qa.runner import qa_session
from gthd.session import Session
from gthd.sim.glitches import GLITCH_KINDS
from gthd.sim.rig import RigConfig
from gthd.sim.simulate import simulate
from gthd.sim.truth import session_truth


def true_calibration(session: Session) -> Calibration:
    """The rig's calibration from its ground truth (the clock offset before any jump)."""
    gt = session_truth(session)
    return Calibration(Camera.from_dict(gt["camera"]), Transform.from_dict(gt["T_cam_leap"]), int(gt["clock"]["offset_ns"]), {})


def score(session: Session, flagged: np.ndarray, labelled: np.ndarray, change: dict | None) -> dict:
    """Recall per mode, false flags on clean frames and the offset jump's location error
    of one session's QA verdict against its glitch truth."""
    g = session_truth(session).get("glitches") or {"frames": [], "offset_jump": None}
    touched = np.zeros(len(flagged), bool)
    wrong: dict[str, list[int]] = {k: [] for k in GLITCH_KINDS}
    for f in g["frames"]:
        touched[f["index"]] = True
        for k in f["kinds"]:
            if f["harmful"] or k == "offset_jump":
                wrong[k].append(f["index"])
    clean = labelled & ~touched
    out = {
        "recall": {k: (int(flagged[v].sum()), len(v)) for k, v in wrong.items() if v},
        "false": (int(flagged[clean].sum()), int(clean.sum())),
        "location_s": None,
    }
    if g.get("offset_jump"):
        found = change is not None and change.get("found")
        out["location_s"] = abs(change["t_host_ns"] - g["offset_jump"]["t_host_ns"]) / 1e9 if found else float("inf")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--clean-seed", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--difficulty", default="medium")
    ap.add_argument("--keep", type=Path, default=None, help="simulate into (and reuse sessions from) this folder")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="gthd-perf-qa-"))
    root.mkdir(parents=True, exist_ok=True)
    cfg = RigConfig(duration_s=args.seconds, difficulty=args.difficulty)
    try:
        totals = {k: [0, 0] for k in GLITCH_KINDS}
        false = [0, 0]
        locations, seconds = [], []
        runs = [(seed, True) for seed in args.seeds] + [(args.clean_seed, False)]
        for seed, glitched in runs:
            path = root / (f"glitch-{seed}" if glitched else f"clean-{seed}")
            if not (path / "manifest.json").exists():
                simulate(path, seed, cfg, boards=0, clicks=0, force=True, glitches=GLITCH_KINDS if glitched else ())
            s = Session.open(path)
            t0 = time.perf_counter()
            r = qa_session(s, true_calibration(s))
            seconds.append(time.perf_counter() - t0)
            labelled = r.columns["labelled"]
            sc = score(s, r.flagged, labelled, (r.offset or {}).get("change"))
            line = f"seed {seed} ({'glitches' if glitched else 'no glitches'}, {len(labelled)} frames, qa {seconds[-1]:.1f} s): "
            if glitched:
                for k, (hit, n) in sc["recall"].items():
                    totals[k][0] += hit
                    totals[k][1] += n
                false[0] += sc["false"][0]
                false[1] += sc["false"][1]
                locations.append(sc["location_s"])
                line += ", ".join(f"{k} {hit}/{n}" for k, (hit, n) in sc["recall"].items())
                line += f"; clean flagged {sc['false'][0]}/{sc['false'][1]}; offset jump located {sc['location_s']:.2f} s off"
            else:
                clean_share = r.flagged[labelled].mean() if labelled.any() else 0.0
                line += f"{int(r.flagged[labelled].sum())}/{int(labelled.sum())} labelled frames flagged ({100 * clean_share:.1f} %)"
            print(line, flush=True)
        print(f"\n{args.seconds:.0f} s sessions, difficulty {args.difficulty}, seeds {args.seeds} with every glitch; seed {args.clean_seed} without")
        print(f"{'mode':<12} {'recall':>8}  frames   (goal >= 90 %)")
        for k, (hit, n) in totals.items():
            print(f"{k:<12} {100 * hit / max(n, 1):7.1f} %  {hit}/{n}")
        print(f"false flags on clean frames: {100 * false[0] / max(false[1], 1):.2f} %  {false[0]}/{false[1]}   (goal <= 3 %)")
        print("offset jump (15 ms) location error: " + ", ".join(f"{v:.2f} s" for v in locations) + "   (goal <= 1 s)")
        print(f"session without glitches: {100 * clean_share:.1f} % of labelled frames flagged   (goal <= 3 %)")
        print(f"qa time per {args.seconds:.0f} s session: {np.mean(seconds):.1f} s (max {np.max(seconds):.1f} s)")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
