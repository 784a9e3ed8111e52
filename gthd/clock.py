"""Mapping a device clock (LeapC microseconds) onto the host clock (``monotonic_ns``).

Capture reads the two clocks back to back, bracketing the device reading between two
host readings: ``h0 = monotonic_ns(); l = leap.get_now(); h1 = monotonic_ns()``. The
device reading happened somewhere in ``[h0, h1]``; a narrow bracket pins it down. The
map keeps recent samples, trusts the tightest ones, and fits ``host = a + b * device``
to follow the few-ppm drift between the clocks. Both the raw samples and the mapped
times are recorded in the session (docs/session-format.md), so a reader can redo it.
"""

from __future__ import annotations

from collections import deque

import numpy as np

NS_PER_US = 1000.0


class ClockMap:
    """Online device-to-host clock map from bracketed readings.

    Args:
        window: how many recent samples to keep (drift is followed over this window).
        keep: the share of the tightest brackets used in the fit.
    """

    def __init__(self, window: int = 64, keep: float = 0.5):
        self._samples: deque[tuple[int, int, int]] = deque(maxlen=window)
        self._keep = keep
        self._fit: tuple[float, float, float] | None = None  # (ref_us, a_ns, b_ns_per_us)

    def add(self, h0_ns: int, device_us: int, h1_ns: int) -> None:
        """Add one bracket: host before, device reading (µs), host after."""
        if h1_ns < h0_ns:
            raise ValueError(f"bracket ends before it starts: h0={h0_ns}, h1={h1_ns}")
        self._samples.append((int(h0_ns), int(device_us), int(h1_ns)))
        self._fit = None

    def __len__(self) -> int:
        return len(self._samples)

    def _refit(self) -> tuple[float, float, float]:
        s = np.array(self._samples, dtype=np.float64)  # (n, 3): h0, device, h1
        width = s[:, 2] - s[:, 0]
        n_keep = max(1, int(np.ceil(len(s) * self._keep)))
        best = s[np.argsort(width, kind="stable")[:n_keep]]
        mid = (best[:, 0] + best[:, 2]) / 2
        dev = best[:, 1]
        ref = float(dev.mean())
        b = NS_PER_US
        if len(best) >= 2 and np.ptp(dev) > 1e6:  # drift needs >= 1 s of baseline
            b = float(np.polyfit(dev - ref, mid, 1)[0])
            b = float(np.clip(b, NS_PER_US * (1 - 5e-4), NS_PER_US * (1 + 5e-4)))
        a = float(np.mean(mid - b * (dev - ref)))
        return ref, a, b

    def to_host_ns(self, device_us) -> np.ndarray | int:
        """Host time (ns) of device time(s) (µs). Raises if no sample was added."""
        if not self._samples:
            raise RuntimeError("ClockMap has no samples yet")
        if self._fit is None:
            self._fit = self._refit()
        ref, a, b = self._fit
        out = np.rint(a + b * (np.asarray(device_us, dtype=np.float64) - ref)).astype(np.int64)
        return int(out) if out.ndim == 0 else out

    def state(self) -> dict:
        """The current fit, for the record: slope in ns/µs, and the device clock's drift
        against the host in ppm (positive: the device clock runs fast)."""
        if self._fit is None and self._samples:
            self._fit = self._refit()
        if self._fit is None:
            return {"samples": 0}
        ref, a, b = self._fit
        return {
            "samples": len(self._samples),
            "ref_device_us": ref,
            "host_at_ref_ns": a,
            "ns_per_us": b,
            "drift_ppm": (NS_PER_US / b - 1) * 1e6,  # device clock rate against the host
        }


def fit_clock(samples: np.ndarray, window: int = 64) -> ClockMap:
    """A :class:`ClockMap` over (n, 3) int64 samples (h0_ns, device_us, h1_ns)."""
    m = ClockMap(window=window)
    for h0, d, h1 in np.asarray(samples, dtype=np.int64):
        m.add(h0, d, h1)
    return m
