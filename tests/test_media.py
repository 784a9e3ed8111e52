"""gthd.media: the one camera spelling, what a source argument names, images in, videos
in and out (mp4v files written here), and the display check. The window itself is
driven under Xvfb in tests/test_predict.py."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from gthd.media import VideoIn, VideoOut, list_images, parse_camera, parse_source, read_image, require_display, source_kind


def test_parse_source():
    assert parse_source("0") == 0 and isinstance(parse_source("0"), int)
    assert parse_source(" 12 ") == 12
    assert parse_source("camera:3") == 3  # predict's spelling: one parser for every command
    with pytest.raises(ValueError, match="camera:INDEX"):
        parse_source("camera:front")
    assert parse_source("clip.avi") == "clip.avi"
    assert parse_source("/dev/video2") == "/dev/video2"
    assert parse_source("rtsp://10.0.0.5:554/live") == "rtsp://10.0.0.5:554/live"
    assert parse_source("-1") == "-1"  # not an index: left as a name for the error to show
    assert parse_camera("camera:2") == 2 and parse_camera("clip.avi") is None


def test_source_kind(tmp_path):
    (tmp_path / "hand.JPG").write_bytes(b"")
    (tmp_path / "clip.mkv").write_bytes(b"")
    assert source_kind("camera:0") == source_kind("1") == "camera"
    assert source_kind(str(tmp_path)) == "folder"
    assert source_kind(str(tmp_path / "hand.JPG")) == "image"
    assert source_kind(str(tmp_path / "clip.mkv")) == "video"  # any other file
    with pytest.raises(FileNotFoundError, match="a camera is camera:0"):
        source_kind(str(tmp_path / "missing.jpg"))


def test_images_in_a_folder(tmp_path):
    img = np.zeros((8, 12, 3), np.uint8)
    img[2, 3] = (10, 20, 30)
    cv2.imwrite(str(tmp_path / "b.png"), img)
    cv2.imwrite(str(tmp_path / "a.BMP"), img)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    assert [p.name for p in list_images(tmp_path)] == ["a.BMP", "b.png", "broken.jpg"]
    np.testing.assert_array_equal(read_image(tmp_path / "b.png"), img)
    with pytest.raises(ValueError, match="broken.jpg: not a readable image"):
        read_image(tmp_path / "broken.jpg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        list_images(tmp_path / "empty")


def test_a_video_written_then_read(tmp_path):
    path = tmp_path / "clip.mp4"
    out = VideoOut(path, 12.0)
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5)]
    for f in frames:
        out.write(f)
    assert not path.exists()  # written beside its name until finished
    out.finish()
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    with VideoIn(path) as video:
        assert video.fps == pytest.approx(12.0) and video.count == 5
        got = list(video.frames())
    assert [i for i, _ in got] == [0, 1, 2, 3, 4]
    for (_, f), want in zip(got, frames):
        assert f.shape == want.shape and abs(float(f.mean()) - float(want.mean())) < 3  # lossy


def test_a_discarded_video_leaves_nothing(tmp_path):
    out = VideoOut(tmp_path / "clip.mp4", 30.0)
    out.write(np.zeros((16, 16, 3), np.uint8))
    out.discard()
    assert list(tmp_path.iterdir()) == []
    VideoOut(tmp_path / "none.mp4", 30.0).finish()  # no frame: no file
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_video_is_one_line(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match=r"clip.mp4: not a readable video \(OpenCV cannot open it or read a frame\)$"):
        VideoIn(bad)


def test_no_display_is_refused(monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(ValueError, match="^--show needs a window, and there is no display here"):
        require_display("--show")
    monkeypatch.setenv("DISPLAY", ":99")
    require_display("--show")
