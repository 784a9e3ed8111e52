"""The COCO door: import of mmpose's COCO-style hand files (checked on real samples when
../shared/data/realhands is there), export, and the export -> import round trip."""

import json
import logging
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from gthd.dataset import coco
from gthd.dataset.samples import make_sample
from gthd.dataset.schema import SPLITS, DatasetWriter, open_dataset
from gthd.fileio import FormatError
from gthd.hand import EDGES, FINGER_BASES, FINGER_TIPS, JOINT_NAMES

REALHANDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "realhands"
COCO_STYLE = ("onehand10k", "freihand", "panoptic")


def _realhands(name: str) -> tuple[Path, dict]:
    folder = REALHANDS / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (reference data of the shared workspace)")
    path = folder / f"test_{name}.json"
    return path, json.loads(path.read_text())


def _read(path) -> dict:
    with open_dataset(path) as f:
        out = {k: f[g][...] for k, g in {
            "keypoints": "labels/keypoints", "visible": "labels/visible", "box": "labels/box", "has_hand": "labels/has_hand",
            "split": "meta/split", "image_size": "meta/image_size", "frame_index": "meta/frame_index",
        }.items()}  # fmt: skip
        out["name"] = [v.decode() for v in f["meta/name"][...]]
        out["frame_jpeg"] = [f["images/frame_jpeg"][i].tobytes() for i in range(len(out["name"]))]
        out["crop_jpeg"] = [f["images/crop_jpeg"][i].tobytes() for i in range(len(out["name"]))]
        out["attrs"] = dict(f.attrs)
    return out


def _mean_base_and_tip_distance(kp: np.ndarray) -> tuple[float, float]:
    """Mean distance from the wrist to the finger bases and to the finger tips (known ones)."""
    d = np.linalg.norm(kp - kp[0], axis=1)
    return float(np.nanmean(d[list(FINGER_BASES)])), float(np.nanmean(d[list(FINGER_TIPS)]))


# ------------------------------------------------------------------------- the tables
def test_joint_tables():
    assert len(coco.MMPOSE_HAND_NAMES) == len(JOINT_NAMES) == 21
    assert coco.MMPOSE_HAND_NAMES[:5] == ("wrist", "thumb1", "thumb2", "thumb3", "thumb4")
    assert coco.MMPOSE_HAND_NAMES[5] == "forefinger1" and coco.MMPOSE_HAND_NAMES[20] == "pinky_finger4"
    # RHD: each finger tip first; a permutation keeping the wrist
    assert sorted(coco.RHD_TO_OURS) == list(range(21)) and coco.RHD_TO_OURS[0] == 0
    assert JOINT_NAMES[coco.RHD_TO_OURS[1]] == "THUMB_TIP" and JOINT_NAMES[coco.RHD_TO_OURS[4]] == "THUMB_CMC"
    assert JOINT_NAMES[coco.RHD_TO_OURS[5]] == "INDEX_TIP" and JOINT_NAMES[coco.RHD_TO_OURS[20]] == "PINKY_MCP"
    assert coco.RHD_NAMES[:5] == ("wrist", "thumb4", "thumb3", "thumb2", "thumb1")
    sk = coco.CATEGORY["skeleton"]
    assert len(sk) == len(EDGES) and min(map(min, sk)) == 1 and max(map(max, sk)) == 21


# ------------------------------------------------------------------- real COCO files
@pytest.mark.parametrize("name", COCO_STYLE)
def test_import_realhands(tmp_path, name):
    ann_path, doc = _realhands(name)
    assert doc["categories"][0]["keypoints"] == list(coco.MMPOSE_HAND_NAMES)  # the order we map as ours
    out = tmp_path / f"{name}.h5"
    report = coco.import_coco(ann_path, ann_path.parent, out)
    images = {im["id"]: im for im in doc["images"]}
    anns = [a for a in doc["annotations"] if sum(np.asarray(a["keypoints"]).reshape(21, 3)[:, 2] > 0) >= 3]
    assert report.samples == report.hand == len(anns) and report.left_out["bad_image"] == 0
    assert report.details["joint_order"] == "coco" and report.splits["train"] == len(anns)
    d = _read(out)
    assert len(d["name"]) == len(anns) and d["has_hand"].all() and (d["split"] == 0).all()
    for i, a in enumerate(anns):  # the file has one annotation per image, in order
        im = images[a["image_id"]]
        k = np.asarray(a["keypoints"], dtype=np.float64).reshape(21, 3)
        known = k[:, 2] > 0
        assert d["name"][i] == im["file_name"]
        assert tuple(d["image_size"][i]) == (im["width"], im["height"])
        np.testing.assert_array_equal(d["visible"][i], known)
        np.testing.assert_allclose(d["keypoints"][i][known], k[known, :2] - 0.5, atol=1e-4)  # COCO corner -> pixel centre
        assert np.isnan(d["keypoints"][i][~known]).all()
        x0, y0, x1, y1 = d["box"][i]
        kp = d["keypoints"][i][known]
        assert (kp[:, 0] >= x0 - 1e-4).all() and (kp[:, 0] <= x1 + 1e-4).all()
        assert (kp[:, 1] >= y0 - 1e-4).all() and (kp[:, 1] <= y1 + 1e-4).all()
        assert d["frame_jpeg"][i] == (ann_path.parent / im["file_name"]).read_bytes()  # a JPEG: stored as it is
        crop = cv2.imdecode(np.frombuffer(d["crop_jpeg"][i], np.uint8), cv2.IMREAD_COLOR)
        assert crop is not None and crop.shape == (128, 128, 3)
        if known.all():  # our order: the finger bases sit nearer the wrist than the tips
            base, tip = _mean_base_and_tip_distance(d["keypoints"][i])
            assert base < tip


