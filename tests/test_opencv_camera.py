"""OpenCVCamera against real video files written here with cv2.VideoWriter (no webcam on
the test machines), plus a scripted fake VideoCapture for the device-only behaviour.

Every test frame carries its own index twice: as 8 black/white blocks along the top (the
bits, read back after MJPG decoding) and as a big printed number for human eyes."""

from __future__ import annotations

import itertools
import threading
import time
from typing import ClassVar

import cv2
import numpy as np
import pytest

from gthd.capture.opencv_camera import OpenCVCamera, as_bgr, fourcc_to_str, list_cameras, redact, resolve_backend, source_kind
from gthd.capture.sources import SourceError

W, H = 176, 144  # an odd size, unlike the 640x480 the camera asks for by default
BLOCK = 20  # identity bits: 8 blocks of BLOCK x BLOCK pixels at the top left
BITS = 8


def frame_image(i: int, noise: np.random.Generator | None = None) -> np.ndarray:
    """Frame ``i`` as (H, W, 3) uint8 BGR: bits of ``i`` in blocks, then the number."""
    img = np.full((H, W, 3), 90, np.uint8)
    if noise is not None:  # incompressible texture below the bits: big JPEGs
        img[BLOCK + 4 :] = noise.integers(0, 256, (H - BLOCK - 4, W, 3), np.uint8)
    for b in range(BITS):
        img[:BLOCK, b * BLOCK : (b + 1) * BLOCK] = 255 if (i >> b) & 1 else 0
    cv2.putText(img, str(i), (40, 110), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (0, 200, 255), 4)
    return img


def frame_index(img: np.ndarray) -> int:
    """Read the identity bits back from a decoded (H, W, 3) frame."""
    assert img.shape == (H, W, 3) and img.dtype == np.uint8, (img.shape, img.dtype)
    value = 0
    for b in range(BITS):
        block = img[4 : BLOCK - 4, b * BLOCK + 4 : (b + 1) * BLOCK - 4]  # interior: no JPEG ringing
        value |= int(block.mean() > 127) << b
    return value


