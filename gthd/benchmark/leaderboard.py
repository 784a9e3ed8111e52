"""The benchmark's leaderboard: pose rows (one per method) and detection rows, written as
Markdown, CSV and JSON, printed as a rich table, with the PCK plot; the paper's own
figures (its Tables I and II, and the detection scores of its section IV-B) can stand
beside ours, marked as the paper's.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import __version__
from ..fileio import atomic_write_bytes, dumps_json

POSE_COLUMNS = (
    ("method", "method", "{}"),
    ("mjpe_px", "MJPE (px, 128x128)", "{:.2f}"),
    ("median_px", "median (px)", "{:.2f}"),
    ("vs_constant", "/ constant", "{:.2f}"),
    ("epe_px", "EPE (px, image)", "{:.2f}"),
    ("pck_0.05", "PCK@0.05", "{:.3f}"),
    ("pck_0.1", "PCK@0.1", "{:.3f}"),
    ("pck_0.2", "PCK@0.2", "{:.3f}"),
    ("auc", "AUC", "{:.3f}"),
    ("train_s", "train (s)", "{:.0f}"),
    ("params_m", "params (M)", "{:.2f}"),
    ("infer_ms", "infer (ms)", "{:.1f}"),
    ("found", "hands found", "{:.3f}"),
    ("seeds", "seeds", "{:d}"),
)
DETECTION_COLUMNS = (
    ("method", "method", "{}"),
    ("iou", "IoU", "{:.3f}"),
    ("accuracy", "Acc", "{:.3f}"),
    ("precision", "Prec", "{:.3f}"),
    ("recall", "Rec", "{:.3f}"),
    ("f1", "F1", "{:.3f}"),
    ("auc", "AUC", "{:.3f}"),
    ("seeds", "seeds", "{:d}"),
)

# The paper's own figures (Kourbane & Genc), for reference beside ours: Table II (MJPE in
# pixels on the 128x128 input), Table I (box IoU) and section IV-B (GTHD Hand/NoHand).
PAPER_MJPE = {
    "GTHD": {"direct regression (Gomez et al.)": 13.20, "Li et al.": 6.25, "single-scale heatmaps (UNet)": 7.33, "ours w/o skeleton": 5.89, "ours": 5.51},
    "LSMV": {"direct regression (Gomez et al.)": 10.00, "Li et al.": 8.05, "single-scale heatmaps (UNet)": 5.87, "ours w/o skeleton": 4.95, "ours": 4.67},
}
PAPER_IOU = {"GTHD": {"Faster R-CNN": 0.912, "ours (skeleton)": 0.923}, "LSMV": {"Faster R-CNN": 0.895, "ours (skeleton)": 0.917}}
PAPER_DETECTION_GTHD = {"accuracy": 0.99, "precision": 0.97, "recall": 0.99, "f1": 0.98, "auc": 0.99}

CONSTANT = "constant pose (training mean)"
"""The reference row of every pose table: no network, the mean training pose on every crop.
A method has learned something only where it beats it (its "/ constant" below 1)."""

_NOT_AVERAGED = ("seeds", "params_m")


def _fmt(fmt: str, v, std=None) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    text = fmt.format(v)
    if std is not None and isinstance(std, float) and np.isfinite(std):
        text += " ± " + fmt.format(std)
    return text


def aggregate_rows(runs: list[list[dict]]) -> list[dict]:
    """One row per method from the rows of several seeds' runs (each a list of dicts with
    a "method" key): every numeric value becomes the mean over the seeds that have the
    method, with its sample standard deviation (ddof 1) under ``<key>_std`` when there
    are two or more; "seeds" says how many stand behind the row. Methods keep the order
    of their first appearance; non-numeric values are the first run's."""
    by_method: dict[str, list[dict]] = {}
    for rows in runs:
        for r in rows:
            by_method.setdefault(r["method"], []).append(r)
    out = []
    for method, rows in by_method.items():
        agg = dict(rows[0])
        for key, v in rows[0].items():
            if key in _NOT_AVERAGED or isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                continue
            vals = np.array([float(r[key]) if r.get(key) is not None else np.nan for r in rows])
            agg[key] = float(np.mean(vals))
            if len(rows) > 1:
                agg[f"{key}_std"] = float(np.std(vals, ddof=1))
        agg["seeds"] = len(rows)
        out.append(agg)
    return out


def mean_curves(runs: list[dict]) -> dict:
    """{method: (thresholds, PCK)} averaged over seeds' curves (the same thresholds)."""
    out = {}
    for name in dict.fromkeys(k for c in runs for k in c):
        cs = [c[name] for c in runs if name in c]
        out[name] = (list(cs[0][0]), np.mean([c[1] for c in cs], axis=0).tolist())
    return out


