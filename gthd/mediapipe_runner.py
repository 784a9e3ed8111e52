"""MediaPipe Hands in a Python environment of its own, driven over a pipe.

``mediapipe==0.10.14`` (the last release that ships its hand models inside the package)
needs ``numpy<2`` and ``opencv-contrib-python``; gthd pins numpy 2 and opencv-python 5.
The two cannot share an environment, so MediaPipe lives in its own virtual environment
and this module talks to it: :class:`MediaPipeRunner` starts that environment's Python
on this very file (``python mediapipe_runner.py --worker``), sends it encoded images and
reads back 21 keypoints per detected hand. The worker half imports only the standard
library, numpy, OpenCV and mediapipe, so it runs without gthd installed.

Make the environment once (docs/simulate.md, "Realism check")::

    python3.11 -m venv ~/.cache/gthd/mediapipe
    ~/.cache/gthd/mediapipe/bin/pip install mediapipe==0.10.14 "numpy<2"

and point ``GTHD_MEDIAPIPE_PYTHON`` at another interpreter if it lives elsewhere (set
and empty: no MediaPipe environment, even if the default one exists).

Protocol, one request per line on the worker's stdin: a JSON header
``{"bytes": n}`` followed by ``n`` bytes of an encoded image (JPEG or PNG),
``{"shape": [h, w, 3], "bytes": n}`` followed by a raw BGR array, or
``{"path": "..."}``; one JSON line back per request:
``{"hands": [{"keypoints": [[x, y] x 21], "score": s, "handedness": "Left"|"Right"}]}``
(pixels of the image as sent, centres of pixels at integers as everywhere in gthd;
MediaPipe's handedness assumes a mirrored selfie view) or ``{"error": "..."}``.

``gthd calibrate --auto`` uses it when mediapipe cannot be imported in gthd's own
environment (``gthd.calibration.detectors.MediaPipeHands``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DEFAULT_PYTHON = Path.home() / ".cache" / "gthd" / "mediapipe" / "bin" / "python"
"""Where the isolated environment's interpreter is looked for first."""

# The settings of the realism measurement (perf/realism.py) and the calibration's auto detector: single
# images, the full landmark model, a permissive detection threshold.
SETTINGS = {"static_image_mode": True, "max_num_hands": 2, "model_complexity": 1, "min_detection_confidence": 0.3}


def find_python() -> Path | None:
    """The interpreter of the MediaPipe environment: ``$GTHD_MEDIAPIPE_PYTHON`` if it is
    set (set and empty: none, on purpose), else :data:`DEFAULT_PYTHON`; None if it does
    not exist."""
    env = os.environ.get("GTHD_MEDIAPIPE_PYTHON")
    p = DEFAULT_PYTHON if env is None else Path(env) if env else None
    return p if p is not None and p.exists() else None


class MediaPipeRunner:
    """A MediaPipe Hands worker process; use as a context manager.

    Args:
        python: the isolated environment's interpreter (default :func:`find_python`).
        settings: overrides of :data:`SETTINGS`.

    Raises:
        RuntimeError: no interpreter found, or the worker failed to start (the message
            carries its stderr: typically mediapipe missing in that environment).
    """

    def __init__(self, python: str | Path | None = None, **settings):
        python = Path(python) if python else find_python()
        if python is None:
            raise RuntimeError(
                f"no MediaPipe environment: make one with `python3.11 -m venv {DEFAULT_PYTHON.parents[1]} && "
                f'{DEFAULT_PYTHON.parent}/pip install mediapipe==0.10.14 "numpy<2"` or set GTHD_MEDIAPIPE_PYTHON'
            )
        cfg = json.dumps({**SETTINGS, **settings})
        self._proc = subprocess.Popen(
            [str(python), str(Path(__file__).resolve()), "--worker", cfg],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        ready = self._proc.stdout.readline()
        if not ready.startswith(b'{"ready"'):
            err = self._proc.stderr.read().decode(errors="replace")[-2000:]
            self.close()
            raise RuntimeError(f"the MediaPipe worker ({python}) did not start: {err.strip() or ready!r}")
        self.version = json.loads(ready)["ready"]

    def detect_image(self, image) -> list[dict]:
        """Hands in a (H, W, 3) uint8 BGR array (sent raw: no encoding cost or loss), as
        :meth:`detect_encoded`."""
        import numpy as np

        img = np.ascontiguousarray(image, dtype=np.uint8)
        self._proc.stdin.write(json.dumps({"shape": list(img.shape), "bytes": img.nbytes}).encode() + b"\n" + img.tobytes())
        return self._reply()

    def detect_encoded(self, data: bytes) -> list[dict]:
        """Hands in one encoded image (JPEG/PNG bytes): a list of ``{"keypoints": (21, 2)
        list of px, "score": float, "handedness": str}``."""
        self._proc.stdin.write(json.dumps({"bytes": len(data)}).encode() + b"\n" + data)
        return self._reply()

    def detect_path(self, path: str | Path) -> list[dict]:
        """Hands in an image file, as :meth:`detect_encoded`."""
        self._proc.stdin.write(json.dumps({"path": str(Path(path).resolve())}).encode() + b"\n")
        return self._reply()

    def _reply(self) -> list[dict]:
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the MediaPipe worker died: " + self._proc.stderr.read().decode(errors="replace")[-2000:])
        msg = json.loads(line)
        if "error" in msg:
            raise RuntimeError(f"MediaPipe worker: {msg['error']}")
        return msg["hands"]

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except Exception:  # a stuck worker: it is ours, end it
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> "MediaPipeRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- the worker
def _worker(settings: dict) -> int:
    """Serve requests on stdin until it closes (runs in the MediaPipe environment)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    import cv2
    import mediapipe as mp
    import numpy as np

    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # anything mediapipe prints must not corrupt the protocol
    hands = mp.solutions.hands.Hands(**settings)
    out.write(json.dumps({"ready": mp.__version__}).encode() + b"\n")
    out.flush()
    inp = sys.stdin.buffer
    while True:
        header = inp.readline()
        if not header:
            return 0
        try:
            req = json.loads(header)
            if "shape" in req:  # a raw BGR array
                img = np.frombuffer(inp.read(int(req["bytes"])), np.uint8).reshape(req["shape"])
            elif "bytes" in req:
                buf = np.frombuffer(inp.read(int(req["bytes"])), np.uint8)
                img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            else:
                img = cv2.imread(req["path"], cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError("could not decode the image")
            h, w = img.shape[:2]
            res = hands.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            found = []
            for k, lm in enumerate(res.multi_hand_landmarks or []):
                cls = res.multi_handedness[k].classification[0]
                found.append(
                    {  # normalised to the image: pixel centres at x * w - 0.5
                        "keypoints": [[p.x * w - 0.5, p.y * h - 0.5] for p in lm.landmark],
                        "score": float(cls.score),
                        "handedness": cls.label,
                    }
                )
            reply = {"hands": found}
        except Exception as e:  # report and keep serving
            reply = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()


if __name__ == "__main__" and len(sys.argv) >= 2 and sys.argv[1] == "--worker":
    sys.exit(_worker(json.loads(sys.argv[2]) if len(sys.argv) > 2 else dict(SETTINGS)))
