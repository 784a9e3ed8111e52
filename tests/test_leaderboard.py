import csv
import io

import cv2
import numpy as np
import pytest

from gthd.benchmark.leaderboard import PAPER_MJPE, Leaderboard, pck_plot, read_leaderboard
from gthd.benchmark.metrics import auc, pck_curve


def _board():
    b = Leaderboard("demo")
    b.pose = [
        {"method": "direct regression", "paper_name": "direct regression (Gomez et al.)", "mjpe_px": 9.5, "pck_0.1": 0.61, "params_m": 23.6},
        {"method": "ours", "mjpe_px": 4.25, "pck_0.1": 0.93, "auc": 0.8, "params_m": 2.1},
        {"method": "ours w/o skeleton", "mjpe_px": 5.0, "pck_0.1": float("nan")},
    ]
    b.detection = [{"method": "skeleton UNet", "iou": 0.91, "accuracy": 0.98, "f1": 0.97, "auc": 0.99}]
    t = np.linspace(0, 0.3, 31)
    b.curves = {"ours": (t.tolist(), np.clip(t * 5, 0, 1).tolist()), "direct regression": (t.tolist(), np.clip(t * 2, 0, 1).tolist())}
    return b


def test_markdown_sorts_by_mjpe_and_marks_the_papers_figures():
    md = _board().markdown(paper="GTHD")
    rows = [line for line in md.splitlines() if line.startswith("| ") and "MJPE" not in line and "IoU" not in line]
    assert rows[0].startswith("| ours | 4.25") and rows[1].startswith("| ours w/o skeleton | 5.00")
    assert f"{PAPER_MJPE['GTHD']['direct regression (Gomez et al.)']:.2f}" in rows[2]  # the paper's own, in its column
    assert "the paper's (GTHD)" in md and "| - |" in md  # missing values print as -


def test_files_round_trip(tmp_path):
    b = _board()
    paths = b.write(tmp_path, paper="GTHD")
    assert {p.name for p in paths} == {"leaderboard.md", "leaderboard.csv", "leaderboard.json", "pck.png"}
    d = read_leaderboard(tmp_path / "leaderboard.json")
    assert [r["method"] for r in d["pose"]] == ["ours", "ours w/o skeleton", "direct regression"]
    assert d["pose"][1]["pck_0.1"] is None  # NaN is not valid JSON: stored as null
    rows = list(csv.DictReader(io.StringIO((tmp_path / "leaderboard.csv").read_text())))
    assert rows[0]["method"] == "ours" and rows[-1]["table"] == "detection"
    img = cv2.imread(str(tmp_path / "pck.png"))
    assert img is not None and img.shape == (460, 860, 3)


def test_pck_plot_draws_each_curve_where_it_belongs(tmp_path):
    # a flat curve at PCK 1 and one at 0: the coloured pixels of each sit at the top / bottom of the plot area
    t = [0.0, 0.1, 0.2]
    pck_plot({"top": (t, [1.0, 1.0, 1.0]), "bottom": (t, [0.0, 0.0, 0.0])}, tmp_path / "p.png")
    img = cv2.imread(str(tmp_path / "p.png")).astype(int)
    red = (img[..., 2] > 180) & (img[..., 1] < 90) & (img[..., 0] < 90)  # first palette colour (BGR 40,40,220)
    green = (img[..., 1] > 130) & (img[..., 2] < 90) & (img[..., 0] < 90)
    ry = np.nonzero(red[:, :560])[0]
    gy = np.nonzero(green[:, :560])[0]
    assert abs(ry.mean() - 40) < 4 and abs(gy.mean() - (460 - 50)) < 4


def test_curves_from_metrics_feed_the_plot(tmp_path):
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 128, (50, 21, 2))
    pred = gt + rng.normal(0, 3, gt.shape)
    thr = np.linspace(0.0, 0.2, 21)
    curve = pck_curve(pred, gt, np.ones((50, 21), bool), np.full(50, 100.0), thr)
    b = Leaderboard("x", curves={"m": (thr.tolist(), curve.tolist())}, pose=[{"method": "m", "auc": auc(thr, curve)}])
    b.write(tmp_path)
    assert (tmp_path / "pck.png").exists() and 0 < read_leaderboard(tmp_path / "leaderboard.json")["pose"][0]["auc"] < 1


def test_seeds_are_aggregated_to_mean_and_std():
    from gthd.benchmark.leaderboard import CONSTANT, aggregate_rows, mean_curves

    runs = [
        [{"method": CONSTANT, "mjpe_px": 20.0}, {"method": "ours", "mjpe_px": 8.0, "params_m": 0.5, "found": 1.0}],
        [{"method": CONSTANT, "mjpe_px": 20.0}, {"method": "ours", "mjpe_px": 10.0, "params_m": 0.5, "found": 0.5}],
        [{"method": CONSTANT, "mjpe_px": 20.0}, {"method": "ours", "mjpe_px": 12.0, "params_m": 0.5, "found": 0.0}],
    ]
    rows = {r["method"]: r for r in aggregate_rows(runs)}
    assert rows["ours"]["mjpe_px"] == 10.0 and rows["ours"]["mjpe_px_std"] == pytest.approx(2.0)  # ddof 1
    assert rows["ours"]["seeds"] == 3 and rows["ours"]["params_m"] == 0.5 and "params_m_std" not in rows["ours"]
    assert rows[CONSTANT]["mjpe_px_std"] == 0.0
    assert "mjpe_px_std" not in aggregate_rows(runs[:1])[1]  # one seed: no spread to report
    b = Leaderboard("demo", pose=list(rows.values()))
    md = b.markdown()
    assert "| ours | 10.00 ± 2.00 |" in md  # the mean and its std, side by side
    ours = next(r for r in b.sorted_pose() if r["method"] == "ours")
    assert ours["vs_constant"] == pytest.approx(0.5)  # half the constant pose's error
    curves = mean_curves([{"m": ([0, 1], [0.2, 0.4])}, {"m": ([0, 1], [0.4, 0.8])}])
    assert curves["m"][1] == pytest.approx([0.3, 0.6])
