"""Calibration boards, defined once: geometry in millimetres and a printable image.

A :class:`BoardSpec` is the single description of a physical board that both the
simulator (rendering) and the calibration (detection, ``cv2.calibrateCamera``) use, so
the two can never disagree about where a corner is.

Board frame (``board``): origin at the top-left corner of the squares' area of the printed
board, x to the right and y down the printed page, z = x cross y, i.e. into the page (away
from someone looking at the printed side). Millimetres. A camera sees the printed side when
its centre has z < 0 in this frame.

Texture pixels follow the OpenCV convention (the centre of the top-left pixel is (0, 0)).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

KINDS = ("checkerboard", "charuco")


@dataclass(frozen=True)
class BoardSpec:
    """A planar calibration board.

    Attributes:
        kind: "checkerboard" or "charuco".
        cols, rows: number of SQUARES across and down (a checkerboard has
            (cols - 1) x (rows - 1) inner corners, the ``patternSize`` OpenCV wants).
        square_mm: side of one square, mm.
        marker_mm: side of an ArUco marker, mm (charuco only, else None).
        dictionary: ArUco dictionary name such as "DICT_5X5_100" (charuco only, else None).

    The top-left square is black for both kinds (OpenCV's ChArUco layout since 4.6). A
    checkerboard needs at least 4x4 squares and one odd and one even count, so that its
    corners can be numbered the same way in every view (see :meth:`object_points`); prefer
    at least 5 squares a side: with only 3 inner corners along a side, SB sometimes locks
    onto a grid shifted by one square.
    """

    kind: str
    cols: int
    rows: int
    square_mm: float
    marker_mm: float | None = None
    dictionary: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"board kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("cols", "rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value != int(value):
                raise ValueError(f"board {name} must be an integer number of squares, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.cols < 3 or self.rows < 3:
            raise ValueError(f"a board needs at least 3x3 squares, got {self.cols}x{self.rows}")
        square = float(self.square_mm)
        if not (math.isfinite(square) and square > 0):
            raise ValueError(f"square_mm must be a positive number, got {self.square_mm!r}")
        object.__setattr__(self, "square_mm", square)

        if self.kind == "checkerboard":
            if self.marker_mm is not None or self.dictionary is not None:
                raise ValueError("a checkerboard has no markers: leave marker_mm and dictionary as None")
            if self.cols < 4 or self.rows < 4:
                raise ValueError(
                    f"a checkerboard needs at least 4x4 squares (3x3 inner corners, the least cv2.findChessboardCornersSB accepts), got {self.cols}x{self.rows}"
                )
            if (self.cols + self.rows) % 2 == 0:
                raise ValueError(
                    f"a {self.cols}x{self.rows} checkerboard looks the same turned by 180 degrees, so "
                    f"detectors number its corners differently from view to view: use one even and "
                    f"one odd number of squares (e.g. 9x6 or 10x7)"
                )
            return

        # charuco
        if self.marker_mm is None:
            raise ValueError("a charuco board needs marker_mm (the ArUco marker side, mm)")
        marker = float(self.marker_mm)
        if not (math.isfinite(marker) and 0 < marker < square):
            raise ValueError(f"marker_mm must be positive and smaller than square_mm={square:g}, got {self.marker_mm!r}")
        object.__setattr__(self, "marker_mm", marker)
        name = self.dictionary
        if not isinstance(name, str) or not name.startswith("DICT_") or not hasattr(cv2.aruco, name):
            raise ValueError(f"unknown ArUco dictionary {name!r}: use a cv2.aruco name such as 'DICT_5X5_100'")
        n_markers = _aruco_dictionary(name).bytesList.shape[0]
        needed = (self.cols * self.rows) // 2
        if needed > n_markers:
            raise ValueError(f"a {self.cols}x{self.rows} charuco board needs {needed} markers but {name} has only {n_markers}: pick a larger dictionary")

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """JSON-friendly dict (includes "kind"); ``BoardSpec.from_dict`` inverts it."""
        d = {"kind": self.kind, "cols": self.cols, "rows": self.rows, "square_mm": self.square_mm}
        if self.kind == "charuco":
            d.update(marker_mm=self.marker_mm, dictionary=self.dictionary)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BoardSpec":
        try:
            return cls(
                kind=d["kind"],
                cols=d["cols"],
                rows=d["rows"],
                square_mm=d["square_mm"],
                marker_mm=d.get("marker_mm"),
                dictionary=d.get("dictionary"),
            )
        except KeyError as e:
            raise ValueError(f"board description is missing {e.args[0]!r}: got keys {sorted(d)}") from None

    # ------------------------------------------------------------------ geometry
    @property
    def size_mm(self) -> tuple[float, float]:
        """(width, height) of the squares' area, mm."""
        return self.cols * self.square_mm, self.rows * self.square_mm

    @property
    def n_corners(self) -> int:
        """Number of inner chessboard corners (= ChArUco corner ids)."""
        return (self.cols - 1) * (self.rows - 1)

    @property
    def pattern_size(self) -> tuple[int, int]:
        """(cols - 1, rows - 1): inner corners per row and per column, OpenCV's patternSize."""
        return self.cols - 1, self.rows - 1

    def object_points(self) -> np.ndarray:
        """(N, 3) float64 inner corners in the board frame, mm, z = 0, N = (cols-1)(rows-1).

        In the order OpenCV's detectors report them (both are tested):

        - charuco: by corner id, i.e. row by row from the top-left inner corner, x fastest
          (``CharucoBoard.getChessboardCorners()``).
        - checkerboard: as ``cv2.findChessboardCornersSB(gray, (cols-1, rows-1))`` returns
          them. SB starts at the corner whose neighbouring square is white; with the top-left
          square black and cols + rows odd (enforced) that is the BOTTOM-RIGHT inner corner,
          whatever the view: the row-major order reversed (x decreasing fastest). Beware:
          the classic ``cv2.findChessboardCorners`` numbers the same board the other way
          round (from the top-left); reverse its output before pairing it with these.
        """
        i, j = np.meshgrid(np.arange(1, self.cols), np.arange(1, self.rows))  # (rows-1, cols-1)
        pts = np.zeros((self.n_corners, 3))
        pts[:, 0] = i.ravel() * self.square_mm
        pts[:, 1] = j.ravel() * self.square_mm
        if self.kind == "checkerboard":
            pts = pts[::-1].copy()
        return pts

    def cv_board(self) -> "cv2.aruco.CharucoBoard":
        """The ``cv2.aruco.CharucoBoard`` of a charuco spec (OpenCV >= 4.7 API), a new object."""
        if self.kind != "charuco":
            raise ValueError(f"cv_board() is for charuco boards, this one is a {self.kind}")
        return cv2.aruco.CharucoBoard((self.cols, self.rows), self.square_mm, self.marker_mm, _aruco_dictionary(self.dictionary))

    def texture(self, px_per_mm: float, margin_mm: float) -> tuple[np.ndarray, np.ndarray]:
        """The printable board image, with a white margin all around.

        Args:
            px_per_mm: texture resolution, pixels per millimetre (any positive float).
            margin_mm: white margin around the squares' area, mm (>= 0).

        Returns:
            image: (H, W) uint8 grayscale, anti-aliased: each pixel holds the area coverage
                of its square footprint (exact for the squares, so their edges are unbiased
                at any resolution; ArUco markers come from ``generateImage`` at >= 6 px a bit).
            origin_px: (2,) float64, the texture pixel of board point (0, 0): pixel (u, v)
                is board point ((u - origin_px[0]) / px_per_mm, (v - origin_px[1]) / px_per_mm).
        """
        return _texture(self, float(px_per_mm), float(margin_mm))


@functools.lru_cache(maxsize=None)
def _aruco_dictionary(name: str):
    return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))


