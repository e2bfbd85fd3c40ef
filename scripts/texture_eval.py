"""The texture benchmark's evaluation, shared by the reference detectors (texture_local_stats.py,
texture_features.py, texture_ceiling.py): every test image of a category scored by a detector's
anomaly map, then image AUROC (score = the map's maximum) and pixel AUROC (every pixel against
the ground-truth masks), over all defects and per defect kind against the good images; and the
region-shift check (normal test crops against held-out training crops)."""
import glob
import os

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

DEFECTS = ["spot", "scratch", "foreign"]


def load(path):
    """A grey image as float64 in [0, 1]."""
    return np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255.0


def test_paths(category, kind):
    return sorted(glob.glob(os.path.join(category, "test", kind, "*.png")))


def test_images(category):
    """(image, mask as bools, kind, index within its kind) of every test image, good ones first."""
    for kind in ["good"] + DEFECTS:
        for i, p in enumerate(test_paths(category, kind)):
            im = load(p)
            if kind == "good":
                gt = np.zeros(im.shape, bool)
            else:
                name = os.path.basename(p).replace(".png", "_mask.png")
                gt = load(os.path.join(category, "ground_truth", kind, name)) > 0.5
            yield im, gt, kind, i


def evaluate(category, anomaly_map, title):
    """Prints `title`'s AUROCs on `category` (a folder in the MVTec layout); `anomaly_map(image)`
    returns the image's anomaly map, the shape of the image."""
    labels, scores, kinds, maps, masks = [], [], [], [], []
    for im, gt, kind, _ in test_images(category):
        m = anomaly_map(im)
        labels.append(kind != "good")
        scores.append(m.max())
        kinds.append(kind)
        maps.append(m.ravel())
        masks.append(gt.ravel())
    labels, scores, kinds = np.array(labels), np.array(scores), np.array(kinds)

    def aurocs(sel):
        idx = np.where(sel)[0]
        image = roc_auc_score(labels[idx], scores[idx])
        pixel = roc_auc_score(np.concatenate([masks[i] for i in idx]),
                              np.concatenate([maps[i] for i in idx]))
        return image, pixel

    name = os.path.basename(os.path.normpath(category))
    image, pixel = aurocs(np.ones(len(labels), bool))
    print(f"{name}: {title}: image AUROC {image:.4f}, pixel AUROC {pixel:.4f}", flush=True)
    for d in DEFECTS:
        image, pixel = aurocs((kinds == "good") | (kinds == d))
        print(f"  good against {d}: image AUROC {image:.3f}, pixel AUROC {pixel:.3f}", flush=True)


def region_shift(category, held_out, score):
    """Prints how far the normal test crops are from `held_out` training crops (paths) by
    `score(path)` (higher = more anomalous): AUROC 0.5 means no shift; and the defective crops'
    image AUROC against either set of normal crops."""
    def auroc(neg, pos):
        return roc_auc_score([0] * len(neg) + [1] * len(pos), neg + pos)

    def scores(kind):
        return [score(p) for p in test_paths(category, kind)]

    held, good = [score(p) for p in held_out], scores("good")
    bad = {d: scores(d) for d in DEFECTS}
    name = os.path.basename(os.path.normpath(category))
    print(f"{name}: region shift: AUROC of normal test crops against held-out training crops "
          f"{auroc(held, good):.3f} (0.5 = none)")
    print(f"  image AUROC of defective crops against normal test crops "
          f"{auroc(good, sum(bad.values(), [])):.3f}, against held-out training crops "
          f"{auroc(held, sum(bad.values(), [])):.3f}")
    for d in DEFECTS:
        print(f"    {d}: {auroc(good, bad[d]):.3f} / {auroc(held, bad[d]):.3f}", flush=True)
