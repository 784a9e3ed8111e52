"""What survives ``kill -9``? Crash safety of ``gthd capture``, measured (not a speed).

    .venv/bin/python perf/sigkill.py [--kills 10] [--seconds 30] [--seed 0]

Records the simulated rig once uninterrupted (unpaced: the reference, with its true
calibration and dataset), then ``--kills`` times in real time (``--speed 1``), each
killed with SIGKILL at a random moment of the ``--seconds`` capture. For every killed
session it reports the frame files on disk, the frames indexed, whether ``gthd session
check`` passes, and the frames ``gthd build-dataset`` labels against what the reference
labels among the same frames.

Goal: every killed session passes ``session check`` and builds a dataset with >= 95 % of
the labelled frames the uninterrupted capture gives for the frames that were on disk.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from gthd.calibration.files import Calibration, write_calibration
from gthd.geometry import Camera, Transform
from gthd.session import Session

GTHD = [sys.executable, "-m", "gthd"]


def labelled(h5: Path) -> set[int]:
    with h5py.File(h5, "r") as f:
        return set(f["meta/frame_index"][...][f["labels/has_hand"][...]].tolist())


def build(session: Path, cal: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*GTHD, "build-dataset", str(session), "--calibration", str(cal), "-o", str(out), "--nohand-share", "0"], capture_output=True, text=True
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="gthd-sigkill-"))
    capture = ["capture", "--camera", "sim", "--tracker", "sim", "--seed", "4", "--duration", f"{args.seconds:g}"]

    ref = tmp / "ref"
    subprocess.run([*GTHD, capture[0], str(ref), *capture[1:], "--speed", "0"], check=True, capture_output=True)
    gt = json.loads((ref / "ground_truth.json").read_text())
    cal = tmp / "cal.json"
    write_calibration(cal, Calibration(Camera.from_dict(gt["camera"]), Transform.from_dict(gt["T_cam_leap"]), gt["clock"]["offset_ns"], {}))
    r = build(ref, cal, tmp / "ref.h5")
    assert r.returncode == 0, r.stderr
    ref_frames = labelled(tmp / "ref.h5")
    print(f"reference: {len(Session.open(ref).frames)} frames, {len(ref_frames)} labelled (uninterrupted, same rig)")

    moments = np.sort(rng.uniform(0.5, args.seconds, args.kills))
    print(f"{'kill at s':>9} {'on disk':>8} {'indexed':>8} {'check':>6} {'labelled':>9} {'expected':>9} {'share':>6}")
    worst, failed = 1.0, 0
    for k, at in enumerate(moments):
        out = tmp / f"k{k}"
        proc = subprocess.Popen([*GTHD, capture[0], str(out), *capture[1:], "--speed", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not (out / "frames" / "000000.jpg").exists():  # count from the first frame, not from the imports
            time.sleep(0.01)
        time.sleep(at)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        on_disk = len(list((out / "frames").glob("*.jpg")))
        indexed = len(Session.open(out).frames)
        check = subprocess.run([*GTHD, "session", "check", str(out)], capture_output=True, text=True).returncode == 0
        r = build(out, cal, tmp / f"k{k}.h5")
        got = labelled(tmp / f"k{k}.h5") if r.returncode == 0 else set()
        expected = {i for i in ref_frames if i < on_disk}
        share = len(got & expected) / max(1, len(expected))
        worst = min(worst, share)
        failed += (not check) or r.returncode != 0 or share < 0.95
        print(f"{at:9.1f} {on_disk:8d} {indexed:8d} {'pass' if check else 'FAIL':>6} {len(got):9d} {len(expected):9d} {share:6.1%}")
    print(
        f"killed {args.kills} times: {args.kills - failed} of {args.kills} meet the goal (session check passes, >= 95 % of the labelled frames); worst share {worst:.1%}"
    )
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return 0  # a figure, not a gate: `make perf` runs every script


if __name__ == "__main__":
    sys.exit(main())
