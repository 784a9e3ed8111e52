"""The COCO door: a gthd dataset to and from the COCO keypoint layout of mmpose's hand
datasets (OneHand10K, FreiHAND, CMU Panoptic, RHD).

Exported layout (``export_coco``)::

    out_dir/images/<name>.jpg            the stored frame JPEG, byte for byte
    out_dir/annotations/<split>.json     one COCO keypoint file per split

    {"info": {...}, "licenses": [],
     "images": [{"id", "file_name" (relative to out_dir/images), "width", "height"}],
     "annotations": [{"id", "image_id", "category_id": 1, "bbox": [x, y, w, h], "area",
                      "iscrowd": 0, "num_keypoints", "keypoints": [x, y, v] * 21}],
     "categories": [{"id": 1, "name": "hand", "supercategory": "hand",
                     "keypoints": MMPOSE_HAND_NAMES, "skeleton": 1-based EDGES}]}

Decisions, made once here:

- **Pixels.** Inside gthd a coordinate is OpenCV's: the centre of the top-left pixel is
  (0, 0) and an image spans [-0.5, W-0.5]. In COCO the top-left *corner* of the image is
  (0, 0) and it spans [0, W]. So ``x_coco = x_gthd + 0.5`` going out and
  ``x_gthd = x_coco - 0.5`` coming in, for keypoints and for the box corner alike (a box's
  width and height do not change).
- **Boxes.** ``bbox = [x0 + 0.5, y0 + 0.5, x1 - x0, y1 - y0]`` from our ``xyxy`` hand box;
  ``area = w * h``. On import the file's ``bbox`` is not used: :func:`make_sample` makes the
  box from the keypoints, as for every other source, so all sources agree.
- **Visibility.** Out: ``v = 2`` for a visible joint, ``[0, 0, 0]`` for any other (COCO's
  "not labelled"). In: ``v > 0`` is visible (these datasets label with ``v = 1``); a joint
  with ``v = 0`` at (0, 0) is unknown (NaN); one with ``v = 0`` elsewhere keeps its
  coordinates but is not visible; a ``v > 0`` joint outside the image is kept, not
  visible (our ``visible`` means inside the image).
- **Joint names.** The category lists the joints under mmpose's hand names
  (:data:`MMPOSE_HAND_NAMES`: wrist, thumb1..4, forefinger1..4, ..., pinky_finger1..4),
  which are our :data:`~gthd.hand.JOINT_NAMES` one for one (thumb1 = THUMB_CMC,
  forefinger1 = INDEX_MCP, ..., pinky_finger4 = PINKY_TIP), so a file we write reads like
  the mmpose hand datasets it sits beside.
- **Joint order.** The COCO-style files of mmpose (OneHand10K, FreiHAND, Panoptic) are in
  our order (checked by drawing their skeletons on their images). RHD keeps its native
  order, each finger from the tip down (wrist, thumb tip..thumb base, index tip..index
  MCP, ...; mmpose's ``Rhd2DDataset``), even where the file's category carries the
  standard names: it is mapped here (:data:`RHD_TO_OURS`), the only place it exists.
  ``joint_order="auto"`` takes RHD's when the file's ``info.description`` says RHD or its
  category names run thumb4..thumb1, ours otherwise.
- **Images and samples.** One sample per hand annotation; an image with several hands
  gives several samples that share the frame, named ``<file_name>#<k>``. On export such
  samples (same base name, same frame bytes) become one image with several annotations;
  a NoHand sample becomes an image without annotation, and on import an image that has
  no annotation at all becomes a NoHand sample (an image whose annotations were all
  skipped is left out instead: it is not known to be empty).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from .. import __version__
from ..fileio import FormatError, atomic_write_bytes, contained_path, read_regular_file
from ..hand import EDGES, FINGERS, NUM_JOINTS, finger_joints
from ..images import decode_checked
from .samples import make_sample
from .schema import SPLITS, Sample, open_dataset
from .writer import DatasetOutput, DatasetReport, SplitRule

COCO_FORMAT = "gthd-coco-export"
COCO_FORMAT_VERSION = 1

_MMPOSE_FINGERS = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")

MMPOSE_HAND_NAMES: tuple[str, ...] = ("wrist",) + tuple(f"{f}{k}" for f in _MMPOSE_FINGERS for k in range(1, 5))
"""mmpose's names of the 21 hand joints, in our order: ``MMPOSE_HAND_NAMES[i]`` is
``JOINT_NAMES[i]`` (thumb1 = THUMB_CMC, ..., thumb4 = THUMB_TIP, forefinger1 = INDEX_MCP)."""

RHD_TO_OURS: tuple[int, ...] = (0,) + tuple(finger_joints(f)[3 - k] for f in FINGERS for k in range(4))
"""``RHD_TO_OURS[i]`` is our joint index for RHD point ``i``. RHD: 0 wrist, then per finger
(thumb, index, middle, ring, pinky) tip, DIP, PIP, MCP (thumb: tip, IP, MCP, CMC)."""

RHD_NAMES: tuple[str, ...] = tuple(MMPOSE_HAND_NAMES[j] for j in RHD_TO_OURS)
"""mmpose's names of RHD's points in RHD's order: wrist, thumb4, thumb3, ..., pinky_finger1."""