def test_import_realhands_rhd_is_mapped_from_its_own_order(tmp_path):
    ann_path, doc = _realhands("rhd")
    report = coco.import_coco(ann_path, ann_path.parent, tmp_path / "rhd.h5", split="test")
    assert report.details["joint_order"] == "rhd" and report.samples == len(doc["annotations"]) == 3
    d = _read(tmp_path / "rhd.h5")
    assert (d["split"] == 2).all()
    for i, a in enumerate(doc["annotations"]):
        k = np.asarray(a["keypoints"], dtype=np.float64)  # (21, 3), RHD order
        for rhd, ours in enumerate(coco.RHD_TO_OURS):
            np.testing.assert_allclose(d["keypoints"][i][ours], k[rhd, :2] - 0.5, atol=1e-4)
        base, tip = _mean_base_and_tip_distance(d["keypoints"][i])
        assert base < tip
        # a PNG frame is stored re-encoded as a JPEG of the same size
        assert d["frame_jpeg"][i][:3] == b"\xff\xd8\xff"
        assert cv2.imdecode(np.frombuffer(d["frame_jpeg"][i], np.uint8), cv2.IMREAD_COLOR).shape == (320, 320, 3)
    # read as if in our order, the same file puts the tips nearest the wrist
    coco.import_coco(ann_path, ann_path.parent, tmp_path / "raw.h5", joint_order="coco")
    raw = _read(tmp_path / "raw.h5")
    for kp in raw["keypoints"]:
        base, tip = _mean_base_and_tip_distance(kp)
        assert base > tip


# ------------------------------------------------------------ a synthetic gthd dataset
def _frame(rng, w=160, h=120) -> np.ndarray:
    img = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


def _jpeg(img) -> bytes:
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def _hand(rng, w=160, h=120) -> tuple[np.ndarray, np.ndarray]:
    kp = rng.uniform([10, 10], [w - 10, h - 10], (21, 2))
    vis = rng.random(21) > 0.2
    vis[:3] = True
    return kp, vis


@pytest.fixture
def synthetic(tmp_path):
    """A small gthd dataset: hands in every split, NoHand frames, a frame with two hands,
    a keypoint off the image (not visible), names with subfolders."""
    rng = np.random.default_rng(3)
    path = tmp_path / "synthetic.h5"
    with DatasetWriter(path) as w:
        for i in range(9):
            img = _frame(rng)
            kp, vis = _hand(rng)
            if i == 0:
                kp[20], vis[20] = (-30.0, 50.0), False
            w.add(make_sample(img, _jpeg(img), kp, vis, name=f"sessA/{i:06d}", frame_index=i, split=i % 3))
        for i in range(9, 12):  # NoHand
            img = _frame(rng)
            w.add(make_sample(img, _jpeg(img), None, None, name=f"sessA/{i:06d}", frame_index=i, split=i % 3))
        img = _frame(rng)
        data = _jpeg(img)
        for k in range(2):  # one frame, two hands
            kp, vis = _hand(rng)
            w.add(make_sample(img, data, kp, vis, name=f"two.jpg#{k}", frame_index=12, split=0))
    return path


