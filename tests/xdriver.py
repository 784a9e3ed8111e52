"""Driving a real highgui window on a virtual screen (Xvfb) with xdotool, for the GUI
tests of the calibration click window and the capture preview."""

import subprocess
import time

import pytest

from gthd.calibration.click_window import parse_title


class XDriver:
    """Reads the window's title and clicks and types in it with xdotool."""

    def __init__(self, env, proc):
        self.env, self.proc, self.wid = env, proc, None

    def xdo(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run(["xdotool", *map(str, args)], env=self.env, capture_output=True, text=True, timeout=10)

    def _fail(self, what):
        self.proc.kill()
        pytest.fail(f"{what}; the window's output: {self.proc.communicate()[0][-2000:]}")

    def title(self, unlike: dict | None = None, timeout: float = 15.0) -> dict:
        """The window's title fields, once it shows a frame (and differs from ``unlike``)."""
        end, last = time.monotonic() + timeout, None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                self._fail(f"the window exited (title {last!r})")
            wids = [self.wid] if self.wid else self.xdo("search", "--name", "^gthd calibrate").stdout.split()
            for wid in wids:  # the one whose title shows a frame
                last = self.xdo("getwindowname", wid).stdout.strip()
                t = parse_title(last)
                if t is not None:
                    self.wid = wid
                    if t != unlike:
                        return t
            time.sleep(0.05)
        self._fail(f"timed out waiting for the title to change from {unlike} (last {last!r})")

    def click(self, xy) -> None:
        self.xdo("mousemove", "--window", self.wid, int(xy[0]), int(xy[1]), "click", 1)

    def move(self, xy) -> None:
        self.xdo("mousemove", "--window", self.wid, int(xy[0]), int(xy[1]))

    def key(self, name: str) -> None:
        # no window manager under Xvfb: windowactivate fails (no _NET_ACTIVE_WINDOW), focus works
        if self.xdo("windowactivate", "--sync", self.wid).returncode != 0:
            self.xdo("windowfocus", "--sync", self.wid)
        self.xdo("key", "--window", self.wid, name)
