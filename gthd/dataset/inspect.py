"""``gthd inspect``: what a dataset holds, and a contact sheet of it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..draw import contact_sheet, draw_box, draw_skeleton, label
from ..fileio import atomic_write_bytes
from .schema import SPLITS, attr_json, open_dataset, read_skeleton


def summary(path: str | Path) -> dict:
    """Counts, splits, hand sizes and joints out of view (``gthd inspect --json``)."""
    with open_dataset(path) as f:
        n = int(f["meta/split"].shape[0])  # open_dataset checked the arrays agree
        has = f["labels/has_hand"][...]
        split = f["meta/split"][...]
        vis = f["labels/visible"][...]
        box = f["labels/box"][...]
        d = {
            "path": str(path),
            "schema_version": int(f.attrs["schema_version"]),
            "gthd_version": str(f.attrs.get("gthd_version", "?")),
            "joint_set": str(f.attrs.get("joint_set", "gthd21")),
            "samples": n,
            "hand": int(has.sum()),
            "nohand": int((~has).sum()),
            "sources": len(attr_json(f, "sessions", [])),
            "subjects": len(attr_json(f, "subjects", [])),
            "split_by": str(f.attrs.get("split_by", "?")),
            "splits": {name: {"samples": int((split == i).sum()), "hand": int((has & (split == i)).sum())} for i, name in enumerate(SPLITS)},
            "hand_size_px": None,
            "joints_out_of_view": None,
        }
        labelled = attr_json(f, "labelled_joints", None)  # LSMV: no wrist
        if labelled is not None:
            vis = vis[:, labelled]
        if has.any():
            side = np.maximum(box[has, 2] - box[has, 0], box[has, 3] - box[has, 1])
            edges = [0, 40, 60, 90, 130, 190, 280, 10_000]
            hist, _ = np.histogram(side, bins=edges)
            d["hand_size_px"] = {
                "bins": [[a, None if b == 10_000 else b, int(c)] for a, b, c in zip(edges[:-1], edges[1:], hist)],
                "p5_p50_p95": [round(float(v), 1) for v in np.percentile(side, [5, 50, 95])],
            }
            out = ~vis[has]
            d["joints_out_of_view"] = {"share": round(float(out.mean()), 4), "hands_with_one": int(out.any(axis=1).sum())}
    return d


def summary_lines(path: str | Path) -> list[str]:
    """:func:`summary` as lines for a terminal."""
    d = summary(path)
    lines = [
        f"{path}: gthd dataset schema {d['schema_version']} (written by gthd {d['gthd_version']}), joint set {d['joint_set']}",
        f"samples: {d['samples']} ({d['hand']} with a hand, {d['nohand']} NoHand) from {d['sources']} sources, {d['subjects']} subjects",
        "splits: " + ", ".join(f"{name} {v['samples']} ({v['hand']} hand)" for name, v in d["splits"].items()) + f" (by {d['split_by']})",
    ]
    if d["hand_size_px"] is not None:
        bins, p = d["hand_size_px"]["bins"], d["hand_size_px"]["p5_p50_p95"]
        lines.append("hand size (box side, px): " + ", ".join(f"{a}-{'' if b is None else b}: {c}" for a, b, c in bins))
        lines.append(f"  5/50/95 %: {p[0]:.0f} / {p[1]:.0f} / {p[2]:.0f} px")
        o = d["joints_out_of_view"]
        lines.append(f"joints out of view: {o['share'] * 100:.1f} % of hand joints; {o['hands_with_one']} hands with at least one")
    return lines


def contact_sheet_png(path: str | Path, out: str | Path, count: int = 16, cols: int = 4, seed: int = 0) -> int:
    """A PNG of ``count`` random samples: frame, skeleton mask tinted, keypoints, box."""
    with open_dataset(path) as f:
        n = int(f["meta/split"].shape[0])
        if n == 0:
            raise ValueError(f"{path}: the dataset is empty")
        idx = np.sort(np.random.default_rng(seed).choice(n, min(count, n), replace=False))
        tiles = []
        for i in idx:
            img = cv2.imdecode(f["images/frame_jpeg"][i], cv2.IMREAD_COLOR)
            if f["labels/has_hand"][i]:
                mask = read_skeleton(f, i)
                if mask.shape == img.shape[:2]:
                    tint = np.zeros_like(img)
                    tint[..., 1] = mask
                    img = cv2.addWeighted(img, 1.0, tint, 0.6, 0)
                draw_box(img, f["labels/box"][i], (0, 255, 255), 2)
                draw_skeleton(img, f["labels/keypoints"][i], f["labels/visible"][i])
            split = SPLITS[int(f["meta/split"][i])]
            name = f["meta/name"][i]
            name = name.decode() if isinstance(name, bytes) else str(name)
            sc = max(0.5, img.shape[1] / 800)
            label(img, f"{name} {split}" + ("" if f["labels/has_hand"][i] else " NoHand"), org=(8, int(36 * sc)), scale=sc)
            tiles.append(img)
    h0 = tiles[0].shape[:2]
    tiles = [t if t.shape[:2] == h0 else cv2.resize(t, (h0[1], h0[0])) for t in tiles]
    ok, enc = cv2.imencode(".png", contact_sheet(tiles, cols=cols))
    atomic_write_bytes(out, enc.tobytes())
    return len(tiles)