def write_video(path, n: int, fps: float, gray: bool = False, noise: bool = False):
    """Write ``n`` identity frames to an MJPG .avi at ``fps``; returns the path."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H), isColor=not gray)
    assert writer.isOpened(), "this OpenCV build cannot write MJPG .avi"
    rng = np.random.default_rng(0) if noise else None
    for i in range(n):
        img = frame_image(i, rng)
        writer.write(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if gray else img)
    writer.release()
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    return {
        "12@25": write_video(d / "v12.avi", 12, 25.0),
        "10@50": write_video(d / "v10_50.avi", 10, 50.0),
        "10@5": write_video(d / "v10_5.avi", 10, 5.0),
        "gray": write_video(d / "gray.avi", 6, 25.0, gray=True),
        "noisy": write_video(d / "noisy.avi", 30, 25.0, noise=True),
    }


def read_all(cam: OpenCVCamera, limit: int = 1000) -> list:
    frames = []
    while (f := cam.read()) is not None:
        frames.append(f)
        assert len(frames) <= limit
    return frames


# ---------------------------------------------------------------- small helpers


def test_a_digit_string_is_a_device_index():
    assert OpenCVCamera("3").source == 3  # command-line text: gthd.media.parse_source (tests/test_media.py)


def test_source_kind_and_redact():
    assert source_kind(0) == "device"
    assert source_kind("clip.avi") == "file"
    assert source_kind("frames/%04d.png") == "file"
    assert source_kind("file:///tmp/clip.avi") == "file"
    assert source_kind("http://cam.local/mjpg") == "stream"
    assert redact("rtsp://admin:secret@cam:554/live") == "rtsp://admin:***@cam:554/live"
    assert redact("rtsp://cam/live") == "rtsp://cam/live"
    assert redact(4) == "4"


def test_fourcc_to_str():
    assert fourcc_to_str(float(cv2.VideoWriter_fourcc(*"MJPG"))) == "MJPG"
    assert fourcc_to_str(float(cv2.VideoWriter_fourcc(*"YUYV"))) == "YUYV"
    assert fourcc_to_str(0.0) == "" and fourcc_to_str(float("nan")) == "" and fourcc_to_str(-1.0) == ""


def test_as_bgr_shapes():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for img in (gray, gray[..., None], np.dstack([gray] * 3 + [gray]), (gray.astype(np.uint16) << 8)):
        out = as_bgr(img)
        assert out.shape == (3, 4, 3) and out.dtype == np.uint8
        assert (out[..., 0] == gray).all() and (out[..., 2] == gray).all()
    with pytest.raises(SourceError, match=r"shape \(3, 4, 2\)"):
        as_bgr(np.zeros((3, 4, 2), np.uint8))
    with pytest.raises(SourceError, match="float32"):
        as_bgr(np.zeros((3, 4, 3), np.float32))


def test_bad_arguments():
    with pytest.raises(ValueError, match="fourcc"):
        OpenCVCamera(0, fourcc="MJPEG")
    with pytest.raises(ValueError, match="fps"):
        OpenCVCamera(0, fps=0)
    with pytest.raises(SourceError, match="unknown OpenCV video backend 'NOPE'"):
        resolve_backend("NOPE")
    assert resolve_backend(None) == cv2.CAP_ANY
    assert resolve_backend("ffmpeg") == cv2.CAP_FFMPEG


# ---------------------------------------------------------------- video files


def test_reads_every_frame_in_order(videos):
    cam = OpenCVCamera(str(videos["12@25"]))
    info = cam.open()
    assert info["kind"] == "file" and info["source"] == str(videos["12@25"])
    assert (info["width"], info["height"]) == (W, H)  # the file's size, not the 640x480 asked
    assert info["fourcc"] == "MJPG" and info["fps_actual"] == pytest.approx(25.0)
    assert info["frame_count"] == 12 and isinstance(info["backend"], str) and info["backend"]
    frames = read_all(cam)
    assert [f.seq for f in frames] == list(range(12))
    assert [frame_index(f.image) for f in frames] == list(range(12))
    t = [f.t_host_ns for f in frames]
    assert all(b > a for a, b in itertools.pairwise(t))
    assert [f.t_device_ns for f in frames] == [i * 40_000_000 for i in range(12)]  # 25 fps
    assert cam.read() is None and cam.read() is None  # end of file stays the end
    cam.close()


def test_first_frame_read_by_open_is_delivered(videos):
    with OpenCVCamera(videos["12@25"]) as cam:  # a Path works as a source too
        f = cam.read()
        assert f.seq == 0 and frame_index(f.image) == 0
        assert frame_index(cam.read().image) == 1


def test_backend_by_name(videos):
    with OpenCVCamera(str(videos["12@25"]), backend="FFMPEG") as cam:
        assert cam.info["backend"] == "FFMPEG"
        assert cam.read().seq == 0


def test_grayscale_video_comes_out_bgr(videos):
    with OpenCVCamera(str(videos["gray"])) as cam:
        frames = read_all(cam)
    assert [frame_index(f.image) for f in frames] == list(range(6))
    assert all(f.image.shape == (H, W, 3) for f in frames)


def test_realtime_file_is_paced(videos):
    with OpenCVCamera(str(videos["10@50"]), realtime_file=True) as cam:
        frames = read_all(cam)
    assert len(frames) == 10
    gaps = np.diff([f.t_host_ns for f in frames]) / 1e6
    assert gaps.min() > 15.0, gaps  # ms: each stamp is when the frame became due


def test_unpaced_file_is_not_paced(videos):
    with OpenCVCamera(str(videos["10@5"])) as cam:  # paced, its frames would come 200 ms apart
        frames = read_all(cam)
    gaps = np.diff([f.t_host_ns for f in frames]) / 1e6  # ms
    assert len(frames) == 10 and gaps.min() < 150.0, gaps


def test_close_wakes_a_paced_read(videos):
    cam = OpenCVCamera(str(videos["10@5"]), realtime_file=True)
    cam.open()
    cam.read()  # frame 0 anchors the schedule; frame 1 is due in 200 ms
    threading.Timer(0.02, cam.close).start()
    t0 = time.monotonic()
    assert cam.read() is None
    assert time.monotonic() - t0 < 0.15


def test_missing_file(tmp_path):
    cam = OpenCVCamera(str(tmp_path / "nope.avi"))
    with pytest.raises(SourceError, match=r"^cannot read video file .*nope\.avi \(no such file\)$"):
        cam.open()


def test_not_a_video(tmp_path):
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(SourceError, match=r"^cannot read video file .*junk\.avi"):
        OpenCVCamera(str(junk)).open()


def test_missing_camera_index_fails_fast():
    t0 = time.monotonic()
    with pytest.raises(
        SourceError,
        match=r"^no camera at index 99 \(cv2\.VideoCapture could "
        r"not open it\); ",
    ) as e:
        OpenCVCamera(99).open()
    assert "\n" not in str(e.value)
    assert time.monotonic() - t0 < 5.0


def test_stream_failure_does_not_leak_password():
    cam = OpenCVCamera("rtsp://admin:secret@127.0.0.1:1/live", stream_timeout_s=2.0)
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"^cannot open stream URL rtsp://admin:\*\*\*@") as e:
        cam.open()
    assert "secret" not in str(e.value) and time.monotonic() - t0 < 5.0


def test_reconnect_on_a_file_resumes(videos, tmp_path):
    cam = OpenCVCamera(str(videos["12@25"]))
    cam.open()
    assert [cam.read().seq for _ in range(4)] == [0, 1, 2, 3]
    cam.reconnect()
    rest = read_all(cam)
    assert [f.seq for f in rest] == list(range(4, 12))
    assert [frame_index(f.image) for f in rest] == list(range(4, 12))
    cam.reconnect()  # after the end: reopens, and there is nothing left
    assert cam.read() is None
    cam.close()

    gone = tmp_path / "gone.avi"
    gone.write_bytes(videos["12@25"].read_bytes())
    cam = OpenCVCamera(str(gone))
    cam.open()
    gone.unlink()
    with pytest.raises(SourceError, match="cannot read video file"):
        cam.reconnect()
    cam.close()


def test_close_is_idempotent(videos):
    cam = OpenCVCamera(str(videos["12@25"]))
    cam.close()  # before open
    cam.open()
    cam.close()
    cam.close()
    assert cam.read() is None  # after close: nothing more
    info = cam.open()  # reopening a closed camera starts over
    assert info["width"] == W and cam.read().seq == 0
    cam.close()


def _intact_frames(data: bytes, cut: int) -> int:
    """How many whole JPEGs (SOI ... EOI) lie in data[:cut]. In JPEG entropy data 0xFF
    is always stuffed, so FFD8FF / FFD9 only occur as markers."""
    n, pos = 0, 0
    while True:
        soi = data.find(b"\xff\xd8\xff", pos)
        if soi < 0:
            return n
        eoi = data.find(b"\xff\xd9", soi)
        if eoi < 0 or eoi + 2 > cut:
            return n
        n, pos = n + 1, eoi + 2


@pytest.mark.parametrize("damage", ["truncate", "zero-fill"])
def test_damaged_file_stops_cleanly(videos, tmp_path, damage):
    """Fault injection: the bytes of a valid file are cut at 60 % (or zeroed from 60 %
    on). Reading must deliver every frame before the damage, then stop with None or
    SourceError: never crash, hang, or deliver a wrong size."""
    data = videos["noisy"].read_bytes()
    cut = int(len(data) * 0.6)
    damaged = tmp_path / "damaged.avi"
    if damage == "truncate":
        damaged.write_bytes(data[:cut])
    else:
        damaged.write_bytes(data[:cut] + bytes(len(data) - cut))
    intact = _intact_frames(data, cut)
    assert 5 < intact < 30

    result: dict = {"frames": [], "end": "hang"}

    def reader():
        cam = OpenCVCamera(str(damaged))
        try:
            cam.open()
            while (f := cam.read()) is not None:
                result["frames"].append(f)
            result["end"] = "none"
        except SourceError as e:
            result["end"] = f"SourceError: {e}"
        finally:
            cam.close()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(10.0)
    assert not t.is_alive(), "reading a damaged file hung"
    frames = result["frames"]
    assert result["end"] == "none" or result["end"].startswith("SourceError")
    assert len(frames) >= intact
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert [frame_index(f.image) for f in frames[:intact]] == list(range(intact))
    assert all(f.image.shape == (H, W, 3) for f in frames)


def test_list_cameras_is_quiet_and_fast(capfd):
    t0 = time.monotonic()
    cams = list_cameras(max_index=3)
    assert time.monotonic() - t0 < 10.0
    assert isinstance(cams, list)
    for c in cams:
        assert {"index", "backend", "width", "height", "fps", "fourcc", "delivers"} <= set(c)
    if not cams:  # no camera here: nothing opened, and OpenCV's WARN lines were silenced
        assert "WARN" not in capfd.readouterr().err


# ---------------------------------------------------------------- devices (scripted)


class FakeCapture:
    """A scripted stand-in for cv2.VideoCapture on a device: the driver reports 640x480
    but delivers ``size``; ``script`` lists per read: an image, or None for a failure."""

    instances: ClassVar[list] = []
    script: ClassVar[list] = []
    size = (320, 240)
    msec: ClassVar[list] = []

    def __init__(self, source, api=cv2.CAP_ANY, params=None):
        self.source, self.api, self.sets, self.open = source, api, [], True
        self.props = {
            cv2.CAP_PROP_FRAME_WIDTH: 640.0,
            cv2.CAP_PROP_FRAME_HEIGHT: 480.0,
            cv2.CAP_PROP_FPS: 30.0,
            cv2.CAP_PROP_FOURCC: 0.0,
            cv2.CAP_PROP_POS_MSEC: 0.0,
        }
        FakeCapture.instances.append(self)

    def isOpened(self):
        return self.open

    def getBackendName(self):
        return "FAKE"

    def set(self, prop, value):
        self.sets.append(prop)
        if prop in (cv2.CAP_PROP_FOURCC, cv2.CAP_PROP_FPS):
            self.props[prop] = float(value)
        return True

    def get(self, prop):
        return self.props.get(prop, 0.0)

    def read(self):
        item = FakeCapture.script.pop(0) if FakeCapture.script else None
        if FakeCapture.msec:
            self.props[cv2.CAP_PROP_POS_MSEC] = FakeCapture.msec.pop(0)
        return (item is not None), item

    def release(self):
        self.open = False


@pytest.fixture
def fake_device(monkeypatch):
    FakeCapture.instances = []
    FakeCapture.msec = []
    w, h = FakeCapture.size
    FakeCapture.script = [np.full((h, w), i, np.uint8) for i in range(3)] + [None] + [np.full((h, w, 4), 10 + i, np.uint8) for i in range(2)]
    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    return FakeCapture


def test_device_settings_seq_and_failures(fake_device):
    fake_device.msec = [1000.0, 1033.0, 1033.0]  # the third repeats: not a device time
    cam = OpenCVCamera(0, width=1280, height=720, fps=60.0, fourcc="MJPG")
    info = cam.open()
    cap = fake_device.instances[-1]
    assert cap.sets[0] == cv2.CAP_PROP_FOURCC  # before the size, as webcams need
    assert cap.sets[1:] == [cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FPS]
    assert info["kind"] == "device" and info["backend"] == "FAKE"
    assert (info["width"], info["height"]) == (320, 240)  # the driver lied: 640x480
    assert (info["width_reported"], info["height_reported"]) == (640, 480)
    assert info["fourcc"] == "MJPG" and info["fourcc_requested"] == "MJPG"
    assert info["fps_requested"] == 60.0 and info["fps_actual"] == 60.0

    frames = [cam.read() for _ in range(3)]
    assert [f.seq for f in frames] == [0, 1, 2]
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 1, 2]  # the open() frame first
    assert all(f.image.shape == (240, 320, 3) for f in frames)
    assert [f.t_device_ns for f in frames] == [1_000_000_000, 1_033_000_000, None]
    with pytest.raises(SourceError, match="^camera read failed: camera at index 0"):
        cam.read()
    cam.reconnect()  # reopens with the same settings; seq carries on
    assert fake_device.instances[-1].sets == cap.sets and not cap.open
    f = cam.read()
    assert f.seq == 3 and f.image.shape == (240, 320, 3) and int(f.image[0, 0, 0]) == 10
    cam.close()
    cam.close()


def test_device_that_delivers_nothing(fake_device):
    fake_device.script = []
    with pytest.raises(SourceError, match=r"^no camera at index 2 \(opened, but delivered no frame\)"):
        OpenCVCamera(2).open()
    assert not fake_device.instances[-1].open  # released