JOINT_ORDERS = ("auto", "coco", "rhd")

CATEGORY = {
    "id": 1,
    "name": "hand",
    "supercategory": "hand",
    "keypoints": list(MMPOSE_HAND_NAMES),
    "skeleton": [[a + 1, b + 1] for a, b in EDGES],  # COCO's skeleton is 1-based
}

PIXEL_CONVENTION = "COCO: the top-left corner of the image is (0, 0); gthd (OpenCV): the centre of the top-left pixel is (0, 0); x_coco = x_gthd + 0.5"

_IMAGE_EXT = re.compile(r"\.(jpe?g|png|bmp|tiff?|webp)$", re.IGNORECASE)


# ----------------------------------------------------------------------------- export
def _file_stem(name: str, index: int) -> str:
    """A safe relative path (no extension) for a sample's image from its readable name:
    ``"session/000012"`` stays a subfolder path; ``..``, absolute parts and odd characters
    are neutralised; an image extension is dropped (``.jpg`` is added back)."""
    base = name.split("#", 1)[0]
    base = _IMAGE_EXT.sub("", base)
    parts = [re.sub(r"[^A-Za-z0-9._-]", "_", p) for p in base.replace("\\", "/").split("/")]
    parts = [p for p in parts if p and p not in (".", "..")]
    parts = [("_" + p if p.startswith(".") else p) for p in parts]
    return "/".join(parts) or f"{index:06d}"


def _r(x: float) -> float:
    return round(float(x), 4)


