"""PyTorch datasets over a dataset file (gthd.dataset.torch_dataset), on a small file
written with make_sample from synthetic frames: a red dot at each keypoint, so the
returned images can be checked against the returned keypoints."""

import pickle

import cv2
import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from gthd.dataset.codec import MultiScaleHeatmapCodec
from gthd.dataset.samples import make_sample
from gthd.dataset.schema import CROP_SIZE, DatasetWriter
from gthd.dataset.torch_dataset import (
    Augment,
    FrameDataset,
    HandDataset,
    scale_points,
    split_mask,
    warp_crop,
)
from gthd.fileio import FormatError
from gthd.hand import EDGES

W, H = 320, 240
N = 30
RED_SIGMA = 1.5  # frame px


def synthetic_frame(rng, hand: bool):
    """A dark blue frame, and for a hand 21 keypoints (a jittered, rotated 5 x 5 grid
    less 4, well apart) each drawn as a red Gaussian dot centred on it, sub-pixel."""
    img = np.empty((H, W, 3), np.float64)
    img[:] = (110, 40, 25)  # BGR
    img += rng.normal(0, 2, img.shape)
    if not hand:
        return np.clip(img, 0, 255).astype(np.uint8), None, None
    spacing = rng.uniform(11, 22)
    grid = np.array([(x, y) for y in range(5) for x in range(5)][:21], np.float64) - 2
    grid = grid * spacing + rng.uniform(-1.5, 1.5, grid.shape)
    a = rng.uniform(0, 2 * np.pi)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = rng.uniform([80, 80], [W - 80, H - 80])
    kp = grid @ R.T + centre  # (21, 2)
    vis = np.ones(21, bool)
    vis[rng.choice(21, rng.integers(0, 3), replace=False)] = False
    yy, xx = np.mgrid[0:H, 0:W]
    for j in np.flatnonzero(vis):
        d2 = (xx - kp[j, 0]) ** 2 + (yy - kp[j, 1]) ** 2
        g = np.exp(-d2 / (2 * RED_SIGMA**2))
        img[..., 2] += 220 * g
        img[..., 0] -= 100 * g
    kp[~vis] = np.nan
    return np.clip(img, 0, 255).astype(np.uint8), kp, vis


def write_dataset(path, n=N, seed=0):
    rng = np.random.default_rng(seed)
    truth = []
    with DatasetWriter(path) as w:
        for i in range(n):
            hand = i % 5 != 4  # every 5th is NoHand
            img, kp, vis = synthetic_frame(rng, hand)
            _, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            s = make_sample(img, enc.tobytes(), kp, vis, split=i % 3, name=f"synthetic/{i}", frame_index=i)
            w.add(s)
            truth.append({"hand": hand, "split": i % 3, "kp": kp, "vis": vis})
    return truth


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "synthetic.h5"
    truth = write_dataset(path)
    return path, truth


def red_centroid(img_rgb: np.ndarray, p: np.ndarray, r: int = 3):
    """Centroid of the red excess in a (2r+1)^2 window around p; img (3, H, W) RGB in [0, 1]."""
    h, w = img_rgb.shape[1:]
    x0, y0 = round(float(p[0])), round(float(p[1]))
    if not (r <= x0 < w - r and r <= y0 < h - r):
        return None
    win = img_rgb[:, y0 - r : y0 + r + 1, x0 - r : x0 + r + 1]
    red = np.clip(win[0] - win[2], 0, None)  # red minus blue: the dot (the background is < -0.3)
    if red.sum() < 0.2:
        return None
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return np.array([x0 + (xx * red).sum() / red.sum(), y0 + (yy * red).sum() / red.sum()])


def check_dots(item, tol=1.0):
    img = item["image"].numpy()
    kp, vis = item["keypoints"].numpy(), item["visible"].numpy()
    n = 0
    for j in np.flatnonzero(vis):
        c = red_centroid(img, kp[j])
        if c is None:  # at the very edge of the crop: no whole window
            continue
        assert np.hypot(*(c - kp[j])) < tol, (item["index"], j, c, kp[j])
        n += 1
    return n


def test_split_mask():
    s = np.array([0, 1, 2, 0, 2], np.uint8)
    assert split_mask(s, "train").tolist() == [True, False, False, True, False]
    assert split_mask(s, 2).tolist() == [False, False, True, False, True]
    assert split_mask(s, ["val", "test"]).tolist() == [False, True, True, False, True]
    assert split_mask(s, None).all()
    with pytest.raises(ValueError, match="split must be one of train, val, test"):
        split_mask(s, "training")


