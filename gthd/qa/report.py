"""What ``gthd qa`` writes: the per-frame table (``qa.csv``), the same for scripts with
the findings (``qa.json``, format ``gthd-qa`` v1), a text report (``qa.txt``) and a
picture (``qa.png``): a timeline of the scores and flags over the session and a contact
sheet of flagged frames with their labelled skeleton drawn.

Every file is written whole under a temporary name and renamed (gthd.fileio).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import cv2
import numpy as np

from ..dataset.samples import crop, square_crop_box
from ..draw import draw_skeleton, label
from ..fileio import atomic_write_bytes, read_json, write_json
from ..geometry import box_from_points
from .runner import REASONS, QAOptions, QAResult

QA_FORMAT = "gthd-qa"
QA_VERSION = 1

# Lane colours (BGR) in the timeline, one per reason.
_COLOURS = {
    "flip": (60, 60, 230),
    "jump": (40, 160, 255),
    "finger": (200, 60, 200),
    "frozen": (230, 160, 40),
    "hand_type": (60, 200, 230),
    "bone_length": (120, 120, 255),
    "speed": (0, 220, 255),
    "volume": (150, 150, 150),
    "clock_offset": (80, 200, 80),
    "no_hand_evidence": (255, 120, 120),
    "pose_disagrees": (255, 80, 200),
}


def write_report(result: QAResult, out: str | Path, *, sheet: int = 8, extra: dict | None = None) -> dict[str, Path]:
    """Write qa.csv, qa.json, qa.txt and qa.png into the folder ``out`` (created).

    Args:
        sheet: flagged frames in the contact sheet (0: the picture has the timeline only).
        extra: more keys for qa.json (the command, the calibration's path).

    Returns:
        the files written, by kind.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"csv": out / "qa.csv", "json": out / "qa.json", "txt": out / "qa.txt", "png": out / "qa.png"}
    atomic_write_bytes(files["csv"], table_csv(result).encode())
    write_json(files["json"], qa_document(result, extra), fmt=QA_FORMAT, version=QA_VERSION)
    atomic_write_bytes(files["txt"], ("\n".join(text_lines(result)) + "\n").encode())
    ok, png = cv2.imencode(".png", picture(result, sheet))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    atomic_write_bytes(files["png"], png.tobytes())
    return files


def table_csv(result: QAResult) -> str:
    """The per-frame table as CSV: one row per frame, ``reasons`` joined by ``|``."""
    cols = result.columns
    names = ["frame", "t_host_ns", "labelled", "flagged", "reasons"] + [k for k in cols if k not in ("frame", "t_host_ns", "labelled")]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(names)
    flagged = result.flagged
    for i in range(len(cols["frame"])):
        row = []
        for n in names:
            if n == "flagged":
                v = int(flagged[i])
            elif n == "reasons":
                v = "|".join(result.reasons[i])
            else:
                v = cols[n][i]
            row.append(_cell(v))
        w.writerow(row)
    return buf.getvalue()


