//! lamp's metrics against scikit-learn on a fixture of random scores with many ties
//! (tests/fixtures/sklearn_metrics.json, written by scripts/sklearn_fixture.py): AUROC, F1-max
//! with its threshold, average precision and TPR at FPR 1% and 5% must agree to 1e-6.

use lamp::detect::metrics;

#[test]
fn metrics_agree_with_scikit_learn() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sklearn_metrics.json"
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for (i, c) in cases.iter().enumerate() {
        let scores: Vec<f32> = c["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let labels: Vec<bool> = c["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap() == 1)
            .collect();
        let auroc = metrics::auroc(&scores, &labels).unwrap();
        let want = c["auroc"].as_f64().unwrap();
        assert!(
            (auroc - want).abs() <= 1e-6,
            "case {i}: AUROC {auroc} vs scikit-learn {want}"
        );
        let (f1, t) = metrics::f1_max(&scores, &labels).unwrap();
        let (want_f1, want_t) = (
            c["f1_max"].as_f64().unwrap(),
            c["f1_threshold"].as_f64().unwrap(),
        );
        assert!(
            (f1 - want_f1).abs() <= 1e-6,
            "case {i}: F1-max {f1} vs scikit-learn {want_f1}"
        );
        assert!(
            (t as f64 - want_t).abs() <= 1e-6,
            "case {i}: F1-max threshold {t} vs {want_t}"
        );
        let ap = metrics::average_precision(&scores, &labels).unwrap();
        let want = c["ap"].as_f64().unwrap();
        assert!(
            (ap - want).abs() <= 1e-6,
            "case {i}: AP {ap} vs scikit-learn {want}"
        );
        for (key, f) in [("tpr_fpr_1pct", 0.01), ("tpr_fpr_5pct", 0.05)] {
            let got = metrics::tpr_at_fpr(&scores, &labels, f).unwrap();
            let want = c[key].as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-6,
                "case {i}: TPR at FPR {f} {got} vs scikit-learn {want}"
            );
        }
    }
}