def test_splits_and_has_hand_filtering(dataset_file):
    path, truth = dataset_file
    for name, k in (("train", 0), ("val", 1), ("test", 2)):
        ds = HandDataset(path, split=name)
        want = [i for i, t in enumerate(truth) if t["split"] == k and t["hand"]]
        assert ds.indices.tolist() == want and len(ds) == len(want)
        fr = FrameDataset(path, split=name)
        assert fr.indices.tolist() == [i for i, t in enumerate(truth) if t["split"] == k]
    assert len(HandDataset(path, split=None)) == sum(t["hand"] for t in truth)
    assert len(FrameDataset(path, split=None)) == N


def test_hand_items_dots_and_skeleton(dataset_file):
    path, truth = dataset_file
    ds = HandDataset(path, split=None)
    assert ds._h5 is None  # nothing open until an item is read
    with h5py.File(path, "r") as f:
        kp_file = f["labels/keypoints_crop"][...]
    checked = 0
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {"image", "skeleton", "keypoints", "visible", "index"}
        assert item["image"].shape == (3, 128, 128) and item["image"].dtype == torch.float32
        assert item["skeleton"].shape == (1, 128, 128) and item["skeleton"].dtype == torch.float32
        assert item["keypoints"].shape == (21, 2) and item["visible"].dtype == torch.bool
        assert 0 <= item["image"].min() and item["image"].max() <= 1
        row, vis = item["index"], item["visible"].numpy()
        np.testing.assert_array_equal(vis, truth[row]["vis"])
        np.testing.assert_allclose(item["keypoints"].numpy()[vis], kp_file[row][vis])
        assert np.all(item["keypoints"].numpy()[~vis] == 0)
        # RGB order: the dots are red, i.e. channel 0
        checked += check_dots(item, tol=0.6)
        # the skeleton lights up along each edge and stays dark away from it
        sk = item["skeleton"].numpy()[0]
        kp = item["keypoints"].numpy()
        for a, b in EDGES:
            if vis[a] and vis[b]:
                for t in (0.3, 0.5, 0.7):
                    x, y = np.rint(kp[a] + t * (kp[b] - kp[a])).astype(int)
                    assert sk[y, x] > 0.3, (row, a, b, t)
        assert sk[:2, :2].max() < 0.05 or sk[-2:, -2:].max() < 0.05  # a crop corner is empty
    assert checked > 200


def test_no_skeleton_and_codec_targets(dataset_file):
    path, _ = dataset_file
    codec = MultiScaleHeatmapCodec()
    ds = HandDataset(path, split="train", codec=codec, skeleton=None)
    item = ds[0]
    assert "skeleton" not in item
    assert [tuple(h.shape) for h in item["heatmaps"]] == [(21, 128, 128), (21, 64, 64), (21, 32, 32), (21, 64, 64), (21, 128, 128)]
    vis = item["visible"]
    assert torch.equal(item["weights"], vis.float())
    kp, _ = codec.decode(item["heatmaps"])
    assert (kp - item["keypoints"])[vis].norm(dim=-1).max() < 0.3
    assert all(h[~vis].abs().sum() == 0 for h in item["heatmaps"])
    with pytest.raises(ValueError, match="crop size"):
        HandDataset(path, codec=MultiScaleHeatmapCodec(input_size=256))
    with pytest.raises(ValueError, match="skeleton"):
        HandDataset(path, skeleton="bold")


def test_dataloader_two_workers_lazy_open(dataset_file):
    path, _ = dataset_file
    codec = MultiScaleHeatmapCodec(strides=(1, 4))
    ds = HandDataset(path, split=None, codec=codec)
    ref = {ds[i]["index"]: ds[i] for i in range(len(ds))}  # opens the file in this process
    assert ds._h5 is not None
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=True)
    seen = []
    for batch in loader:
        assert batch["image"].shape[1:] == (3, 128, 128)
        assert isinstance(batch["heatmaps"], list) and batch["heatmaps"][1].shape[1:] == (21, 32, 32)
        kp, _ = codec.decode(batch["heatmaps"])
        v = batch["visible"]
        assert (kp - batch["keypoints"])[v].norm(dim=-1).max() < 1.0
        for b, row in enumerate(batch["index"].tolist()):
            seen.append(row)
            assert torch.equal(batch["image"][b], ref[row]["image"])
            assert torch.equal(batch["keypoints"][b], ref[row]["keypoints"])
    assert sorted(seen) == sorted(ref)
    # pickling (spawn/forkserver workers) leaves the handle behind and reopens
    ds2 = pickle.loads(pickle.dumps(ds))
    assert ds2._h5 is None and torch.equal(ds2[3]["image"], ds[3]["image"])
    ds.close()
    assert ds._h5 is None and torch.equal(ds[3]["image"], ds2[3]["image"])