def _cell(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else f"{float(v):.4g}"
    return str(v)


def qa_document(result: QAResult, extra: dict | None = None) -> dict:
    """qa.json's content: the summary, the reasons' meanings, the glitches found, the
    time check, and every flagged frame with its reasons (``flagged``: what
    ``gthd build-dataset --qa`` reads)."""
    cols = result.columns
    doc = {
        "source": result.source,
        "kind": result.kind,
        "session_id": result.session_id,
        **(extra or {}),
        "summary": result.summary(),
        "reasons": {k: v for k, v in REASONS.items()},
        "glitches": result.spans,
        "time": result.offset,
        "evidence": result.evidence,
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        "flagged": [{"frame": int(cols["frame"][i]), "reasons": result.reasons[i]} for i in np.flatnonzero(result.flagged)],
    }
    if "session" in cols:  # a dataset: the sample's session and frame
        for f in doc["flagged"]:
            i = f["frame"]
            f.update({"sample": i, "frame": int(cols["frame_index"][i]), "session": int(cols["session"][i])})
    return doc


def read_qa(path: str | Path) -> dict:
    """Read a qa.json (FormatError, one line, on anything else)."""
    return read_json(path, fmt=QA_FORMAT, versions=(QA_VERSION,))


def flagged_frames(paths: list[str | Path]) -> dict[str, set[int]]:
    """The frames each session's ``gthd qa`` report flags, by session id: what
    ``build-dataset --qa`` takes. ValueError for a report of a dataset file."""
    out: dict[str, set[int]] = {}
    for p in paths:
        doc = read_qa(p)
        if doc.get("kind") != "session" or not isinstance(doc.get("session_id"), str):
            raise ValueError(f"{p}: a gthd qa report of {doc.get('kind')} {doc.get('source')!r}, not of a session")
        try:
            out.setdefault(doc["session_id"], set()).update(int(f["frame"]) for f in doc["flagged"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{p}: 'flagged' must list frames ({{\"frame\": N, ...}})") from None
    return out


def text_lines(result: QAResult) -> list[str]:
    """The report a person reads."""
    s = result.summary()
    out = [
        f"gthd qa: {result.source} ({result.kind})",
        f"{s['frames']} frames, {s['labelled']} labelled, {s['flagged']} flagged ({100 * s['flagged_share']:.1f} % of the labelled)",
    ]
    for reason, n in s["per_reason"].items():
        out.append(f"  {reason:<17} {n:6d}  {REASONS.get(reason, '')}")
    if result.spans:
        kinds: dict[str, int] = {}
        for sp in result.spans:
            kinds[sp["kind"]] = kinds.get(sp["kind"], 0) + 1
        out.append("tracker glitches found: " + ", ".join(f"{n} {k}" for k, n in kinds.items()))
    o = result.offset
    if o:
        ch = o["change"]
        b = ch["before"]
        if ch["found"]:
            a = ch["after"]
            t = (ch["t_host_ns"] - int(result.columns["t_host_ns"][0])) / 1e9
            out.append(
                f"clock offset: changes at frame {ch['frame']} ({t:.1f} s): {b['delta_ms']:+.1f} +- {b['std_ms']:.1f} ms before, "
                f"{a['delta_ms']:+.1f} +- {a['std_ms']:.1f} ms after, against the calibration's {o['calibration_offset_ms']:.1f} ms"
            )
        elif b["delta_ms"] is not None:
            out.append(
                f"clock offset: no change found; {b['delta_ms']:+.1f} +- {b['std_ms']:.1f} ms against the calibration's "
                f"{o['calibration_offset_ms']:.1f} ms over {b['frames']} frames"
            )
        else:
            out.append("clock offset: too little motion to tell")
    if result.evidence:
        out.append(f"image-label check: {result.evidence.get('run')} ({result.evidence.get('frames')} frames scored)")
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items() if v >= 0.05)
    out.append(f"took {sum(result.seconds.values()):.1f} s" + (f" ({parts})" if parts else ""))
    return out


# ----------------------------------------------------------------------------- picture
def picture(result: QAResult, sheet: int = 8, width: int = 1280) -> np.ndarray:
    """The timeline over the contact sheet, (H, width, 3) uint8 BGR."""
    parts = [timeline(result, width)]
    picks = worst_frames(result, sheet)
    if picks and result.read_image is not None:
        parts.append(contact(result, picks, width))
    return np.concatenate(parts, axis=0)


def worst_frames(result: QAResult, n: int) -> list[int]:
    """Up to ``n`` flagged frames to look at: the middle frame of each stretch of
    flagged frames, taking the reasons in turn (so every kind of problem is shown), the
    longest stretches first."""
    flagged = result.flagged & result.columns["labelled"]
    if n <= 0 or not flagged.any():
        return []
    idx = np.flatnonzero(flagged)
    cuts = np.flatnonzero(np.diff(idx) > 1) + 1
    runs = np.split(idx, cuts)
    by_reason: dict[str, list[np.ndarray]] = {}
    for r in sorted(runs, key=len, reverse=True):
        mid = int(r[len(r) // 2])
        by_reason.setdefault(result.reasons[mid][0], []).append(r)
    picks: list[int] = []
    while len(picks) < n and any(by_reason.values()):
        for reason in list(by_reason):
            if by_reason[reason] and len(picks) < n:
                r = by_reason[reason].pop(0)
                picks.append(int(r[len(r) // 2]))
    return sorted(picks)


def contact(result: QAResult, frames: list[int], width: int, cols: int = 4) -> np.ndarray:
    """Flagged frames around their labelled hand, the skeleton drawn, each with its
    frame number and reasons."""
    tile = (width - (cols + 1) * 4) // cols
    tiles = []
    for i in frames:
        img = result.read_image(i)
        if img is None:
            continue
        uv, vis = result.uv[i], result.vis[i]
        box = box_from_points(uv, vis, img.shape[1], img.shape[0])
        cb = square_crop_box(box, 0.6) if box is not None else np.array([0, 0, img.shape[1], img.shape[1]], float)
        t = crop(img, cb, tile)
        k = tile / (cb[2] - cb[0])
        draw_skeleton(t, (uv - cb[:2] + 0.5) * k - 0.5, vis, thickness=2, radius=3)
        label(t, f"#{i} {', '.join(result.reasons[i])}", (6, 18), 0.5)
        tiles.append(t)
    if not tiles:
        return np.zeros((0, width, 3), np.uint8)
    rows = (len(tiles) + cols - 1) // cols
    out = np.full((rows * (tile + 4) + 4, width, 3), 24, np.uint8)
    for n, t in enumerate(tiles):
        r, c = divmod(n, cols)
        out[4 + r * (tile + 4) : 4 + r * (tile + 4) + tile, 4 + c * (tile + 4) : 4 + c * (tile + 4) + tile] = t
    return out


def timeline(result: QAResult, width: int = 1280) -> np.ndarray:
    """Lanes over time: one row of ticks per flag reason, the labelled frames, and the
    clock offset's correction in sliding windows (with the change found, if any)."""
    cols = result.columns
    t = (cols["t_host_ns"] - cols["t_host_ns"][0]) / 1e9 if len(cols["t_host_ns"]) else np.zeros(0)
    span = max(float(t[-1]) if len(t) else 1.0, 1e-3)
    left, right = 150, 16
    X = lambda s: int(round(left + (width - left - right) * s / span))  # noqa: E731
    reasons = [r for r in REASONS if any(r in rs for rs in result.reasons)]
    lane = 16
    plot_h = 120 if result.offset else 0
    H = 34 + lane * (len(reasons) + 1) + (plot_h + 40 if plot_h else 0) + 24
    img = np.full((H, width, 3), 250, np.uint8)
    s = result.summary()
    title = f"gthd qa  {Path(result.source).name}: {s['flagged']} of {s['labelled']} labelled frames flagged ({100 * s['flagged_share']:.1f} %)"
    cv2.putText(img, title, (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (30, 30, 30), 1, cv2.LINE_AA)
    y = 34
    rows = [("labelled", cols["labelled"], (190, 190, 190))] + [(r, np.array([r in rs for rs in result.reasons]), _COLOURS.get(r, (0, 0, 0))) for r in reasons]
    for name, mask, colour in rows:
        cv2.putText(img, name, (10, y + lane - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (40, 40, 40), 1, cv2.LINE_AA)
        for i in np.flatnonzero(mask):
            x0 = X(t[i])
            cv2.rectangle(img, (x0, y + 2), (max(x0 + 1, X(t[min(i + 1, len(t) - 1)]) - 1), y + lane - 3), colour, -1)
        y += lane
    if plot_h:
        y += 14
        o = result.offset
        wins = [w for w in o["windows"] if w["delta_ms"] is not None]
        lim = 30.0
        Y = lambda v: int(round(y + plot_h / 2 - np.clip(v, -lim, lim) / lim * plot_h / 2))  # noqa: E731
        cv2.rectangle(img, (left, y), (width - right, y + plot_h), (225, 225, 225), 1)
        for v in (-20, -10, 0, 10, 20):
            cv2.line(img, (left, Y(v)), (width - right, Y(v)), (200, 200, 200) if v else (150, 150, 150), 1)
            cv2.putText(img, f"{v:+d}", (left - 34, Y(v) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (90, 90, 90), 1, cv2.LINE_AA)
        cv2.putText(img, "clock offset", (10, y + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (40, 40, 40), 1, cv2.LINE_AA)
        cv2.putText(img, "correction (ms)", (10, y + 32), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
        t0 = int(cols["t_host_ns"][0])
        pts = []
        for w in wins:
            x = X((w["t_ns"] - t0) / 1e9)
            sd = min(w["std_ms"] if w["std_ms"] is not None else lim, lim)
            cv2.line(img, (x, Y(w["delta_ms"] - sd)), (x, Y(w["delta_ms"] + sd)), (180, 180, 240), 1)
            pts.append((x, Y(w["delta_ms"])))
        for p, q in zip(pts[:-1], pts[1:]):
            cv2.line(img, p, q, (40, 40, 200), 2, cv2.LINE_AA)
        ch = o["change"]
        if ch["found"]:
            x = X((ch["t_host_ns"] - t0) / 1e9)
            cv2.line(img, (x, y), (x, y + plot_h), (40, 150, 40), 2)
            cv2.putText(
                img,
                f"change {ch['before']['delta_ms']:+.0f} -> {ch['after']['delta_ms']:+.0f} ms",
                (min(x + 4, width - 190), y + 14),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.45,
                (40, 120, 40),
                1,
                cv2.LINE_AA,
            )
        y += plot_h
    for sec in range(0, int(span) + 1, 5 if span > 20 else 1):
        cv2.putText(img, f"{sec}", (X(sec) - 4, y + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (90, 90, 90), 1, cv2.LINE_AA)
    cv2.putText(img, "s", (width - right - 6, y + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (90, 90, 90), 1, cv2.LINE_AA)
    return img


def run_qa(
    source: str | Path,
    calibration: str | Path | None = None,
    out: str | Path | None = None,
    *,
    run: str | Path | None = None,
    options: QAOptions | None = None,
    sheet: int = 8,
    command: str | None = None,
    progress=None,
) -> tuple[QAResult, Path, dict[str, Path]]:
    """`gthd qa`: check a session (with its ``calibration``, and a benchmark ``run`` to
    score the labels with) or a dataset file (from the file alone), and write the report
    (:func:`write_report`) to ``out``: default SESSION/qa, or DATASET-qa beside a file.

    Returns:
        (the result, the report folder, the files written by kind).

    Raises:
        FileNotFoundError, ValueError: no such source, or options that do not fit it.
    """
    from .runner import qa_dataset, qa_session

    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such session folder or dataset file")
    if source.is_file():
        if calibration is not None or run is not None:
            raise ValueError("a dataset file is checked from the file alone: --calibration and --run are for sessions")
        result, out = qa_dataset(source), Path(out or source.with_name(source.stem + "-qa"))
    else:
        if calibration is None:
            raise ValueError(f"{source}: a session needs its --calibration (calibration.json from gthd calibrate)")
        each = (lambda stage, done, total: progress(done, total)) if progress is not None else None
        result, out = qa_session(source, calibration, run=run, options=options or QAOptions(), progress=each), Path(out or source / "qa")
    files = write_report(result, out, sheet=sheet, extra={"calibration": None if calibration is None else str(calibration), "command": command})
    return result, out, files
