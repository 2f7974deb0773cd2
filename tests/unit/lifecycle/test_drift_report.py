import datetime
import json

import numpy as np
import pytest
import yaml

from lifecycle.drift import Thresholds
from lifecycle.drift_report import log_files, main, read_records, render, window_bounds, window_reports
from lifecycle.reference import build_reference
from lifecycle.slices import apply_shift
from models.data import load_fashion_mnist

T0 = datetime.datetime(2026, 11, 25, 1, 0, 0)
WINDOW = 300
THRESHOLDS = Thresholds()  # p 0.001, PSI 0.2, min_samples 200


def synthetic_probabilities(labels: np.ndarray, seed: int) -> np.ndarray:
    """Softmax outputs of a plausible classifier: mostly right, with varied confidence."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (len(labels), 10))
    logits[np.arange(len(labels)), labels] += rng.uniform(1.0, 7.0, len(labels))
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    fashion = load_fashion_mnist(allow_download=False)
    x, y = fashion.x_test[:1700], fashion.y_test[:1700]
    reference = build_reference(x[:500], synthetic_probabilities(y[:500], seed=1))
    clean = (x[500:1100], synthetic_probabilities(y[500:1100], seed=2))
    inverted = (apply_shift("inverted", x[1100:1700]), synthetic_probabilities(y[1100:1700], seed=3))
    return reference, clean, inverted


def log_line(i: int, pixels: np.ndarray, probabilities: np.ndarray, version: str = "v1") -> str:
    """One record exactly as BentoML's DefaultMonitor writes it for serving/monitoring.py."""
    return json.dumps({
        "version": version,
        "pixels": np.clip(pixels, 0, 255).astype(np.uint8).ravel().tolist(),
        "mean_intensity": round(float(pixels.mean()), 3),
        "predicted_class": int(probabilities.argmax()),
        "confidence": round(float(probabilities.max()), 5),
        "timestamp": (T0 + datetime.timedelta(milliseconds=10 * i)).isoformat(),
        "request_id": str(i),
        "trace_id": "0",
    })


def write_logs(log_dir, version, images, probabilities):
    """Two workers (even / odd records), each with a rotated .1 file and a live file, and 3 bad lines."""
    data = log_dir / "clothes" / "data"
    data.mkdir(parents=True)
    schema = log_dir / "clothes" / "schema"
    schema.mkdir()
    (schema / "schema.0.log").write_text('{"meta_data": {}, "columns": []}\n')
    for worker in (0, 1):
        lines = [log_line(i, images[i], probabilities[i], version) for i in range(worker, len(images), 2)]
        lines += [log_line(i, images[i], probabilities[i], "other") for i in range(worker, 20, 2)]  # another version's
        half = len(lines) // 2
        older, newer = lines[:half], lines[half:]
        if worker == 0:
            older.insert(3, "this is not json {")
            older.insert(7, json.dumps({**json.loads(older[6]), "pixels": [300] * 784}))  # out of range
        else:
            newer.append(newer[-1][:500])  # a line cut off mid-write
        (data / f"data.{worker}.log.1").write_text("\n".join(older) + "\n")
        (data / f"data.{worker}.log").write_text("\n".join(newer) + "\n\n")
    return data


def test_log_files_are_read_oldest_first(tmp_path):
    data = tmp_path / "clothes" / "data"
    data.mkdir(parents=True)
    for name in ("data.0.log", "data.0.log.1", "data.0.log.2", "data.0.log.10", "data.1.log"):
        (data / name).write_text("")
    assert [p.name for p in log_files(tmp_path)] == ["data.0.log.10", "data.0.log.2", "data.0.log.1", "data.0.log", "data.1.log"]
    assert log_files(tmp_path / "elsewhere") == []


def test_reads_rotated_logs_of_all_workers_in_time_order(tmp_path, data):
    _, (images, probabilities), _ = data
    write_logs(tmp_path, "v1", images, probabilities)
    records, skipped = read_records(tmp_path, "v1")
    assert skipped == 3
    assert [r["request_id"] for r in records] == [str(i) for i in range(len(images))]
    np.testing.assert_array_equal(np.stack([r["pixels"] for r in records]), images)
    np.testing.assert_array_equal([r["predicted_class"] for r in records], probabilities.argmax(axis=1))


def test_window_bounds_keep_a_partial_window_only_with_enough_records():
    assert window_bounds(700, 300, 200) == [(0, 300), (300, 600)]
    assert window_bounds(800, 300, 200) == [(0, 300), (300, 600), (600, 800)]
    assert window_bounds(150, 300, 200) == [(0, 150)]  # the only window: shown, with no verdict
    assert window_bounds(0, 300, 200) == []