def test_augmentation_keeps_dots_on_keypoints(dataset_file):
    path, _ = dataset_file
    torch.manual_seed(0)
    ds = HandDataset(path, split=None, augment=True, seed=3)
    plain = HandDataset(path, split=None)
    checked, moved = 0, 0
    for _ in range(3):
        for i in range(len(ds)):
            item = ds[i]
            assert item["image"].shape == (3, 128, 128) and 0 <= item["image"].min() and item["image"].max() <= 1
            checked += check_dots(item, tol=1.0)
            moved += float((item["keypoints"] - plain[i]["keypoints"]).abs().max()) > 1
            kp, vis = item["keypoints"].numpy(), item["visible"].numpy()
            assert np.all((kp[vis] >= -0.5) & (kp[vis] <= 127.5))
    assert checked > 400 and moved > 50
    # a big shift pushes keypoints out: they become invisible (and 0)
    far = HandDataset(path, split=None, augment=Augment(translate=0.6, rotate_deg=0, scale=(1, 1), flip=0), seed=1)
    lost = 0
    for i in range(len(far)):
        item = far[i]
        lost += int((~item["visible"] & plain[i]["visible"]).sum())
        check_dots(item, tol=1.0)
    assert lost > 20


def test_flip_is_an_exact_mirror(dataset_file):
    path, _ = dataset_file
    flip = Augment(rotate_deg=0, scale=(1, 1), translate=0, flip=1.0, brightness=0, contrast=0, saturation=0)
    ds = HandDataset(path, split="val", augment=flip)
    plain = HandDataset(path, split="val")
    for i in range(len(ds)):
        a, b = ds[i], plain[i]
        assert torch.equal(a["image"], b["image"].flip(-1))
        v = b["visible"]
        np.testing.assert_allclose(a["keypoints"][v, 0], 127 - b["keypoints"][v, 0], atol=1e-4)
        np.testing.assert_allclose(a["keypoints"][v, 1], b["keypoints"][v, 1], atol=1e-4)
    # warp_crop: image and points by the same matrix, pixel centres at integers
    img = np.zeros((128, 128, 3), np.uint8)
    img[40, 30] = 255
    M = np.array([[0.0, -1.0, 127.0], [1.0, 0.0, 0.0]])  # a quarter turn
    out, p = warp_crop(img, np.array([[30.0, 40.0]]), M)
    assert np.unravel_index(out[..., 0].argmax(), out.shape[:2]) == (int(p[0, 1]), int(p[0, 0])) == (30, 87)


def test_colour_jitter():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    still = Augment(brightness=0, contrast=0, saturation=0)
    np.testing.assert_array_equal(still.colour(img, rng), img)
    grey = np.repeat(rng.integers(0, 256, (32, 32, 1), dtype=np.uint8), 3, axis=2)
    for _ in range(5):
        out = Augment(brightness=0.4, contrast=0.4, saturation=0.4).colour(grey, rng)
        assert out.shape == grey.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - out[..., :1]).max() <= 1  # grey stays grey
    # brightness alone scales (the same draws: the order, then the factor)
    bright = Augment(brightness=0.5, contrast=0, saturation=0).colour(img, np.random.default_rng(1))
    f = np.random.default_rng(1)
    f.permutation(3)
    factor = f.uniform(0.5, 1.5)
    np.testing.assert_allclose(bright, np.clip(np.rint(img * factor), 0, 255), atol=1)


def test_frame_dataset(dataset_file):
    path, truth = dataset_file
    ds = FrameDataset(path, split=None, size=(256, 192))
    sx, sy = 256 / W, 192 / H
    for i in range(len(ds)):
        item = ds[i]
        t = truth[item["index"]]
        assert item["image"].shape == (3, 192, 256) and item["skeleton"].shape == (1, 192, 256)
        assert item["box"].shape == (4,) and item["keypoints"].shape == (21, 2)
        assert item["has_hand"] == t["hand"]
        sk = item["skeleton"].numpy()[0]
        if not t["hand"]:
            assert sk.max() == 0 and torch.all(item["box"] == 0) and not item["visible"].any()
            continue
        kp, vis = item["keypoints"].numpy(), item["visible"].numpy()
        np.testing.assert_allclose(kp[vis], scale_points(t["kp"][vis], sx, sy), atol=1e-3)
        x0, y0, x1, y1 = item["box"].numpy()
        assert np.all((kp[vis] >= [x0, y0]) & (kp[vis] <= [x1, y1]))
        for j in np.flatnonzero(vis):  # the mask's joint blobs and the red dots sit on the keypoints
            x, y = np.rint(kp[j]).astype(int)
            assert sk[y, x] > 0.5
            c = red_centroid(item["image"].numpy(), kp[j])
            assert c is not None and np.hypot(*(c - kp[j])) < 0.6
    assert scale_points(np.array([[-0.5, -0.5], [W - 0.5, H - 0.5]]), sx, sy).tolist() == [[-0.5, -0.5], [255.5, 191.5]]
    loader = DataLoader(ds, batch_size=5, num_workers=0)
    batch = next(iter(loader))
    assert batch["image"].shape == (5, 3, 192, 256) and batch["has_hand"].dtype == torch.bool


