#!/usr/bin/env python3
"""Writes tests/fixtures/sklearn_metrics.json: random scores (with many ties) and labels, and
scikit-learn's image AUROC, pixel-style AUROC over a larger set, F1-max (best F1 over the
precision-recall curve) with its threshold, average precision, and the best TPR at FPR <= 1% and
5% (over every ROC point: drop_intermediate=False), so that tests/metrics.rs can compare lamp's
metrics with scikit-learn to 1e-6. Deterministic (seeded). Needs numpy and scikit-learn."""
import json
import os

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

rng = np.random.default_rng(7)
cases = []
for n, levels in [(50, 5), (400, 20), (3000, 1000), (5000, 50)]:
    labels = rng.random(n) < 0.3
    # Anomalies score higher on average; quantised to `levels` values to force ties.
    raw = rng.normal(0, 1, n) + 1.2 * labels
    scores = np.round((raw - raw.min()) / (raw.max() - raw.min()) * (levels - 1)) / (levels - 1)
    scores = scores.astype(np.float32)
    p, r, t = precision_recall_curve(labels, scores)
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-300), 0)
    best = int(np.argmax(f1[:-1]))
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    cases.append({
        "scores": scores.tolist(),
        "labels": labels.astype(int).tolist(),
        "auroc": float(roc_auc_score(labels, scores)),
        "f1_max": float(f1[best]),
        "f1_threshold": float(t[best]),
        "ap": float(average_precision_score(labels, scores)),
        "tpr_fpr_1pct": float(tpr[fpr <= 0.01].max()),
        "tpr_fpr_5pct": float(tpr[fpr <= 0.05].max()),
    })
out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "sklearn_metrics.json")
with open(out, "w") as f:
    json.dump({"generator": "scripts/sklearn_fixture.py", "cases": cases}, f)
print(out)