def test_clean_traffic_does_not_drift_and_inverted_images_do(tmp_path, data):
    reference, clean, inverted = data
    images = np.concatenate([clean[0], inverted[0]])
    probabilities = np.concatenate([clean[1], inverted[1]])
    write_logs(tmp_path, "v1", images, probabilities)
    records, _ = read_records(tmp_path, "v1")

    reports = window_reports(records, reference, WINDOW, THRESHOLDS)

    assert [r["verdict"] for r in reports] == ["no drift", "no drift", "drift", "drift"]
    assert [r["rows"] for r in reports] == [[0, 300], [300, 600], [600, 900], [900, 1200]]
    assert reports[0]["start"] == "2026-11-25 01:00:00.000" and reports[0]["window"]["size"] == WINDOW
    for report in reports[2:]:
        assert report["statistics"]["intensity_psi"]["drifted"] and report["statistics"]["mean_intensity_ks"]["drifted"]
    html = render("v1", records, reports, reference, THRESHOLDS, skipped=3)
    assert html.count("<img") == 5 and "class='n worst'" in html and "3 unparsable log lines skipped" in html


def test_too_few_records_give_no_verdict(tmp_path, data):
    reference, _, (images, probabilities) = data
    write_logs(tmp_path, "v1", images[:100], probabilities[:100])
    records, _ = read_records(tmp_path, "v1")
    reports = window_reports(records, reference, WINDOW, THRESHOLDS)
    assert len(reports) == 1 and reports[0]["verdict"] == "too few predictions" and not reports[0]["drifted"]
    assert "too few predictions" in render("v1", records, reports, reference, THRESHOLDS)


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "configuration.yaml"
    path.write_text(yaml.safe_dump({"clothes": {"versions": ["v1"], "monitoring": {"window": WINDOW, "min_samples": 200}}}))
    monkeypatch.setenv("CLOTHES_CONFIG", str(path))
    return path


def test_main_writes_the_html_report(tmp_path, data, config, capsys):
    reference, clean, inverted = data
    write_logs(tmp_path / "logs", "v1", np.concatenate([clean[0], inverted[0]]), np.concatenate([clean[1], inverted[1]]))
    (tmp_path / "reference.json").write_text(json.dumps(reference))
    out = tmp_path / "reports" / "drift-v1.html"

    code = main(["--version", "v1", "--logs", str(tmp_path / "logs"), "--reference", str(tmp_path / "reference.json"), "--out", str(out)])

    assert code == 0
    html = out.read_text()
    assert html.startswith("<!doctype html>") and "<img" in html and "<table>" in html and "data:image/png;base64," in html
    assert "clothes:v1 drift report" in html
    assert capsys.readouterr().out.strip() == f"1200 records (3 unparsable lines skipped), 4 windows of {WINDOW}, 2 drifted (last: drift) -> {out}"


def test_main_takes_the_reference_from_the_model_store(tmp_path, data, config, capsys):
    import bentoml

    reference, (images, probabilities), _ = data
    with bentoml.models.create("clothes:drift-store") as stored:
        with open(stored.path_of("reference.json"), "w") as f:
            json.dump(reference, f)
    write_logs(tmp_path / "logs", "drift-store", images, probabilities)
    out = tmp_path / "drift.html"

    assert main(["--version", "drift-store", "--logs", str(tmp_path / "logs"), "--out", str(out)]) == 0
    assert "model store clothes:drift-store" in out.read_text()
    assert "2 windows of 300, 0 drifted (last: no drift)" in capsys.readouterr().out


def test_main_fails_without_records_or_reference(tmp_path, data, config, capsys):
    (tmp_path / "reference.json").write_text(json.dumps(data[0]))
    args = ["--version", "v1", "--logs", str(tmp_path / "logs"), "--out", str(tmp_path / "drift.html")]
    assert main([*args, "--reference", str(tmp_path / "reference.json")]) == 1
    assert "no records of v1 in" in capsys.readouterr().err
    absent = ["--version", "absent", *args[2:]]
    assert main(absent) == 1  # clothes:absent is in no model store
    assert "no reference: clothes:absent is not in the model store" in capsys.readouterr().err
    assert not (tmp_path / "drift.html").exists()


def test_reads_what_the_service_logs_through_bentoml_monitor(tmp_path, data, monkeypatch):
    from serving.monitoring import VersionMonitor
    from serving.settings import Monitoring

    reference, (images, probabilities), _ = data
    monkeypatch.chdir(tmp_path)  # BentoML's default log_path, "monitoring", is relative to the working directory
    monitor = VersionMonitor("log-test", reference, Monitoring(window=1000, log_sample_rate=1.0, log_max_per_second=10_000))
    monitor.observe(images[:150].astype(np.float32), probabilities[:150])
    monitor.observe(images[150:250].astype(np.float32), probabilities[150:250])

    records, skipped = read_records(tmp_path / "monitoring", "log-test")

    assert skipped == 0 and len(records) == 250
    np.testing.assert_array_equal(np.stack([r["pixels"] for r in records]), images[:250])
    reports = window_reports(records, reference, 1000, THRESHOLDS)
    assert reports[0]["statistics"] == monitor.drift()["statistics"]  # the offline report agrees with /drift