def test_frame_dataset_draws_the_skeleton_at_another_thickness(dataset_file):
    path, truth = dataset_file
    stored = FrameDataset(path, split=None, size=(256, 192))  # built at "thick"
    same = FrameDataset(path, split=None, size=(256, 192), skeleton="thick")
    thin = FrameDataset(path, split=None, size=(256, 192), skeleton="thin")
    hands = [i for i in range(len(stored)) if truth[stored[i]["index"]]["hand"]]
    for i in hands[:4]:
        a, b, c = (d[i]["skeleton"].numpy()[0] for d in (stored, same, thin))
        np.testing.assert_array_equal(a, b)  # the stored thickness: the stored masks
        assert 0 < (c > 0.5).sum() < 0.7 * (a > 0.5).sum()  # thin: fewer pixels ...
        assert np.all(c[a < 0.02] < 0.02)  # ... inside the thick one
        np.testing.assert_array_equal(stored[i]["image"], thin[i]["image"])
    nohand = next(i for i in range(len(stored)) if not truth[stored[i]["index"]]["hand"])
    assert thin[nohand]["skeleton"].max() == 0
    with pytest.raises(ValueError, match="skeleton must be one of"):
        FrameDataset(path, skeleton="bold")


def test_given_skeletons_replace_the_drawn_ones_and_warp_with_the_image(dataset_file, tmp_path):
    from gthd.benchmark.train import load_skeleton_crops, save_skeleton_crops

    path, _ = dataset_file
    plain = HandDataset(path, split=None)
    rows = [int(r) for r in plain.indices]
    # a given "skeleton": a bright square at a known place in every crop
    square = np.zeros((CROP_SIZE, CROP_SIZE), np.float32)
    square[40:60, 70:90] = 1.0
    save_skeleton_crops(tmp_path / "s.npz", {r: square for r in rows})
    given = load_skeleton_crops(tmp_path / "s.npz")
    assert sorted(given) == rows and given[rows[0]].dtype == np.uint8 and given[rows[0]].max() == 255
    ds = HandDataset(path, split=None, skeletons=given)
    item = ds[0]
    np.testing.assert_array_equal(item["skeleton"].numpy()[0], square)  # not augmented: as given
    np.testing.assert_array_equal(item["image"], plain[0]["image"])
    # augmented: the square moves with the image (the same affine as the keypoints)
    aug = HandDataset(path, split=None, skeletons=given, augment=True, seed=5)
    it = aug[1]
    sk = it["skeleton"].numpy()[0]
    ys, xs = np.nonzero(sk > 0.5)
    assert len(xs) > 0
    # the warped square's centre is where the item's keypoints' warp takes the square's centre:
    # recover the warp from the keypoints (least squares over the visible ones)
    src = plain[1]["keypoints"].numpy()[plain[1]["visible"].numpy() & it["visible"].numpy()]
    dst = it["keypoints"].numpy()[plain[1]["visible"].numpy() & it["visible"].numpy()]
    A, *_ = np.linalg.lstsq(np.c_[src, np.ones(len(src))], dst, rcond=None)
    centre = np.array([79.5, 49.5, 1.0]) @ A
    assert np.hypot(xs.mean() - centre[0], ys.mean() - centre[1]) < 1.5
    with pytest.raises(KeyError, match="no skeleton"):
        HandDataset(path, split=None, skeletons={})[0]


def test_unknown_schema_version_is_refused(dataset_file, tmp_path):
    path, _ = dataset_file
    bad = tmp_path / "future.h5"
    bad.write_bytes(path.read_bytes())
    with h5py.File(bad, "a") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(FormatError, match="schema version 99"):
        HandDataset(bad)
    with pytest.raises(FormatError, match="schema version 99"):
        FrameDataset(bad)
    with pytest.raises(FormatError, match="no such dataset file"):
        HandDataset(tmp_path / "missing.h5")