def _check_coco(doc: dict, images_dir: Path) -> None:
    """The structure of a COCO keypoint file, as a COCO reader would rely on it."""
    assert set(doc) >= {"images", "annotations", "categories"}
    ids = [im["id"] for im in doc["images"]]
    assert len(ids) == len(set(ids))
    for im in doc["images"]:
        assert set(im) >= {"id", "file_name", "width", "height"}
        p = images_dir / im["file_name"]
        assert p.is_file() and cv2.imread(str(p)).shape[:2] == (im["height"], im["width"])
    ann_ids = [a["id"] for a in doc["annotations"]]
    assert len(ann_ids) == len(set(ann_ids))
    (cat,) = doc["categories"]
    assert cat["id"] == 1 and cat["name"] == "hand" and len(cat["keypoints"]) == 21
    assert all(1 <= i <= 21 for e in cat["skeleton"] for i in e)
    for a in doc["annotations"]:
        assert a["image_id"] in ids and a["category_id"] == 1 and a["iscrowd"] == 0
        k = np.asarray(a["keypoints"], dtype=np.float64)
        assert k.shape == (63,)
        k = k.reshape(21, 3)
        assert set(k[:, 2]) <= {0, 2} and a["num_keypoints"] == int((k[:, 2] > 0).sum())
        assert (k[k[:, 2] == 0, :2] == 0).all()
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 0 and a["area"] == pytest.approx(w * h, rel=1e-4)
        v = k[k[:, 2] > 0, :2]
        assert (v[:, 0] >= x - 1e-3).all() and (v[:, 0] <= x + w + 1e-3).all()
        assert (v[:, 1] >= y - 1e-3).all() and (v[:, 1] <= y + h + 1e-3).all()


def test_export_layout_and_pixel_convention(synthetic, tmp_path):
    out = tmp_path / "export"
    report = coco.export_coco(synthetic, out)
    src = _read(synthetic)
    assert report["annotations"] == 11 and report["nohand"] == 3 and report["images"] == 13  # 9 + 3 NoHand + one with two hands
    assert {s: v["annotations"] for s, v in report["splits"].items()} == {"train": 5, "val": 3, "test": 3}
    by_file = {}
    for s in SPLITS:
        doc = json.loads((out / "annotations" / f"{s}.json").read_text())
        _check_coco(doc, out / "images")
        assert len(doc["images"]) == report["splits"][s]["images"]
        for im in doc["images"]:
            by_file[im["file_name"]] = (im, [a for a in doc["annotations"] if a["image_id"] == im["id"]])
    assert "sessA/000000.jpg" in by_file and "two.jpg" in by_file and len(by_file["two.jpg"][1]) == 2
    for i, name in enumerate(src["name"]):
        file_name = name.split("#")[0].removesuffix(".jpg") + ".jpg"
        assert (out / "images" / file_name).read_bytes() == src["frame_jpeg"][i]  # the stored bytes, as they are
        im, anns = by_file[file_name]
        if not src["has_hand"][i]:
            assert anns == []
            continue
        a = anns[int(name.split("#")[1])] if "#" in name else anns[0]
        k = np.asarray(a["keypoints"]).reshape(21, 3)
        vis = src["visible"][i]
        np.testing.assert_array_equal(k[:, 2] == 2, vis)
        np.testing.assert_allclose(k[vis, :2], src["keypoints"][i][vis] + 0.5, atol=1e-4)  # pixel centre -> COCO corner
        x0, y0, x1, y1 = src["box"][i]
        np.testing.assert_allclose(a["bbox"], [x0 + 0.5, y0 + 0.5, x1 - x0, y1 - y0], atol=1e-4)


def test_export_import_round_trip(synthetic, tmp_path):
    out = tmp_path / "export"
    coco.export_coco(synthetic, out)
    src = _read(synthetic)
    back = {}
    for k, s in enumerate(SPLITS):
        h5 = tmp_path / f"{s}.h5"
        report = coco.import_coco(out / "annotations" / f"{s}.json", out / "images", h5, split=s)
        assert report.left_out["bad_image"] == 0 and report.details["joint_order"] == "coco"
        d = _read(h5)
        assert (d["split"] == k).all()
        for i, name in enumerate(d["name"]):
            base, _, hand = name.partition("#")
            back[base.removesuffix(".jpg") + ("#" + hand if hand else "")] = {
                f: d[f][i] for f in ("keypoints", "visible", "box", "has_hand", "frame_jpeg", "image_size")
            }
    assert len(back) == len(src["name"])
    for i, name in enumerate(src["name"]):
        b = back[name.replace(".jpg#", "#")]
        assert b["has_hand"] == src["has_hand"][i] and b["frame_jpeg"] == src["frame_jpeg"][i]
        assert tuple(b["image_size"]) == tuple(src["image_size"][i])
        if not src["has_hand"][i]:
            continue
        vis = src["visible"][i]
        np.testing.assert_array_equal(b["visible"], vis)
        np.testing.assert_allclose(b["keypoints"][vis], src["keypoints"][i][vis], atol=1e-3)
        assert np.isnan(b["keypoints"][~vis]).all()  # COCO keeps no coordinates for them
        np.testing.assert_allclose(b["box"], src["box"][i], atol=1e-3)