@dataclass
class Leaderboard:
    """Rows of results. ``pose`` rows have the keys of :data:`POSE_COLUMNS`,
    ``detection`` rows those of :data:`DETECTION_COLUMNS` (missing values print as -).
    ``curves`` maps a method to (thresholds, PCK values) for the plot."""

    dataset: str
    pose: list[dict] = field(default_factory=list)
    detection: list[dict] = field(default_factory=list)
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    per_seed: list[dict] = field(default_factory=list)

    def sorted_pose(self) -> list[dict]:
        """Pose rows, best (lowest MJPE) first, each with "vs_constant" (its MJPE over the
        constant row's) when there is a constant row."""
        ref = next((r.get("mjpe_px") for r in self.pose if r["method"] == CONSTANT), None)
        rows = [dict(r, vs_constant=r["mjpe_px"] / ref) if ref and r.get("mjpe_px") is not None else dict(r) for r in self.pose]
        return sorted(rows, key=lambda r: r.get("mjpe_px", np.inf) if r.get("mjpe_px") is not None else np.inf)

    def markdown(self, paper: str | None = None) -> str:
        """The tables as Markdown; with ``paper`` ("GTHD" or "LSMV"), the paper's figures
        in columns of their own, marked as the paper's."""
        out = io.StringIO()
        out.write(f"## Pose estimation on {self.dataset} (test split)\n\n")
        cols = list(POSE_COLUMNS) + ([("paper_mjpe", f"paper's MJPE ({paper})", "{:.2f}")] if paper else [])
        out.write("| " + " | ".join(c[1] for c in cols) + " |\n|" + "---|" * len(cols) + "\n")
        for r in self.sorted_pose():
            row = dict(r)
            if paper:
                row["paper_mjpe"] = PAPER_MJPE.get(paper, {}).get(r.get("paper_name", r["method"]))
            out.write("| " + " | ".join(_fmt(c[2], row.get(c[0]), row.get(f"{c[0]}_std")) for c in cols) + " |\n")
        if self.detection:
            out.write(f"\n## Hand detection on {self.dataset} (test split)\n\n")
            cols = list(DETECTION_COLUMNS)
            out.write("| " + " | ".join(c[1] for c in cols) + " |\n|" + "---|" * len(cols) + "\n")
            for r in self.detection:
                out.write("| " + " | ".join(_fmt(c[2], r.get(c[0]), r.get(f"{c[0]}_std")) for c in cols) + " |\n")
            if paper:
                ref = {
                    "method": f"the paper's ({paper}): ours",
                    "iou": PAPER_IOU.get(paper, {}).get("ours (skeleton)"),
                    **(PAPER_DETECTION_GTHD if paper == "GTHD" else {}),
                }
                out.write("| " + " | ".join(_fmt(c[2], ref.get(c[0])) for c in cols) + " |\n")
        if paper:
            out.write(f"\nThe paper's figures are from its Tables I and II and section IV-B ({paper}), for reference: other data, other scale.\n")
        note = self.decode_note()
        if note:
            out.write(f"\n{note}\n")
        return out.getvalue()

    def decode_note(self) -> str | None:
        """One sentence saying how the heatmap methods' keypoints were decoded (the run's
        profile's ``decode``); None when the config does not say."""
        decode = (self.config.get("profile") or {}).get("decode")
        if decode == "argmax":
            return "Heatmap methods decoded by the argmax of their averaged maps (decode: argmax, the paper's)."
        if decode == "bone-tree":
            return (
                "Heatmap methods decoded by the bone-tree decode (decode: bone-tree: among each joint's 5 highest local maxima, "
                'the choice that fits a bone-length prior of the training labels; the paper takes the argmax; docs/benchmark.md, "Decoding").'
            )
        return None

    def csv_text(self) -> str:
        out = io.StringIO()
        keys = list(dict.fromkeys(c[0] for c in POSE_COLUMNS + DETECTION_COLUMNS))
        rows = self.sorted_pose() + self.detection
        keys += [f"{k}_std" for k in keys if any(f"{k}_std" in r for r in rows)]  # seeds' spread, when several
        w = csv.DictWriter(out, fieldnames=["table"] + keys, extrasaction="ignore")
        w.writeheader()
        for r in self.sorted_pose():
            w.writerow({"table": "pose", **r})
        for r in self.detection:
            w.writerow({"table": "detection", **r})
        return out.getvalue()

    def to_dict(self) -> dict:
        return {
            "format": "gthd-leaderboard",
            "format_version": 1,
            "gthd_version": __version__,
            "dataset": self.dataset,
            "pose": self.sorted_pose(),
            "detection": self.detection,
            "curves": self.curves,
            "config": self.config,
            "per_seed": self.per_seed,
        }

    def json_text(self) -> str:
        """leaderboard.json's text: :meth:`to_dict` with NaN as null and NumPy numbers as JSON's."""
        return dumps_json(_jsonable(self.to_dict()))

    def write(self, out_dir: str | Path, paper: str | None = None) -> list[Path]:
        """leaderboard.md, .csv, .json and pck.png in ``out_dir`` (atomic writes)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / "leaderboard.md", out_dir / "leaderboard.csv", out_dir / "leaderboard.json"]
        atomic_write_bytes(paths[0], self.markdown(paper).encode())
        atomic_write_bytes(paths[1], self.csv_text().encode())
        atomic_write_bytes(paths[2], self.json_text().encode())
        if self.curves:
            paths.append(out_dir / "pck.png")
            pck_plot(self.curves, paths[-1], title=f"PCK on {self.dataset} (threshold / hand box size)")
        return paths

    def rich_table(self):
        """A rich Table of the pose rows (and one of the detection rows, if any)."""
        from rich.table import Table

        tables = []
        t = Table(title=f"pose estimation on {self.dataset}", caption=self.decode_note())
        for _, head, _ in POSE_COLUMNS:
            t.add_column(head, justify="left" if head == "method" else "right")
        for r in self.sorted_pose():
            t.add_row(*[_fmt(fmt, r.get(key), r.get(f"{key}_std")) for key, _, fmt in POSE_COLUMNS])
        tables.append(t)
        if self.detection:
            d = Table(title=f"hand detection on {self.dataset}")
            for _, head, _ in DETECTION_COLUMNS:
                d.add_column(head, justify="left" if head == "method" else "right")
            for r in self.detection:
                d.add_row(*[_fmt(fmt, r.get(key), r.get(f"{key}_std")) for key, _, fmt in DETECTION_COLUMNS])
            tables.append(d)
        return tables


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


_PALETTE = [(40, 40, 220), (40, 160, 40), (200, 120, 20), (160, 40, 160), (20, 160, 200), (90, 90, 90), (0, 130, 255), (120, 60, 0)]


def pck_plot(curves: dict[str, tuple], path: str | Path, title: str = "PCK", size=(860, 460)) -> None:
    """PCK curves (one per method) against the normalised threshold, as in the paper's
    Figure 7, drawn with OpenCV (no plotting library needed)."""
    line_plot(curves, path, title, "normalised threshold", size=size)


def line_plot(curves: dict[str, tuple], path: str | Path, title: str, xlabel: str, size=(860, 460), x_format: str = "{:.2f}") -> None:
    """Curves {name: (x values, y values in [0, 1])} on one set of axes, a PNG drawn with
    OpenCV: the PCK plot, the detector's F1 against its threshold."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    m_l, m_r, m_t, m_b = 60, 290, 40, 50
    xs = np.concatenate([np.asarray(c[0], float) for c in curves.values()]) if curves else np.array([0.0, 1.0])
    x0, x1 = float(xs.min()), float(xs.max()) if xs.max() > xs.min() else float(xs.min()) + 1
    px = lambda v: int(round(m_l + (v - x0) / (x1 - x0) * (w - m_l - m_r)))  # noqa: E731
    py = lambda v: int(round(h - m_b - v * (h - m_t - m_b)))  # noqa: E731
    for v in np.linspace(0, 1, 6):
        cv2.line(img, (m_l, py(v)), (w - m_r, py(v)), (225, 225, 225), 1)
        cv2.putText(img, f"{v:.1f}", (m_l - 40, py(v) + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for v in np.linspace(x0, x1, 7):
        cv2.putText(img, x_format.format(v), (px(v) - 15, h - m_b + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(img, (m_l, m_t), (w - m_r, h - m_b), (0, 0, 0), 1)
    for k, (name, (t, v)) in enumerate(curves.items()):
        color = _PALETTE[k % len(_PALETTE)]
        pts = np.array([[px(a), py(b)] for a, b in zip(t, v) if np.isfinite(b)], np.int32)
        if len(pts) >= 2:
            cv2.polylines(img, [pts], False, color, 2, cv2.LINE_AA)
        cv2.line(img, (w - m_r + 15, m_t + 20 + 22 * k), (w - m_r + 40, m_t + 20 + 22 * k), color, 3, cv2.LINE_AA)
        cv2.putText(img, name[:34], (w - m_r + 46, m_t + 25 + 22 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title, (m_l, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (w // 2 - 90, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    ok, enc = cv2.imencode(".png", img)
    atomic_write_bytes(path, enc.tobytes())


def read_leaderboard(path: str | Path) -> dict:
    """A leaderboard.json, checked."""
    from ..fileio import read_json

    return read_json(path, fmt="gthd-leaderboard", versions=(1,))


__all__ = [
    "CONSTANT",
    "Leaderboard",
    "aggregate_rows",
    "mean_curves",
    "line_plot",
    "pck_plot",
    "read_leaderboard",
    "PAPER_MJPE",
    "PAPER_IOU",
    "PAPER_DETECTION_GTHD",
]