def _texture(spec: BoardSpec, px_per_mm: float, margin_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`BoardSpec.texture`."""
    if not (math.isfinite(px_per_mm) and px_per_mm > 0):
        raise ValueError(f"px_per_mm must be a positive number, got {px_per_mm!r}")
    if not (math.isfinite(margin_mm) and margin_mm >= 0):
        raise ValueError(f"margin_mm must be >= 0, got {margin_mm!r}")
    width_mm, height_mm = spec.size_mm
    W = int(math.ceil((width_mm + 2 * margin_mm) * px_per_mm))
    H = int(math.ceil((height_mm + 2 * margin_mm) * px_per_mm))
    if max(W, H) > 16384:
        raise ValueError(f"texture of {W}x{H} px is too large: lower px_per_mm={px_per_mm:g}")
    # The texture's outer left edge (u = -0.5) sits at board x = -margin_mm.
    origin = np.full(2, margin_mm * px_per_mm - 0.5)

    # Draw the squares' area exactly at an integer number S of pixels per square, so that
    # every square edge lies on a pixel boundary, then box-filter that onto the texture
    # grid: a box filter of an image whose edges sit on pixel boundaries gives the exact
    # area coverage, whatever the (non-integer) scale.
    if spec.kind == "checkerboard":
        S = 1
        i, j = np.meshgrid(np.arange(spec.cols), np.arange(spec.rows))
        zone = np.where((i + j) % 2 == 0, 0, 255).astype(np.uint8)  # (rows, cols), top-left black
    else:
        # Enough pixels that each marker bit (markerSize + 2 border bits) is >= 6 px wide.
        bits = _aruco_dictionary(spec.dictionary).markerSize + 2
        s0 = max(
            int(math.ceil(px_per_mm * spec.square_mm)),
            int(math.ceil(6 * bits * spec.square_mm / spec.marker_mm)),
        )
        board = spec.cv_board()
        for S in range(s0, s0 + 16):
            # generateImage trips over its own rounding for a few sizes (OpenCV 5.0 asserts
            # for a 4x3 board at 50 px per square, say); any S is as good, so try the next.
            try:
                zone = board.generateImage((spec.cols * S, spec.rows * S), marginSize=0, borderBits=1)
                break
            except cv2.error:
                continue
        else:
            raise RuntimeError(f"cv2 CharucoBoard.generateImage failed for {spec}")
        zone = np.asarray(zone, dtype=np.uint8).reshape(spec.rows * S, spec.cols * S)

    # Footprint of texture pixel k along an axis, in zone pixel-edge units (zone pixel m covers [m, m+1]).
    to_zone = S / (spec.square_mm * px_per_mm)

    def footprints(n: int, o: float) -> tuple[np.ndarray, np.ndarray]:
        k = np.arange(n, dtype=np.float64)
        return (k - 0.5 - o) * to_zone, (k + 0.5 - o) * to_zone

    dark = 255.0 - zone.astype(np.float32)  # zero outside the zone: the margin is white
    dark = _box_resample(dark, *footprints(H, origin[1]), axis=0)  # (H, cols*S)
    dark = _box_resample(dark, *footprints(W, origin[0]), axis=1)  # (H, W)
    image = np.clip(np.rint(255.0 - dark), 0, 255).astype(np.uint8)
    return image, origin


def _box_resample(img: np.ndarray, lo: np.ndarray, hi: np.ndarray, axis: int) -> np.ndarray:
    """Mean of a piecewise-constant image over the intervals [lo, hi] along ``axis``.

    Args:
        img: (n0, n1) float32; pixel m along ``axis`` covers [m, m+1], zero outside [0, n].
        lo, hi: (K,) interval ends in those units, all of the same length hi - lo > 0.

    Returns:
        (K, n1) if axis == 0 else (n0, K) float32: the box-filtered image.
    """
    img = np.moveaxis(img, axis, 0)
    n = img.shape[0]
    length = float(hi[0] - lo[0])
    first = np.floor(lo).astype(np.int64)
    out = np.zeros((len(lo),) + img.shape[1:], np.float32)
    # An interval of this length touches at most ceil(length) + 1 pixels: one tap each.
    for j in range(int(math.ceil(length)) + 1):
        idx = first + j
        overlap = np.clip(np.minimum(hi, idx + 1) - np.maximum(lo, idx), 0.0, None)
        overlap[(idx < 0) | (idx >= n)] = 0.0
        out += (overlap / length).astype(np.float32)[:, None] * img[np.clip(idx, 0, n - 1)]
    return np.moveaxis(out, 0, axis)


# ---------------------------------------------------------------------- printing
def board_name(spec: BoardSpec) -> str:
    """A file name stem that says what the board is, e.g. ``checkerboard-10x7-25mm``."""
    base = f"{spec.kind}-{spec.cols}x{spec.rows}-{spec.square_mm:g}mm"
    if spec.kind == "charuco":
        base += f"-{spec.marker_mm:g}mm-{spec.dictionary}"
    return base


def printable_png(spec: BoardSpec, dpi: float = 300.0, margin_mm: float = 12.0) -> bytes:
    """The board as PNG bytes at ``dpi``, with the physical resolution recorded in the
    file (a pHYs chunk) so it prints at true size, and a caption with a 100 mm scale bar
    in the bottom margin to check the print with a ruler.

    Print at 100 % ("actual size"), glue it flat, and measure the scale bar.
    """
    if not 72 <= dpi <= 1200:
        raise ValueError(f"dpi must be in [72, 1200], got {dpi}")
    if margin_mm < 8:
        raise ValueError(f"margin_mm must be >= 8 (room for the caption), got {margin_mm}")
    px_per_mm = dpi / 25.4
    img, origin = spec.texture(px_per_mm, margin_mm)
    img = np.ascontiguousarray(img)
    h = img.shape[0]
    # caption and scale bar in the bottom margin
    y = int(round(h - margin_mm * px_per_mm * 0.45))
    x0 = int(round(origin[0]))
    bar = int(round(100 * px_per_mm))
    thick = max(1, int(round(0.4 * px_per_mm)))
    cv2.line(img, (x0, y), (x0 + bar, y), 0, thick)
    for x in (x0, x0 + bar):
        cv2.line(img, (x, y - int(2 * px_per_mm)), (x, y + int(2 * px_per_mm)), 0, thick)
    scale = 2.5 * px_per_mm / 22.0  # Hershey simplex capitals are ~22 px at scale 1: 2.5 mm text
    text = f"100 mm   |   {board_name(spec)}   |   print at 100 %, {dpi:g} dpi   |   gthd"
    cv2.putText(img, text, (x0 + bar + int(4 * px_per_mm), y + int(1.2 * px_per_mm)), cv2.FONT_HERSHEY_SIMPLEX, scale, 0, max(1, thick // 2), cv2.LINE_AA)
    ok, enc = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return _with_phys(enc.tobytes(), dpi)


def _with_phys(png: bytes, dpi: float) -> bytes:
    """Insert a pHYs chunk (pixels per metre) after the PNG's IHDR chunk."""
    import struct
    import zlib

    ppm = int(round(dpi / 0.0254))
    body = b"pHYs" + struct.pack(">IIB", ppm, ppm, 1)
    chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, length, type, data, crc
    return png[:ihdr_end] + chunk + png[ihdr_end:]


# --------------------------------------------------------------------------- board files
# ``board.json`` (format "gthd-board" v1): the BoardSpec's fields. Written by ``gthd board``
# and beside a simulated session's board views, read by ``gthd calibrate intrinsics``.
BOARD_FORMAT = "gthd-board"
BOARD_VERSION = 1
DEFAULT_BOARDS = {
    "checkerboard": BoardSpec("checkerboard", 10, 7, 25.0),
    "charuco": BoardSpec("charuco", 8, 6, 30.0, 22.0, "DICT_5X5_100"),
}  # gthd's defaults: `--board checkerboard`, the simulator's boards


def write_board_file(path, spec: BoardSpec) -> None:
    """Write ``spec`` as a board.json (atomically)."""
    from .fileio import write_json

    write_json(path, spec.to_dict(), fmt=BOARD_FORMAT, version=BOARD_VERSION)


def read_board_file(path) -> BoardSpec:
    """A board.json; FormatError (one line) for anything that is not one."""
    from pathlib import Path

    from .fileio import FormatError, read_json

    d = read_json(path, fmt=BOARD_FORMAT, versions=(BOARD_VERSION,))
    try:
        return BoardSpec.from_dict({k: v for k, v in d.items() if k not in ("format", "format_version", "gthd_version")})
    except (TypeError, ValueError) as e:  # a field missing, of the wrong kind or impossible
        raise FormatError(f"{Path(path)}: not a board description ({e})") from None


def board_from_arg(board: str) -> BoardSpec:
    """What ``--board`` names: ``checkerboard`` or ``charuco`` (gthd's defaults), or a
    board.json."""
    if board in DEFAULT_BOARDS:
        return DEFAULT_BOARDS[board]
    from pathlib import Path

    from .fileio import FormatError

    if not Path(board).exists():
        raise FormatError(f"{board}: no such board file (make one with gthd board, or say checkerboard or charuco)")
    return read_board_file(board)


def board_spec(
    kind: str, cols: int | None = None, rows: int | None = None, square_mm: float | None = None, marker_mm: float = 22.0, dictionary: str = "DICT_5X5_100"
) -> BoardSpec:
    """A board of ``kind`` ("checkerboard" or "charuco"), gthd's default (:data:`DEFAULT_BOARDS`)
    wherever a size is None; ``marker_mm`` and ``dictionary`` for a ChArUco board only."""
    d = DEFAULT_BOARDS[kind]
    aruco = (marker_mm, dictionary) if kind == "charuco" else (None, None)
    return BoardSpec(kind, cols or d.cols, rows or d.rows, square_mm or d.square_mm, *aruco)


def write_printable(spec: BoardSpec, out_dir, dpi: float = 300.0):
    """`gthd board`: the printable PNG (:func:`printable_png`) and its board.json twin in
    ``out_dir``, named by :func:`board_name`. Returns (PNG path, JSON path)."""
    from pathlib import Path

    from .fileio import atomic_write_bytes

    png = printable_png(spec, dpi)
    stem = Path(out_dir) / board_name(spec)
    stem.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(stem.with_suffix(".png"), png)
    write_board_file(stem.with_suffix(".json"), spec)
    return stem.with_suffix(".png"), stem.with_suffix(".json")