def test_export_refuses_a_non_empty_folder(synthetic, tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        coco.export_coco(synthetic, out)
    report = coco.export_coco(synthetic, out, splits=("val",), force=True)
    assert (out / "notes.txt").read_text() == "mine" and report["splits"] == {"val": {"images": 4, "annotations": 3}}
    assert [p.name for p in (out / "annotations").iterdir()] == ["val.json"]
    with pytest.raises(ValueError, match="splits must be among"):
        coco.export_coco(synthetic, tmp_path / "other", splits=("holdout",))
    with pytest.raises(FormatError):
        coco.export_coco(tmp_path / "missing.h5", tmp_path / "other")


def test_an_export_that_fails_midway_leaves_nothing(synthetic, tmp_path):
    """Stopped after a few images (a full disk, Ctrl-C): no export folder, no staging
    folder, and a forced export over an existing one leaves that one as it was."""

    def stop_after_3(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        coco.export_coco(synthetic, tmp_path / "export", progress=stop_after_3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic.h5"]
    old = tmp_path / "old"
    coco.export_coco(synthetic, old, splits=("val",))
    before = {p: p.read_bytes() for p in old.rglob("*") if p.is_file()}
    with pytest.raises(KeyboardInterrupt):
        coco.export_coco(synthetic, old, force=True, progress=stop_after_3)
    assert {p: p.read_bytes() for p in old.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old", "synthetic.h5"]


# ------------------------------------------------------------------ hand-made files
def _write_coco(folder: Path, images: list[tuple[str, tuple[int, int]]], anns: list[dict], **extra) -> Path:
    """Images (name, (w, h)) written as files, and a COCO file referencing them."""
    rng = np.random.default_rng(0)
    doc = {"images": [], "annotations": anns, "categories": [coco.CATEGORY], **extra}
    for k, (name, (w, h)) in enumerate(images, 1):
        cv2.imwrite(str(folder / name), _frame(rng, w, h))
        doc["images"].append({"id": k, "file_name": name, "width": w, "height": h})
    path = folder / "ann.json"
    path.write_text(json.dumps(doc))
    return path


def _ann(ann_id, image_id, kp_coco, v=None) -> dict:
    kp = np.asarray(kp_coco, dtype=np.float64)
    v = np.ones(21) if v is None else np.asarray(v)
    flat = np.column_stack([kp * (v[:, None] > 0), v]).reshape(-1)
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "keypoints": flat.tolist(), "iscrowd": 0}


def test_import_pixel_convention_png_several_hands_and_nohand(tmp_path):
    kp = np.column_stack([np.linspace(10, 50, 21), np.linspace(20, 40, 21)])  # COCO px
    few = np.zeros(21)
    few[:2] = 1
    path = _write_coco(tmp_path, [("a.png", (80, 60)), ("b.jpg", (80, 60)), ("c.jpg", (80, 60)), ("d.jpg", (80, 60))], [
        _ann(1, 1, kp), _ann(2, 1, kp + 5), _ann(3, 2, kp, few),
    ])  # fmt: skip  # c.jpg, d.jpg: no annotation (NoHand)
    report = coco.import_coco(path, tmp_path, tmp_path / "out.h5", split="random", seed=1)
    assert report.hand == 2 and report.nohand == 2 and report.left_out["few_keypoints"] == 1
    d = _read(tmp_path / "out.h5")
    assert d["name"] == ["a.png#0", "a.png#1", "c.jpg", "d.jpg"]  # b.jpg: its one hand skipped, not NoHand
    np.testing.assert_allclose(d["keypoints"][0], kp - 0.5, atol=1e-6)
    np.testing.assert_allclose(d["keypoints"][1], kp + 4.5, atol=1e-6)
    assert d["frame_jpeg"][0] == d["frame_jpeg"][1] and d["frame_jpeg"][0][:3] == b"\xff\xd8\xff"  # the PNG, as JPEG
    assert d["split"][0] == d["split"][1]  # one image's samples stay in one split
    assert list(d["has_hand"]) == [True, True, False, False] and (d["frame_index"] == [0, 0, 2, 3]).all()
    # and the two hands come back as one image with two annotations
    report = coco.export_coco(tmp_path / "out.h5", tmp_path / "exp")
    assert report["images"] == 3 and report["annotations"] == 2


def test_import_keypoints_off_the_image_are_not_visible(tmp_path):
    kp = np.column_stack([np.linspace(10, 50, 21), np.linspace(20, 40, 21)])
    kp[20] = (95.0, 30.0)  # beyond the 80-pixel width
    path = _write_coco(tmp_path, [("a.jpg", (80, 60))], [_ann(1, 1, kp)])
    coco.import_coco(path, tmp_path, tmp_path / "out.h5")
    d = _read(tmp_path / "out.h5")
    assert not d["visible"][0][20] and d["visible"][0][:20].all()
    np.testing.assert_allclose(d["keypoints"][0][20], (94.5, 29.5))
    assert d["box"][0][2] <= 79.5


def test_import_skips_missing_and_corrupt_images_with_one_warning(tmp_path, caplog):
    kp = np.column_stack([np.linspace(10, 50, 21), np.linspace(20, 40, 21)])
    path = _write_coco(tmp_path, [("a.jpg", (80, 60)), ("b.jpg", (80, 60)), ("c.jpg", (80, 60)), ("d.jpg", (80, 60))],
                       [_ann(k, k, kp) for k in range(1, 5)])  # fmt: skip
    (tmp_path / "b.jpg").unlink()
    (tmp_path / "c.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    cv2.imwrite(str(tmp_path / "d.jpg"), _frame(np.random.default_rng(1), 40, 30))  # not the size the file says
    with caplog.at_level(logging.WARNING, logger="gthd.dataset"):
        report = coco.import_coco(path, tmp_path, tmp_path / "out.h5")
    assert report.samples == 1 and report.left_out["bad_image"] == 3 and report.examples["bad_image"] == ["b.jpg", "c.jpg", "d.jpg"]
    assert len(report.warnings) == 1 and "b.jpg, c.jpg, d.jpg" in report.warnings[0]
    assert [r.getMessage() for r in caplog.records if r.name.startswith("gthd.dataset")] == list(report.warnings)


def test_import_refuses_what_is_not_coco_hand_keypoints(tmp_path):
    kp = np.column_stack([np.linspace(10, 50, 21), np.linspace(20, 40, 21)])
    good = _write_coco(tmp_path, [("a.jpg", (80, 60))], [_ann(1, 1, kp)])
    doc = json.loads(good.read_text())
    out = tmp_path / "out.h5"

    def bad(text_or_doc, match, cls=FormatError):
        p = tmp_path / "bad.json"
        p.write_text(text_or_doc if isinstance(text_or_doc, str) else json.dumps(text_or_doc))
        with pytest.raises(cls, match=match):
            coco.import_coco(p, tmp_path, out)
        assert not out.exists() and not list(tmp_path.glob(".out.h5.*"))  # nothing half-written

    bad("{not json", "not readable JSON")
    bad([1, 2], "not a COCO keypoint file")
    bad({"images": []}, "not a COCO keypoint file")
    bad({**doc, "categories": [{"id": 1, "name": "person", "keypoints": ["nose"] * 17}]}, "no category with 21 keypoints")
    bad({**doc, "annotations": [{**doc["annotations"][0], "keypoints": [0] * 51}]}, "expected 21 keypoints")
    bad({**doc, "annotations": [{k: v for k, v in doc["annotations"][0].items() if k != "keypoints"}]}, "has no 'keypoints'")
    bad({**doc, "annotations": [{**doc["annotations"][0], "image_id": 99}]}, "not in 'images'")
    bad({**doc, "images": doc["images"] * 2}, "appears twice")
    bad({**doc, "annotations": [{**doc["annotations"][0], "keypoints": [0] * 63}]}, "no usable sample", ValueError)
    with pytest.raises(FormatError, match="no such file"):
        coco.import_coco(tmp_path / "nope.json", tmp_path, out)
    with pytest.raises(ValueError, match="split must be"):
        coco.import_coco(good, tmp_path, out, split="half")
    with pytest.raises(ValueError, match="joint_order"):
        coco.import_coco(good, tmp_path, out, joint_order="lsmv")
    coco.import_coco(good, tmp_path, out)
    with pytest.raises(FileExistsError):
        coco.import_coco(good, tmp_path, out)
    assert coco.import_coco(good, tmp_path, out, force=True).samples == 1
    with h5py.File(out, "r") as f:
        assert json.loads(f.attrs["sources"])[0]["kind"] == "coco"