def export_coco(
    dataset_path: str | Path,
    out_dir: str | Path,
    splits=SPLITS,
    *,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write a gthd dataset as COCO keypoint files plus its frames (layout above).

    Args:
        dataset_path: the HDF5 dataset.
        out_dir: the export folder; refused if it exists and is not empty, unless
            ``force`` (files of the same name are then replaced, others left alone).
            Everything is written to a hidden folder beside it first and moved into
            place at the end: an export that fails leaves nothing behind.
        splits: which splits to write; one ``annotations/<split>.json`` each, even empty.
        progress: called with (done, total) samples.

    Returns:
        ``{"out_dir", "images", "annotations", "nohand", "splits": {split: {"images",
        "annotations"}}}``: images and annotations written, NoHand images among them.

    Raises:
        FormatError: not a gthd dataset. ValueError: an unknown split.
        FileExistsError: ``out_dir`` is not empty (without ``force``).
    """
    splits = tuple(splits)
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        raise ValueError(f"splits must be among {', '.join(SPLITS)}, got {', '.join(map(str, splits)) or 'none'}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} is not empty (use --force to write into it)")

    with open_dataset(dataset_path) as f:  # checked before anything is written: a bad file leaves nothing
        stage = out.parent / f".{out.name}.partial-{os.getpid()}"
        try:
            report = _write_coco(f, Path(dataset_path).name, stage, splits, progress)
            _move_into(stage, out)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return {"out_dir": str(out), **report}


def _move_into(stage: Path, out: Path) -> None:
    """The finished export in ``stage`` becomes ``out``: renamed whole when ``out`` is
    absent or empty, else file by file over it (``--force``)."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.replace(stage, out)
        return
    for path in sorted(p for p in stage.rglob("*") if p.is_file()):
        target = out / path.relative_to(stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)


def _write_coco(f, dataset_name: str, out: Path, splits: tuple, progress) -> dict:
    """The export's files into the new folder ``out``; returns the counts."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    n = int(f["meta/split"].shape[0])
    split = f["meta/split"][...]
    has_hand = f["labels/has_hand"][...]
    keypoints = f["labels/keypoints"][...]  # (N, 21, 2) px
    visible = f["labels/visible"][...]  # (N, 21)
    box = f["labels/box"][...]  # (N, 4) xyxy
    size = f["meta/image_size"][...]  # (N, 2) (width, height)
    names = [v.decode() if isinstance(v, bytes) else str(v) for v in f["meta/name"][...]]
    frames = f["images/frame_jpeg"]
    wanted = [SPLITS.index(s) for s in splits]
    todo = [i for i in range(n) if int(split[i]) in wanted]

    images: dict[tuple[str, str], dict] = {}  # (base name, frame sha1) -> image entry
    used: set[str] = set()
    per_split = {s: {"images": [], "annotations": []} for s in splits}
    seen_in_split: dict[str, set[int]] = {s: set() for s in splits}
    next_ann = 1
    for done, i in enumerate(todo, 1):
        data = frames[i].tobytes()
        key = (names[i].split("#", 1)[0], hashlib.sha1(data).hexdigest())
        img = images.get(key)
        if img is None:
            stem = _file_stem(names[i], i)
            file_name, k = f"{stem}.jpg", 1
            while file_name in used:
                file_name, k = f"{stem}_{k}.jpg", k + 1
            used.add(file_name)
            path = out / "images" / file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data)
            img = {"id": len(images) + 1, "file_name": file_name, "width": int(size[i][0]), "height": int(size[i][1])}
            images[key] = img
        s = SPLITS[int(split[i])]
        if img["id"] not in seen_in_split[s]:
            seen_in_split[s].add(img["id"])
            per_split[s]["images"].append(img)
        vis = visible[i] & np.all(np.isfinite(keypoints[i]), axis=1)
        if has_hand[i] and vis.any() and np.all(np.isfinite(box[i])):
            kp = []
            for j in range(NUM_JOINTS):
                kp += [_r(keypoints[i, j, 0] + 0.5), _r(keypoints[i, j, 1] + 0.5), 2] if vis[j] else [0, 0, 0]
            x0, y0, x1, y1 = (float(v) for v in box[i])
            w, h = x1 - x0, y1 - y0
            per_split[s]["annotations"].append({
                "id": next_ann, "image_id": img["id"], "category_id": 1,
                "bbox": [_r(x0 + 0.5), _r(y0 + 0.5), _r(w), _r(h)], "area": _r(w * h),
                "iscrowd": 0, "num_keypoints": int(vis.sum()), "keypoints": kp,
            })  # fmt: skip
            next_ann += 1
        if progress is not None:
            progress(done, len(todo))

    report = {"images": len(images), "annotations": next_ann - 1, "nohand": 0, "splits": {}}
    annotated = set()
    for s in splits:
        annotated |= {a["image_id"] for a in per_split[s]["annotations"]}
    report["nohand"] = sum(1 for img in images.values() if img["id"] not in annotated)
    for s in splits:
        doc = {
            "info": {
                "description": f"gthd dataset {dataset_name}, split {s}",
                "format": COCO_FORMAT, "format_version": COCO_FORMAT_VERSION, "gthd_version": __version__,
                "pixel_convention": PIXEL_CONVENTION, "joint_order": "mmpose hand (= gthd21, MediaPipe)",
            },
            "licenses": [],
            "images": per_split[s]["images"],
            "annotations": per_split[s]["annotations"],
            "categories": [CATEGORY],
        }  # fmt: skip
        atomic_write_bytes(out / "annotations" / f"{s}.json", (json.dumps(doc, separators=(",", ":"), allow_nan=False) + "\n").encode())
        report["splits"][s] = {"images": len(per_split[s]["images"]), "annotations": len(per_split[s]["annotations"])}
    return report


# ----------------------------------------------------------------------------- import
def _load(path: Path) -> dict:
    """Read and check the top level of a COCO keypoint file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    # ValueError: JSONDecodeError, and an integer of more than 4300 digits;
    # RecursionError: arrays nested thousands deep
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise FormatError(f"{path}: not readable JSON ({_first_line(e)})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not isinstance(doc.get("annotations"), list):
        raise FormatError(f"{path}: not a COCO keypoint file (expected an object with 'images' and 'annotations' lists)")
    return doc


def _hand_categories(path: Path, doc: dict) -> tuple[set | None, list | None]:
    """The ids of the 21-keypoint categories (None: no categories, take every annotation)
    and their keypoint names."""
    cats = doc.get("categories")
    if cats is None:
        return None, None
    if not isinstance(cats, list):
        raise FormatError(f"{path}: 'categories' is not a list")
    hands = [c for c in cats if isinstance(c, dict) and isinstance(c.get("keypoints"), list) and len(c["keypoints"]) == NUM_JOINTS]
    if not hands:
        found = (
            ", ".join(
                f"{_show(c.get('name'))} ({len(c['keypoints']) if isinstance(c.get('keypoints'), list) else 0} keypoints)" for c in cats if isinstance(c, dict)
            )
            or "none"
        )
        raise FormatError(f"{path}: not a COCO hand keypoint file: no category with 21 keypoints (found {found})")
    return {c.get("id") for c in hands if _is_id(c.get("id"))}, [str(k) for k in hands[0]["keypoints"]]


def _is_id(v) -> bool:
    """An id as COCO files spell them: a number or a string (hashable, comparable)."""
    return isinstance(v, (int, float, str)) and not isinstance(v, bool)


def _show(v, limit: int = 60) -> str:
    """``repr(v)`` cut to ``limit`` characters, for a message about a hostile value."""
    r = repr(v)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _detect_order(doc: dict, names: list | None) -> str:
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    desc = str(info.get("description", "")).strip().lower()
    if desc == "rhd" or desc.startswith(("rhd ", "rendered hand")):
        return "rhd"
    if names is not None and tuple(n.lower() for n in names) == RHD_NAMES:
        return "rhd"
    return "coco"


def _keypoints(path: Path, ann: dict, order: str) -> tuple[np.ndarray, np.ndarray]:
    """An annotation's keypoints, flat [x, y, v] * 21 or a 21 x 3 list in the file's
    joint order, as (21, 2) float64 gthd px (NaN where unknown) and (21,) bool labelled
    (v > 0), in our joint order. Not yet checked against the image's size."""
    raw = ann.get("keypoints")
    try:
        k = np.asarray(raw, dtype=np.float64).reshape(-1)
    # OverflowError: an integer beyond float64; RecursionError: lists nested thousands deep
    except (TypeError, ValueError, OverflowError, RecursionError):
        k = None
    if k is None or k.size != NUM_JOINTS * 3:
        got = "nothing readable" if k is None else f"{k.size} numbers"
        raise FormatError(f"{path}: annotation {_show(ann.get('id'))}: expected 21 keypoints [x, y, v] (63 numbers), got {got}")
    k = k.reshape(NUM_JOINTS, 3)  # (21, 3) x, y, v in the file's order
    if order == "rhd":
        mapped = np.empty_like(k)
        mapped[list(RHD_TO_OURS)] = k  # RHD point i -> our joint RHD_TO_OURS[i]
        k = mapped
    uv = k[:, :2] - 0.5  # COCO corner pixels -> OpenCV centre pixels
    v = k[:, 2]
    unknown = ((v <= 0) & (k[:, 0] == 0) & (k[:, 1] == 0)) | ~np.all(np.isfinite(k), axis=1)
    uv[unknown] = np.nan
    return uv, (v > 0) & ~unknown


def _inside(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    """(21,) bool: (21, 2) px within the image [-0.5, W-0.5] x [-0.5, H-0.5] (NaN: False)."""
    with np.errstate(invalid="ignore"):
        return (uv[:, 0] >= -0.5) & (uv[:, 0] <= width - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] <= height - 0.5)


@dataclass
class CocoFile:
    """A COCO keypoint hand file, read and checked whole (:func:`read_coco`).

    images: the image entries in file order, each ``{"id", "file_name", "width",
        "height"}`` (a size 0 where the file gives none).
    hands: per image, its hand annotations in file order, each ``(crowd, uv, labelled)``:
        ``crowd`` True for an ``iscrowd`` annotation (then ``uv``, ``labelled`` are None),
        else (21, 2) float64 gthd px (NaN where unknown) and (21,) bool, in our joint order.
    other_category: indices of the images annotated with a category other than a hand.
    order: the joint order read ("coco" or "rhd").
    """

    path: Path
    images: list[dict]
    hands: list[list[tuple]]
    other_category: set[int]
    order: str


def read_coco(annotations_json: str | Path, joint_order: str = "auto") -> CocoFile:
    """Read a COCO keypoint hand file and check every entry, touching no image.

    Args:
        annotations_json: the file. joint_order: "coco", "rhd" or "auto" (the module
            docstring).

    Returns:
        :class:`CocoFile`.

    Raises:
        FormatError (a ValueError), one line naming the file and the entry: not JSON, not
        COCO hand keypoints, or an entry of the wrong shape or type. ValueError: a bad
        ``joint_order``.
    """
    path = Path(annotations_json)
    if joint_order not in JOINT_ORDERS:
        raise ValueError(f"joint_order must be one of {', '.join(JOINT_ORDERS)}, got {joint_order!r}")
    doc = _load(path)
    cat_ids, names = _hand_categories(path, doc)
    order = _detect_order(doc, names) if joint_order == "auto" else joint_order

    images, by_id = [], {}
    for k, im in enumerate(doc["images"]):
        if not isinstance(im, dict) or not _is_id(im.get("id")) or not isinstance(im.get("file_name"), str):
            raise FormatError(f"{path}: image entry {k} lacks an 'id' or a 'file_name'")
        if im["id"] in by_id:
            raise FormatError(f"{path}: image id {_show(im['id'])} appears twice")
        by_id[im["id"]] = k
        images.append({"id": im["id"], "file_name": im["file_name"], "width": _size(path, k, im, "width"), "height": _size(path, k, im, "height")})
    hands: list[list[tuple]] = [[] for _ in images]
    other_category = set()
    for a in doc["annotations"]:
        if not isinstance(a, dict) or not _is_id(a.get("image_id")):
            raise FormatError(f"{path}: an annotation lacks an 'image_id'")
        if a["image_id"] not in by_id:
            raise FormatError(f"{path}: annotation {_show(a.get('id'))} refers to image {_show(a['image_id'])}, which is not in 'images'")
        k = by_id[a["image_id"]]
        if cat_ids is not None and not (_is_id(a.get("category_id")) and a["category_id"] in cat_ids):
            other_category.add(k)
            continue
        if "keypoints" not in a:
            raise FormatError(f"{path}: annotation {_show(a.get('id'))} has no 'keypoints': not a COCO keypoint file")
        if a.get("iscrowd"):
            hands[k].append((True, None, None))  # skipped on import, whatever its keypoints
        else:
            hands[k].append((False, *_keypoints(path, a, order)))
    return CocoFile(path, images, hands, other_category, order)


def _size(path: Path, k: int, im: dict, key: str) -> int:
    """An image entry's width or height: a whole number of pixels (0 when not given)."""
    v = im.get(key)
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 2**31 or v != int(v):
        raise FormatError(f"{path}: image entry {k}: '{key}' is {_show(v)}, not a size in pixels")
    return int(v)


@dataclass
class _Image:
    """What one image of the file gives: its samples (none where it is left out), and
    the annotations left out on the way."""

    samples: list[Sample] = field(default_factory=list)
    crowd: int = 0
    few_keypoints: int = 0
    bad: bool = False  # missing, unreadable or not of the size the file says


def _image_samples(k: int, coco: CocoFile, paths: list[Path], min_visible: int, opts: dict) -> _Image:
    """Image ``k``'s samples: one per hand annotation kept, or a NoHand sample for an
    image without annotation; read, decoded and made (in a worker)."""
    im, anns, got = coco.images[k], coco.hands[k], _Image()
    if k in coco.other_category and not anns:
        return got  # annotated, but not with a hand: not known to be empty
    labelled = []
    for crowd, uv, vis in anns:
        if crowd:
            got.crowd += 1
        elif vis.sum() < min_visible:  # cheap first look, before reading the image
            got.few_keypoints += 1
        else:
            labelled.append((uv, vis))
    if anns and not labelled:
        return got
    try:
        data = read_regular_file(paths[k])
    except OSError:  # missing (checked to stay inside the folder), or unreadable
        data = b""
    img, problem = decode_checked(data) if data else (None, "empty")  # a half-garbled JPEG is not an image to label
    width, height = im["width"], im["height"]
    if img is None or problem is not None or (width and height and (img.shape[1], img.shape[0]) != (width, height)):
        got.bad = True
        return got
    h, w = img.shape[:2]
    kept = []
    for uv, vis in labelled:
        vis = vis & _inside(uv, w, h)  # ours: visible means inside the image too
        if vis.sum() < min_visible:
            got.few_keypoints += 1
        else:
            kept.append((uv, vis))
    if labelled and not kept:
        return got
    if not data.startswith(b"\xff\xd8\xff"):
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise RuntimeError(f"{paths[k]}: encoding as JPEG failed")
        data = enc.tobytes()
    meta = {"session": 0, "subject": 0, "frame_index": k}
    if not kept:
        got.samples.append(make_sample(img, data, None, None, name=im["file_name"], **meta))
    for j, (uv, vis) in enumerate(kept):
        name = im["file_name"] if len(kept) == 1 else f"{im['file_name']}#{j}"
        got.samples.append(make_sample(img, data, uv, vis, name=name, **opts, **meta))
    return got


def import_coco(
    annotations_json: str | Path,
    images_dir: str | Path,
    out_h5: str | Path,
    *,
    split: str | None = None,
    seed: int = 0,
    joint_order: str = "auto",
    min_visible: int = 3,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    attrs: dict | None = None,
) -> DatasetReport:
    """Import a COCO keypoint hand file (mmpose's OneHand10K, FreiHAND, Panoptic, RHD
    layout) into a new gthd dataset.

    One sample per hand annotation (made with :func:`make_sample`), each carrying its
    image's frame: the file's bytes when it is a JPEG, re-encoded as a quality-95 JPEG
    otherwise. Images with no annotation become NoHand samples.

    Every entry of the file and every image path is checked before anything is written
    (:func:`read_coco`, :func:`~gthd.fileio.contained_path`): a ``file_name`` that is
    absolute, leads outside ``images_dir`` (``../``, a symlink out), or names something
    other than a regular file of at most 256 MB is refused, naming the entry. A missing
    or undecodable image is skipped and counted.

    Args:
        annotations_json: the COCO file. images_dir: the folder its ``file_name``s are in.
        out_h5: the dataset to write; refused if it exists, unless ``force``.
        split: None (all train), "random" (75/10/15, the samples of one image kept
            together), or one of train/val/test for all.
        seed: of the random split.
        joint_order: "coco" (mmpose hand order = ours), "rhd" (RHD's native order), or
            "auto" (see the module docstring).
        min_visible: annotations with fewer visible keypoints are skipped and counted.
        progress: called with (done, total) images.
        attrs: more root attributes (``command``...).

    Returns:
        The :class:`~gthd.dataset.writer.DatasetReport`: ``left_out`` counts the
        annotations with too few visible keypoints (``few_keypoints``) and crowd ones
        (``crowd``), and the images missing, unreadable or of another size than the file
        says (``bad_image``: named in one warning; their annotations are left out);
        ``details`` holds ``images`` (the images the samples come from) and ``joint_order``.

    Raises:
        FormatError (a ValueError): the file is not JSON, not COCO hand keypoints, or
        names an image outside ``images_dir``. ValueError: a bad option, or no usable
        sample. FileExistsError: ``out_h5`` exists.
    """
    ann_path, img_dir = Path(annotations_json), Path(images_dir)
    if split not in (None, "random") + SPLITS:
        raise ValueError(f"split must be None, 'random' or one of {', '.join(SPLITS)}, got {split!r}")
    if min_visible < 1:
        raise ValueError(f"min_visible must be at least 1, got {min_visible}")
    rule = SplitRule(by="random", group="frame_index", seed=seed) if split == "random" else SplitRule(by="none", seed=seed, only=split or "train")
    reasons = {
        "few_keypoints": f"hands with fewer than {min_visible} visible keypoints",
        "crowd": "crowd annotations",
        "bad_image": "images missing, unreadable or not of the size the file says",
    }
    output = DatasetOutput(out_h5, kind="coco", origin=str(ann_path), reasons=reasons, split=rule, force=force, progress=progress)
    # every entry is checked, and every image path, before anything is written
    coco = read_coco(ann_path, joint_order)
    if not img_dir.is_dir():
        raise FileNotFoundError(f"{img_dir}: no such images folder")
    paths = [contained_path(img_dir, im["file_name"], f"{ann_path}: image entry {k} (id {_show(im['id'])})") for k, im in enumerate(coco.images)]
    source = {"annotations": str(ann_path), "images": str(img_dir), "joint_order": coco.order, "pixel_convention": PIXEL_CONVENTION}
    attrs = {"sessions": [{"id": ann_path.stem, "path": str(ann_path)}], "subjects": ["unknown"], **(attrs or {})}
    images = 0
    with output.open(source=source, attrs=attrs):
        work = partial(_image_samples, coco=coco, paths=paths, min_visible=min_visible, opts=output.sample_options)
        for k, got in output.results(range(len(coco.images)), work):
            output.leave_out("crowd", count=got.crowd)
            output.leave_out("few_keypoints", count=got.few_keypoints)
            if got.bad:
                output.leave_out("bad_image", example=coco.images[k]["file_name"])
            for sample in got.samples:
                output.add(sample)
            images += bool(got.samples)
        return output.finish(details={"images": images, "joint_order": coco.order}, notes=[f"from {images} images, joint order {coco.order}"])
