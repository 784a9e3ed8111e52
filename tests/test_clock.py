import numpy as np
import pytest

from gthd.clock import ClockMap, fit_clock


def test_clock_map_recovers_offset_and_drift():
    rng = np.random.default_rng(0)
    drift_ppm, offset_us = 6.0, 1_234_567_890
    h0 = 10**12 + np.arange(120) * 500_000_000  # a bracket every 0.5 s for a minute
    d1 = rng.exponential(5e3, 120).astype(np.int64) + 500
    d2 = rng.exponential(5e3, 120).astype(np.int64) + 500
    true_leap = lambda h: np.floor((h - 10**12) / 1e3 * (1 + drift_ppm * 1e-6) + offset_us).astype(np.int64)
    m = fit_clock(np.stack([h0, true_leap(h0 + d1), h0 + d1 + d2], axis=1))
    assert m.state()["drift_ppm"] == pytest.approx(drift_ppm, abs=1.0)
    probe = 10**12 + np.linspace(30e9, 59e9, 50).astype(np.int64)  # inside the window
    err = m.to_host_ns(true_leap(probe)) - probe
    assert np.abs(err).max() < 20_000  # 20 µs


def test_clock_map_needs_samples_and_sane_brackets():
    m = ClockMap()
    with pytest.raises(RuntimeError):
        m.to_host_ns(5)
    with pytest.raises(ValueError, match="before it starts"):
        m.add(10, 5, 9)
    m.add(1_000_000, 1_000, 1_000_200)
    assert m.to_host_ns(1_001) == 1_001_100  # one sample: slope 1000 ns/µs through its midpoint
