"""The texture benchmark's evaluation, shared by the reference detectors (texture_local_stats.py,
texture_features.py): every test image of a category scored by a detector's anomaly map, then
image AUROC (score = the map's maximum) and pixel AUROC (every pixel against the ground-truth
masks), over all defects and per defect kind against the good images."""
import glob
import os

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

DEFECTS = ["spot", "scratch", "foreign"]


def load(path):
    """A grey image as float64 in [0, 1]."""
    return np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255.0


def evaluate(category, anomaly_map, title):
    """Prints `title`'s AUROCs on `category` (a folder in the MVTec layout); `anomaly_map(image)`
    returns the image's anomaly map, the shape of the image."""
    labels, scores, kinds, maps, masks = [], [], [], [], []
    for kind in ["good"] + DEFECTS:
        for p in sorted(glob.glob(os.path.join(category, "test", kind, "*.png"))):
            im = load(p)
            m = anomaly_map(im)
            if kind == "good":
                gt = np.zeros(im.shape, bool)
            else:
                name = os.path.basename(p).replace(".png", "_mask.png")
                gt = load(os.path.join(category, "ground_truth", kind, name)) > 0.5
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
